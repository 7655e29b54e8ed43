"""Stationarity measures for nonsmooth objectives: Goldstein delta-stationarity and Clarke stationarity.

Provenance. The paper (arXiv 2605.01928v1) states convergence "to conservative-stationary points at
rate O(log T/sqrt T) on piecewise-smooth losses, upgraded to Clarke-stationary on the headline
architectures"; its stationarity measure could not be read (the reconstruction,
paper/polystep_reconstruction.md §3.2-§3.3, tags these items [U]).
This module provides the two measures the reproduction uses as testable proxies:

* **Goldstein delta-stationarity** (Goldstein 1977; Zhang et al. 2020; Kornowski & Shamir 2024)::

      G_delta(x) = dist(0, conv { grad f(y) : y in B(x, delta), f differentiable at y })

  estimated by :func:`goldstein_measure` from ``n`` gradients sampled at points drawn uniformly in
  the closed ball ``B(x, delta)`` (plus ``x`` itself). For a locally Lipschitz ``f`` the gradient
  exists almost everywhere, so the samples are a.s. differentiable points. Because the hull of the
  samples is a subset of the Goldstein hull, the estimate is an **upper bound** of ``G_delta(x)``
  that decreases to it as the number of samples grows.
* **Clarke stationarity**: for functions that expose the generators of their Clarke subdifferential
  (``clarke_subgradients(x)``, e.g. :class:`theory.objectives.L1Regression`: the gradients of the
  pieces active at ``x``), :func:`clarke_measure` returns ``dist(0, partial_C f(x))`` exactly (up to
  rounding). ``x`` is Clarke-stationary iff the measure is 0; ``G_delta(x) -> dist(0, partial_C f(x))``
  as ``delta -> 0`` (outer semicontinuity of the Goldstein subdifferential).
* **Clarke versus conservative stationarity**: :class:`SpuriousKinkProgram` is a genuinely nonsmooth
  ReLU program, ``f(x) = sum_i [2 ReLU(y_i) - ReLU(-y_i) + 3 ReLU(-y_i - 1)]``, ``y = Q x``
  (``= sum_i max(y_i, 2 y_i, -2 y_i - 3)``), on which torch autograd returns ``0`` at ``x = 0`` --
  a point of the program's conservative field where ``dist(0, partial_C f(0)) = sqrt(D)``. It is
  the test bed of the reconstructed "Clarke upgrade" (paper/polystep_reconstruction.md §3.3, [U]): *every limit point
  of PolyStep's iterates is Clarke-stationary*, not merely conservative-stationary
  (``repro/experiments/clarke_stationarity.py`` states the theorem as reconstructed).

Both reduce to the **minimum-norm point of a convex hull** ``conv{a_1, ..., a_m}``, solved *exactly*
by :func:`min_norm_hull` through the standard non-negative least-squares reformulation (Lawson &
Hanson 1974, ch. 23; the same trick as their least-distance programming)::

      mu* = argmin_{mu >= 0} || [A; 1^T] mu - e_{D+1} ||^2,   A = [a_1 ... a_m] in R^{D x m},

solved by ``scipy.optimize.nnls`` (the finite active-set Lawson-Hanson algorithm). With
``s = 1^T mu*`` the KKT conditions give ``a_i^T A mu* >= 1 - s`` for all ``i`` and
``||A mu*||^2 = s (1 - s)``, hence ``x* = A mu* / s`` satisfies ``a_i^T x* >= ||x*||^2`` for all ``i``:
exactly the optimality condition of the min-norm point of the hull (if ``A mu* = 0`` the origin is in
the hull and ``x* = 0``). Every result carries the Frank-Wolfe duality gap
``||x||^2 - min_i a_i^T x`` (``>= 0``; ``= 0`` iff ``x`` is optimal) and a certified lower bound
``max(0, min_i a_i^T x) / ||x||`` on the true minimum norm, so callers can check the solve.

All functions are pure: float64, CPU, randomness only through an explicit ``torch.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from scipy.optimize import nnls

__all__ = [
    "MinNormResult",
    "min_norm_hull",
    "sample_ball",
    "goldstein_measure",
    "goldstein_measures",
    "block_goldstein_measures",
    "clarke_measure",
    "default_num_samples",
    "locally_constant",
    "subgradient_descent",
    "haar_orthogonal",
    "SpuriousKinkProgram",
    "QuantizedLinearClassifier",
]


@dataclass(frozen=True)
class MinNormResult:
    """Minimum-norm point of ``conv{a_1, ..., a_m}``.

    Attributes:
        point: the min-norm point ``x* = sum_i w_i a_i``, shape ``[D]`` (float64 NumPy).
        weights: the convex weights ``w`` (``>= 0``, sum 1), shape ``[m]``.
        norm: ``||x*||`` (the measure).
        gap: Frank-Wolfe duality gap ``||x*||^2 - min_i a_i^T x*`` of ``q(w) = 1/2 ||A w||^2`` on
            the simplex (``>= 0``; 0 exactly at the optimum); it bounds the suboptimality,
            ``1/2 ||x*||^2 - 1/2 ||x_opt||^2 <= gap``.
        lower: a certified lower bound of the true minimum norm, ``max(0, min_i a_i^T x*) / ||x*||``
            (separating hyperplane through the solution direction; ``0`` when ``x* = 0``).
    """

    point: np.ndarray
    weights: np.ndarray
    norm: float
    gap: float
    lower: float


def _as_points(points: Any) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().to(torch.float64).numpy()
    a = np.asarray(points, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"points must have shape [m, D] with m, D >= 1, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("points must be finite")
    return a


def min_norm_hull(points: Any) -> MinNormResult:
    """Exact minimum-norm point of the convex hull of the rows of ``points`` (``[m, D]``).

    Solved by NNLS on the Lawson-Hanson reformulation (module docstring); the points are rescaled by
    their largest norm first (the min-norm point is scale-equivariant), so the augmented row of ones
    is well balanced against ``A``.

    Args:
        points: ``[m, D]`` array-like or tensor (a single ``[D]`` point is accepted).

    Returns:
        :class:`MinNormResult`.
    """
    a = _as_points(points)
    m, d = a.shape
    scale = float(np.max(np.linalg.norm(a, axis=1)))
    if scale == 0.0:
        w = np.full(m, 1.0 / m)
        return MinNormResult(np.zeros(d), w, 0.0, 0.0, 0.0)
    if m == 1:
        x = a[0].copy()
        return MinNormResult(x, np.ones(1), float(np.linalg.norm(x)), 0.0, float(np.linalg.norm(x)))
    an = a / scale
    e = np.vstack([an.T, np.ones((1, m))])  # [D + 1, m]
    f = np.zeros(d + 1)
    f[-1] = 1.0
    mu, _ = nnls(e, f, maxiter=50 * (m + d + 1))
    s = float(mu.sum())
    if s <= 0.0:  # pragma: no cover - excluded by the KKT conditions (mu = 0 is never optimal)
        raise RuntimeError("min_norm_hull: NNLS returned the zero vector")
    w = mu / s
    xn = w @ an
    x = xn * scale
    nrm = float(np.linalg.norm(x))
    proj = a @ x
    gap = max(0.0, float(nrm * nrm - proj.min()))
    lower = max(0.0, float(proj.min())) / nrm if nrm > 0 else 0.0
    return MinNormResult(x, w, nrm, gap, min(lower, nrm))


def default_num_samples(dim: int) -> int:
    """``4 D`` sampled gradients per Goldstein estimate (paper/polystep_reconstruction.md §3.2, check 2)."""
    return 4 * int(dim)


def sample_ball(x: torch.Tensor, delta: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` points uniform in the closed Euclidean ball ``B(x, delta)`` (shape ``[n, D]``, float64).

    Direction ``z / ||z||`` with ``z ~ N(0, I)``, radius ``delta * U^{1/D}``.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be a single point [D], got shape {tuple(x.shape)}")
    if not (math.isfinite(delta) and delta >= 0):
        raise ValueError(f"delta must be a finite number >= 0, got {delta!r}")
    d = x.shape[0]
    z = torch.randn(n, d, generator=generator, dtype=torch.float64)
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    radius = delta * u ** (1.0 / d)
    return x + z / z.norm(dim=1, keepdim=True) * radius[:, None]


def goldstein_measure(grad_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, delta: float,
                      generator: torch.Generator, *, num_samples: int | None = None,
                      include_center: bool = True) -> MinNormResult:
    """Sampled estimate (an upper bound) of the Goldstein measure ``G_delta(x)``.

    Args:
        grad_fn: maps points ``[n, D]`` to gradients ``[n, D]`` (the gradient where it exists; the
            sample points are almost surely differentiable points of a locally Lipschitz ``f``).
        x: the point ``[D]``.
        delta: ball radius ``>= 0`` (``0``: the gradient norm at ``x``).
        generator: source of the sample points.
        num_samples: number of points drawn in the ball (default :func:`default_num_samples`).
        include_center: also use ``grad f(x)``.

    Returns:
        :class:`MinNormResult` of the sampled gradients (``.norm`` is the estimate).
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    n = default_num_samples(x.shape[-1]) if num_samples is None else int(num_samples)
    pts = sample_ball(x, delta, n, generator) if delta > 0 and n > 0 else x[None, :0].reshape(0, x.shape[0])
    if include_center or pts.shape[0] == 0:
        pts = torch.cat([x[None], pts], dim=0)
    grads = grad_fn(pts)
    return min_norm_hull(grads)


def goldstein_measures(grad_fn: Callable[[torch.Tensor], torch.Tensor], xs: torch.Tensor, deltas: Any,
                       generator: torch.Generator, *, num_samples: int | None = None) -> np.ndarray:
    """:func:`goldstein_measure` (``.norm``) at every row of ``xs`` (``[n, D]``), radius ``deltas[i]``.

    The gradients of all sample points are computed in one batched call of ``grad_fn``; the hulls
    are then solved one by one. Returns a float64 array ``[n]``.
    """
    xs = torch.as_tensor(xs, dtype=torch.float64)
    if xs.ndim != 2:
        raise ValueError(f"xs must be [n, D], got shape {tuple(xs.shape)}")
    n, d = xs.shape
    deltas = np.broadcast_to(np.asarray(deltas, dtype=np.float64), (n,))
    k = default_num_samples(d) if num_samples is None else int(num_samples)
    z = torch.randn(n, k, d, generator=generator, dtype=torch.float64)
    u = torch.rand(n, k, generator=generator, dtype=torch.float64)
    radius = torch.from_numpy(deltas.copy())[:, None] * u ** (1.0 / d)
    pts = xs[:, None, :] + z / z.norm(dim=2, keepdim=True) * radius[:, :, None]
    pts = torch.cat([xs[:, None, :], pts], dim=1)  # centre first
    grads = grad_fn(pts.reshape(-1, d)).reshape(n, k + 1, d).numpy()
    return np.array([min_norm_hull(grads[i]).norm for i in range(n)])


def clarke_measure(objective: Any, x: torch.Tensor, **kwargs: Any) -> MinNormResult:
    """``dist(0, partial_C f(x))`` for an objective with ``clarke_subgradients(x, **kwargs)``.

    The objective returns the generators (gradients of the pieces active at ``x``); the Clarke
    subdifferential is their convex hull, whose min-norm point is computed exactly.
    """
    if not hasattr(objective, "clarke_subgradients"):
        raise TypeError(f"{type(objective).__name__} has no clarke_subgradients()")
    x = torch.as_tensor(x, dtype=torch.float64)
    return min_norm_hull(objective.clarke_subgradients(x, **kwargs))


def locally_constant(f: Callable[[torch.Tensor], torch.Tensor], xs: torch.Tensor, delta: float,
                     num_dirs: int, generator: torch.Generator, *, rtol: float = 1e-12) -> np.ndarray:
    """Sampled certificate that ``f`` is constant on ``B(x, delta)`` at every row of ``xs`` (``[n, D]``).

    ``True`` where ``|f(y) - f(x)| <= rtol max(1, |f(x)|)`` for ``num_dirs`` points ``y`` uniform in the
    ball and their mirror images ``2x - y``. The tolerance only absorbs the last-bit differences of
    batched floating-point evaluation (a matrix product may sum in a different order for a different
    batch shape); a loss with slope ``s`` changes by ``~ s delta`` on the ball, so with
    ``delta = 1e-7`` any slope above ``~1e-5`` is detected. Where ``f`` is constant on a neighbourhood of ``x``, the Clarke
    subdifferential is ``{0}`` (and so is the conservative field of any piecewise-constant program):
    the point is Clarke- and conservative-stationary. A random test can only miss a non-constant
    neighbourhood (false ``True``) when the ball meets a jump set in a region the samples avoid.
    """
    xs = torch.as_tensor(xs, dtype=torch.float64)
    n, d = xs.shape
    z = torch.randn(n, num_dirs, d, generator=generator, dtype=torch.float64)
    u = torch.rand(n, num_dirs, generator=generator, dtype=torch.float64)
    off = z / z.norm(dim=2, keepdim=True) * (delta * u ** (1.0 / d))[:, :, None]
    ys = torch.cat([xs[:, None], xs[:, None] + off, xs[:, None] - off], dim=1)  # centre in the same batch
    fy = f(ys.reshape(-1, d)).reshape(n, 2 * num_dirs + 1)
    f0 = fy[:, :1]
    return ((fy - f0).abs() <= rtol * torch.clamp(f0.abs(), min=1.0)).all(dim=1).numpy()


def subgradient_descent(grad_fn: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, steps: int,
                        eta0: float) -> np.ndarray:
    """``x_{t+1} = x_t - eta0/sqrt(t+1) * grad_fn(x_t)`` (a first-order method fed by ``grad_fn``, e.g.
    an autodiff selection); returns the iterates ``[steps + 1, ...]``."""
    x = torch.as_tensor(x0, dtype=torch.float64).clone()
    out = [x.numpy().copy()]
    for t in range(steps):
        x = x - eta0 / math.sqrt(t + 1) * grad_fn(x)
        out.append(x.numpy().copy())
    return np.stack(out)


def haar_orthogonal(dim: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-distributed orthogonal ``[dim, dim]`` float64 matrix (QR of a Gaussian matrix with the
    signs of ``R``'s diagonal moved into ``Q``, Mezzadri 2007)."""
    z = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(z)
    return q * torch.sign(torch.diagonal(r))[None, :]


class SpuriousKinkProgram:
    """A genuinely nonsmooth ReLU program whose autodiff field has a spurious stationary point.

    The *program* (what :meth:`__call__` evaluates, with ``torch.relu``)::

        f(x) = sum_i [ a ReLU(y_i) - ReLU(-y_i) + b ReLU(-y_i - 1) ],   y = Q x,

    with ``Q`` orthogonal (``[D, D]``), ``a >= 1`` and ``b > 1`` (defaults ``a = 2``, ``b = 3``). As a
    *function* it is the convex, piecewise-linear (a one-hidden-layer ReLU network with a dense first
    layer)::

        f(x) = sum_i phi(y_i),   phi(y) = max(y, a y, (1 - b) y - b),

    with slopes ``phi' = 1 - b`` (``y < -1``), ``1`` (``-1 < y < 0``), ``a`` (``y > 0``): two kinks per
    coordinate, at ``y_i = -1`` and ``y_i = 0``; minimum ``-D`` at ``y = -1`` (``x* = -Q^T 1``).
    Because ``f = Phi(Q x)`` with ``Phi`` separable and convex, its Clarke subdifferential is exactly

        partial_C f(x) = Q^T prod_i I_i(y_i),   I(y) = {1-b} (y < -1), [1-b, 1] (y = -1), {1} (-1 < y < 0),
                                                       [1, a] (y = 0), {a} (y > 0)

    (:meth:`clarke_subgradients`: the ``2^k`` vertices for ``k`` active kinks).

    **The spurious point.** Backpropagation through the program with torch's ``ReLU'(0) = 0`` returns,
    at ``y_i = 0``, ``a ReLU'(0) + ReLU'(0) - b ReLU'(-1) = 0``: at ``x = 0`` the autodiff "gradient"
    is exactly ``0`` (:meth:`autodiff_grad`). The program's conservative field (chain rule with
    ``D_ReLU(0) = [0, 1]``, :meth:`conservative_field_box`) is ``[0, a + 1]`` there and contains 0, so
    ``x = 0`` is conservative-stationary; but ``dist(0, partial_C f(0)) = ||Q^T 1|| = sqrt(D)`` (the
    vertex ``(1, ..., 1)`` of ``[1, a]^D``): ``f`` decreases at rate ``sqrt(D)`` along ``-Q^T 1``, and
    ``0`` is not Clarke-stationary. This is what separates the two notions, unlike the
    ``ReLU(x) - ReLU(-x)`` program (= ``x``, smooth), where only the *program* has a kink. The minimum
    is a genuine kink: ``partial_C f(x*) = Q^T [1-b, 1]^D`` contains 0 in its interior (a sharp
    minimum), so the Clarke measure at generic iterates near ``x*`` is an ``O(1)`` gradient norm and
    only the Goldstein measure at ``delta >~ ||x - x*||`` is small. At ``y_i = -1`` the autodiff value
    is ``1`` (``-ReLU(-y)`` contributes ``ReLU'(1) = 1``, ``b ReLU(0)`` contributes 0), an element of the
    Clarke interval. The conservative-stationary points of the program are the ``2^D`` points with every
    ``y_i in {0, -1}``; all but ``x*`` are spurious (a coordinate at ``y_i = 0`` has Clarke interval
    ``[1, a]``), and autodiff returns exactly ``0`` only at ``x = 0``.

    The kink at the minimum is asymmetric (slopes ``1 - b = -2`` and ``1``) on purpose: with symmetric
    slopes ``f(x* + v) = f(x* - v)`` near ``x*``, the orthoplex's mirrored probes then have equal costs
    at ``x*`` and ``x*`` is an exact fixed point of PolyStep -- a special case. With asymmetric slopes
    the ball-smoothed loss ``E_u f(x + r u)`` that PolyStep descends has its minimiser ``O(r)`` away from
    ``x*``, as for a generic kink.

    Args:
        dim: ``D``.
        rotation: ``Q`` (``[D, D]`` orthogonal; default the identity).
        a: slope right of the kink at 0 (``>= 1``: convex).
        b: weight of the third ReLU (``> 1``: the minimum is at ``y = -1``).
    """

    def __init__(self, dim: int, rotation: Any = None, *, a: float = 2.0, b: float = 3.0) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        q = torch.eye(dim, dtype=torch.float64) if rotation is None else torch.as_tensor(rotation, dtype=torch.float64)
        if q.shape != (dim, dim) or not torch.allclose(q @ q.T, torch.eye(dim, dtype=torch.float64), atol=1e-12):
            raise ValueError(f"rotation must be an orthogonal [{dim}, {dim}] matrix")
        if not (a >= 1.0 and b > 1.0):
            raise ValueError(f"need a >= 1 (convex) and b > 1 (minimum at y = -1), got a={a}, b={b}")
        self.dim, self.Q, self.a, self.b = dim, q.clone(), float(a), float(b)
        self.name = "spurious_kink_program"
        self.minimum = -float(dim)
        self.minimizer = -(torch.ones(dim, dtype=torch.float64) @ self.Q)  # x* = -Q^T 1
        self.spurious_point = torch.zeros(dim, dtype=torch.float64)

    def y(self, x: torch.Tensor) -> torch.Tensor:
        """``y = Q x`` (rows of ``x`` are points)."""
        return x @ self.Q.to(x.dtype).T

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The ReLU program (this is what autodiff differentiates)."""
        y = self.y(x)
        return (self.a * torch.relu(y) - torch.relu(-y) + self.b * torch.relu(-y - 1.0)).sum(-1)

    def max_form(self, x: torch.Tensor) -> torch.Tensor:
        """The same function written as ``sum_i max(y_i, a y_i, (1 - b) y_i - b)``."""
        y = self.y(x)
        return torch.maximum(torch.maximum(y, self.a * y), (1.0 - self.b) * y - self.b).sum(-1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """``Q^T s(y)`` with the right derivative ``s = a`` (``y >= 0``), ``1`` (``-1 <= y < 0``), ``1 - b``
        (``y < -1``): the gradient off the kinks and, on them, an element of the Clarke interval (so
        that a Goldstein estimate centred on a kink stays an upper bound). It is *not* what autodiff
        returns on the kinks (:meth:`autodiff_grad`: ``0`` at ``y_i = 0``)."""
        y = self.y(x)
        s = self._slopes(y, y >= 0, y >= -1.0)
        return s @ self.Q.to(y.dtype)

    def _slopes(self, y: torch.Tensor, right_of_0: torch.Tensor, right_of_m1: torch.Tensor) -> torch.Tensor:
        """``a`` where ``right_of_0``, else ``1`` where ``right_of_m1``, else ``1 - b`` (in ``y``'s dtype)."""
        one = torch.ones_like(y)
        return torch.where(right_of_0, self.a * one, torch.where(right_of_m1, one, (1.0 - self.b) * one))

    def autodiff_selection(self, x: torch.Tensor) -> torch.Tensor:
        """Closed form of what backpropagation returns: ``Q^T (a 1[y > 0] + 1[y < 0] - b 1[y < -1])``
        (``ReLU'(0) = 0``: ``0`` at ``y_i = 0``, ``1`` at ``y_i = -1``)."""
        y = self.y(x)
        s = self.a * (y > 0).to(y.dtype) + (y < 0).to(y.dtype) - self.b * (y < -1.0).to(y.dtype)
        return s @ self.Q.to(y.dtype)

    def autodiff_grad(self, x: torch.Tensor) -> torch.Tensor:
        """``torch.autograd`` through the program (rows of ``x`` are points)."""
        xx = torch.as_tensor(x, dtype=torch.float64).detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(self(xx).sum(), xx)
        return g.detach()

    def _intervals(self, x: torch.Tensor, tol: float, conservative: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.ndim != 1:
            raise ValueError(f"x must be a single point [D], got shape {tuple(x.shape)}")
        y = self.y(x)
        s = self._slopes(y, y > 0, y >= -1.0)
        lo, hi = s.clone(), s.clone()
        at0, atm1 = y.abs() <= tol, (y + 1.0).abs() <= tol
        lo = torch.where(at0, torch.tensor(0.0 if conservative else 1.0, dtype=torch.float64), lo)
        hi = torch.where(at0, torch.tensor(self.a + 1.0 if conservative else self.a, dtype=torch.float64), hi)
        lo = torch.where(atm1, torch.tensor(1.0 - self.b, dtype=torch.float64), lo)
        hi = torch.where(atm1, torch.tensor(1.0, dtype=torch.float64), hi)
        return lo, hi

    def clarke_box(self, x: torch.Tensor, tol: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lo, hi)``: ``partial_C f(x) = Q^T prod_i [lo_i, hi_i]`` (kinks within ``tol`` are active)."""
        return self._intervals(x, tol, conservative=False)

    def conservative_field_box(self, x: torch.Tensor, tol: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lo, hi)`` of the program's conservative field ``Q^T prod_i [lo_i, hi_i]`` (chain rule with
        ``D_ReLU(0) = [0, 1]``): ``[0, a + 1]`` at ``y_i = 0``, ``[1 - b, 1]`` at ``y_i = -1``."""
        return self._intervals(x, tol, conservative=True)

    def clarke_subgradients(self, x: torch.Tensor, tol: float = 0.0, *, max_active: int = 16) -> torch.Tensor:
        """The ``[2^k, D]`` vertices ``Q^T s`` of ``partial_C f(x)`` (``k`` active kinks)."""
        lo, hi = self.clarke_box(x, tol)
        active = torch.nonzero(lo != hi).flatten()
        k = int(active.numel())
        if k > max_active:
            raise ValueError(f"{k} active kinks exceed max_active={max_active}")
        n = 1 << k
        bits = ((torch.arange(n)[:, None] >> torch.arange(k)) & 1).to(torch.bool)
        s = lo.expand(n, -1).clone()
        s[:, active] = torch.where(bits, hi[active].expand(n, -1), lo[active].expand(n, -1))
        return s @ self.Q

    def kink_distance(self, x: torch.Tensor) -> torch.Tensor:
        """Euclidean distance from each row of ``x`` to the nearest kink hyperplane
        (``min_i min(|y_i|, |y_i + 1|)``, ``Q`` orthogonal): a ball of smaller radius lies in one piece."""
        y = self.y(torch.as_tensor(x, dtype=torch.float64))
        return torch.minimum(y.abs(), (y + 1.0).abs()).min(dim=-1).values


class QuantizedLinearClassifier:
    """A piecewise-constant training loss like the headline int8 models: softmax cross-entropy of a
    linear classifier whose weights are rounded to a grid of step ``q`` before use,

        ``L(theta) = mean_i CE(softmax(x_i^T Q(W)), y_i)``,  ``Q(W) = q round(W / q)``,
        ``theta = vec(W)``, ``W in R^{k x d}``.

    ``round`` makes ``L`` constant on the boxes of the grid ``q (Z + 1/2)``: its gradient (and the
    autodiff gradient) is zero off the grid's jump hyperplanes. Data: two Gaussian blobs in ``R^d``
    (``k = 2`` classes, means ``+-mu 1/sqrt(d)``, unit covariance), drawn from ``generator``.
    """

    def __init__(self, n: int, dim: int, generator: torch.Generator, *, q: float = 0.125,
                 separation: float = 2.0) -> None:
        self.k, self.d, self.q = 2, int(dim), float(q)
        y = torch.arange(n) % 2
        mean = separation / math.sqrt(dim) * (2.0 * y[:, None].to(torch.float64) - 1.0)
        self.x = mean + torch.randn(n, dim, generator=generator, dtype=torch.float64)
        self.y = y
        self.dim = self.k * self.d
        self.name = "quantized_linear_classifier"

    def quantize(self, theta: torch.Tensor) -> torch.Tensor:
        return self.q * torch.round(theta / self.q)

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        w = self.quantize(theta).reshape(*theta.shape[:-1], self.k, self.d)
        logits = torch.einsum("nd,...kd->...nk", self.x, w)
        logp = torch.log_softmax(logits, dim=-1)
        picked = torch.gather(logp, -1, self.y.expand(*logits.shape[:-1]).unsqueeze(-1)).squeeze(-1)
        return -picked.mean(-1)

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        """Zero: the gradient wherever it exists (also what autodiff through ``round`` returns)."""
        return torch.zeros_like(theta)


def block_goldstein_measures(grad_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, delta: float,
                             block_size: int, generator: torch.Generator, *,
                             num_samples: int | None = None) -> np.ndarray:
    """Goldstein estimates restricted to coordinate blocks: for block ``b`` (coordinates
    ``[b s, (b+1) s)``), the min-norm point of the hull of the *block* gradients ``grad_b f(y)`` at
    ``y = x`` and at points that move only block ``b`` uniformly in a ball of radius ``delta``.

    A point where every block measure is ~0 but the full measure is not is *block-wise* stationary --
    where a block-coordinate method (one particle per block, the others fixed) stops -- without being
    Clarke/Goldstein stationary. Returns ``[n_blocks]``.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    d = x.shape[0]
    if d % block_size:
        raise ValueError(f"dimension {d} is not a multiple of block_size {block_size}")
    n = 4 * block_size if num_samples is None else int(num_samples)
    out = []
    for b in range(d // block_size):
        sl = slice(b * block_size, (b + 1) * block_size)
        z = torch.randn(n, block_size, generator=generator, dtype=torch.float64)
        u = torch.rand(n, 1, generator=generator, dtype=torch.float64)
        pts = x.expand(n, d).clone()
        pts[:, sl] += z / z.norm(dim=1, keepdim=True) * delta * u ** (1.0 / block_size)
        grads = grad_fn(torch.cat([x[None], pts]))[:, sl]
        out.append(min_norm_hull(grads).norm)
    return np.asarray(out)
