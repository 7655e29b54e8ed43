"""The pure PolyStep step (Algorithm 1, paper Eq. 7 and Theorem 4.1; reconstructed in
paper/polystep_reconstruction.md §2 and §2.12).

For particles ``X = (x_1, ..., x_P)``, ``x_i in R^d``, one step at iteration ``t`` is

1. resolve the temperature and the radii::

       eps_t = eps(t),   r_s = step_radius(t) [* eps_t],   r_p = probe_radius(t) [* eps_t] * (1 + eta_t)

   (``radius_mode="times_eps"`` multiplies the radii by ``eps_t``, the paper's convention for radii
   given as numbers; ``"absolute"`` does not; ``eta_t ~ U[-eta_max, eta_max]`` is the probe-radius
   jitter of Theorem 4.2 condition (iv), off by default as in every reported experiment);
2. draw ``R_i ~ Haar(SO(d))`` per particle and form the probes::

       p_{i,v,k} = x_i + s_k r_p R_i u_v,     s_k = k / (K + 1),  k = 1..K;

3. ask the cost oracle for ``C_iv = (1/K) sum_k L(p_{i,v,k})`` (a probe of particle ``i`` changes
   only row ``i`` of ``X``: a block-coordinate evaluation);
4. solve the transport problem for a plan ``T`` (softmax = the one-sided limit of Theorem 4.1 by
   default; Sinkhorn, KL-relaxed or argmin on request);
5. move every particle to its barycentre (Eq. 7) of the candidate vertices
   ``y_{i,v} = x_i + r_s R_i u_v``::

       x_i' = sum_v T_iv y_iv / sum_v T_iv  =  x_i + r_s R_i sum_v w_iv u_v,   w_iv = T_iv / a_i.

Numerical safety: no step returns non-finite particles, whatever the dtype.

* ``eps_t`` only enters the plan, which :mod:`polystep.transport` computes in float64 whatever the
  particles' dtype, so every ``eps > 0`` a Python float holds is usable (``eps = 1e-46`` with float32
  particles is the ``argmin`` limit, not NaN).
* The resolved radii ``r_s``, ``r_p`` (after ``* eps_t`` and the jitter) must be non-zero and finite
  both as float64 numbers and in the particles' dtype; otherwise :meth:`PolyStepConfig.resolve`
  (called by :func:`propose`, before any cost is evaluated) raises a ``ValueError`` naming the step,
  the radius, its value and the dtype, e.g. ``step 0: step_radius 1e+39 overflows torch.float32``.
* Probes, the move ``r_s R_i sum_v w_iv u_v`` and the new particles ``x_i + move`` are checked in the
  particles' dtype; a non-finite one raises :class:`NonFiniteStepError` (a ``FloatingPointError``)
  naming the step, before anything is returned (the caller's particles and state are untouched; the
  generator may have advanced).
* Costs: the mean over probes is taken in float64 (float32 on mps) and rounded to the particles'
  dtype; the replacement of non-finite losses is capped at the dtype's largest finite value.

The state is explicit and immutable (``PolyStepState``); randomness comes only from the
``torch.Generator`` argument, so a step is bitwise reproducible.  The step is split into
``propose`` (steps 1-2) and ``update`` (steps 4-5) so that ask/tell front ends can put the cost
evaluation in between; ``step`` chains the three.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import Tensor

from . import polytopes, transport
from ._validation import check_choice, check_int, check_positive
from .schedules import Schedule, as_schedule

__all__ = ["PolyStepConfig", "PolyStepState", "Proposal", "StepInfo", "NonFiniteLossError",
           "NonFiniteStepError", "init", "propose", "update", "step", "sanitize_costs", "RADIUS_MODES"]

RADIUS_MODES = ("times_eps", "absolute")
#: non-finite costs become min(max(2 max|finite C| + 1, NONFINITE_FLOOR), largest finite value of
#: the dtype) (the authors' sanitisation, paper/polystep_reconstruction.md §2.6)
NONFINITE_FLOOR = 1e6


class NonFiniteLossError(FloatingPointError):
    """Every candidate of at least one particle had a non-finite loss: no move can be made."""


class NonFiniteStepError(FloatingPointError):
    """A step would produce non-finite probes, weights, move or particles in the particles' dtype.

    Raised before the step returns, so the caller's particles and state are left as they were.
    """


def _check_radius(name: str, value: float, t: int, dtype: torch.dtype, how: str = "") -> float:
    """Return the resolved radius ``value`` if it is non-zero and finite in ``dtype``, else raise
    ``ValueError`` naming the step ``t``, the radius, its value (``how`` says how it was formed) and
    the dtype."""
    rounded = value if dtype == torch.float64 else torch.tensor(value, dtype=torch.float64).to(dtype).item()
    if math.isfinite(rounded) and rounded > 0.0:
        return value
    info = torch.finfo(dtype)
    if rounded == 0.0:  # also a product eps_t * radius that underflowed to 0.0 in float64
        what = f"underflows to 0 in {dtype} (smallest positive value {info.tiny * info.eps:.4g})"
    else:
        what = f"overflows {dtype} (largest finite value {info.max:.4g})"
    raise ValueError(f"step {t}: {name} {value!r}{how} {what}; choose a radius (or eps) that the "
                     "dtype can hold")


@dataclass(frozen=True)
class PolyStepConfig:
    """Hyperparameters of the PolyStep step (the original defaults: the authors' code, anindex/polystep
    v0.7.0, ``src/polystep/optimizer.py``; listed in paper/polystep_reconstruction.md §2.11).

    Attributes:
        polytope: vertex template, one of ``polytopes.VERTEX_KINDS`` (``orthoplex``: V = 2d).
        eps: temperature ``eps_t`` (number or schedule).
        step_radius: ``r_s`` (number or schedule; times ``eps_t`` in ``times_eps`` mode).
        probe_radius: ``r_p`` (number or schedule; times ``eps_t`` in ``times_eps`` mode).
        radius_mode: ``"times_eps"`` (paper's convention for numeric radii) or ``"absolute"``.
        num_probes: ``K``, probes per vertex at scales ``s_k = k/(K+1)``.
        probe_jitter: ``eta_max`` in ``[0, 1)``; ``r_p <- r_p (1 + eta_t)``, ``eta_t ~ U[-eta_max, eta_max]``.
        solver: ``"softmax"`` | ``"sinkhorn"`` | ``"kl_relaxed"`` | ``"argmin"``.
        lam: KL weight of the ``kl_relaxed`` solver (``0``: softmax, ``inf``: Sinkhorn).
        sinkhorn_max_iter, sinkhorn_tol: iteration cap and marginal tolerance of the iterative solvers.
    """

    polytope: str = "orthoplex"
    eps: float | Schedule = 0.1
    step_radius: float | Schedule = 1.0
    probe_radius: float | Schedule = 2.0
    radius_mode: str = "times_eps"
    num_probes: int = 1
    probe_jitter: float = 0.0
    solver: str = "softmax"
    lam: float | None = None
    sinkhorn_max_iter: int = 2000
    sinkhorn_tol: float = 1e-6

    def __post_init__(self) -> None:
        """Validate every field and store numbers as plain Python ``int`` / ``float`` (a NumPy
        scalar would make ``PolyStep.state_dict()`` unloadable with ``weights_only=True``)."""
        check_choice("polytope", self.polytope, polytopes.VERTEX_KINDS)
        check_choice("solver", self.solver, transport.SOLVERS)
        check_choice("radius_mode", self.radius_mode, RADIUS_MODES)
        plain: dict[str, object] = {}
        for name in ("eps", "step_radius", "probe_radius"):
            value = getattr(self, name)
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                plain[name] = check_positive(name, value)
            else:
                as_schedule(value)  # raises TypeError for anything that is not a schedule
        plain["num_probes"] = check_int("num_probes", self.num_probes, 1)
        if not (isinstance(self.probe_jitter, numbers.Real) and 0.0 <= self.probe_jitter < 1.0):
            raise ValueError(f"probe_jitter must be in [0, 1), got {self.probe_jitter!r}")
        plain["probe_jitter"] = float(self.probe_jitter)
        if self.solver == "kl_relaxed":
            if self.lam is None or not (self.lam >= 0):
                raise ValueError(f"lam must be >= 0 (or inf) for solver 'kl_relaxed', got {self.lam!r}")
        if isinstance(self.lam, numbers.Real) and not isinstance(self.lam, bool):
            plain["lam"] = float(self.lam)
        plain["sinkhorn_max_iter"] = check_int("sinkhorn_max_iter", self.sinkhorn_max_iter, 1)
        plain["sinkhorn_tol"] = check_positive("sinkhorn_tol", self.sinkhorn_tol)
        for name, value in plain.items():
            object.__setattr__(self, name, value)

    def resolve(self, t: int, dtype: torch.dtype | None = None) -> tuple[float, float, float]:
        """``(eps_t, r_s, r_p)`` at iteration ``t`` before jitter (step 1 of the module docstring).

        ``r_s = step_radius(t) [* eps_t]``, ``r_p = probe_radius(t) [* eps_t]`` (the factor in
        ``times_eps`` mode). Each value is checked to be a finite number ``> 0``; the radii must
        also stay non-zero and finite after the product (float64) and, when ``dtype`` is given
        (the particles' dtype), after rounding to ``dtype``.

        Raises:
            ValueError: ``"eps(t) must be a finite number > 0, got ..."`` (and likewise for the
                radii) for a bad schedule value; ``"step t: step_radius <value> ... overflows
                <dtype> ..."`` / ``"... underflows to 0 in <dtype> ..."`` for a radius the dtype
                cannot hold.
        """
        eps_t = check_positive("eps(t)", float(as_schedule(self.eps)(t)))
        r_s = check_positive("step_radius(t)", float(as_schedule(self.step_radius)(t)))
        r_p = check_positive("probe_radius(t)", float(as_schedule(self.probe_radius)(t)))
        how_s = how_p = ""
        if self.radius_mode == "times_eps":
            how_s = f" (= step_radius(t) * eps(t) = {r_s!r} * {eps_t!r}, radius_mode='times_eps')"
            how_p = f" (= probe_radius(t) * eps(t) = {r_p!r} * {eps_t!r}, radius_mode='times_eps')"
            r_s, r_p = r_s * eps_t, r_p * eps_t
        for dt in (torch.float64,) if dtype is None or dtype == torch.float64 else (torch.float64, dtype):
            _check_radius("step_radius", r_s, t, dt, how_s)
            _check_radius("probe_radius", r_p, t, dt, how_p)
        return eps_t, r_s, r_p

    @property
    def probe_scales(self) -> tuple[float, ...]:
        """``s_k = k / (K + 1)``, ``k = 1..K`` (K = 1: the loss is probed at ``r_p / 2``)."""
        return tuple(k / (self.num_probes + 1) for k in range(1, self.num_probes + 1))


@dataclass(frozen=True)
class PolyStepState:
    """Explicit state between steps: the iteration counter and the forward evaluations spent."""

    t: int = 0
    forward_evals: int = 0


@dataclass(frozen=True)
class Proposal:
    """What ``propose`` draws: rotated templates, probes and the resolved step parameters.

    Attributes:
        directions: ``R_i u_v``, shape ``[P, V, d]`` (unit vectors).
        probes: ``p_{i,v,k}``, shape ``[P, V * K, d]`` (index ``v * K + k``).
        eps, step_radius, probe_radius: ``eps_t``, ``r_s`` and the jittered ``r_p``.
    """

    directions: Tensor
    probes: Tensor
    eps: float
    step_radius: float
    probe_radius: float


@dataclass(frozen=True)
class StepInfo:
    """Diagnostics of one step (all tensors detached).

    Attributes:
        costs: sanitised cost matrix ``C``, ``[P, V]``.
        weights: row-normalised plan ``w_iv = T_iv / sum_u T_iu``, ``[P, V]``.
        entropy: mean over particles of the row entropy ``-sum_v w_iv log w_iv`` (``log V`` = uniform).
        displacement: ``||x_i' - x_i||``, ``[P]`` (at most ``r_s``).
        forward_evals: evaluations of this step, ``P * V * K``.
        n_nonfinite: candidate losses that were NaN/inf and were replaced by a large finite cost.
    """

    t: int
    eps: float
    step_radius: float
    probe_radius: float
    costs: Tensor
    weights: Tensor
    entropy: float
    displacement: Tensor
    forward_evals: int
    n_nonfinite: int
    extra: dict = field(default_factory=dict)


def init() -> PolyStepState:
    """The state before the first step."""
    return PolyStepState()


def _check_particles(particles: Tensor) -> None:
    if not isinstance(particles, Tensor) or particles.ndim != 2:
        raise ValueError("particles must be a 2-D tensor [P, d], got "
                         f"{type(particles).__name__} with shape {getattr(particles, 'shape', None)}")
    if particles.shape[0] < 1 or particles.shape[1] < 1:
        raise ValueError(f"particles must have P >= 1 rows and d >= 1 columns, got {tuple(particles.shape)}")
    if not particles.is_floating_point():
        raise ValueError(f"particles must be floating point, got {particles.dtype}")
    if not torch.isfinite(particles).all():
        raise ValueError("particles contain non-finite entries")


def propose(particles: Tensor, state: PolyStepState, config: PolyStepConfig,
            generator: torch.Generator) -> Proposal:
    """Steps 1-2: resolve ``eps_t, r_s, r_p``, draw rotations (and jitter), build the probes."""
    _check_particles(particles)
    n, d = particles.shape
    eps_t, r_s, r_p = config.resolve(state.t, particles.dtype)
    template = polytopes.vertices(config.polytope, d, dtype=particles.dtype, device=particles.device)
    rotations = polytopes.random_rotations(n, d, generator, dtype=particles.dtype,
                                           device=particles.device)
    if config.probe_jitter > 0:
        u = torch.rand((), generator=generator, dtype=torch.float64, device=generator.device).item()
        factor = 1.0 + config.probe_jitter * (2.0 * u - 1.0)
        r_p = _check_radius("probe_radius", r_p * factor, state.t, particles.dtype,
                            f" (= {r_p!r} * jitter factor {factor!r})")
    directions = torch.einsum("pij,vj->pvi", rotations, template)  # R_i u_v
    scales = torch.tensor(config.probe_scales, dtype=particles.dtype, device=particles.device)
    offsets = (r_p * scales)[None, None, :, None] * directions[:, :, None, :]  # [P, V, K, d]
    probes = (particles[:, None, None, :] + offsets).reshape(n, -1, d)
    if not bool(torch.isfinite(probes).all()):
        raise NonFiniteStepError(
            f"step {state.t}: the probes x_i + s_k r_p R_i u_v overflow {particles.dtype} "
            f"(probe_radius r_p = {r_p!r}, max |x| = {particles.abs().max().item():.4g}); no cost was "
            "evaluated and the particles were not moved")
    return Proposal(directions, probes, eps_t, r_s, r_p)


def sanitize_costs(costs: Tensor, *, t: int | None = None) -> tuple[Tensor, int]:
    """Replace NaN/inf by ``min(max(2 max|finite C| + 1, 1e6), M)`` (paper/polystep_reconstruction.md §2.6).

    ``M`` is the largest finite value of ``costs``' dtype (``3.4e38`` in float32), so the fill is
    finite and still at least every finite cost.

    Raises:
        NonFiniteLossError: if every candidate of some particle (row) is non-finite.
    """
    finite = torch.isfinite(costs)
    n_bad = int((~finite).sum())
    if n_bad == 0:
        return costs, 0
    dead = ~finite.any(dim=1)
    if dead.any():
        rows = dead.nonzero().flatten().tolist()
        where = f" at step {t}" if t is not None else ""
        raise NonFiniteLossError(
            f"every candidate loss of particle(s) {rows[:10]}{'...' if len(rows) > 10 else ''} is "
            f"non-finite{where}: the loss oracle returned NaN/inf for all {costs.shape[1]} probes")
    biggest = costs[finite].abs().max()
    fill = torch.clamp(torch.clamp(2 * biggest + 1, min=NONFINITE_FLOOR), max=torch.finfo(costs.dtype).max)
    return torch.where(finite, costs, fill), n_bad


def _probe_mean(costs: Tensor) -> Tensor:
    """``C_iv = (1/K) sum_k L(p_ivk)`` of finite costs ``[P, V, K]``, in the work dtype (a float32
    sum of K costs near 3e38 overflows).  Where the sum overflows even there (float64 costs near
    ``1.8e308``), the mean is taken as ``m_iv * mean_k(L / m_iv)`` with ``m_iv = max_k |L|``, which
    is finite; elsewhere it is the plain mean, bit for bit."""
    mean = costs.mean(dim=2)
    finite = torch.isfinite(mean)
    if bool(finite.all()):
        return mean
    scale = costs.abs().amax(dim=2, keepdim=True)
    return torch.where(finite, mean, scale[..., 0] * (costs / scale).mean(dim=2))


def update(particles: Tensor, proposal: Proposal, probe_costs: Tensor, state: PolyStepState,
           config: PolyStepConfig) -> tuple[Tensor, PolyStepState, StepInfo]:
    """Steps 4-5: costs of the probes -> plan -> barycentric move (Eq. 7).

    ``C_iv = (1/K) sum_k L(p_ivk)`` (averaged in float64, then rounded to the particles' dtype;
    losses that are NaN/inf -- or too large for that dtype -- are replaced by
    :func:`sanitize_costs`), ``w_iv = T_iv / sum_u T_iu`` and ``x_i' = x_i + r_s R_i sum_v w_iv u_v``.

    Args:
        particles: ``[P, d]``, as given to :func:`propose`.
        proposal: the :class:`Proposal` of this step.
        probe_costs: losses of ``proposal.probes``, ``[P, V * K]`` (any float dtype, any device).
        state, config: as for :func:`propose`.

    Raises:
        NonFiniteLossError: if every probe of some particle has a non-finite loss.
        NonFiniteStepError: if the weights, the move or the new particles are not finite in the
            particles' dtype (e.g. ``|x| + r_s`` beyond ``3.4e38`` in float32); raised before
            anything is returned, so the caller's particles and state are untouched.
    """
    n, d = particles.shape
    v = proposal.directions.shape[1]
    k = config.num_probes
    if probe_costs.shape != (n, v * k):
        raise ValueError(f"probe_costs must have shape {(n, v * k)} = [P, V*K], got {tuple(probe_costs.shape)}")
    work = transport._work_dtype(particles.device)
    raw = probe_costs.detach().to(device=particles.device, dtype=particles.dtype)
    raw, n_bad = sanitize_costs(raw, t=state.t)
    costs = _probe_mean(raw.reshape(n, v, k).to(work)).to(particles.dtype)
    iterative = config.solver in ("sinkhorn", "kl_relaxed")
    options = {"max_iter": config.sinkhorn_max_iter, "tol": config.sinkhorn_tol} if iterative else {}
    lam = config.lam if config.solver == "kl_relaxed" else None
    plan = transport.transport_plan(config.solver, costs, proposal.eps, lam=lam, **options)
    weights = plan / plan.sum(dim=1, keepdim=True)
    where = f"step {state.t}: "
    keep = "; the particles were not moved"
    if not bool(torch.isfinite(weights).all()):
        raise NonFiniteStepError(f"{where}the transport weights w_iv are not finite (solver "
                                 f"{config.solver!r}, eps {proposal.eps!r}){keep}")
    move = proposal.step_radius * torch.einsum("pv,pvd->pd", weights, proposal.directions)
    displacement = move.to(work).norm(dim=1).to(particles.dtype)  # a float32 norm overflows from 1.8e19
    if not (bool(torch.isfinite(move).all()) and bool(torch.isfinite(displacement).all())):
        raise NonFiniteStepError(f"{where}the move r_s R_i sum_v w_iv u_v overflows {particles.dtype} "
                                 f"(step_radius r_s = {proposal.step_radius!r}){keep}")
    new_particles = particles + move
    if not bool(torch.isfinite(new_particles).all()):
        raise NonFiniteStepError(
            f"{where}the new particles x_i + r_s R_i sum_v w_iv u_v overflow {particles.dtype} "
            f"(max |x| = {particles.abs().max().item():.4g}, step_radius r_s = {proposal.step_radius!r}){keep}")
    entropy = float(-(weights * torch.log(weights.clamp_min(torch.finfo(weights.dtype).tiny))).sum(1).mean())
    evals = n * v * k
    info = StepInfo(t=state.t, eps=proposal.eps, step_radius=proposal.step_radius,
                    probe_radius=proposal.probe_radius, costs=costs, weights=weights,
                    entropy=entropy, displacement=displacement, forward_evals=evals,
                    n_nonfinite=n_bad)
    return new_particles, replace(state, t=state.t + 1, forward_evals=state.forward_evals + evals), info


def step(particles: Tensor, cost_fn: Callable[[Tensor], Tensor], state: PolyStepState,
         config: PolyStepConfig, generator: torch.Generator) -> tuple[Tensor, PolyStepState, StepInfo]:
    """One PolyStep step: ``propose`` -> ``cost_fn(probes)`` -> ``update``.

    Args:
        particles: ``X``, ``[P, d]`` (float32 or float64, any device).
        cost_fn: maps probes ``[P, M, d]`` (``M = V * K``) to losses ``[P, M]``, where probe
            ``(i, m)`` stands for ``X`` with row ``i`` replaced by ``probes[i, m]``.  For independent
            particles this is just ``f(probes)``.
        state: from :func:`init` or the previous step.
        config: :class:`PolyStepConfig`.
        generator: the only source of randomness (rotations, jitter); on the particles' device.

    Returns:
        ``(new_particles, new_state, info)``.
    """
    proposal = propose(particles, state, config, generator)
    costs = cost_fn(proposal.probes)
    if not isinstance(costs, Tensor):
        raise TypeError(f"cost_fn must return a torch.Tensor, got {type(costs).__name__}")
    return update(particles, proposal, costs, state, config)
