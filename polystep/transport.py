"""Transport plans that turn a PolyStep cost matrix into vertex weights (digest sections 2.7, 2.8, 3.1).

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
unchanged (the returned dual ``f`` is shifted back). Plans are computed in ``C``'s dtype and on
``C``'s device; marginals given as other tensors/arrays are converted to ``C``'s dtype and device.
Non-finite costs are rejected: sanitising them (digest section 2.6) is the caller's job.
"""

from __future__ import annotations

import math
import numbers
import operator
import warnings
from typing import Any

import torch
from torch import Tensor

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


def _check_eps(eps: Any) -> float:
    """Return ``eps`` as a finite float ``> 0`` or raise ``ValueError`` naming ``eps``."""
    if isinstance(eps, Tensor):
        if eps.numel() != 1:
            raise ValueError(f"eps must be > 0 and finite (a scalar), got a tensor of shape {tuple(eps.shape)}")
        eps = eps.item()
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise ValueError(f"eps must be > 0 and finite (a real number), got {eps!r}")
    out = float(eps)
    if not (math.isfinite(out) and out > 0.0):
        raise ValueError(f"eps must be > 0 and finite, got {out!r}")
    return out


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


def _check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an int ``>= minimum`` or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}")
    return out


def _check_tol(tol: Any) -> float:
    """Return ``tol`` as a finite float ``> 0`` or raise ``ValueError`` naming ``tol``."""
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    return float(tol)


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


def _check_marginal(name: str, x: Any, C: Tensor, axis: int) -> Tensor:
    """Validate/convert marginal ``name`` for axis ``axis`` of ``C`` (default: uniform)."""
    n = C.shape[axis]
    if x is None:
        return torch.full((n,), 1.0 / n, dtype=C.dtype, device=C.device)
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
    return x


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
    """One-sided (row-softmax) plan, PolyStep's default weights (digest section 2.7; Thm 4.1, ``lambda = 0``).

    ``T_iv = a_i exp(-C_iv/eps) / sum_u exp(-C_iu/eps)``

    Computed as ``a_i softmax_v(-(C_iv - min_u C_iu)/eps)``, which is exact for any ``eps > 0``
    (the row minimum maps to ``exp(0) = 1``; very large shifted costs underflow to 0, never NaN).
    Rows sum to ``a``; the column marginal is free. This is the closed-form minimiser of
    ``<C,T> + eps sum T (log T - 1)`` subject to ``T 1 = a`` only.

    Args:
        C: Cost matrix ``[P, V]`` (finite, floating point).
        eps: Temperature ``> 0``.
        a: Row marginal ``[P]`` (non-negative, sums to 1); default uniform ``1/P``.

    Returns:
        Plan ``[P, V]`` in ``C``'s dtype and device.

    Raises:
        ValueError: On a bad ``C``, ``eps`` or ``a``.
    """
    C = _check_cost(C)
    eps = _check_eps(eps)
    a = _check_marginal("a", a, C, 0)
    shifted, _ = _row_shift(C)
    return a.unsqueeze(1) * _row_softmax(-shifted / eps)


def argmin_plan(C: Tensor, a: Tensor | None = None) -> Tensor:
    """Greedy plan: all of row ``i``'s mass on its cheapest vertex (the ``eps -> 0`` limit, digest section 2.14).

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

    With ``alpha = lam / (lam + eps)`` (``alpha = 1`` for ``lam = inf``), starting from ``g = 0``::

        f_i <- eps (log a_i - LSE_j((g_j - C_ij)/eps))                 (rows now sum to a exactly)
        s_j  = LSE_i((f_i - C_ij)/eps),   q_j = exp(g_j/eps + s_j)       (column marginal of the plan)
        g_j <- alpha eps (log b_j - s_j)

    Stationarity of the objective in ``T_ij = exp((f_i + g_j - C_ij)/eps)`` requires
    ``g_j = -lam log(q_j / b_j)``, i.e. ``q = q*`` with ``q*_j = b_j exp(-g_j/lam)``. The stopping
    residual is ``err = ||q - q*/sum(q*)||_inf`` evaluated after the ``f`` update (so rows are
    exact); for ``lam = inf`` this is the usual ``||T^T 1 - b||_inf``. Normalising ``q*`` makes
    ``err`` invariant to the constant ("gauge") component of ``g``, which does not affect the plan
    but contracts only like ``alpha^k``; the returned duals are re-gauged so that they satisfy the
    fixed-point equations.
    """
    shifted, r = _row_shift(C)
    log_a = _safe_log(a)
    log_b = _safe_log(b)
    alpha = 1.0 if math.isinf(lam) else lam / (lam + eps)
    tol_eff = max(tol, 16.0 * torch.finfo(C.dtype).eps)
    neg_c = -shifted / eps  # [P, V]
    g = torch.zeros(C.shape[1], dtype=C.dtype, device=C.device)
    f = torch.zeros(C.shape[0], dtype=C.dtype, device=C.device)
    err = math.inf
    converged = False
    n_iter = 0
    for it in range(1, max_iter + 1):
        n_iter = it
        f = eps * (log_a - torch.logsumexp(neg_c + g.unsqueeze(0) / eps, dim=1))
        s = torch.logsumexp(neg_c + f.unsqueeze(1) / eps, dim=0)
        if it % check_every == 0 or it == max_iter:
            q = torch.exp(g / eps + s)
            if math.isinf(lam):
                q_star = b
            else:
                q_star = torch.softmax(torch.where(b > 0, log_b - g / lam, -math.inf), dim=0)
            err = (q - q_star).abs().max().item()
            if err < tol_eff:
                converged = True
                break
            if it == max_iter:
                break
        g = alpha * eps * (log_b - s)

    if not math.isinf(lam):
        # Fix the gauge: choose c with sum_j b_j exp(-(g_j + c)/lam) = 1, then g += c, f -= c.
        c = lam * torch.logsumexp(torch.where(b > 0, log_b - g / lam, -math.inf), dim=0)
        g = g + c
        f = f - c
    # T_ij = exp((f_i + g_j - C_ij)/eps) with f from its last update equals a_i softmax_j((g_j - C_ij)/eps);
    # the softmax form keeps the rows exact to rounding even when f + g - C cancels badly (tiny eps,
    # float32).
    plan = a.unsqueeze(1) * _row_softmax((g.unsqueeze(0) - shifted) / eps)
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
        "f": f + r,  # duals of the unshifted problem: f_i + g_j - C_ij is shift-invariant
        "g": g,
    }
    return plan, info


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
    """Entropic optimal-transport plan by log-domain Sinkhorn (digest section 2.7; Thm 4.1, ``lambda = inf``).

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
            of ``C``'s dtype (e.g. ``1.9e-6`` in float32), the finest residual it can resolve.
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
    eps = _check_eps(eps)
    a = _check_marginal("a", a, C, 0)
    b = _check_marginal("b", b, C, 1)
    max_iter = _check_int("max_iter", max_iter, 1)
    tol = _check_tol(tol)
    check_every = _check_int("check_every", check_every, 1)
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

    Solves (digest sections 2.7 and 3.1)::

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
    eps = _check_eps(eps)
    lam = _check_lam(lam)
    a = _check_marginal("a", a, C, 0)
    b = _check_marginal("b", b, C, 1)
    max_iter = _check_int("max_iter", max_iter, 1)
    tol = _check_tol(tol)
    check_every = _check_int("check_every", check_every, 1)
    if lam == 0.0:
        plan = softmax_plan(C, eps, a)
        if not log:
            return plan
        shifted, r = _row_shift(C)
        f = eps * (_safe_log(a) - torch.logsumexp(-shifted / eps, dim=1)) + r
        g = torch.zeros(C.shape[1], dtype=C.dtype, device=C.device)
        return plan, {"n_iter": 1, "err": 0.0, "converged": True, "tol": tol, "f": f, "g": g}
    if math.isinf(lam):
        return sinkhorn_plan(C, eps, a, b, max_iter=max_iter, tol=tol, check_every=check_every, log=log)
    plan, info = _scaling_iterations(C, eps, a, b, lam, max_iter, tol, check_every, "kl_relaxed_plan")
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
    if not isinstance(solver, str) or solver not in SOLVERS:
        valid = ", ".join(repr(s) for s in SOLVERS)
        raise ValueError(f"solver must be one of {valid}; got {solver!r}")
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
    eps = _check_eps(eps)
    if b is not None:
        _check_marginal("b", b, C, 1)
    if solver == "softmax":
        return softmax_plan(C, eps, a)
    return argmin_plan(C, a)


def barycentric(plan: Tensor, targets: Tensor) -> Tensor:
    """Barycentric projection of a plan (paper Eq. 7, digest section 2.8).

    ``x'_i = sum_v T_iv y_iv / sum_v T_iv``

    The division uses the realised row sum (equal to ``a_i`` for every solver here, up to the
    Sinkhorn tolerance). A row with zero mass has no barycentre and yields NaN.

    Args:
        plan: Non-negative plan ``[P, V]``.
        targets: Vertex positions ``y`` of shape ``[P, V, d]``.

    Returns:
        New positions ``[P, d]`` in the promoted dtype of ``plan`` and ``targets``.

    Raises:
        ValueError: If the shapes are not ``[P, V]`` and ``[P, V, d]``.
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
    dtype = torch.promote_types(plan.dtype, targets.dtype)
    plan = plan.to(dtype)
    targets = targets.to(dtype)
    return torch.einsum("pv,pvd->pd", plan, targets) / plan.sum(dim=1, keepdim=True)
