"""Synthetic objectives for the theory checks (paper/polystep_reconstruction.md §3.2-§3.4).

Three regimes, each vectorised over leading batch dimensions (``x`` of shape ``[..., D]`` maps to
losses of shape ``[...]``; dtype and device follow ``x``):

* smooth (conservative field = gradient): :func:`quadratic` / :func:`random_quadratic`,
  :func:`rosenbrock`, :func:`log_cosh_quadratic`;
* piecewise smooth: :func:`l1_regression` (with the generators of its Clarke subdifferential),
  :func:`relu_selection_example` (Bolte & Pauwels' ``ReLU(x) - ReLU(-x)``: a point where the
  autodiff selection is stationary but the Clarke subdifferential is not);
* piecewise constant: :func:`staircase_radial`, :func:`staircase_separable` (hitting-time checks).

Every objective is a plain object with ``name``, ``dim`` (``None`` if any ``D`` is accepted),
``minimum`` (the global minimum value), ``__call__(x)`` and ``grad(x)`` (the gradient where it
exists, a documented selection elsewhere).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = [
    "Objective",
    "Quadratic",
    "Rosenbrock",
    "LogCoshQuadratic",
    "L1Regression",
    "ReluSelectionExample",
    "StaircaseRadial",
    "StaircaseSeparable",
    "quadratic",
    "random_spd",
    "random_quadratic",
    "rosenbrock",
    "log_cosh_quadratic",
    "l1_regression",
    "relu_selection_example",
    "staircase_radial",
    "staircase_separable",
]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _as_matrix(name: str, value: Any, *, square: bool = False) -> torch.Tensor:
    """Convert ``value`` to a float64 CPU matrix, validating its shape."""
    t = torch.as_tensor(value)
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"{name} must be a real matrix, got dtype {t.dtype}")
    t = t.detach().to(device="cpu", dtype=torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {tuple(t.shape)}")
    if square and t.shape[0] != t.shape[1]:
        raise ValueError(f"{name} must be square, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must contain only finite values")
    return t


def _as_vector(name: str, value: Any, size: int) -> torch.Tensor:
    t = torch.as_tensor(value).detach().to(device="cpu", dtype=torch.float64)
    if t.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must contain only finite values")
    return t


def _check_spd(name: str, a: torch.Tensor) -> None:
    scale = max(1.0, float(a.abs().max()))
    if not torch.allclose(a, a.T, rtol=0.0, atol=1e-12 * scale):
        raise ValueError(f"{name} must be symmetric")
    if torch.linalg.cholesky_ex(a).info != 0:
        raise ValueError(f"{name} must be positive definite")


def _nonneg_float(name: str, value: Any) -> float:
    out = float(value)
    if not math.isfinite(out) or out < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def _positive_float(name: str, value: Any) -> float:
    out = float(value)
    if not math.isfinite(out) or out <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return out


def _to(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Cast a stored parameter to the dtype/device of the input ``x``."""
    return t.to(dtype=x.dtype, device=x.device)


def _log_cosh(x: torch.Tensor) -> torch.Tensor:
    """Overflow-free ``log cosh x = |x| + log1p(exp(-2|x|)) - log 2``."""
    ax = x.abs()
    return ax + torch.log1p(torch.exp(-2.0 * ax)) - math.log(2.0)


class Objective:
    """Base class: ``f(x)`` for ``x`` of shape ``[..., D]``, returning ``[...]``.

    Attributes:
        name: short identifier used in logs and figure labels.
        dim: required last dimension ``D``, or ``None`` if any ``D >= min_dim`` is accepted.
        minimum: the global minimum value of ``f`` (``-inf`` if unbounded below).
    """

    name: str = "objective"
    dim: int | None = None
    min_dim: int = 1
    minimum: float = float("nan")

    def _check(self, x: Any) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"x must have a floating dtype, got {x.dtype}")
        if x.ndim < 1:
            raise ValueError("x must have shape [..., D] with at least one dimension")
        d = x.shape[-1]
        if self.dim is not None and d != self.dim:
            raise ValueError(f"x must have last dimension {self.dim} for {self.name}, got {d}")
        if d < self.min_dim:
            raise ValueError(f"x must have last dimension >= {self.min_dim} for {self.name}, got {d}")
        return x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, minimum={self.minimum!r})"


# --------------------------------------------------------------------------------------------
# smooth
# --------------------------------------------------------------------------------------------
class Quadratic(Objective):
    """``f(x) = 1/2 x^T A x - b^T x`` with ``A`` symmetric positive definite.

    ``grad f(x) = A x - b``; minimiser ``x* = A^{-1} b``; minimum ``-1/2 b^T A^{-1} b``.

    Attributes:
        A: the ``[D, D]`` float64 matrix (CPU; cast to the input's dtype/device on use).
        b: the ``[D]`` float64 linear term.
        minimizer: ``A^{-1} b`` in float64.
    """

    def __init__(self, A: Any, b: Any = None, *, name: str = "quadratic") -> None:
        a = _as_matrix("A", A, square=True)
        _check_spd("A", a)
        d = a.shape[0]
        self.A = a
        self.b = torch.zeros(d, dtype=torch.float64) if b is None else _as_vector("b", b, d)
        self.dim = d
        self.name = name
        self.minimizer = torch.linalg.solve(self.A, self.b)
        self.minimum = float(-0.5 * self.b @ self.minimizer)
        eig = torch.linalg.eigvalsh(self.A)
        self.condition_number = float(eig[-1] / eig[0])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        a, b = _to(self.A, x), _to(self.b, x)
        return 0.5 * ((x @ a) * x).sum(-1) - x @ b

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """``A x - b`` (batched, ``A`` symmetric)."""
        x = self._check(x)
        return x @ _to(self.A, x) - _to(self.b, x)


def quadratic(A: Any, b: Any = None) -> Quadratic:
    """Factory for :class:`Quadratic`: ``f(x) = 1/2 x^T A x - b^T x`` (``b = 0`` if omitted)."""
    return Quadratic(A, b)


def random_spd(dim: int, cond: float, generator: torch.Generator, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Random symmetric positive definite ``A = Q diag(lambda) Q^T`` with condition number ``cond``.

    ``Q`` is Haar-distributed on O(D) (QR of a Gaussian matrix with the sign of ``diag(R)``
    absorbed) and the eigenvalues are geometrically spaced, ``lambda_i = cond^{i/(D-1)}``,
    ``i = 0..D-1`` (so ``lambda_min = 1``, ``lambda_max = cond``).

    Args:
        dim: dimension ``D >= 1``.
        cond: condition number ``>= 1`` (must be 1 when ``dim == 1``).
        generator: CPU ``torch.Generator`` for ``Q``.
        dtype: floating dtype of the returned matrix.

    Returns:
        The ``[D, D]`` matrix (exactly symmetric).
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    cond = float(cond)
    if not math.isfinite(cond) or cond < 1.0:
        raise ValueError(f"cond must be a finite number >= 1, got {cond!r}")
    if dim == 1 and cond != 1.0:
        raise ValueError(f"cond must be 1 when dim == 1, got {cond!r}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    g = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(()))
    expo = torch.linspace(0.0, 1.0, dim, dtype=torch.float64) if dim > 1 else torch.zeros(1, dtype=torch.float64)
    lam = cond**expo
    a = (q * lam) @ q.T
    a = 0.5 * (a + a.T)
    return a.to(dtype)


def random_quadratic(dim: int, cond: float, generator: torch.Generator, *, linear_term: bool = True) -> Quadratic:
    """Random :class:`Quadratic` with an SPD ``A`` of condition number ``cond``.

    ``A`` comes from :func:`random_spd`; ``b ~ N(0, I_D)`` if ``linear_term`` (drawn after ``A`` from
    the same generator), else ``b = 0`` (minimiser at the origin, minimum 0).

    Args:
        dim: dimension ``D >= 1``.
        cond: condition number ``>= 1``.
        generator: CPU ``torch.Generator``.
        linear_term: whether to draw a random ``b``.
    """
    a = random_spd(dim, cond, generator)
    b = torch.randn(dim, generator=generator, dtype=torch.float64) if linear_term else None
    q = Quadratic(a, b, name=f"quadratic_d{dim}_cond{cond:g}")
    return q


class Rosenbrock(Objective):
    """``f(x) = sum_{i=1}^{D-1} [ b (x_{i+1} - x_i^2)^2 + (a - x_i)^2 ]`` (``D >= 2``).

    Gradient: ``df/dx_i = -4 b x_i (x_{i+1} - x_i^2) - 2 (a - x_i)`` (for ``i < D``) plus
    ``2 b (x_i - x_{i-1}^2)`` (for ``i > 1``). Minimum 0 at ``x = (a, a^2, a^4, ...)``; for the
    standard ``a = 1`` that is the all-ones vector.
    """

    min_dim = 2

    def __init__(self, a: float = 1.0, b: float = 100.0) -> None:
        self.a = float(a)
        self.b = _positive_float("b", b)
        if not math.isfinite(self.a):
            raise ValueError(f"a must be finite, got {a!r}")
        self.name = "rosenbrock"
        self.minimum = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        head, tail = x[..., :-1], x[..., 1:]
        return (self.b * (tail - head**2) ** 2 + (self.a - head) ** 2).sum(-1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        head, tail = x[..., :-1], x[..., 1:]
        r = tail - head**2
        g = torch.zeros_like(x)
        g[..., :-1] = -4.0 * self.b * head * r - 2.0 * (self.a - head)
        g[..., 1:] += 2.0 * self.b * r
        return g


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Rosenbrock:
    """Factory for the (extended) :class:`Rosenbrock` function; any ``D >= 2``."""
    return Rosenbrock(a, b)


class LogCoshQuadratic(Objective):
    """``f(x) = 1/2 x^T A x + sum_i log cosh x_i`` with ``A`` symmetric positive semidefinite.

    ``grad f(x) = A x + tanh(x)``; the unique minimiser is ``x = 0`` (``f`` is strictly convex since
    ``log cosh`` is), minimum ``0``. Reconstruction §3.2, check 1.
    """

    def __init__(self, A: Any) -> None:
        a = _as_matrix("A", A, square=True)
        scale = max(1.0, float(a.abs().max()))
        if not torch.allclose(a, a.T, rtol=0.0, atol=1e-12 * scale):
            raise ValueError("A must be symmetric")
        if float(torch.linalg.eigvalsh(a)[0]) < -1e-12 * scale:
            raise ValueError("A must be positive semidefinite")
        self.A = a
        self.dim = a.shape[0]
        self.name = "log_cosh_quadratic"
        self.minimum = 0.0
        self.minimizer = torch.zeros(self.dim, dtype=torch.float64)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        return 0.5 * ((x @ _to(self.A, x)) * x).sum(-1) + _log_cosh(x).sum(-1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        return x @ _to(self.A, x) + torch.tanh(x)


def log_cosh_quadratic(A: Any) -> LogCoshQuadratic:
    """Factory for :class:`LogCoshQuadratic`: ``1/2 x^T A x + sum_i log cosh x_i``."""
    return LogCoshQuadratic(A)


# --------------------------------------------------------------------------------------------
# piecewise smooth
# --------------------------------------------------------------------------------------------
class L1Regression(Objective):
    """``f(x) = ||B x - c||_1 + mu ||x||_2^2`` (convex, piecewise quadratic).

    Where every residual ``r_j = B_j x - c_j`` is non-zero, ``grad f(x) = B^T sign(r) + 2 mu x``.
    :meth:`grad` returns this formula everywhere, with ``sign(0) = 0`` at kinks (a selection: an
    element of the Clarke subdifferential, not necessarily the min-norm one).
    :meth:`clarke_subgradients` returns the generators of the Clarke subdifferential

        ``partial_C f(x) = { B^T s + 2 mu x : s_j = sign(r_j) if r_j != 0, s_j in [-1, 1] else }``,

    whose convex hull is spanned by the ``2^|A|`` vertices ``s_j in {-1, +1}`` on the active set
    ``A = {j : |r_j| <= tol}`` (``f`` is convex, so Clarke = convex subdifferential and the sum rule
    holds with equality). Reconstruction §3.2, check 2.

    The minimum is computed once at construction, in float64: for ``mu > 0`` from the dual
    ``max_{||u||_inf <= 1} -u^T c - ||B^T u||^2 / (4 mu)`` (box-constrained QP, L-BFGS-B) with
    ``x = -B^T u / (2 mu)``, polished by solving the KKT system of the identified active set; for
    ``mu = 0`` from the linear program ``min sum t s.t. -t <= B x - c <= t`` (HiGHS).
    ``minimum_gap`` is the certified bound ``f(minimizer) - dual value >= f(minimizer) - f*``.
    """

    def __init__(self, B: Any, c: Any, mu: float) -> None:
        self.B = _as_matrix("B", B)
        m, d = self.B.shape
        self.c = _as_vector("c", c, m)
        self.mu = _nonneg_float("mu", mu)
        self.dim = d
        self.name = "l1_regression"
        self.minimizer, self.minimum, self.minimum_gap = self._solve()

    # -- evaluation -----------------------------------------------------------------------------
    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``r = B x - c`` with shape ``[..., m]``."""
        x = self._check(x)
        return x @ _to(self.B, x).T - _to(self.c, x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        r = self.residual(x)
        return r.abs().sum(-1) + self.mu * (x * x).sum(-1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """``B^T sign(B x - c) + 2 mu x`` (the gradient off the kinks; ``sign(0) = 0`` on them)."""
        r = self.residual(x)
        return torch.sign(r) @ _to(self.B, x) + 2.0 * self.mu * x

    def active_set(self, x: torch.Tensor, tol: float | None = None) -> torch.Tensor:
        """Boolean mask ``|r_j| <= tol`` of the kinks active at a single point ``x`` of shape ``[D]``.

        The default ``tol`` is the floating-point error bound of computing ``r_j``:
        ``tol_j = 8 D eps (sum_k |B_jk x_k| + |c_j|)`` in the dtype of ``x``.
        """
        x = self._check(x)
        if x.ndim != 1:
            raise ValueError(f"x must be a single point of shape [D], got {tuple(x.shape)}")
        r = self.residual(x)
        if tol is None:
            eps = torch.finfo(x.dtype).eps
            tol_t = 8.0 * self.dim * eps * ((_to(self.B, x).abs() @ x.abs()) + _to(self.c, x).abs())
        else:
            tol = _nonneg_float("tol", tol)
            tol_t = torch.full_like(r, tol)
        return r.abs() <= tol_t

    def clarke_subgradients(self, x: torch.Tensor, tol: float | None = None, *, max_active: int = 16) -> torch.Tensor:
        """Generators of the Clarke subdifferential at a single point ``x`` (shape ``[D]``).

        Returns the ``[2^k, D]`` tensor of gradients ``B^T s + 2 mu x`` of all pieces meeting at
        ``x``, where ``k`` is the number of active residuals (``|r_j| <= tol``, see
        :meth:`active_set`) and ``s`` ranges over the sign patterns with ``s_j = sign(r_j)`` off the
        active set and ``s_j in {-1, +1}`` on it. Their convex hull is ``partial_C f(x)``; at a
        differentiable point the result is the single gradient (shape ``[1, D]``).

        Raises:
            ValueError: if more than ``max_active`` residuals are active (``2^k`` generators).
        """
        active = self.active_set(x, tol)
        k = int(active.sum())
        if k > max_active:
            raise ValueError(f"{k} active residuals exceed max_active={max_active} (2^{k} generators)")
        r = self.residual(x)
        s = torch.sign(r)
        idx = torch.nonzero(active).flatten()
        n = 1 << k
        pattern = ((torch.arange(n, device=x.device)[:, None] >> torch.arange(k, device=x.device)) & 1).to(x.dtype)
        signs = s.expand(n, -1).clone()
        signs[:, idx] = 2.0 * pattern - 1.0
        return signs @ _to(self.B, x) + 2.0 * self.mu * x

    # -- minimum --------------------------------------------------------------------------------
    def _solve(self) -> tuple[torch.Tensor, float, float]:
        from scipy.optimize import linprog, minimize

        b = self.B.numpy()
        c = self.c.numpy()
        m, d = b.shape
        f = lambda x: float(np.abs(b @ x - c).sum() + self.mu * (x @ x))  # noqa: E731

        if self.mu == 0.0:
            # min 1^T t  s.t.  B x - t <= c,  -B x - t <= -c
            cost = np.concatenate([np.zeros(d), np.ones(m)])
            a_ub = np.block([[b, -np.eye(m)], [-b, -np.eye(m)]])
            b_ub = np.concatenate([c, -c])
            bounds = [(None, None)] * d + [(0, None)] * m
            res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
            if res.status != 0:  # pragma: no cover - LP is always feasible and bounded
                raise RuntimeError(f"l1_regression: LP for the minimum failed: {res.message}")
            x = res.x[:d]
            dual_value = float(res.fun)
            val = f(x)
            return torch.from_numpy(x.copy()), val, max(0.0, val - dual_value)

        mu = self.mu

        def neg_dual(u: np.ndarray) -> tuple[float, np.ndarray]:
            btu = b.T @ u
            return float(u @ c + btu @ btu / (4 * mu)), c + b @ btu / (2 * mu)

        res = minimize(neg_dual, np.zeros(m), jac=True, method="L-BFGS-B", bounds=[(-1.0, 1.0)] * m,
                       options={"ftol": 1e-15, "gtol": 1e-13, "maxiter": 10_000})
        u = res.x
        dual_value = -neg_dual(u)[0]
        x_best = -b.T @ u / (2 * mu)
        val_best = f(x_best)
        # Polish: residuals with |u_j| < 1 are zero at the optimum; solve the equality-constrained
        # KKT system  2 mu x + B_N^T s_N + B_S^T lam = 0,  B_S x = c_S  exactly.
        free = np.abs(u) < 1.0 - 1e-7
        s = np.sign(u)
        bs, bn = b[free], b[~free]
        if free.any():
            rhs = -2 * mu * c[free] - bs @ (bn.T @ s[~free])
            lam = np.linalg.lstsq(bs @ bs.T, rhs, rcond=None)[0]
            x_pol = -(bn.T @ s[~free] + bs.T @ lam) / (2 * mu)
        else:
            x_pol = -(b.T @ s) / (2 * mu)
        val_pol = f(x_pol)
        if val_pol < val_best:
            x_best, val_best = x_pol, val_pol
        return torch.from_numpy(np.array(x_best, dtype=np.float64)), val_best, max(0.0, val_best - dual_value)


def l1_regression(B: Any, c: Any, mu: float) -> L1Regression:
    """Factory for :class:`L1Regression`: ``||B x - c||_1 + mu ||x||^2``."""
    return L1Regression(B, c, mu)


class ReluSelectionExample(Objective):
    """Bolte & Pauwels' program ``ReLU(x) - ReLU(-x)`` (= ``x``), made bounded below.

    ``f(x) = sum_i [ReLU(x_i) - ReLU(-x_i)] + mu ||x||^2 = sum_i (x_i + mu x_i^2)``.

    As a function ``f`` is smooth: ``grad f(x) = 1 + 2 mu x`` everywhere (this is :meth:`grad`, and
    the Clarke subdifferential is ``{grad f(x)}``), minimum ``-D / (4 mu)`` at ``x_i = -1/(2 mu)``.
    But :meth:`__call__` evaluates the *program* with ``torch.relu``, so backpropagation uses the
    selection ``ReLU'(0) = 0`` and returns ``2 mu x_i + 1[x_i != 0]``
    (:meth:`autodiff_selection_grad`): at ``x_i = 0`` it reports ``0`` although the derivative is
    ``1``. The conservative field of the program at ``x_i = 0`` is ``[0, 2]``, which contains ``0``:
    ``x = 0`` is conservative-stationary but not Clarke-stationary (reconstruction §3.3). With
    ``mu = 0`` this is the original example, unbounded below (``minimum = -inf``).

    Args:
        dim: dimension ``D >= 1``.
        mu: weight of the quadratic term (``>= 0``).
    """

    def __init__(self, dim: int = 1, *, mu: float = 0.5) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        self.dim = dim
        self.mu = _nonneg_float("mu", mu)
        self.name = "relu_selection_example"
        self.minimum = -dim / (4.0 * self.mu) if self.mu > 0 else float("-inf")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        return (torch.relu(x) - torch.relu(-x)).sum(-1) + self.mu * (x * x).sum(-1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """True gradient ``1 + 2 mu x`` (also the only Clarke subgradient)."""
        x = self._check(x)
        return 1.0 + 2.0 * self.mu * x

    def autodiff_selection_grad(self, x: torch.Tensor) -> torch.Tensor:
        """What backpropagation returns: ``2 mu x + 1[x != 0]`` (``ReLU'(0) = 0``)."""
        x = self._check(x)
        return 2.0 * self.mu * x + (x != 0).to(x.dtype)

    def clarke_subgradients(self, x: torch.Tensor) -> torch.Tensor:
        """The Clarke subdifferential at a single point ``x``: ``{1 + 2 mu x}`` (shape ``[1, D]``)."""
        x = self._check(x)
        if x.ndim != 1:
            raise ValueError(f"x must be a single point of shape [D], got {tuple(x.shape)}")
        return self.grad(x)[None]

    def conservative_field_bounds(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-coordinate interval ``[lo, hi]`` of the program's conservative field (a box).

        Using ``D_ReLU(0) = [0, 1]``: ``D(x)_i = 2 mu x_i + [0, 2]`` if ``x_i = 0`` and
        ``{1 + 2 mu x_i}`` otherwise.
        """
        x = self._check(x)
        g = self.grad(x)
        zero = x == 0
        return torch.where(zero, 2.0 * self.mu * x, g), torch.where(zero, 2.0 * self.mu * x + 2.0, g)


def relu_selection_example(dim: int = 1, *, mu: float = 0.5) -> ReluSelectionExample:
    """Factory for :class:`ReluSelectionExample`: ``sum_i [ReLU(x_i) - ReLU(-x_i)] + mu ||x||^2``."""
    return ReluSelectionExample(dim, mu=mu)


# --------------------------------------------------------------------------------------------
# piecewise constant
# --------------------------------------------------------------------------------------------
class StaircaseRadial(Objective):
    """``f(x) = floor(||x||_2 / w)``: concentric shells of width ``w``, level ``m`` on
    ``m w <= ||x|| < (m + 1) w``.

    Piecewise constant, so ``grad f = 0`` off the spheres ``||x|| = m w`` (a Lebesgue-null set where
    ``f`` jumps and no gradient exists); :meth:`grad` returns zeros everywhere. Minimum 0 on the
    open ball ``||x|| < w``. Reconstruction §3.4, check 1.
    """

    def __init__(self, w: float) -> None:
        self.w = _positive_float("w", w)
        self.name = "staircase_radial"
        self.minimum = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        return torch.floor(torch.linalg.vector_norm(x, dim=-1) / self.w)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero (the gradient wherever it exists)."""
        return torch.zeros_like(self._check(x))


def staircase_radial(w: float) -> StaircaseRadial:
    """Factory for :class:`StaircaseRadial`: ``floor(||x||_2 / w)``."""
    return StaircaseRadial(w)


class StaircaseSeparable(Objective):
    """``f(x) = sum_i floor(|x_i| / w)``: a grid of boxes, minimum 0 on ``(-w, w)^D``.

    Piecewise constant; ``grad f = 0`` off the hyperplanes ``|x_i| = m w``; :meth:`grad` returns
    zeros everywhere. Reconstruction §3.4, check 1.
    """

    def __init__(self, w: float) -> None:
        self.w = _positive_float("w", w)
        self.name = "staircase_separable"
        self.minimum = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        return torch.floor(x.abs() / self.w).sum(-1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero (the gradient wherever it exists)."""
        return torch.zeros_like(self._check(x))


def staircase_separable(w: float) -> StaircaseSeparable:
    """Factory for :class:`StaircaseSeparable`: ``sum_i floor(|x_i| / w)``."""
    return StaircaseSeparable(w)
