"""Training runs of Table T5 (the MNIST sanity check, PolyStep paper §5.5) and of the convergence
curves of App H7: a ReLU MLP 784-128-10 (101,770 parameters) trained by PolyStep, Adam, sep-CMA-ES,
OpenAI-ES and SPSA, one cell each, with the data, batches, checkpoints and protocol of Table T1's
runs (:mod:`repro.tasks.t1_train`, whose machinery this module reuses without changing it).

Architecture (paper/polystep_reconstruction.md §5.2, "MNIST MLP"): ``Linear(784, 128) - ReLU -
Linear(128, 10)`` with PyTorch's default initialisation (:func:`repro.tasks.models.mlp`).

PolyStep (paper/polystep_reconstruction.md §5.3, row "MNIST"): hybrid subspace of rank 8, softmax
solver, orthoplex, ``d_p = 8`` (``V = 16``), ``K = 1``, no absorb, cosine schedules over the run's
steps ``eps`` 10 -> 0.1, step radius 5 -> 1, probe radius 10 -> 2 (schedules: absolute radii, not
``x eps``, §6 item 14).  The paper's run also used **amortized OT** (``amortize_steps = 3``, EMA 0.7:
a full step on every third batch and two "coasting" steps along an average of past displacements
without any loss evaluation, §2.9); :class:`polystep.optim.PolyStep` has no such option.  Every
step here is an OT step on a fresh batch, so the paper's budget is its **1,180 OT steps** of
``P V K = 17,088`` evaluations (2.02e7 forward passes, §2.13; :data:`PAPER_POLYSTEP_STEPS`): the same
OT updates, batches used and forward passes as the paper's run, without its 2,360 coasting moves
(whose batches the paper never evaluated).  The cosine schedules run over these steps.

Baselines (paper/polystep_reconstruction.md §5.4, the MNIST column): sep-CMA-ES (popsize 16,
``sigma0 = 0.5``), OpenAI-ES (antithetic, 50, ``sigma = 0.02``, lr 0.01 -> 0, weight decay 0.01)
and SPSA (``a = c = 0.1``, ``A = 0.1 max_iters``) with the settings of Table T1
(:data:`repro.tasks.t1_train.BASELINES`); the paper's MNIST budgets are 2,000 / 2,000 / 10,000
generations against PolyStep's 3,540 calls, i.e. its 1,180 OT steps (:data:`PAPER_GENERATIONS`).
Two budgets (:func:`baseline_generations`): ``"paper"`` keeps that ratio of generations to
PolyStep's (evaluating) steps, ``"matched"`` gives the baseline as many forward evaluations as
PolyStep.

Adam: lr 1e-3 cosine-annealed to 0 over its ``adam_steps`` (the paper's 30 epochs: 3,540 steps,
three per PolyStep OT step, as the paper's PolyStep made three calls per OT step), backpropagation,
the same initial parameters and batch stream as PolyStep, the same number of checkpoints (§5.4,
"Adam ... lr 1e-3, cosine LR, 30 epochs").

Protocol (:class:`repro.tasks.t1_train._Checkpoints`): every ``eval_every`` steps (the same number of
checkpoints for a baseline) the validation and test accuracies are recorded; ``test_acc`` is the
test accuracy of the first checkpoint with the best validation accuracy, ``best_test_acc`` the
maximum of the checkpoints' test accuracies -- the paper's "best" (§6 item 6).  ``evals`` counts
mini-batch losses: PolyStep ``P V K`` per step, a baseline its population per generation, Adam one
forward (and its backward) per step.

Data: ``"mnist"`` -- :func:`repro.tasks.mnist.load_mnist_split` (54,000 training, 6,000 validation
images carved from the training set, the official 10,000 test images), optionally a fixed training
subset; ``"digits"`` -- the offline 784-feature stand-in of Table T1 (scikit-learn's digits
upsampled to 28 x 28) for ci scale.
"""

from __future__ import annotations

import functools
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from polystep.baselines import PopulationOptimizer
from polystep.evaluation import population_closure
from polystep.fast_eval import fast_population_closure
from polystep.optim import PolyStep
from polystep.schedules import Cosine
from repro.context import RunContext
from repro.tasks.batches import BatchStream
from repro.tasks.digits import DataSplit
from repro.tasks.models import mlp
from repro.tasks.t1_train import BASELINES as T1_BASELINES
from repro.tasks.t1_train import PolyStepSettings, _Checkpoints, _checkpoint_steps, _digits784, _loss

__all__ = ["BASELINES", "BASELINE_NAMES", "BUDGETS", "METHODS", "PAPER_GENERATIONS", "PAPER_POLYSTEP",
           "PAPER_POLYSTEP_STEPS", "PAPER_ADAM_STEPS", "baseline_generations", "build_t5_model", "check_config",
           "load_t5_data",
           "polystep_evals_per_step", "train_adam", "train_baseline", "train_polystep"]

#: PolyStep's settings on the MNIST MLP (paper/polystep_reconstruction.md §5.3, row "MNIST"; the
#: paper's amortize 3 is not available, module docstring)
PAPER_POLYSTEP = PolyStepSettings(rank=8, eps=(10.0, 0.1), step_radius=(5.0, 1.0), probe_radius=(10.0, 2.0),
                                  absorb_every=0)
#: PolyStep's calls in the paper (30 epochs of 118 batches of 512 images), amortize 3 (§5.3)
PAPER_POLYSTEP_CALLS, PAPER_AMORTIZE = 3540, 3
#: the paper's OT steps -- the steps that evaluate losses: 1,180 x 17,088 = 2.02e7 forward passes (§2.13)
PAPER_POLYSTEP_STEPS = PAPER_POLYSTEP_CALLS // PAPER_AMORTIZE
#: Adam's steps in the paper (30 epochs of 118 batches)
PAPER_ADAM_STEPS = PAPER_POLYSTEP_CALLS
#: the baselines' generations on the MNIST MLP in the paper (paper/polystep_reconstruction.md §5.4:
#: "2,000 (MoE, MNIST, ETTh1)" for CMA-ES and OpenAI-ES, "10,000 (MoE, MNIST, ETTh1)" for SPSA)
PAPER_GENERATIONS = {"CMA-ES": 2_000, "OpenAI-ES": 2_000, "SPSA": 10_000}
#: report name -> (PopulationOptimizer method, options): Table T1's settings (§5.4, the same for MNIST)
BASELINES: dict[str, tuple[str, dict[str, Any]]] = {m: (T1_BASELINES[m][0], dict(T1_BASELINES[m][1]))
                                                   for m in PAPER_GENERATIONS}
BASELINE_NAMES = tuple(BASELINES)
BUDGETS = ("paper", "matched")
METHODS = ("PolyStep", "Adam") + BASELINE_NAMES
DATASETS = ("mnist", "digits")


# ------------------------------------------------------------------------------------------ data, model

def load_t5_data(dataset: str, *, train_subset: int | None, subset_seed: int) -> DataSplit:
    """The data of Table T5: ``dataset`` ``"mnist"`` or ``"digits"`` (module docstring), the training
    images restricted to ``train_subset`` of them (a permutation seeded by ``subset_seed``, the same
    for every method and seed) or all.  Memoised per process; treat the tensors as read-only."""
    return _load_t5_data(dataset, train_subset, subset_seed)


@functools.lru_cache(maxsize=2)
def _load_t5_data(dataset: str, train_subset: int | None, subset_seed: int) -> DataSplit:
    if dataset == "digits":
        d = _digits784(seed=0)
    elif dataset == "mnist":
        from repro.tasks.mnist import load_mnist_split

        d = load_mnist_split(seed=0)
    else:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got {dataset!r}")
    if train_subset is not None:
        n = d.x_train.shape[0]
        if isinstance(train_subset, bool) or not isinstance(train_subset, int) or not 1 <= train_subset <= n:
            raise ValueError(f"train_subset must be an integer in [1, {n}] or None, got {train_subset!r}")
        gen = torch.Generator().manual_seed(subset_seed)
        keep = torch.randperm(n, generator=gen)[:train_subset].sort().values
        d = replace(d, x_train=d.x_train[keep], y_train=d.y_train[keep], indices=None)
    return d


def build_t5_model(hidden: int, generator: torch.Generator, *, n_features: int = 784, n_classes: int = 10,
                   device=None) -> nn.Sequential:
    """``Linear(n_features, hidden) - ReLU - Linear(hidden, n_classes)`` (101,770 parameters at the
    paper's 784-128-10), PyTorch's default initialisation drawn from ``generator``."""
    return mlp((n_features, hidden, n_classes), generator, activation=nn.ReLU, device=device)


# ------------------------------------------------------------------------------------------ budgets

def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_config(cfg) -> None:
    """Refuse a configuration that cannot run: no steps (a zero budget), no checkpoint, an unknown
    dataset, budget or baseline, fewer than one seed."""
    _positive_int("steps", cfg.steps)
    _positive_int("adam_steps", cfg.adam_steps)
    _positive_int("eval_every", cfg.eval_every)
    _positive_int("batch_size", cfg.batch_size)
    _positive_int("hidden", cfg.hidden)
    if cfg.eval_every > cfg.steps:
        raise ValueError(f"eval_every ({cfg.eval_every}) must not exceed steps ({cfg.steps})")
    if cfg.dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got {cfg.dataset!r}")
    for b in cfg.budgets:
        if b not in BUDGETS:
            raise ValueError(f"budget must be one of {list(BUDGETS)}, got {b!r}")
    for m in cfg.baselines:
        if m not in BASELINES:
            raise ValueError(f"method must be one of {list(BASELINES)}, got {m!r}")
    if not cfg.seeds:
        raise ValueError("at least one seed is needed")


def _polystep(model: nn.Module, cfg, seed: int, basis: str | None = None) -> PolyStep:
    s, steps = PAPER_POLYSTEP, cfg.steps

    def sched(pair: tuple[float, float]):
        return pair[0] if pair[0] == pair[1] else Cosine(start=pair[0], end=pair[1], steps=steps)

    return PolyStep(model.parameters(), subspace="hybrid", rank=s.rank, max_subspace_dim=cfg.max_subspace_dim,
                    basis=basis or cfg.basis, particle_dim=8, polytope="orthoplex", num_probes=1,
                    eps=sched(s.eps), step_radius=sched(s.step_radius), probe_radius=sched(s.probe_radius),
                    radius_mode="absolute", solver="softmax", absorb_every=s.absorb_every,
                    chunk_size=cfg.chunk_size, seed=seed)


def polystep_evals_per_step(cfg) -> int:
    """``P * V * K`` of PolyStep at this configuration (the same ``D`` for every basis; counted on
    the Kronecker basis, which costs nothing to build)."""
    check_config(cfg)
    model = build_t5_model(cfg.hidden, torch.Generator().manual_seed(0))
    return _polystep(model, cfg, seed=0, basis="kronecker").evals_per_step


def baseline_generations(method: str, budget: str, cfg) -> int:
    """Generations of baseline ``method`` under ``budget``:

    * ``"paper"`` -- the paper's ratio of generations to PolyStep's OT steps (:data:`PAPER_GENERATIONS`
      per :data:`PAPER_POLYSTEP_STEPS`) applied to this configuration's steps,
      ``max(1, round(steps G_paper / 1180))`` (at the paper's 1,180 steps the paper's own numbers);
    * ``"matched"`` -- as many forward evaluations as PolyStep: ``floor(steps P V K / population)``
      (at most one generation's evaluations fewer than PolyStep's).

    Raises:
        ValueError: an unknown method or budget, or a configuration without steps.
    """
    if method not in BASELINES:
        raise ValueError(f"method must be one of {list(BASELINES)}, got {method!r}")
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {list(BUDGETS)}, got {budget!r}")
    check_config(cfg)
    if budget == "paper":
        return max(1, round(cfg.steps * PAPER_GENERATIONS[method] / PAPER_POLYSTEP_STEPS))
    population = BASELINES[method][1].get("population", 2)
    g = cfg.steps * polystep_evals_per_step(cfg) // population
    if g < 1:
        raise ValueError(f"a matched budget of {cfg.steps * polystep_evals_per_step(cfg)} evaluations is "
                         f"less than one generation of {method} ({population})")
    return g


# ------------------------------------------------------------------------------------------ cells

def _setup(cfg, seed: int, ctx: RunContext):
    """Data, model and batch stream of one cell: the same initial parameters and batches for every
    method of a seed."""
    check_config(cfg)
    data = load_t5_data(cfg.dataset, train_subset=cfg.train_subset, subset_seed=ctx.child_seed("t5-subset"))
    dev = ctx.device
    model = build_t5_model(cfg.hidden, ctx.torch_generator("t5-init", seed), n_features=data.n_features,
                           n_classes=data.n_classes, device=dev)
    stream = BatchStream(data.x_train.to(dev), data.y_train.to(dev), cfg.batch_size,
                         ctx.torch_generator("t5-batches", seed))
    return data, model, stream


def _result(checks: _Checkpoints, **extra) -> dict:
    return {"curve": checks.curve(), **checks.summary("mlp"), **extra}


def train_polystep(cfg, seed: int, ctx: RunContext) -> dict:
    """PolyStep (:data:`PAPER_POLYSTEP`) for ``cfg.steps`` steps, evaluated by the fast population
    closure.  Returns the checkpoint curve (``step``, ``evals``, ``mlp_val_acc``, ``mlp_test_acc``),
    the protocol numbers, the forward evaluations, the mean training loss per step and the wall time
    of the steps (``step_s``)."""
    data, model, stream = _setup(cfg, seed, ctx)
    opt = _polystep(model, cfg, seed=ctx.child_seed("t5-polystep", seed) % 2**31)
    checks = _Checkpoints(data, ctx.device, {"mlp": model})
    when = _checkpoint_steps(cfg.steps, cfg.steps // cfg.eval_every)
    evals, step_s, losses = 0, 0.0, []
    for t in range(1, cfg.steps + 1):
        xb, yb = next(stream)
        t0 = time.perf_counter()
        losses.append(float(opt.step(fast_population_closure(model, _loss, xb, yb, opt.params))))
        step_s += time.perf_counter() - t0
        evals += opt.last_info.forward_evals
        if t in when:
            checks.record(t, evals)
    return _result(checks, evals=evals, steps=cfg.steps, evals_per_step=opt.evals_per_step, step_s=step_s,
                   train_loss=np.asarray(losses))


def train_adam(cfg, seed: int, ctx: RunContext) -> dict:
    """Adam (lr ``cfg.adam_lr`` cosine-annealed to 0) with backpropagation for ``cfg.adam_steps``
    steps on PolyStep's initial parameters and batch stream, with as many checkpoints as PolyStep's
    run; one forward evaluation per step."""
    data, model, stream = _setup(cfg, seed, ctx)
    steps = cfg.adam_steps
    opt = torch.optim.Adam(model.parameters(), lr=cfg.adam_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    checks = _Checkpoints(data, ctx.device, {"mlp": model})
    when = _checkpoint_steps(steps, cfg.steps // cfg.eval_every)
    step_s, losses = 0.0, []
    for t in range(1, steps + 1):
        xb, yb = next(stream)
        t0 = time.perf_counter()
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = _loss(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
        step_s += time.perf_counter() - t0
        losses.append(float(loss.detach()))
        if t in when:
            checks.record(t, t)
    return _result(checks, evals=steps, steps=steps, step_s=step_s, train_loss=np.asarray(losses))


def train_baseline(method: str, budget: str, cfg, seed: int, ctx: RunContext) -> dict:
    """Baseline ``method`` (:data:`BASELINES`) for :func:`baseline_generations` ``(method, budget)``
    generations, one fresh mini-batch per generation shared by the whole population, the same number
    of checkpoints as PolyStep's run.  OpenAI-ES's learning rate decays linearly to 0 over the run,
    SPSA's ``A = 0.1 max_iters`` (both set to this run's length)."""
    gens = baseline_generations(method, budget, cfg)
    name, opts = BASELINES[method]
    data, model, stream = _setup(cfg, seed, ctx)
    options = dict(opts)
    if name == "openai_es":
        options["total_steps"] = gens
    elif name == "spsa":
        options["max_iters"] = gens
    opt = PopulationOptimizer(model.parameters(), name,
                              seed=ctx.child_seed("t5-baseline", method, budget, seed) % 2**31, **options)
    checks = _Checkpoints(data, ctx.device, {"mlp": model})
    when = _checkpoint_steps(gens, cfg.steps // cfg.eval_every)
    step_s = 0.0
    for g in range(1, gens + 1):
        xb, yb = next(stream)
        t0 = time.perf_counter()
        opt.step(population_closure(model, _loss, xb, yb, opt.params))
        step_s += time.perf_counter() - t0
        if g in when:
            checks.record(g, opt.forward_evals)
    return _result(checks, evals=opt.forward_evals, generations=gens, budget=budget, step_s=step_s)
