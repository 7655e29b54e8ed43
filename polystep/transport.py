"""Transport plans that turn a PolyStep cost matrix into vertex weights
(paper/polystep_reconstruction.md §2.7, §2.8 and §3.1).

Every solver maps a cost matrix ``C`` of shape ``[P, V]`` (``P`` particles, ``V`` vertices per
particle), a temperature ``eps > 0`` and marginals ``a`` (``[P]``, default ``1/P``) and ``b``
(``[V]``, default ``1/V``) to a non-negative plan ``T`` of shape ``[P, V]`` whose rows sum to
``a`` (for ``sinkhorn`` up to the stopping tolerance):

=============  ===========================================================================
solver         plan
=============  ===========================================================================
``softmax``    ``T_iv = a_i exp(-C_iv/eps) / sum_u exp(-C_iu/eps)`` -- column marginal free.
               PolyStep's default update; the ``lambda = 0`` end of Thm 4.1.
``kl_relaxed`` ``argmin_{T >= 0, T 1 = a} <C,T> + eps sum T (log T - 1) + lam KL(T^T 1 || b)``
               (Chizat, Peyre, Schmitzer & Vialard 2018 scaling iterations).
``sinkhorn``   ``argmin_{T >= 0, T 1 = a, T^T 1 = b} <C,T> - eps H(T)`` (entropic OT; the
               ``lambda = inf`` end of Thm 4.1).
``argmin``     all of row ``i``'s mass ``a_i`` on ``argmin_v C_iv`` (the ``eps -> 0`` limit).
=============  ===========================================================================

:func:`barycentric` then gives the new particle position (paper Eq. 7)
``x'_i = sum_v T_iv y_iv / sum_v T_iv``.

Numerics: all iterative solvers run in the log domain (``torch.logsumexp``) on the row-shifted
cost ``C_iv - min_u C_iu``; since the row marginal is a hard constraint in every problem above,
the shift changes the objective by the constant ``sum_i a_i min_u C_iu`` and leaves the plan
unchanged (the returned dual ``f`` is shifted back). Non-finite costs are rejected: sanitising them
(paper/polystep_reconstruction.md §2.6) is the caller's job.

Dtypes: every plan is *computed* in float64 (the work dtype; float32 on Apple ``mps`` devices, which
have no float64) and *returned* in ``C``'s dtype on ``C``'s device. Plans are tiny (``[P, V]``), so
this costs nothing measurable, and it removes the under/overflow of ``C/eps`` for every ``eps``
a Python float can hold: in float32 ``eps = 1e-46`` rounds to 0 and ``C/eps`` is NaN, a cost
range ``max C - min C`` above ``3.4e38`` overflows, and ``lam * (...)`` overflows for ``lam > 3.4e38``.
Marginals are validated in ``C``'s dtype (the sum tolerance is that dtype's) and then converted
to the work dtype. With a float32 work dtype (``mps``) an ``eps`` that rounds to 0 or inf there is
a ``ValueError`` naming ``eps``, its value and the dtype. Every returned plan is finite, non-negative
and has rows summing to ``a`` (to the rounding of the returned dtype); :func:`barycentric` is finite
too or raises ``ValueError``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import torch
from torch import Tensor

from ._validation import check_choice, check_int, check_positive

__all__ = [
    "SOLVERS",
    "ConvergenceWarning",
    "softmax_plan",
    "argmin_plan",
    "sinkhorn_plan",
    "kl_relaxed_plan",
    "transport_plan",
    "barycentric",
]

#: Names accepted by :func:`transport_plan`.
SOLVERS: tuple[str, ...] = ("softmax", "sinkhorn", "kl_relaxed", "argmin")

#: Absolute tolerance on ``sum(a) = 1`` and ``sum(b) = 1`` (floored at ``4 n`` machine epsilons).
MARGINAL_SUM_TOL = 1e-6


class ConvergenceWarning(UserWarning):
    """Issued when an iterative transport solver stops at ``max_iter`` before reaching ``tol``."""


# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------


def _work_dtype(device: torch.device) -> torch.dtype:
    """The dtype plans are computed in: float64, or float32 on ``mps`` (which has no float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


def _check_representable(name: str, value: float, dtype: torch.dtype) -> float:
    """Raise ``ValueError`` if the positive finite ``value`` becomes 0 or inf in ``dtype``."""
    if dtype == torch.float64:
        return value  # a Python float is a float64
    rounded = torch.tensor(value, dtype=torch.float64).to(dtype).item()
    if rounded == 0.0 or not math.isfinite(rounded):
        what = "underflows to 0" if rounded == 0.0 else "overflows to inf"
        info = torch.finfo(dtype)
        raise ValueError(
            f"{name} = {value!r} {what} in {dtype}, the dtype the plan is computed in (its positive "
            f"finite range is [{info.smallest_normal:.3g} (normal), {info.max:.4g}]); choose a "
            f"representable {name}"
        )
    return value


def _check_eps(eps: Any, dtype: torch.dtype = torch.float64) -> float:
    """Return ``eps`` as a finite float ``> 0`` (non-zero and finite in ``dtype``), else raise
    ``ValueError`` naming ``eps``."""
    if isinstance(eps, Tensor):
        if eps.numel() != 1:
            raise ValueError(f"eps must be > 0 and finite (a scalar), got a tensor of shape {tuple(eps.shape)}")
        eps = eps.item()
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise ValueError(f"eps must be > 0 and finite (a real number), got {eps!r}")
    out = float(eps)
    if not (math.isfinite(out) and out > 0.0):
        raise ValueError(f"eps must be > 0 and finite, got {out!r}")
    return _check_representable("eps", out, dtype)


def _check_lam(lam: Any) -> float:
    """Return ``lam`` as a float in ``[0, inf]`` or raise ``ValueError`` naming ``lam``."""
    if isinstance(lam, Tensor):
        if lam.numel() != 1:
            raise ValueError(f"lam must be >= 0 (a scalar), got a tensor of shape {tuple(lam.shape)}")
        lam = lam.item()
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real):
        raise ValueError(f"lam must be >= 0 (a real number or math.inf), got {lam!r}")
    out = float(lam)
    if math.isnan(out) or out < 0.0:
        raise ValueError(f"lam must be >= 0, got {out!r}")
    return out


def _check_cost(C: Any) -> Tensor:
    """Validate the cost matrix: a finite, floating-point, non-empty 2-D tensor."""
    if not isinstance(C, Tensor):
        raise ValueError(f"C must be a torch.Tensor of shape [P, V], got {type(C).__name__}")
    if C.dim() != 2:
        raise ValueError(f"C must be 2-D with shape [P, V], got shape {tuple(C.shape)}")
    if C.shape[0] < 1 or C.shape[1] < 1:
        raise ValueError(f"C must have P >= 1 rows and V >= 1 columns, got shape {tuple(C.shape)}")
    if not C.dtype.is_floating_point:
        raise ValueError(f"C must have a floating-point dtype, got {C.dtype}")
    if not bool(torch.isfinite(C).all()):
        raise ValueError("C contains non-finite entries; sanitise the costs before solving")
    return C


def _check_marginal(name: str, x: Any, C: Tensor, axis: int, work: torch.dtype | None = None) -> Tensor:
    """Validate marginal ``name`` for axis ``axis`` of ``C`` (default: uniform ``1/n``).

    The checks (shape, finite, non-negative, sum 1 within ``max(1e-6, 4 n eps(C.dtype))``) are made
    in ``C``'s dtype; the result is returned in ``work`` (default ``C``'s dtype).
    """
    n = C.shape[axis]
    work = C.dtype if work is None else work
    if x is None:
        return torch.full((n,), 1.0 / n, dtype=work, device=C.device)
    x = torch.as_tensor(x, dtype=C.dtype, device=C.device)
    if tuple(x.shape) != (n,):
        raise ValueError(
            f"{name} must have shape ({n},) to match C of shape {tuple(C.shape)}, got {tuple(x.shape)}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains non-finite entries")
    if bool((x < 0).any()):
        raise ValueError(f"{name} must be non-negative, got min({name}) = {x.min().item()!r}")
    total = x.double().sum().item()
    tol = max(MARGINAL_SUM_TOL, 4 * n * torch.finfo(x.dtype).eps)
    if abs(total - 1.0) > tol:
        raise ValueError(f"{name} must sum to 1 (within {tol:.1e}), got sum({name}) = {total!r}")
    return x.to(work)


def _row_shift(C: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(C - r[:, None], r)`` with ``r_i = min_v C_iv`` (plan-invariant when rows are constrained)."""
    r = C.min(dim=1).values
    return C - r.unsqueeze(1), r


def _row_softmax(x: Tensor) -> Tensor:
    """Row-wise ``softmax``: ``exp(x - max_row x) / sum exp(x - max_row x)``.

    Written with elementwise ops and reductions rather than ``torch.softmax``, whose CPU kernel
    parallelises over rows even for tiny matrices and becomes ~50x slower on an oversubscribed
    machine; numerically it is the same max-shifted formula (rows sum to 1 to rounding).
    """
    w = torch.exp(x - x.max(dim=1, keepdim=True).values)
    return w / w.sum(dim=1, keepdim=True)


def _safe_log(x: Tensor) -> Tensor:
    """``log x`` with ``log 0 = -inf`` and no warnings."""
    return torch.where(x > 0, torch.log(torch.where(x > 0, x, torch.ones_like(x))), -math.inf)


# ----------------------------------------------------------------------------------------------
# closed-form solvers
# ----------------------------------------------------------------------------------------------


def softmax_plan(C: Tensor, eps: float, a: Tensor | None = None) -> Tensor:
    """One-sided (row-softmax) plan, PolyStep's default weights (Thm 4.1, ``lambda = 0``;
    paper/polystep_reconstruction.md §2.7).

    ``T_iv = a_i exp(-C_iv/eps) / sum_u exp(-C_iu/eps)``

    Computed as ``a_i softmax_v(-(C_iv - min_u C_iu)/eps)`` in the work dtype (float64; module
    docstring), which is exact for any ``eps > 0`` a Python float holds, whatever ``C``'s dtype:
    the row minimum maps to ``exp(0) = 1``, very large shifted costs (also ``+inf`` when the row's
    range ``max C - min C`` overflows float64) underflow to 0, so the plan is never NaN. Rows sum to
    ``a``; the column marginal is free. This is the closed-form minimiser of
    ``<C,T> + eps sum T (log T - 1)`` subject to ``T 1 = a`` only.

    Args:
        C: Cost matrix ``[P, V]`` (finite, floating point).
        eps: Temperature ``> 0``.
        a: Row marginal ``[P]`` (non-negative, sums to 1); default uniform ``1/P``.

    Returns:
        Plan ``[P, V]`` in ``C``'s dtype and device (finite, non-negative, rows summing to ``a``).

    Raises:
        ValueError: On a bad ``C``, ``eps`` or ``a``.
    """
    C = _check_cost(C)
    work = _work_dtype(C.device)
    eps = _check_eps(eps, work)
    a = _check_marginal("a", a, C, 0, work)
    shifted, _ = _row_shift(C.to(work))
    return (a.unsqueeze(1) * _row_softmax(-shifted / eps)).to(C.dtype)


def argmin_plan(C: Tensor, a: Tensor | None = None) -> Tensor:
    """Greedy plan: all of row ``i``'s mass on its cheapest vertex (the ``eps -> 0`` limit,
    paper/polystep_reconstruction.md §2.14).

    ``T_iv = a_i [v = argmin_u C_iu]``; ties go to the smallest index (``torch.argmin``).

    Args:
        C: Cost matrix ``[P, V]`` (finite, floating point).
        a: Row marginal ``[P]``; default uniform ``1/P``.

    Returns:
        Plan ``[P, V]`` in ``C``'s dtype and device.

    Raises:
        ValueError: On a bad ``C`` or ``a``.
    """
    C = _check_cost(C)
    a = _check_marginal("a", a, C, 0)
    onehot = torch.zeros_like(C)
    onehot.scatter_(1, C.argmin(dim=1, keepdim=True), 1.0)
    return a.unsqueeze(1) * onehot


# ----------------------------------------------------------------------------------------------
# iterative solvers
# ----------------------------------------------------------------------------------------------


def _scaling_iterations(
    C: Tensor,
    eps: float,
    a: Tensor,
    b: Tensor,
    lam: float,
    max_iter: int,
    tol: float,
    check_every: int,
    solver_name: str,
) -> tuple[Tensor, dict[str, Any]]:
    """Shared log-domain loop of :func:`sinkhorn_plan` (``lam = inf``) and :func:`kl_relaxed_plan`.

    ``a`` and ``b`` are in the work dtype; ``C`` in the caller's dtype (the plan and the duals are
    returned in it). The loop runs on dimensionless quantities only -- ``K_ij = -(C_ij - min_v C_iv)/eps``
    and the scaled duals ``u = f/eps``, ``v = g/eps`` -- so that no ``eps * (...)`` can overflow
    inside it (``eps`` near the float64 maximum) and ``lam`` enters only through
    ``alpha = lam/(lam + eps) = 1/(1 + eps/lam)`` and ``beta = eps/(lam + eps) = 1/(1 + lam/eps)``,
    both in ``[0, 1]`` (``alpha = 1``, ``beta = 0`` for ``lam = inf``). Starting from ``v = 0``::

        u_i <- log a_i - LSE_j(K_ij + v_j)                            (rows now sum to a exactly)
        s_j  = LSE_i(K_ij + u_i),   q_j = exp(v_j + s_j)               (column marginal of the plan)
        v_j <- alpha (log b_j - s_j)                                   (v_j = -inf where b_j = 0)

    which is ``f_i <- eps (log a_i - LSE_j((g_j - C_ij)/eps))``, ``g_j <- alpha eps (log b_j - s_j)``.
    Stationarity of the objective in ``T_ij = exp((f_i + g_j - C_ij)/eps)`` requires
    ``g_j = -lam log(q_j / b_j)``, i.e. ``q = q*`` with ``q*_j = b_j exp(-g_j/lam)`` and
    ``g_j/lam = beta (log b_j - s_j)`` (the ``s`` of the last ``v`` update). The stopping residual is
    ``err = ||q - q*/sum(q*)||_inf`` evaluated after the ``u`` update (so rows are exact); for
    ``lam = inf`` this is the usual ``||T^T 1 - b||_inf``. Normalising ``q*`` makes ``err`` invariant
    to the constant ("gauge") component of ``g``, which does not affect the plan but contracts only
    like ``alpha^k``. The plan is ``T = a_i softmax_j(K_ij + v_j)`` (equal to
    ``exp(u_i + v_j + K_ij)`` with ``u`` from its last update, and exact in its rows to rounding);
    the returned duals (in cost units, shifted back by ``min_v C_iv``) are re-gauged so that they
    satisfy the fixed-point equations -- the gauge constant ``c = lam LSE_j(log b_j - g_j/lam)``
    carries ``lam`` times the rounding of ``sum b``, so it is applied to the duals only, never to
    the plan.

    ``K`` is floored at ``-M/16`` (``M`` the work dtype's largest finite value, so that sums of
    ``K``, ``u`` and ``v`` stay finite): an entry of ``-inf`` (``C/eps`` beyond the float range,
    e.g. ``eps = 1e-320`` or a cost range above ``M``) would otherwise meet ``v_j = +inf`` in a
    column that must still carry mass ``b_j`` and give ``-inf + inf = NaN``. The floor touches only
    entries whose kernel ``exp(K_ij)`` is 0 in every float type; with it such a column is served by
    a huge finite ``v_j`` instead (the plan's rows still sum to ``a``; the columns are as good as
    the rounding of ``K + v`` at that scale allows). Duals in cost units are ``eps`` times the
    scaled ones and may overflow for extreme ``eps``/``lam``; the plan never does.
    """
    work = a.dtype
    shifted, r = _row_shift(C.to(work))
    neg_c = (-shifted / eps).clamp_min(-torch.finfo(work).max / 16)  # K, [P, V]
    log_a = _safe_log(a)
    log_b = _safe_log(b)
    has_b = b > 0
    if math.isinf(lam):
        alpha, beta = 1.0, 0.0
    else:
        alpha, beta = 1.0 / (1.0 + eps / lam), 1.0 / (1.0 + lam / eps)
    tol_eff = max(tol, 16.0 * torch.finfo(C.dtype).eps)
    v = torch.zeros(C.shape[1], dtype=work, device=C.device)
    w = torch.zeros_like(v)  # log b - s of the last v update (v = alpha w, g/lam = beta w)
    u = torch.zeros(C.shape[0], dtype=work, device=C.device)
    err = math.inf
    converged = False
    n_iter = 0
    for it in range(1, max_iter + 1):
        n_iter = it
        u = log_a - torch.logsumexp(neg_c + v.unsqueeze(0), dim=1)
        s = torch.logsumexp(neg_c + u.unsqueeze(1), dim=0)
        if it % check_every == 0 or it == max_iter:
            q = torch.exp(v + s)
            if math.isinf(lam):
                q_star = b
            else:
                q_star = torch.softmax(torch.where(has_b, log_b - beta * w, -math.inf), dim=0)
            err = (q - q_star).abs().max().item()
            if err < tol_eff:
                converged = True
                break
            if it == max_iter:
                break
        w = torch.where(has_b, log_b - s, 0.0)
        v = torch.where(has_b, alpha * w, -math.inf)

    plan = a.unsqueeze(1) * _row_softmax(neg_c + v.unsqueeze(0))
    f = eps * u
    g = eps * v
    if not math.isinf(lam):
        # Fix the gauge: choose c with sum_j b_j exp(-(g_j + c)/lam) = 1, then g += c, f -= c.
        c = lam * torch.logsumexp(torch.where(has_b, log_b - beta * w, -math.inf), dim=0)
        g = g + c
        f = f - c
    if not converged:
        warnings.warn(
            f"{solver_name} did not converge: marginal residual {err:.3e} >= tol {tol_eff:.1e} "
            f"after max_iter={max_iter} iterations (eps={eps:g}, lam={lam:g}); increase max_iter "
            "or eps",
            ConvergenceWarning,
            stacklevel=3,
        )
    info = {
        "n_iter": n_iter,
        "err": err,
        "converged": converged,
        "tol": tol_eff,
        "f": (f + r).to(C.dtype),  # duals of the unshifted problem: f_i + g_j - C_ij is shift-invariant
        "g": g.to(C.dtype),
    }
    return plan.to(C.dtype), info


def sinkhorn_plan(
    C: Tensor,
    eps: float,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    max_iter: int = 2000,
    tol: float = 1e-9,
    check_every: int = 10,
    log: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """Entropic optimal-transport plan by log-domain Sinkhorn (Thm 4.1, ``lambda = inf``;
    paper/polystep_reconstruction.md §2.7).

    Solves ``min_{T >= 0, T 1 = a, T^T 1 = b} <C,T> - eps H(T)``, ``H(T) = -sum T (log T - 1)``, via
    the dual updates (starting from ``g = 0``)::

        f_i <- eps (log a_i - LSE_j((g_j - C_ij)/eps))
        g_j <- eps (log b_j - LSE_i((f_i - C_ij)/eps))
        T_ij = exp((f_i + g_j - C_ij)/eps)

    The loop stops after an ``f`` update once ``||T^T 1 - b||_inf < tol`` (checked every
    ``check_every`` iterations), so the returned plan has rows equal to ``a`` to rounding and
    columns equal to ``b`` within ``tol``. ``b`` is rescaled to the total mass of ``a`` (they
    agree to ``1e-6`` after validation) so that the constraints are exactly compatible.

    Args:
        C: Cost matrix ``[P, V]`` (finite, floating point).
        eps: Entropic regularisation ``> 0``.
        a: Row marginal ``[P]``; default uniform.
        b: Column marginal ``[V]``; default uniform.
        max_iter: Maximum number of ``(f, g)`` sweeps ``>= 1``.
        tol: Stopping tolerance on the column-marginal residual; floored at 16 machine epsilons
            of ``C``'s dtype (e.g. ``1.9e-6`` in float32), the finest residual a plan returned in
            that dtype can show (the iterations themselves run in float64).
        check_every: Evaluate the residual every this many iterations ``>= 1``.
        log: If true also return a dict ``{"n_iter", "err", "converged", "tol", "f", "g"}``
            (``tol`` is the effective tolerance, ``f``/``g`` the duals of the unshifted problem).

    Returns:
        The plan ``[P, V]`` (and the log dict if ``log``). Issues a :class:`ConvergenceWarning`
        if the tolerance was not reached.

    Raises:
        ValueError: On a bad ``C``, ``eps``, ``a``, ``b``, ``max_iter``, ``tol`` or ``check_every``.
    """
    C = _check_cost(C)
    work = _work_dtype(C.device)
    eps = _check_eps(eps, work)
    a = _check_marginal("a", a, C, 0, work)
    b = _check_marginal("b", b, C, 1, work)
    max_iter = check_int("max_iter", max_iter, 1)
    tol = check_positive("tol", tol)
    check_every = check_int("check_every", check_every, 1)
    b = b * (a.sum() / b.sum())
    plan, info = _scaling_iterations(C, eps, a, b, math.inf, max_iter, tol, check_every, "sinkhorn_plan")
    return (plan, info) if log else plan


def kl_relaxed_plan(
    C: Tensor,
    eps: float,
    lam: float,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    max_iter: int = 2000,
    tol: float = 1e-9,
    check_every: int = 10,
    log: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """Semi-relaxed (KL-penalised column marginal) entropic plan -- the Thm 4.1 interpolation.

    Solves (paper/polystep_reconstruction.md §2.7 and §3.1)::

        T_lam = argmin_{T >= 0, T 1 = a}  <C,T> + eps sum_ij T_ij (log T_ij - 1) + lam KL(T^T 1 || b)

    with the scaling iterations of Chizat, Peyre, Schmitzer & Vialard (2018), ``alpha = lam/(lam+eps)``::

        f_i <- eps (log a_i - LSE_j((g_j - C_ij)/eps))
        g_j <- alpha eps (log b_j - LSE_i((f_i - C_ij)/eps))
        T_ij = exp((f_i + g_j - C_ij)/eps)

    Their fixed point is the minimiser: setting the derivative of the objective (with the
    constraint multiplier ``f_i``) to zero gives ``T_ij = exp((f_i - C_ij - lam log(q_j/b_j))/eps)``
    with ``q = T^T 1``, i.e. ``g_j = -lam log(q_j/b_j)``; substituting
    ``q_j = exp(g_j/eps) sum_i exp((f_i - C_ij)/eps)`` and solving for ``g_j`` yields the ``g`` update.
    (Because ``sum q = sum a = 1`` is fixed, the ordinary and the generalised KL give the same
    minimiser.) Special cases: ``lam = 0`` returns :func:`softmax_plan` exactly (``alpha = 0``,
    short-circuited); ``lam = inf`` returns :func:`sinkhorn_plan`. ``KL(q_lam || b)`` is
    non-increasing in ``lam`` and ``T_lam 1 = a`` for every ``lam``.

    The stopping residual is ``||q - q*/sum q*||_inf`` with ``q*_j = b_j exp(-g_j/lam)`` (the
    fixed-point column marginal; see :func:`_scaling_iterations`).

    Args:
        C: Cost matrix ``[P, V]`` (finite, floating point).
        eps: Entropic regularisation ``> 0``.
        lam: Column-marginal penalty in ``[0, inf]``.
        a: Row marginal ``[P]``; default uniform.
        b: Reference column marginal ``[V]``; default uniform.
        max_iter: Maximum number of iterations ``>= 1``.
        tol: Stopping tolerance on the residual (floored at 16 machine epsilons of the dtype).
        check_every: Evaluate the residual every this many iterations ``>= 1``.
        log: If true also return ``{"n_iter", "err", "converged", "tol", "f", "g"}``.

    Returns:
        The plan ``[P, V]`` (and the log dict if ``log``).

    Raises:
        ValueError: On a bad ``C``, ``eps``, ``lam`` (e.g. ``lam < 0``), ``a``, ``b``,
            ``max_iter``, ``tol`` or ``check_every``.
    """
    C = _check_cost(C)
    work = _work_dtype(C.device)
    eps = _check_eps(eps, work)
    lam = _check_lam(lam)
    a_w = _check_marginal("a", a, C, 0, work)
    b_w = _check_marginal("b", b, C, 1, work)
    max_iter = check_int("max_iter", max_iter, 1)
    tol = check_positive("tol", tol)
    check_every = check_int("check_every", check_every, 1)
    if lam == 0.0:
        plan = softmax_plan(C, eps, a)
        if not log:
            return plan
        shifted, r = _row_shift(C.to(work))
        f = eps * (_safe_log(a_w) - torch.logsumexp(-shifted / eps, dim=1)) + r
        g = torch.zeros(C.shape[1], dtype=C.dtype, device=C.device)
        info = {"n_iter": 1, "err": 0.0, "converged": True, "tol": tol, "f": f.to(C.dtype), "g": g}
        return plan, info
    if math.isinf(lam):
        return sinkhorn_plan(C, eps, a, b, max_iter=max_iter, tol=tol, check_every=check_every, log=log)
    plan, info = _scaling_iterations(C, eps, a_w, b_w, lam, max_iter, tol, check_every, "kl_relaxed_plan")
    return (plan, info) if log else plan


# ----------------------------------------------------------------------------------------------
# dispatch and barycentric projection
# ----------------------------------------------------------------------------------------------


def transport_plan(
    solver: str,
    C: Tensor,
    eps: float,
    *,
    lam: float | None = None,
    a: Tensor | None = None,
    b: Tensor | None = None,
    **kw: Any,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """Compute a plan with the solver named ``solver`` (one of :data:`SOLVERS`).

    * ``"softmax"`` -> :func:`softmax_plan` ``(C, eps, a)``
    * ``"sinkhorn"`` -> :func:`sinkhorn_plan` ``(C, eps, a, b, **kw)``
    * ``"kl_relaxed"`` -> :func:`kl_relaxed_plan` ``(C, eps, lam, a, b, **kw)`` (``lam`` required)
    * ``"argmin"`` -> :func:`argmin_plan` ``(C, a)`` (the ``eps -> 0`` limit; ``eps`` is still
      validated so that every solver accepts the same arguments)

    For the one-sided solvers (``softmax``, ``argmin``) ``b`` is validated but unused (their
    column marginal is free) and no solver options ``**kw`` are accepted.

    Raises:
        ValueError: If ``solver`` is unknown, ``lam`` is missing for ``kl_relaxed`` or given for
            another solver, options are passed to a closed-form solver, or any argument is invalid.
    """
    check_choice("solver", solver, SOLVERS)
    if solver == "kl_relaxed":
        if lam is None:
            raise ValueError("lam must be given for solver 'kl_relaxed' (a number in [0, inf])")
        return kl_relaxed_plan(C, eps, lam, a, b, **kw)
    if lam is not None:
        raise ValueError(f"lam is only used by solver 'kl_relaxed', got lam={lam!r} for solver {solver!r}")
    if solver == "sinkhorn":
        return sinkhorn_plan(C, eps, a, b, **kw)
    if kw:
        raise ValueError(f"solver {solver!r} is closed-form and takes no options, got {sorted(kw)}")
    C = _check_cost(C)
    eps = _check_eps(eps, _work_dtype(C.device))
    if b is not None:
        _check_marginal("b", b, C, 1)
    if solver == "softmax":
        return softmax_plan(C, eps, a)
    return argmin_plan(C, a)


def barycentric(plan: Tensor, targets: Tensor) -> Tensor:
    """Barycentric projection of a plan (paper Eq. 7; paper/polystep_reconstruction.md §2.8).

    ``x'_i = sum_v T_iv y_iv / sum_v T_iv``

    The division uses the realised row sum (equal to ``a_i`` for every solver here, up to the
    Sinkhorn tolerance). Evaluated in the work dtype (float64; module docstring) as
    ``sum_v w_iv y_iv`` with ``w_iv = t_iv / sum_u t_iu``, ``t_iv = T_iv / max_u T_iu`` (the
    pre-scaling keeps subnormal or huge row masses from losing precision or overflowing), and
    clamped to the coordinate-wise hull ``[min_v y_iv, max_v y_iv]`` that contains the exact
    barycentre (only rounding can leave it). The result therefore always lies in that hull and
    is finite in the output dtype.

    Args:
        plan: Non-negative, finite plan ``[P, V]``; every row needs positive mass.
        targets: Finite vertex positions ``y`` of shape ``[P, V, d]``.

    Returns:
        New positions ``[P, d]`` in the promoted dtype of ``plan`` and ``targets``.

    Raises:
        ValueError: If the shapes are not ``[P, V]`` and ``[P, V, d]``, if ``plan`` or ``targets``
            has non-finite entries, if ``plan`` has a negative entry, or if a row of ``plan`` has
            zero mass (it has no barycentre).
    """
    if not isinstance(plan, Tensor) or plan.dim() != 2:
        shape = tuple(plan.shape) if isinstance(plan, Tensor) else type(plan).__name__
        raise ValueError(f"plan must be a 2-D tensor [P, V], got {shape}")
    if not isinstance(targets, Tensor) or targets.dim() != 3:
        shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"targets must be a 3-D tensor [P, V, d], got {shape}")
    if tuple(targets.shape[:2]) != tuple(plan.shape):
        raise ValueError(
            f"targets must have shape [P, V, d] = [{plan.shape[0]}, {plan.shape[1]}, d] to match plan, "
            f"got {tuple(targets.shape)}"
        )
    if not bool(torch.isfinite(plan).all()):
        raise ValueError("plan contains non-finite entries")
    if not bool(torch.isfinite(targets).all()):
        raise ValueError("targets contain non-finite entries")
    if bool((plan < 0).any()):
        raise ValueError(f"plan must be non-negative, got min(plan) = {plan.min().item()!r}")
    dtype = torch.promote_types(plan.dtype, targets.dtype)
    work = _work_dtype(plan.device)
    plan = plan.to(work)
    targets = targets.to(work)
    top = plan.max(dim=1, keepdim=True).values
    empty = (top <= 0).flatten()
    if bool(empty.any()):
        rows = empty.nonzero().flatten().tolist()
        raise ValueError(
            f"row(s) {rows[:10]}{'...' if len(rows) > 10 else ''} of plan have zero mass: a row needs "
            "positive mass to have a barycentre"
        )
    weights = plan / top
    weights = weights / weights.sum(dim=1, keepdim=True)
    out = torch.einsum("pv,pvd->pd", weights, targets)
    out = torch.minimum(torch.maximum(out, targets.amin(dim=1)), targets.amax(dim=1))
    return out.to(dtype)
