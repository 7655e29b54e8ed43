"""Training cells of App H (extended ablations) and Table 10 (full space) of the PolyStep paper:
PolyStep on the MNIST MLP with one setting changed at a time.

One cell trains one :class:`Variant` (a complete PolyStep configuration) on one seed, with Table T5's
data, model, batch stream and checkpoint protocol (:mod:`repro.tasks.t5_train`,
:class:`repro.tasks.t1_train._Checkpoints`): the same initial parameters and batches for every
variant of a seed.  Every ``eval_every`` steps the validation and test accuracies are recorded;
``test_acc`` is the test accuracy of the (first) best-validation checkpoint, ``best_test_acc`` the
maximum of the checkpoints' test accuracies -- the paper's "best test %" (paper/polystep_reconstruction.md
§6 item 6).

App H's settings (paper/polystep_reconstruction.md §4 "App H"): radii given as numbers are multiplied by
``eps`` (``radius_mode="times_eps"``), ``eps`` follows a cosine schedule from ``eps_init`` to
``eps_target`` over the run's steps, ``K = 3`` probes per vertex, absorb every 20 steps (the paper's
absorb regenerated the *same* projections, §6: here ``redraw_on_absorb=False``).  Not available in
:class:`polystep.optim.PolyStep` and therefore left out: amortized OT (H1 amortize 2, H3 amortize 3),
biased rotation, the adaptive radius of H6's AdaptiveSubspace.

Update rules (H1): ``"softmax"`` and ``"sinkhorn"`` (entropic OT, 50 iterations as in H1: the
iteration cap is set on the optimizer's step configuration) and ``"argmin"`` (min-cost greedy: all
mass on ``argmin_v C_iv``) are :mod:`polystep.transport` solvers.  ``"top3"`` -- uniform mass on the
three cheapest vertices (paper/polystep_reconstruction.md §2.7, "Ablation solvers") -- is not; it is
plugged in without changing :mod:`polystep` by :class:`SupportUniformClosure`: the closure returns,
for every particle, the cost ``0`` on its ``k`` cheapest vertices and a cost ``gap`` far above
``eps`` on the others, so that the library's softmax plan is exactly uniform on those ``k`` vertices
(``exp(-gap/eps)`` underflows to 0 in float64).  :func:`support_uniform_weights` is the same rule as a
cost -> weights function (tests check that the two agree and that ``k = 1`` is the ``argmin`` solver).

Subspace types (H6), as this package's subspaces (the authors' classes are not all available,
paper/polystep_reconstruction.md §2.2): ``"hybrid"`` -- the per-layer HybridSubspace (QR basis, absorb
every 20 steps); ``"linear"`` -- a fixed per-layer Gaussian projection with the same coordinate count
(``basis="gaussian"``, no orthonormalisation, no absorb); ``"adaptive"`` -- a per-layer subspace
redrawn at every step (``absorb_every=1``, ``redraw_on_absorb=True``; the authors' AdaptiveSubspace is
one global QR basis rotated every step, whose generic evaluation path is too slow here) at fixed
``eps = 0.5``, ``rho_s = 10``, ``rho_p = 2`` without the adaptive radius; ``"full"`` -- the identity
subspace (every parameter a coordinate, ``d_p = 2``, consecutive parameters form a particle).

Diagnostics of the Theorem 4.1 study beside Table 10 (``bary_gap``): at every checkpoint, on the
cost matrix ``C`` of that step, the barycentre gap between the softmax and the Sinkhorn step
``mean_i ||sum_v (w^softmax_iv - w^OT_iv) u_v||`` in units of the step radius (the rotation ``R_i``
drops out of the norm), whatever the variant's own solver -- the quantity that
:func:`theory.one_sided_limit.softmax_vs_ot_gap` computes on random costs.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from polystep import polytopes, transport
from polystep.fast_eval import fast_population_closure
from polystep.optim import PolyStep
from polystep.schedules import Cosine
from repro.context import RunContext
from repro.tasks.batches import BatchStream
from repro.tasks.t1_train import _Checkpoints, _checkpoint_steps, _loss
from repro.tasks.t5_train import build_t5_model, load_t5_data

__all__ = ["RULES", "SUBSPACES", "TrainConfig", "Variant", "SupportUniformClosure", "support_uniform_weights",
           "barycentre_gap", "build_optimizer", "train_variant", "TOP_K_GAP"]

#: update rules: name -> (library solver, k of the support-uniform rule or None)
RULES = {"softmax": ("softmax", None), "sinkhorn": ("sinkhorn", None), "argmin": ("argmin", None),
         "top3": ("softmax", 3)}
SUBSPACES = ("hybrid", "linear", "adaptive", "full")
#: the cost given to the vertices outside the support of a support-uniform rule, in units of the
#: largest eps of the run: exp(-1e4) is 0 in float64, so the softmax plan is exactly uniform on the
#: support (and the value stays finite in float32)
TOP_K_GAP = 1e4


@dataclass(frozen=True)
class TrainConfig:
    """Data, model and budget shared by the cells of one ablation."""

    dataset: str = "mnist"                 # "mnist" | "digits" (ci stand-in)
    train_subset: int | None = None
    batch_size: int = 128
    hidden: int = 128
    steps: int = 100
    eval_every: int = 10
    max_subspace_dim: int | None = 256     # cap on D of the per-layer subspaces (None: the paper's full D)
    chunk_size: int = 4096


@dataclass(frozen=True)
class Variant:
    """One PolyStep configuration of an ablation (App H's conventions: numeric radii x eps)."""

    label: str
    rule: str = "softmax"                  # key of RULES
    subspace: str = "hybrid"               # key of SUBSPACES
    rank: int = 4
    particle_dim: int = 8
    polytope: str = "orthoplex"
    eps: tuple[float, float] = (1.0, 0.1)  # cosine eps_init -> eps_target over the run
    step_radius: float = 4.5               # x eps
    probe_radius: float = 1.0              # x eps
    num_probes: int = 3
    absorb_every: int = 20
    sinkhorn_iters: int = 50
    subspace_dim: int | None = None        # cap on D of this variant (None: the TrainConfig's)


def _check(variant: Variant) -> None:
    if variant.rule not in RULES:
        raise ValueError(f"rule must be one of {list(RULES)}, got {variant.rule!r}")
    if variant.subspace not in SUBSPACES:
        raise ValueError(f"subspace must be one of {list(SUBSPACES)}, got {variant.subspace!r}")


def build_optimizer(model: torch.nn.Module, variant: Variant, cfg: TrainConfig, seed: int) -> PolyStep:
    """The :class:`PolyStep` of ``variant`` (module docstring) on ``model``'s parameters."""
    _check(variant)
    solver, _k = RULES[variant.rule]
    e0, e1 = variant.eps
    eps = e0 if e0 == e1 else Cosine(start=e0, end=e1, steps=cfg.steps)
    space = {"hybrid": dict(subspace="hybrid", basis="qr", absorb_every=variant.absorb_every),
             "linear": dict(subspace="hybrid", basis="gaussian", absorb_every=0),
             "adaptive": dict(subspace="hybrid", basis="gaussian", absorb_every=1, redraw_on_absorb=True),
             "full": dict(subspace="identity", absorb_every=0)}[variant.subspace]
    cap = variant.subspace_dim if variant.subspace_dim is not None else cfg.max_subspace_dim
    opt = PolyStep(model.parameters(), rank=variant.rank, max_subspace_dim=cap,
                   particle_dim=variant.particle_dim, polytope=variant.polytope, eps=eps,
                   step_radius=variant.step_radius, probe_radius=variant.probe_radius, radius_mode="times_eps",
                   num_probes=variant.num_probes, solver=solver, chunk_size=cfg.chunk_size, seed=seed, **space)
    if solver == "sinkhorn":  # H1's 50 iterations (PolyStep's constructor does not take the cap)
        group = opt.param_groups[0]
        group["config"] = replace(group["config"], sinkhorn_max_iter=variant.sinkhorn_iters)
    return opt


# ------------------------------------------------------------------------------------ hard rules

def support_uniform_weights(C: Tensor, k: int) -> Tensor:
    """Row weights uniform on the ``k`` cheapest vertices of each row of ``C`` ``[P, V]`` (ties by
    vertex index): ``w_iv = 1/k`` for ``v`` among them, else 0 (``k = 1``: min-cost greedy; ``k = 3``:
    App H1's top-3 mean)."""
    if not 1 <= k <= C.shape[1]:
        raise ValueError(f"k must be in [1, V={C.shape[1]}], got {k}")
    order = torch.sort(C, dim=1, stable=True).indices[:, :k]
    w = torch.zeros_like(C, dtype=torch.float64)
    w.scatter_(1, order, 1.0 / k)
    return w


class SupportUniformClosure:
    """Wrap a population closure so that PolyStep's softmax step applies :func:`support_uniform_weights`.

    The wrapped closure's losses of one particle's ``V * K`` candidates (index ``v * K + k``, whole
    particles per call: :class:`polystep.optim.PolyStep` never splits them) are averaged over the
    ``K`` probes into ``C_iv``; every candidate of vertex ``v`` then gets the cost ``0`` if ``v`` is
    among the ``k`` cheapest of its particle, else ``gap``.  With ``gap / eps >= 745`` the softmax
    plan is exactly uniform on those ``k`` vertices.  Non-finite losses rank last.  ``block_losses``
    (the fast path) is wrapped the same way when the inner closure has it.  ``raw_loss_sum`` and
    ``raw_loss_count`` accumulate the real losses (the step's returned mean is of the encoded costs).
    """

    def __init__(self, inner, *, num_vertices: int, num_probes: int, k: int, gap: float):
        self.inner, self.V, self.K, self.k, self.gap = inner, num_vertices, num_probes, k, gap
        self.raw_loss_sum, self.raw_loss_count = 0.0, 0
        if hasattr(inner, "block_losses"):
            self.block_losses = self._block_losses

    def _encode(self, losses: Tensor) -> Tensor:
        raw = losses.detach()
        finite = torch.isfinite(raw)
        self.raw_loss_sum += float(raw[finite].double().sum())
        self.raw_loss_count += int(finite.sum())
        big = torch.finfo(torch.float64).max / 4
        C = torch.where(finite, raw.double(), big).reshape(-1, self.V, self.K).mean(dim=2)
        w = support_uniform_weights(C, self.k)
        enc = torch.where(w > 0, 0.0, self.gap).to(raw.dtype)
        return enc[:, :, None].expand(-1, -1, self.K).reshape(-1)

    def __call__(self, thetas):
        return self._encode(self.inner(thetas))

    def _block_losses(self, block, coord_offset: int, delta_z: Tensor) -> Tensor:
        return self._encode(self.inner.block_losses(block, coord_offset, delta_z))


# ------------------------------------------------------------------------------------ Thm 4.1 gap

def barycentre_gap(C: Tensor, eps: float, polytope: str, dim: int, *, sinkhorn_iters: int = 2000) -> float:
    """``mean_i ||sum_v (w^softmax_iv - w^OT_iv) u_v||`` (units of the step radius) on the cost
    matrix ``C`` ``[P, V]`` (``V`` vertices of the ``polytope`` in ``R^dim``) at temperature ``eps``:
    the softmax (one-sided, Theorem 4.1's lambda = 0) and the Sinkhorn (uniform marginals,
    lambda = inf) barycentric steps of paper Eq. 7 differ by ``r_s R_i`` times this vector; ``R_i``
    is orthogonal, so it drops out of the norm."""
    C = C.detach().double()
    U = polytopes.vertices(polytope, dim, dtype=torch.float64, device=C.device)
    if U.shape[0] != C.shape[1]:
        raise ValueError(f"C has {C.shape[1]} columns, the {polytope} in R^{dim} has {U.shape[0]} vertices")
    ws = transport.transport_plan("softmax", C, eps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", transport.ConvergenceWarning)
        wo = transport.transport_plan("sinkhorn", C, eps, max_iter=sinkhorn_iters, tol=1e-9)
    ws = ws / ws.sum(dim=1, keepdim=True)
    wo = wo / wo.sum(dim=1, keepdim=True)
    return float(((ws - wo) @ U).norm(dim=1).mean())


# ------------------------------------------------------------------------------------ the cell

def train_variant(variant: Variant, cfg: TrainConfig, seed: int, ctx: RunContext, *,
                  bary_gap: bool = False) -> dict:
    """Train PolyStep ``variant`` for ``cfg.steps`` steps on seed ``seed`` (module docstring).

    Returns the checkpoint curve (``step``, ``evals``, ``mlp_val_acc``, ``mlp_test_acc``), the
    protocol numbers (``test_acc``, ``best_test_acc``, ``final_test_acc``, ...), ``evals``,
    ``evals_per_step``, ``particles``, ``vertices``, ``step_s`` (wall time of the steps), the mean
    probe loss per step (``train_loss``), the Sinkhorn steps that stopped at the iteration cap
    (``sinkhorn_capped``) and, with ``bary_gap`` and a softmax or Sinkhorn rule (whose step sees the
    real cost matrix), the barycentre gap at every checkpoint."""
    _check(variant)
    data = load_t5_data(cfg.dataset, train_subset=cfg.train_subset, subset_seed=ctx.child_seed("apph-subset"))
    dev = ctx.device
    model = build_t5_model(cfg.hidden, ctx.torch_generator("apph-init", seed), n_features=data.n_features,
                           n_classes=data.n_classes, device=dev)
    stream = BatchStream(data.x_train.to(dev), data.y_train.to(dev), cfg.batch_size,
                         ctx.torch_generator("apph-batches", seed))
    opt = build_optimizer(model, variant, cfg, seed=ctx.child_seed("apph-polystep", seed) % 2**31)
    V = polytopes.num_vertices(variant.polytope, variant.particle_dim)
    _solver, k = RULES[variant.rule]
    bary_gap = bary_gap and variant.rule in ("softmax", "sinkhorn")  # a hard rule's info.costs are not C
    checks = _Checkpoints(data, dev, {"mlp": model})
    when = _checkpoint_steps(cfg.steps, max(1, cfg.steps // cfg.eval_every))
    evals, step_s, losses, gaps, capped = 0, 0.0, [], [], 0
    for t in range(1, cfg.steps + 1):
        xb, yb = next(stream)
        closure = fast_population_closure(model, _loss, xb, yb, opt.params)
        if k is not None:
            closure = SupportUniformClosure(closure, num_vertices=V, num_probes=variant.num_probes, k=k,
                                            gap=TOP_K_GAP * max(variant.eps))
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", transport.ConvergenceWarning)
            loss = opt.step(closure)
        step_s += time.perf_counter() - t0
        capped += sum(issubclass(w.category, transport.ConvergenceWarning) for w in caught)
        for w in caught:
            if not issubclass(w.category, transport.ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if k is not None:
            losses.append(closure.raw_loss_sum / max(1, closure.raw_loss_count))
        else:
            losses.append(float(loss))
        evals += opt.last_info.forward_evals
        if t in when:
            checks.record(t, evals)
            if bary_gap:
                info = opt.last_info
                gaps.append(barycentre_gap(info.costs, info.eps, variant.polytope, variant.particle_dim))
    out = {"curve": checks.curve(), **checks.summary("mlp"), "evals": evals, "evals_per_step": opt.evals_per_step,
           "particles": opt.num_particles, "vertices": V, "step_s": step_s, "steps": cfg.steps,
           "train_loss": np.asarray(losses), "sinkhorn_capped": capped}
    if bary_gap:
        out["bary_gap"] = np.asarray(gaps)
    if not all(math.isfinite(x) for x in out["curve"]["mlp_test_acc"]):
        raise FloatingPointError(f"non-finite accuracy in variant {variant.label!r}, seed {seed}")
    return out
