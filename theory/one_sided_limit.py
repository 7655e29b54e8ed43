"""Numerical checks of Theorem 4.1 ("one-sided limit" / solver continuum), as reconstructed.

Provenance. The body of the paper (sections 2-7 and the appendices of arXiv 2605.01928v1) was
**not readable**; the statement checked here is the reconstruction of Theorem 4.1 in
paper/polystep_reconstruction.md §3.1, built
from the abstract ("This update corresponds to the one-sided limit of a regularized
optimal-transport problem"), the author's method figure (panel "Solver continuum (Thm 4.1)") and
the upstream ``KLSoftmaxSolver`` code. Whether the paper regularises with ``-H(P)`` or with
``KL(P || a (x) b)`` is unknown; the two give the same plans when ``b`` is uniform.

Reconstructed statement (the version checked). For ``C in R^{P x V}``, ``a in Delta_P``,
``b in Delta_V``, ``eps > 0`` and ``lam in [0, inf]`` let::

    P_lam = argmin_{P >= 0, P 1 = a}  <C,P> + eps sum_ij P_ij (log P_ij - 1) + lam KL(P^T 1 || b).

(i)   ``P_0 = diag(a) softmax_row(-C/eps)`` (PolyStep's update; only the source marginal is
      constrained -- "one-sided");
(ii)  ``P_lam -> P_inf`` = the entropic OT plan with both marginals as ``lam -> inf``;
(iii) ``P_lam 1 = a`` for all ``lam``; ``KL(q_lam || b)`` (``q_lam = P_lam^T 1``) is non-increasing
      in ``lam`` and tends to 0;
(iv)  the figure's quantitative claim ``KL(q_lam || b) <= (eps/lam) log(PV)``.

Item (iv) is **false in general** (:func:`find_figure_bound_counterexample`); a valid bound is
:func:`osc_kl_bound`. The figure's note "P/V small => softmax = OT" is probed by
:func:`softmax_vs_ot_gap`.

All functions are pure (no global state; randomness only through explicit seeds/generators) and
return plain Python numbers, NumPy arrays or dicts of those. Computations run in float64 on CPU.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from polystep.polytopes import random_rotations, vertices
from polystep.transport import barycentric, kl_relaxed_plan, sinkhorn_plan, softmax_plan

__all__ = [
    "kl_column_marginal",
    "lambda_path",
    "figure_kl_bound",
    "osc_kl_bound",
    "find_figure_bound_counterexample",
    "softmax_vs_ot_gap",
]

#: Solver settings tight enough for the checks of paper/polystep_reconstruction.md §3.1 (residual 1e-12).
TIGHT_SOLVER = {"max_iter": 200_000, "tol": 1e-12, "check_every": 10}


def _as_f64(x: Any) -> torch.Tensor:
    """Convert an array-like/tensor to a float64 CPU tensor."""
    return torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x), dtype=torch.float64)


def kl_column_marginal(plan: Any, b: Any = None) -> float:
    """``KL(P^T 1 || b) = sum_j q_j log(q_j / b_j)`` with ``q = P^T 1`` and ``0 log 0 = 0``.

    Args:
        plan: Plan ``[P, V]`` (array-like or tensor).
        b: Reference marginal ``[V]``; default uniform ``1/V``.

    Returns:
        The divergence as a float (``inf`` if some ``q_j > 0`` where ``b_j = 0``). When
        ``sum q = sum b`` (always the case here) this equals the generalised KL.
    """
    plan_t = _as_f64(plan)
    if plan_t.dim() != 2:
        raise ValueError(f"plan must be 2-D [P, V], got shape {tuple(plan_t.shape)}")
    q = plan_t.sum(dim=0)
    V = q.shape[0]
    b_t = torch.full((V,), 1.0 / V, dtype=torch.float64) if b is None else _as_f64(b)
    if tuple(b_t.shape) != (V,):
        raise ValueError(f"b must have shape ({V},), got {tuple(b_t.shape)}")
    pos = q > 0
    if bool((pos & (b_t <= 0)).any()):
        return math.inf
    return float(torch.sum(q[pos] * torch.log(q[pos] / b_t[pos])))


def lambda_path(
    C: Any,
    eps: float,
    lams: Sequence[float],
    a: Any = None,
    b: Any = None,
    *,
    max_iter: int = TIGHT_SOLVER["max_iter"],
    tol: float = TIGHT_SOLVER["tol"],
    check_every: int = TIGHT_SOLVER["check_every"],
) -> dict[str, np.ndarray]:
    """Trace ``P_lam`` (Thm 4.1 reconstruction) along a grid of ``lam`` values.

    Args:
        C: Cost matrix ``[P, V]``.
        eps: Entropic regularisation ``> 0``.
        lams: Penalties in ``[0, inf]`` (``0`` -> softmax, ``math.inf`` -> Sinkhorn).
        a, b: Marginals (default uniform).
        max_iter, tol, check_every: Solver settings passed to :func:`kl_relaxed_plan` and the
            reference :func:`sinkhorn_plan` (defaults: residual ``1e-12``).

    Returns:
        Dict of float64 arrays indexed like ``lams``:
        ``lam``; ``kl`` = ``KL(P_lam^T 1 || b)``; ``row_err`` = ``||P_lam 1 - a||_inf``;
        ``dist_softmax`` = ``||P_lam - P_0||_inf``; ``dist_sinkhorn`` =
        ``||P_lam - P_sinkhorn||_inf``; ``solver_err`` (final residual); ``converged`` (0/1).
        Also ``softmax_closed_form_err`` (array with one entry) =
        ``max |P_0 - diag(a) softmax(-C/eps)|`` with the closed form computed independently.
    """
    C_t = _as_f64(C)
    P, V = C_t.shape
    a_t = torch.full((P,), 1.0 / P, dtype=torch.float64) if a is None else _as_f64(a)
    b_t = torch.full((V,), 1.0 / V, dtype=torch.float64) if b is None else _as_f64(b)
    opts = {"max_iter": max_iter, "tol": tol, "check_every": check_every}

    p0 = softmax_plan(C_t, eps, a_t)
    c_np = C_t.numpy()
    w = np.exp(-(c_np - c_np.min(axis=1, keepdims=True)) / eps)  # independent NumPy closed form
    closed = a_t.numpy()[:, None] * w / w.sum(axis=1, keepdims=True)
    p_ot = sinkhorn_plan(C_t, eps, a_t, b_t, **opts)

    out: dict[str, list[float]] = {k: [] for k in ("lam", "kl", "row_err", "dist_softmax", "dist_sinkhorn", "solver_err", "converged")}
    for lam in lams:
        plan, info = kl_relaxed_plan(C_t, eps, lam, a_t, b_t, log=True, **opts)
        out["lam"].append(float(lam))
        out["kl"].append(kl_column_marginal(plan, b_t))
        out["row_err"].append(float((plan.sum(dim=1) - a_t).abs().max()))
        out["dist_softmax"].append(float((plan - p0).abs().max()))
        out["dist_sinkhorn"].append(float((plan - p_ot).abs().max()))
        out["solver_err"].append(float(info["err"]))
        out["converged"].append(float(info["converged"]))
    res = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
    res["softmax_closed_form_err"] = np.asarray([float(np.abs(p0.numpy() - closed).max())])
    return res


def figure_kl_bound(eps: float, lam: float, P: int, V: int) -> float:
    """The method figure's claimed bound ``KL(q_lam || b) <= (eps/lam) log(P V)`` (refuted in general).

    Returns ``inf`` for ``lam = 0`` and ``0`` for ``lam = inf``.
    """
    if lam == 0:
        return math.inf
    if math.isinf(lam):
        return 0.0
    return eps / lam * math.log(P * V)


def osc_kl_bound(C: Any, lam: float, *, eps: float | None = None, b: Any = None) -> float:
    """A valid bound on ``KL(q_lam || b)`` from comparison with the feasible plan ``a (x) b``.

    Let ``F(P) = <C,P> - eps H(P) + lam KL(P^T 1 || b)`` with ``H(P) = -sum P log P`` (this differs
    from the objective in :func:`polystep.transport.kl_relaxed_plan` by the constant ``-eps``,
    since every feasible ``P`` has mass 1). ``a (x) b`` is feasible with ``KL(b || b) = 0``, so::

        lam KL(q_lam || b) <= <C, a(x)b - P_lam> + eps (H(P_lam) - H(a(x)b))      [F(P_lam) <= F(a(x)b)]
                           <= osc(C) + eps (H(a) + H(q_lam) - H(a) - H(b))         [<C, mu - nu> <= osc(C);
                                                                                     H(P) <= H(a) + H(q)]
                           <= osc(C) + eps (log V - H(b)),                          [H(q) <= log V]

    with ``osc(C) = max C - min C``. For uniform ``b`` (``H(b) = log V``) this is
    ``KL(q_lam || b) <= osc(C)/lam`` for any row marginal ``a``.

    Args:
        C: Cost matrix ``[P, V]``.
        lam: Penalty ``>= 0`` (``0`` gives ``inf``, ``inf`` gives ``0``).
        eps: Needed only for a non-uniform ``b``.
        b: Reference marginal ``[V]``; default uniform.

    Returns:
        ``(osc(C) + eps (log V - H(b))) / lam``.
    """
    C_t = _as_f64(C)
    if lam == 0:
        return math.inf
    if math.isinf(lam):
        return 0.0
    osc = float(C_t.max() - C_t.min())
    V = C_t.shape[1]
    slack = 0.0
    if b is not None:
        b_t = _as_f64(b)
        pos = b_t > 0
        ent_b = float(-(b_t[pos] * torch.log(b_t[pos])).sum())
        if math.log(V) - ent_b > 1e-15:
            if eps is None:
                raise ValueError("eps must be given to osc_kl_bound when b is not uniform")
            slack = eps * (math.log(V) - ent_b)
    return (osc + slack) / lam


def find_figure_bound_counterexample(
    P: int = 6,
    V: int = 8,
    eps: float = 0.01,
    lam: float = 1.0,
    *,
    seed: int = 0,
    high: float = 5.0,
    cheap: float = -2.5,
) -> dict[str, Any]:
    """A concrete violation of the figure's bound ``KL(q_lam || b) <= (eps/lam) log(PV)``.

    Construction (paper/polystep_reconstruction.md §3.1): ``C_ij ~ U[0, high]`` from ``torch.Generator`` seeded with
    ``seed``, then the first column is made uniformly cheap, ``C_i1 = cheap``, so ``C`` takes
    values in ``[cheap, high] = [-2.5, 5]``. With ``eps = 0.01`` the softmax puts (almost) all
    mass on column 1, and ``lam = 1`` is far too weak to pull ``q`` back to the uniform ``b``: the
    cost saving ``~ 2.5 + E[C]`` outweighs ``lam KL``, which is only bounded by ``osc(C)/lam``.
    The result is deterministic.

    Returns:
        Dict with ``C`` (ndarray), ``eps``, ``lam``, ``kl`` (float, uniform ``a``, ``b``),
        ``bound`` (the figure's bound), ``osc_bound`` (:func:`osc_kl_bound`), ``violated``
        (``kl > bound``) and ``ratio`` (``kl / bound``).
    """
    gen = torch.Generator().manual_seed(seed)
    C = high * torch.rand((P, V), generator=gen, dtype=torch.float64)
    C[:, 0] = cheap
    plan = kl_relaxed_plan(C, eps, lam, **TIGHT_SOLVER)
    kl = kl_column_marginal(plan)
    bound = figure_kl_bound(eps, lam, P, V)
    return {
        "C": C.numpy(),
        "eps": float(eps),
        "lam": float(lam),
        "kl": kl,
        "bound": bound,
        "osc_bound": osc_kl_bound(C, lam),
        "violated": bool(kl > bound),
        "ratio": kl / bound,
    }


def softmax_vs_ot_gap(
    P_values: Sequence[int],
    V: int,
    eps: float,
    n_trials: int,
    generator: torch.Generator,
    *,
    max_iter: int = 20_000,
    tol: float = 1e-10,
) -> np.ndarray:
    """Mean barycentre gap ``||x'_softmax - x'_OT||`` between one-sided and two-sided plans.

    Check 5 of paper/polystep_reconstruction.md §3.1 (the figure's note "P/V small => softmax = OT").

    For each ``P`` in ``P_values`` and each of ``n_trials`` trials: ``C ~ U[0, 1]^{P x V}`` i.i.d.,
    particles at the origin, vertices ``y_iv = R_i u_v`` with the orthoplex template in
    ``R^{V/2}`` and independent Haar rotations ``R_i`` (so column ``v`` is a vertex *slot*, as in
    PolyStep); ``x'`` is the barycentric projection (paper Eq. 7) of the softmax plan and of the
    Sinkhorn plan (uniform ``a``, ``b``). The per-trial gap is the mean over particles of the
    Euclidean distance; the function returns its mean over trials for each ``P``.

    Args:
        P_values: Particle counts ``P >= 1``.
        V: Vertices per particle (even; the orthoplex in ``R^{V/2}``).
        eps: Temperature ``> 0`` (relative to the unit cost range).
        n_trials: Number of random problems per ``P``.
        generator: Source of randomness (advanced).
        max_iter, tol: Sinkhorn settings.

    Returns:
        ``ndarray`` of shape ``[len(P_values)]``.
    """
    if V < 2 or V % 2:
        raise ValueError(f"V must be an even integer >= 2 (orthoplex in R^(V/2)), got {V}")
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    dim = V // 2
    template = vertices("orthoplex", dim)  # [V, dim]
    gaps = []
    for P in P_values:
        trial_gaps = []
        for _ in range(n_trials):
            C = torch.rand((P, V), generator=generator, dtype=torch.float64)
            R = random_rotations(P, dim, generator)
            targets = torch.einsum("pij,vj->pvi", R, template)  # y_iv = R_i u_v, x_i = 0
            x_soft = barycentric(softmax_plan(C, eps), targets)
            x_ot = barycentric(sinkhorn_plan(C, eps, max_iter=max_iter, tol=tol), targets)
            trial_gaps.append(float((x_soft - x_ot).norm(dim=1).mean()))
        gaps.append(float(np.mean(trial_gaps)))
    return np.asarray(gaps, dtype=np.float64)
