"""Training runs of Table T1 (one cell each): PolyStep, the gradient-free baselines, Adam on the smooth
twin, all with the same data, batches, checkpoints and protocol.

Protocol (the package's; the paper's differs, paper/polystep_reconstruction.md §6 item 6): every
``eval_every`` optimizer steps (or the same number of checkpoints for a baseline) the model's accuracy
on the validation split (carved from the training images) and on the test split is recorded; the
**selected** checkpoint is the first with the best validation accuracy and its test accuracy is the
run's result (``test_acc``).  ``best_test_acc`` -- the maximum over the checkpoints' test accuracies --
is the paper's "best" protocol, computed for the side-by-side only.

Forward evaluations (``evals``) count mini-batch losses: PolyStep ``P * V * K`` per step, a baseline
its population per generation, Adam one forward (plus its backward) per step.

Data (:func:`load_t1_data`): ``mnist`` / ``fashion_mnist`` / ``mnist_fashion`` (20 classes) from the
verified cache (:mod:`repro.tasks.mnist`), optionally restricted to a fixed training subset; ``digits``
stands in for all three at ci scale (scikit-learn's 8x8 digits, offline, upsampled x3 and padded to
28 x 28 = 784 features; for the 20-class task the transposed images are classes 10-19).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import Tensor, nn

from polystep.baselines import PopulationOptimizer
from polystep.evaluation import population_closure
from polystep.fast_eval import fast_population_closure
from polystep.optim import PolyStep
from polystep.schedules import Cosine
from repro.context import RunContext
from repro.tasks.batches import BatchStream
from repro.tasks.digits import DataSplit
from repro.tasks.t1_models import TASKS, build_t1_model

__all__ = ["BASELINES", "PolyStepSettings", "PAPER_POLYSTEP", "load_t1_data", "polystep_evals_per_step",
           "baseline_generations", "train_polystep", "train_baseline", "train_adam_smooth", "train_bptt_snn"]

#: the gradient-free baselines: report name -> (PopulationOptimizer method, paper options,
#: paper generations on the four MNIST-type tasks, on the MoE task) (paper/polystep_reconstruction.md §5.4).
#: CMA-ES is the paper's sep-CMA (pycma with ``CMA_diagonal=True``, used for N >= 1000) in its torch
#: implementation :class:`polystep.baselines.SepCMAES`, which follows pycma's update on the same
#: samples to rounding (tests/polystep/test_sep_cmaes.py) at ~7x less time per generation at
#: N = 118,282 -- what makes matched-evaluation budgets (thousands of generations) affordable.
BASELINES: dict[str, tuple[str, dict[str, Any], int, int]] = {
    "CMA-ES": ("sep_cma_es", {"sigma0": 0.5, "population": 16}, 10_000, 2_000),
    "OpenAI-ES": ("openai_es", {"population": 50, "sigma": 0.02, "lr": 0.01, "lr_end": 0.0,
                                "weight_decay": 0.01}, 10_000, 2_000),
    "SPSA": ("spsa", {"a": 0.1, "c": 0.1}, 50_000, 10_000),
}
#: PolyStep's steps in the paper (30 epochs of 512-image batches): 118 x 30, MoE 235 x 30
PAPER_POLYSTEP_STEPS = {"snn": 3540, "int8": 3540, "argmax": 3540, "staircase": 3540, "moe": 7050}


@dataclass(frozen=True)
class PolyStepSettings:
    """PolyStep's hyperparameters for one task (paper/polystep_reconstruction.md §5.3; all: softmax
    solver, orthoplex ``V = 16``, ``d_p = 8``, ``K = 1``, hybrid subspace).  Radii are absolute
    (the paper's numeric radii are ``x eps``: SNN ``2.0 x 0.5 = 1.0`` and ``1.0 x 0.5 = 0.5``; its
    schedules are not multiplied); ``(start, end)`` pairs are cosine schedules over the run's steps."""

    rank: int
    eps: tuple[float, float]
    step_radius: tuple[float, float]
    probe_radius: tuple[float, float]
    absorb_every: int = 0


PAPER_POLYSTEP: dict[str, PolyStepSettings] = {
    "snn": PolyStepSettings(4, (0.5, 0.5), (1.0, 1.0), (0.5, 0.5), absorb_every=20),
    "int8": PolyStepSettings(8, (5.0, 0.3), (32.0, 8.0), (2.0, 0.5)),
    "argmax": PolyStepSettings(8, (5.0, 0.3), (32.0, 8.0), (2.0, 0.5)),
    "staircase": PolyStepSettings(4, (5.0, 1.0), (64.0, 32.0), (2.0, 1.0)),
    "moe": PolyStepSettings(4, (0.5, 0.5), (12.0, 4.0), (0.5, 0.5), absorb_every=20),
}


# ------------------------------------------------------------------------------------------ data

def _digits784(seed: int) -> DataSplit:
    from repro.tasks.digits import load_digits_split

    d = load_digits_split(seed=seed, standardise=False)

    def up(x: Tensor) -> Tensor:
        img = x.reshape(-1, 8, 8)
        img = img.repeat_interleave(3, dim=1).repeat_interleave(3, dim=2)  # 24 x 24
        img = Fn.pad(img, (2, 2, 2, 2))
        return ((img - 0.1307) / 0.3081).reshape(-1, 784)

    return replace(d, x_train=up(d.x_train), x_val=up(d.x_val), x_test=up(d.x_test), n_features=784,
                   name="digits784")


def _with_transposed(d: DataSplit) -> DataSplit:
    """Twenty classes: the images (0-9) and their transposes (10-19)."""
    def t(x: Tensor) -> Tensor:
        return x.reshape(-1, 28, 28).transpose(1, 2).reshape(-1, 784)

    def both(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return torch.cat([x, t(x)]), torch.cat([y, y + 10])

    (xtr, ytr), (xv, yv), (xte, yte) = (both(d.x_train, d.y_train), both(d.x_val, d.y_val),
                                        both(d.x_test, d.y_test))
    return replace(d, x_train=xtr, y_train=ytr, x_val=xv, y_val=yv, x_test=xte, y_test=yte, n_classes=20,
                   name=d.name + "+transposed", indices=None)


def load_t1_data(task: str, dataset: str, *, train_subset: int | None, subset_seed: int) -> DataSplit:
    """The data of Table T1 row ``task``: ``dataset`` ``"real"`` (the task's data set,
    :data:`repro.tasks.t1_models.TASKS`) or ``"digits"`` (the offline stand-in, module docstring);
    ``train_subset`` training images chosen by a permutation seeded with ``subset_seed`` (the same for
    every method and seed), or all of them.  Memoised per process (a worker trains many cells on the
    same split; loading, verifying and splitting costs 1-3 s); treat the tensors as read-only."""
    return _load_t1_data(task, dataset, train_subset, subset_seed)


@functools.lru_cache(maxsize=4)
def _load_t1_data(task: str, dataset: str, train_subset: int | None, subset_seed: int) -> DataSplit:
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if dataset == "digits":
        d = _digits784(seed=0)
        if TASKS[task].n_classes == 20:
            d = _with_transposed(d)
    elif dataset == "real":
        from repro.tasks import mnist

        loader = {"mnist": mnist.load_mnist_split, "fashion_mnist": mnist.load_fashion_mnist_split,
                  "mnist_fashion": mnist.load_mnist_fashion_split}[TASKS[task].dataset]
        d = loader(seed=0)
    else:
        raise ValueError(f"dataset must be 'real' or 'digits', got {dataset!r}")
    if train_subset is not None:
        n = d.x_train.shape[0]
        if isinstance(train_subset, bool) or not isinstance(train_subset, int) or not 1 <= train_subset <= n:
            raise ValueError(f"train_subset must be an integer in [1, {n}] or None, got {train_subset!r}")
        gen = torch.Generator().manual_seed(subset_seed)
        keep = torch.randperm(n, generator=gen)[:train_subset].sort().values
        d = replace(d, x_train=d.x_train[keep], y_train=d.y_train[keep], indices=None)
    return d


# ------------------------------------------------------------------------------------------ helpers

def _accuracy(model: nn.Module, x: Tensor, y: Tensor, chunk: int = 2048) -> float:
    with torch.no_grad():
        correct = sum(int((model(x[i:i + chunk]).argmax(dim=-1) == y[i:i + chunk]).sum())
                      for i in range(0, x.shape[0], chunk))
    return correct / x.shape[0]


class _Checkpoints:
    """Validation and test accuracy of one or more models at checkpoints; keeps the state of the
    (first) best validation accuracy per model."""

    def __init__(self, data: DataSplit, device, models: dict[str, nn.Module]):
        self.x_val, self.y_val = data.x_val.to(device), data.y_val.to(device)
        self.x_test, self.y_test = data.x_test.to(device), data.y_test.to(device)
        self.models = models
        self.rows: dict[str, list] = {"step": [], "evals": []}
        for name in models:
            self.rows[f"{name}_val_acc"], self.rows[f"{name}_test_acc"] = [], []

    def record(self, step: int, evals: int) -> None:
        self.rows["step"].append(step)
        self.rows["evals"].append(evals)
        for name, model in self.models.items():
            model.eval()
            self.rows[f"{name}_val_acc"].append(_accuracy(model, self.x_val, self.y_val))
            self.rows[f"{name}_test_acc"].append(_accuracy(model, self.x_test, self.y_test))

    def summary(self, name: str) -> dict:
        val = np.asarray(self.rows[f"{name}_val_acc"])
        test = np.asarray(self.rows[f"{name}_test_acc"])
        sel = int(np.argmax(val))
        return {"test_acc": float(test[sel]), "val_acc": float(val[sel]), "selected_step": self.rows["step"][sel],
                "selected_evals": self.rows["evals"][sel], "best_test_acc": float(test.max()),
                "final_test_acc": float(test[-1])}

    def curve(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.rows.items()}


def _checkpoint_steps(total: int, count: int) -> set[int]:
    """``count`` checkpoints spread evenly over ``1..total`` (the last one included)."""
    count = max(1, min(count, total))
    return {math.ceil(total * (i + 1) / count) for i in range(count)}


def _loss(out: Tensor, y: Tensor) -> Tensor:
    return Fn.cross_entropy(out, y)


def _setup(task: str, cfg, seed: int, ctx: RunContext, *, hard: bool = True, surrogate: float | None = None):
    data = load_t1_data(task, cfg.dataset, train_subset=cfg.train_subset, subset_seed=ctx.child_seed("t1-subset"))
    dev = ctx.device
    model = build_t1_model(task, ctx.torch_generator("t1-init", task, seed), hard=hard, hidden=cfg.hidden,
                           timesteps=cfg.timesteps, surrogate=surrogate, device=dev)
    stream = BatchStream(data.x_train.to(dev), data.y_train.to(dev), cfg.batch_size,
                         ctx.torch_generator("t1-batches", task, seed))
    return data, model, stream


def _polystep(model: nn.Module, task: str, cfg, steps: int, seed: int, basis: str | None = None) -> PolyStep:
    s = PAPER_POLYSTEP[task]

    def sched(pair: tuple[float, float]):
        return pair[0] if pair[0] == pair[1] else Cosine(start=pair[0], end=pair[1], steps=steps)

    return PolyStep(model.parameters(), subspace="hybrid", rank=s.rank,
                    max_subspace_dim=cfg.max_subspace_dim.get(task) if cfg.max_subspace_dim else None,
                    basis=basis or cfg.basis, particle_dim=8, polytope="orthoplex", num_probes=1,
                    eps=sched(s.eps), step_radius=sched(s.step_radius), probe_radius=sched(s.probe_radius),
                    radius_mode="absolute", solver="softmax", absorb_every=s.absorb_every,
                    chunk_size=cfg.chunk_size, seed=seed)


def polystep_steps(task: str, cfg) -> int:
    """PolyStep's (and Adam's) optimizer steps for ``task`` at this configuration."""
    return cfg.steps[task]


def polystep_evals_per_step(task: str, cfg) -> int:
    """``P * V * K`` of PolyStep's configuration for ``task`` (the same ``D`` for every basis; counted
    on the Kronecker basis, which costs nothing to build)."""
    model = build_t1_model(task, torch.Generator().manual_seed(0), hidden=cfg.hidden, timesteps=cfg.timesteps)
    return _polystep(model, task, cfg, polystep_steps(task, cfg), seed=0, basis="kronecker").evals_per_step


def baseline_generations(task: str, method: str, budget: str, cfg) -> int:
    """Generations of baseline ``method`` for ``task`` under ``budget``:

    * ``"paper"`` -- the paper's ratio of the baseline's generations to PolyStep's steps
      (:data:`BASELINES`, :data:`PAPER_POLYSTEP_STEPS`) applied to this configuration's PolyStep
      steps: ``round(steps * G_paper / S_paper)`` (at paper scale the paper's own numbers);
    * ``"matched"`` -- as many forward evaluations as PolyStep: ``floor(steps * P V K / population)``.
    """
    if method not in BASELINES:
        raise ValueError(f"method must be one of {list(BASELINES)}, got {method!r}")
    _, opts, g_four, g_moe = BASELINES[method]
    steps = polystep_steps(task, cfg)
    if budget == "paper":
        g_paper = g_moe if task == "moe" else g_four
        return max(1, round(steps * g_paper / PAPER_POLYSTEP_STEPS[task]))
    if budget == "matched":
        population = opts.get("population", 2)
        return max(1, steps * polystep_evals_per_step(task, cfg) // population)
    raise ValueError(f"budget must be 'paper' or 'matched', got {budget!r}")


# ------------------------------------------------------------------------------------------ cells

def train_polystep(task: str, cfg, seed: int, ctx: RunContext) -> dict:
    """PolyStep on the hard network of ``task`` (forward passes only; the fast population closure).
    Returns the checkpoint curve (``step``, ``evals``, ``hard_val_acc``, ``hard_test_acc``), the
    protocol numbers of :class:`_Checkpoints` and the wall time of the steps."""
    data, model, stream = _setup(task, cfg, seed, ctx)
    steps = polystep_steps(task, cfg)
    opt = _polystep(model, task, cfg, steps, seed=ctx.child_seed("t1-polystep", task, seed) % 2**31)
    checks = _Checkpoints(data, ctx.device, {"hard": model})
    when = _checkpoint_steps(steps, steps // cfg.eval_every)
    evals, step_s, losses = 0, 0.0, []
    for t in range(1, steps + 1):
        xb, yb = next(stream)
        t0 = time.perf_counter()
        losses.append(float(opt.step(fast_population_closure(model, _loss, xb, yb, opt.params))))
        step_s += time.perf_counter() - t0
        evals += opt.last_info.forward_evals
        if t in when:
            checks.record(t, evals)
    return {"curve": checks.curve(), **checks.summary("hard"), "evals": evals, "steps": steps,
            "evals_per_step": opt.evals_per_step, "step_s": step_s, "train_loss": np.asarray(losses)}


def train_baseline(task: str, method: str, budget: str, cfg, seed: int, ctx: RunContext) -> dict:
    """Gradient-free baseline ``method`` (:data:`BASELINES`, the paper's settings) on the hard network
    of ``task`` for :func:`baseline_generations` ``(task, method, budget)`` generations, one fresh
    mini-batch per generation shared by the whole population; the same number of checkpoints as
    PolyStep's run; a run that produces a non-finite loss stops there (``diverged_at``, see
    :func:`_finite_or_stop`).  OpenAI-ES's learning rate decays linearly to 0 over the run, SPSA's gain
    constant is ``A = 0.1 max_iters`` (both set to this run's length)."""
    name, opts, _, _ = BASELINES[method]
    gens = baseline_generations(task, method, budget, cfg)
    data, model, stream = _setup(task, cfg, seed, ctx)
    options = dict(opts)
    if name == "openai_es":
        options["total_steps"] = gens
    elif name == "spsa":
        options["max_iters"] = gens
    opt = PopulationOptimizer(model.parameters(), name, seed=ctx.child_seed("t1-baseline", task, method, budget,
                                                                            seed) % 2**31, **options)
    checks = _Checkpoints(data, ctx.device, {"hard": model})
    when = _checkpoint_steps(gens, polystep_steps(task, cfg) // cfg.eval_every)
    step_s, diverged_at = 0.0, 0
    for g in range(1, gens + 1):
        xb, yb = next(stream)
        t0 = time.perf_counter()
        try:
            opt.step(_finite_or_stop(population_closure(model, _loss, xb, yb, opt.params)))
        except _NonFiniteLoss:
            diverged_at = g
            break
        finally:
            step_s += time.perf_counter() - t0
        if g in when:
            checks.record(g, opt.forward_evals)
    if diverged_at and (not checks.rows["step"] or checks.rows["step"][-1] != diverged_at - 1):
        checks.record(diverged_at - 1, opt.forward_evals)  # the last point reached (the initial one if g = 1)
    return {"curve": checks.curve(), **checks.summary("hard"), "evals": opt.forward_evals, "generations": gens,
            "budget": budget, "step_s": step_s, "diverged_at": diverged_at}


class _NonFiniteLoss(Exception):
    """A baseline's population produced a non-finite loss: the run has diverged."""


def _finite_or_stop(closure):
    """``closure`` that raises :class:`_NonFiniteLoss` instead of returning non-finite losses.

    The baselines have no NaN policy (``polystep.baselines`` rejects non-finite losses); a run whose
    parameters have blown up (SPSA's gains on the MoE, for one) is stopped at that generation, keeps
    the checkpoints it reached plus one at its last finite point, and reports ``diverged_at`` (the
    failing generation; 0 = never), its remaining budget unspent."""
    def guarded(thetas):
        losses = closure(thetas)
        if not bool(torch.isfinite(losses).all()):
            raise _NonFiniteLoss
        return losses
    return guarded


def _train_adam(task: str, cfg, seed: int, ctx: RunContext, *, variant: str) -> dict:
    """Adam (lr ``cfg.adam_lr``, cosine-annealed to 0) with backpropagation, the same initial
    parameters, batches, steps and checkpoints as PolyStep's run on ``task``.

    ``variant="smooth"``: on the smooth twin; at every checkpoint the smooth model and the hard model
    with the same parameters are evaluated (``smooth_*`` / ``hard_*``), each selected on its own
    validation accuracy; the top-level numbers are the smooth model's (the paper's column).
    ``variant="surrogate"`` (SNN): on the hard network with the fast-sigmoid surrogate gradient of
    slope ``cfg.bptt_surrogate_slope`` (backpropagation through all time steps); its forward pass is
    the hard network's, so the numbers are the hard model's.
    """
    if variant == "smooth":
        data, model, stream = _setup(task, cfg, seed, ctx, hard=False)
        hard = build_t1_model(task, torch.Generator().manual_seed(0), hard=True, hidden=cfg.hidden,
                              timesteps=cfg.timesteps, device=ctx.device)
        models = {"smooth": model, "hard": hard}
    elif variant == "surrogate":
        data, model, stream = _setup(task, cfg, seed, ctx, surrogate=cfg.bptt_surrogate_slope)
        hard, models = None, {"hard": model}
    else:
        raise ValueError(f"variant must be 'smooth' or 'surrogate', got {variant!r}")
    steps = polystep_steps(task, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.adam_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    checks = _Checkpoints(data, ctx.device, models)
    when = _checkpoint_steps(steps, steps // cfg.eval_every)
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
            if hard is not None:
                hard.load_state_dict(model.state_dict())
            checks.record(t, t)
    top = checks.summary("smooth" if variant == "smooth" else "hard")
    out = {"curve": checks.curve(), **top, "evals": steps, "steps": steps, "step_s": step_s,
           "train_loss": np.asarray(losses)}
    if variant == "smooth":
        out.update(smooth=top, hard=checks.summary("hard"))
    return out


def train_adam_smooth(task: str, cfg, seed: int, ctx: RunContext) -> dict:
    """Adam on the smooth twin of ``task``'s network (:func:`_train_adam`, ``variant="smooth"``): the
    paper's "Adam on the smooth surrogate model" column (Table T1)."""
    return _train_adam(task, cfg, seed, ctx, variant="smooth")


def train_bptt_snn(cfg, seed: int, ctx: RunContext) -> dict:
    """BPTT with a fast-sigmoid surrogate gradient on the hard-LIF SNN (:func:`_train_adam`,
    ``variant="surrogate"``): the abstract's "surrogate-gradient Adam ceiling" (97.8 % at paper scale)."""
    return _train_adam("snn", cfg, seed, ctx, variant="surrogate")
