"""Training runs of Table T6 (ETTh1 forecasting, PolyStep paper §5.6), one cell each: PolyStep,
Adam, OpenAI-ES, SPSA and sep-CMA-ES on the LSTM forecaster of :mod:`repro.tasks.lstm_population`,
with the same data, initial parameters, batches and checkpoints.

Task (:mod:`repro.tasks.etth1`): the ``OT`` column, z-scored with the training rows' statistics,
96 -> 96 windows of stride 1 on the Informer split (8,449 / 2,785 / 2,785 windows), batches of 64
windows reshuffled every epoch; the loss is the MSE over the 96 normalised targets.

PolyStep (paper/polystep_reconstruction.md §5.3, row "ETTh1"): softmax solver, orthoplex, ``d_p = 8``
(``V = 16``), ``K = 1``, cosine schedules over the run's OT steps -- ``eps`` 10 -> 0.1, step radius
5 -> 1, probe radius 10 -> 2 (absolute radii, §6 item 14) -- hybrid subspace of rank 8 at paper
scale, **amortized OT** (``A = 3``: an OT step on every third call, the two calls between coast along
an EMA, ``alpha = 0.7``, of the OT displacements) and **momentum** ``beta`` 0.5 -> 0.95 (§2.9):

* OT call ``t`` (``t``-th OT step): ``d = theta_bary - theta`` (PolyStep's barycentric move),
  ``d_EMA <- alpha d_EMA + (1 - alpha) d`` (first: ``d``),
  ``v <- beta_t v + d``, ``theta <- theta + v`` with
  ``beta_t = beta_0 + min(1, t / (T_max - 1)) (beta_1 - beta_0)``, ``T_max = 50`` (the original
  default ``max_iterations``, §6 item 13: ``beta`` reaches 0.95 after 49 OT steps);
* coasting call ``c`` (``c mod A != 0``): ``theta <- theta + (1 - (c mod A) / A) d_EMA``, no loss
  evaluated.

:class:`polystep.optim.PolyStep` has neither option; :class:`PaperPolyStep` adds both *outside*
the optimizer, in parameter space: it writes the parameters after ``step`` and PolyStep, whose
contract respects changes made outside it, rebases (``theta_0 <- theta``, ``z <- 0``, the same
subspace).  Every displacement ``d`` is ``P dz`` for the optimizer's fixed subspace ``P`` (no absorb,
no redraw), so momentum and coasting on ``theta`` are exactly the original's on the particles ``z``
mapped through ``P`` (linear), up to floating-point rounding.  Evaluations: ``P V K`` per OT step, none
when coasting: at paper scale 3,990 calls = 1,330 OT steps x 9,424 = 1.253e7 (§2.13).

Baselines (§5.4, "ETTh1" column): sep-CMA-ES (popsize 16, ``sigma0 = 0.5``), OpenAI-ES (antithetic,
50, ``sigma = 0.02``, lr 0.01 -> 0, weight decay 0.01), SPSA (``a = c = 0.1``, ``A = 0.1 max_iters``),
with the paper's ETTh1 budgets 2,000 / 2,000 / 10,000 generations against PolyStep's 3,990 calls,
scaled in that ratio to a run's calls; one fresh mini-batch per generation.  Adam: lr 1e-3
cosine-annealed to 0, backpropagation through ``torch.nn.LSTM``, 50 epochs at paper scale (the other
methods' 30), i.e. ``5/3`` of PolyStep's calls.

Protocol, per run: ``checkpoints`` evaluations ("epochs") spread evenly over the run, each recording
the validation and test MSE and MAE (all windows).  Reported side by side:

* ``test_mse`` -- **selected**: the test MSE of the first checkpoint with the lowest validation MSE;
* ``final_test_mse`` -- **final**: the selected checkpoint's parameters reloaded at the end and
  evaluated again (the paper's "final"; equal to ``test_mse`` up to nondeterminism);
* ``last_test_mse`` -- **last epoch**: the last checkpoint's;
* ``best_test_mse`` -- **best test epoch**: the minimum over checkpoints of the test MSE, the
  paper's headline protocol (paper/polystep_reconstruction.md §6 item 6), which selects on the test set.

Population evaluation: :func:`repro.tasks.lstm_population.lstm_population_closure` with the
configuration's ``population_eval`` mode (``"loop"`` on CPU, where ``torch.nn.LSTM``'s oneDNN
kernel per candidate beats the batched recurrence; ``"batched"`` elsewhere -- bench measurements in
:mod:`repro.experiments.t6_etth1`); both share the LSTM prefix across the head's candidates.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from polystep.baselines import PopulationOptimizer
from polystep.optim import PolyStep
from polystep.schedules import Cosine
from repro.context import RunContext
from repro.tasks.batches import BatchStream
from repro.tasks.etth1 import ForecastData, load_forecast_data
from repro.tasks.lstm_population import build_forecaster, lstm_population_closure
from repro.tasks.t1_train import BASELINES as T1_BASELINES

__all__ = ["BASELINES", "BASELINE_NAMES", "METHODS", "PAPER_CALLS", "PAPER_GENERATIONS", "PaperPolyStep",
           "baseline_generations", "adam_steps", "evaluate", "load_t6_data", "polystep_evals_per_step",
           "build_polystep", "train_polystep", "train_adam", "train_baseline"]

#: PolyStep's optimizer calls in the paper: 30 epochs of ceil(8449 / 64) = 133 batches
PAPER_CALLS = 3990
#: the baselines' generations on ETTh1 in the paper (paper/polystep_reconstruction.md §5.4)
PAPER_GENERATIONS = {"CMA-ES": 2_000, "OpenAI-ES": 2_000, "SPSA": 10_000}
#: report name -> (PopulationOptimizer method, options): Table T1's settings (§5.4, the same for ETTh1)
BASELINES: dict[str, tuple[str, dict[str, Any]]] = {m: (T1_BASELINES[m][0], dict(T1_BASELINES[m][1]))
                                                   for m in PAPER_GENERATIONS}
BASELINE_NAMES = tuple(BASELINES)
METHODS = ("PolyStep", "Adam") + BASELINE_NAMES


# ------------------------------------------------------------------------------------------ data, eval

def load_t6_data(dataset: str, seq_len: int, pred_len: int) -> ForecastData:
    """:func:`repro.tasks.etth1.load_forecast_data` (``"etth1"``: the verified cache, never fetched
    here -- ``polystep-repro data fetch etth1`` first; ``"synthetic"``: offline), memoised per process;
    treat the tensors as read-only."""
    return _load(dataset, seq_len, pred_len)


@functools.lru_cache(maxsize=2)
def _load(dataset: str, seq_len: int, pred_len: int) -> ForecastData:
    return load_forecast_data(dataset, seq_len=seq_len, pred_len=pred_len, fetch_missing=False)


def evaluate(model: nn.Module, x: Tensor, y: Tensor, chunk: int = 1024) -> tuple[float, float]:
    """``(MSE, MAE)`` of ``model`` over all windows ``(x, y)`` (means over windows and horizons)."""
    se = ae = 0.0
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            err = model(x[i:i + chunk]) - y[i:i + chunk]
            se += float(err.double().square().sum())
            ae += float(err.double().abs().sum())
    n = y.numel()
    return se / n, ae / n


class _Checkpoints:
    """Validation / test MSE and MAE at checkpoints; keeps the state of the first lowest validation MSE."""

    def __init__(self, data: ForecastData, device, model: nn.Module):
        self.data = {p: tuple(t.to(device) for t in data.split(p)) for p in ("val", "test")}
        self.model = model
        self.rows: dict[str, list] = {k: [] for k in ("step", "evals", "val_mse", "val_mae", "test_mse", "test_mae")}
        self.best_state: dict[str, Tensor] | None = None

    def record(self, step: int, evals: int) -> None:
        self.model.eval()
        (vm, va), (tm, ta) = (evaluate(self.model, *self.data[p]) for p in ("val", "test"))
        if not self.rows["val_mse"] or vm < min(self.rows["val_mse"]):
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        for k, v in zip(self.rows, (step, evals, vm, va, tm, ta)):
            self.rows[k].append(v)

    def summary(self) -> dict:
        r = {k: np.asarray(v) for k, v in self.rows.items()}
        sel = int(np.argmin(r["val_mse"]))
        best = int(np.argmin(r["test_mse"]))
        self.model.load_state_dict(self.best_state)       # "final": the selected state, reloaded
        self.model.eval()
        final_mse, final_mae = evaluate(self.model, *self.data["test"])
        return {"test_mse": float(r["test_mse"][sel]), "test_mae": float(r["test_mae"][sel]),
                "val_mse": float(r["val_mse"][sel]), "selected_step": int(r["step"][sel]),
                "final_test_mse": final_mse, "final_test_mae": final_mae,
                "last_test_mse": float(r["test_mse"][-1]), "last_test_mae": float(r["test_mae"][-1]),
                "best_test_mse": float(r["test_mse"][best]), "best_test_mae": float(r["test_mae"][best]),
                "best_test_step": int(r["step"][best])}

    def curve(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self.rows.items()}


def _checkpoint_steps(total: int, count: int) -> list[int]:
    """``count`` checkpoints spread evenly over ``1..total`` (the last one included)."""
    count = max(1, min(count, total))
    return sorted({math.ceil(total * (i + 1) / count) for i in range(count)})


def _setup(cfg, seed: int, ctx: RunContext):
    data = load_t6_data(cfg.dataset, cfg.seq_len, cfg.pred_len)
    dev = ctx.device
    model = build_forecaster(ctx.torch_generator("t6-init", seed), hidden=cfg.hidden, pred_len=cfg.pred_len,
                             device=dev)
    stream = BatchStream(data.x_train.to(dev), data.y_train.to(dev), cfg.batch_size,
                         ctx.torch_generator("t6-batches", seed, device="cpu"))
    return data, model, stream


# ------------------------------------------------------------------------------------------ PolyStep

class PaperPolyStep:
    """PolyStep with the paper's amortized OT and momentum, added outside the optimizer (module
    docstring).  ``step(closure_fn)`` makes one *call*: an OT step (``closure_fn()`` builds the closure
    on this call's batch; returns the mean probe loss) or a coasting step (returns ``None``; no loss
    evaluated, ``closure_fn`` not called).

    Args:
        opt: the :class:`polystep.optim.PolyStep` (``absorb_every = 0``: the subspace must stay fixed).
        amortize: ``A`` (1: every call is an OT step).
        ema: ``alpha`` of the displacement EMA.
        momentum: ``(beta_0, beta_1)`` or ``None`` (no momentum).
        momentum_steps: ``T_max`` of the ``beta`` ramp.
    """

    def __init__(self, opt: PolyStep, *, amortize: int = 1, ema: float = 0.7,
                 momentum: tuple[float, float] | None = None, momentum_steps: int = 50):
        if opt.param_groups[0]["absorb_every"] or opt.param_groups[0]["redraw_on_absorb"]:
            raise ValueError("momentum / coasting in parameter space need a fixed subspace (absorb_every=0)")
        if int(amortize) < 1:
            raise ValueError(f"amortize must be >= 1, got {amortize!r}")
        self.opt, self.amortize, self.ema = opt, int(amortize), float(ema)
        self.momentum, self.momentum_steps = momentum, int(momentum_steps)
        self.params = [p for p in opt.params if p.requires_grad]
        self.calls = 0           # optimizer calls so far (OT + coasting)
        self.ot_steps = 0
        self.d_ema: list[Tensor] | None = None
        self.velocity: list[Tensor] | None = None
        self.last_evals = 0

    def beta(self, t: int) -> float:
        """``beta_t`` of the momentum ramp (0 without momentum)."""
        if self.momentum is None:
            return 0.0
        b0, b1 = self.momentum
        return b0 + min(1.0, t / max(1, self.momentum_steps - 1)) * (b1 - b0)

    @torch.no_grad()
    def step(self, closure_fn) -> float | None:
        c = self.calls
        self.calls += 1
        phase = c % self.amortize
        if phase and self.d_ema is not None:                 # coasting
            for p, d in zip(self.params, self.d_ema):
                p.add_(d, alpha=1.0 - phase / self.amortize)
            self.last_evals = 0
            return None
        before = [p.detach().clone() for p in self.params]
        loss = float(self.opt.step(closure_fn()))
        self.last_evals = self.opt.last_info.forward_evals
        d = [p - b for p, b in zip(self.params, before)]
        self.d_ema = d if self.d_ema is None else [self.ema * e + (1 - self.ema) * di for e, di in zip(self.d_ema, d)]
        if self.momentum is not None:
            beta = self.beta(self.ot_steps)
            self.velocity = d if self.velocity is None else [beta * v + di for v, di in zip(self.velocity, d)]
            for p, b, v in zip(self.params, before, self.velocity):
                p.copy_(b + v)
        self.ot_steps += 1
        return loss


def ot_steps(cfg) -> int:
    """PolyStep's OT steps: calls ``0, A, 2A, ...`` of ``cfg.steps``."""
    return -(-cfg.steps // cfg.amortize)


def build_polystep(model: nn.Module, cfg, seed: int) -> PolyStep:
    """The configuration's :class:`polystep.optim.PolyStep` (schedules over :func:`ot_steps`)."""
    n = ot_steps(cfg)

    def sched(pair):
        return pair[0] if pair[0] == pair[1] else Cosine(start=pair[0], end=pair[1], steps=n)

    kw: dict[str, Any] = {"subspace": cfg.subspace}
    if cfg.subspace == "hybrid":
        kw.update(rank=cfg.rank, max_subspace_dim=cfg.max_subspace_dim)
    elif cfg.subspace == "random":
        kw.update(subspace_dim=cfg.subspace_dim)
    return PolyStep(model.parameters(), **kw, basis=cfg.basis, particle_dim=8, polytope="orthoplex",
                    num_probes=1, eps=sched(cfg.eps), step_radius=sched(cfg.step_radius),
                    probe_radius=sched(cfg.probe_radius), radius_mode="absolute", solver="softmax",
                    absorb_every=0, chunk_size=cfg.chunk_size, seed=seed)


def polystep_evals_per_step(cfg) -> int:
    """``P V K`` of the configuration's PolyStep (per OT step; a hybrid subspace is counted on the
    Kronecker basis, which has the same ``D`` and costs nothing to build)."""
    model = build_forecaster(torch.Generator().manual_seed(0), hidden=cfg.hidden, pred_len=cfg.pred_len)
    if cfg.subspace == "hybrid":
        cfg = replace(cfg, basis="kronecker")
    return build_polystep(model, cfg, seed=0).evals_per_step


def train_polystep(cfg, seed: int, ctx: RunContext) -> dict:
    """PolyStep (:class:`PaperPolyStep`) for ``cfg.steps`` calls; the checkpoint curve, the protocol
    numbers (module docstring), forward evaluations and the wall time of the steps."""
    data, model, stream = _setup(cfg, seed, ctx)
    opt = build_polystep(model, cfg, seed=ctx.child_seed("t6-polystep", seed) % 2**31)
    loop = PaperPolyStep(opt, amortize=cfg.amortize, ema=cfg.amortize_ema,
                         momentum=cfg.momentum if cfg.momentum else None)
    checks = _Checkpoints(data, ctx.device, model)
    when = set(_checkpoint_steps(cfg.steps, cfg.checkpoints))
    evals, step_s, losses = 0, 0.0, []
    for t in range(1, cfg.steps + 1):
        xb, yb = next(stream)
        t0 = time.perf_counter()
        loss = loop.step(lambda: lstm_population_closure(model, xb, yb, opt.params, mode=cfg.population_eval))
        step_s += time.perf_counter() - t0
        evals += loop.last_evals
        if loss is not None:
            losses.append(loss)
        if t in when:
            checks.record(t, evals)
    return {"curve": checks.curve(), **checks.summary(), "evals": evals, "steps": cfg.steps,
            "ot_steps": loop.ot_steps, "evals_per_step": opt.evals_per_step, "step_s": step_s,
            "train_loss": np.asarray(losses)}


# ------------------------------------------------------------------------------------------ Adam

def adam_steps(cfg) -> int:
    """Adam's steps: ``cfg.adam_epochs / cfg.epochs`` of PolyStep's calls (50 / 30 at paper scale)."""
    return max(1, round(cfg.steps * cfg.adam_epochs / cfg.epochs))


def train_adam(cfg, seed: int, ctx: RunContext) -> dict:
    """Adam (lr ``cfg.adam_lr`` cosine-annealed to 0) with backpropagation, the same initial parameters
    and batch stream as PolyStep, :func:`adam_steps` steps, ``cfg.adam_checkpoints`` checkpoints."""
    data, model, stream = _setup(cfg, seed, ctx)
    steps = adam_steps(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.adam_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    checks = _Checkpoints(data, ctx.device, model)
    when = set(_checkpoint_steps(steps, cfg.adam_checkpoints))
    step_s, losses = 0.0, []
    for t in range(1, steps + 1):
        xb, yb = next(stream)
        t0 = time.perf_counter()
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
        step_s += time.perf_counter() - t0
        losses.append(float(loss.detach()))
        if t in when:
            checks.record(t, t)
    return {"curve": checks.curve(), **checks.summary(), "evals": steps, "steps": steps, "step_s": step_s,
            "train_loss": np.asarray(losses)}


# ------------------------------------------------------------------------------------------ baselines

def baseline_generations(method: str, cfg) -> int:
    """Generations of ``method``: the paper's ratio to PolyStep's calls,
    ``round(cfg.steps * G_paper / 3990)`` (at paper scale the paper's own numbers)."""
    if method not in BASELINES:
        raise ValueError(f"method must be one of {list(BASELINES)}, got {method!r}")
    return max(1, round(cfg.steps * PAPER_GENERATIONS[method] / PAPER_CALLS))


def train_baseline(method: str, cfg, seed: int, ctx: RunContext) -> dict:
    """Gradient-free baseline ``method`` (:data:`BASELINES`) for :func:`baseline_generations`
    generations, one fresh mini-batch per generation shared by the population, the population
    evaluated by the LSTM population closure; ``cfg.checkpoints`` checkpoints."""
    name, opts = BASELINES[method]
    gens = baseline_generations(method, cfg)
    data, model, stream = _setup(cfg, seed, ctx)
    options = dict(opts)
    if name == "openai_es":
        options["total_steps"] = gens
    elif name == "spsa":
        options["max_iters"] = gens
    opt = PopulationOptimizer(model.parameters(), name, seed=ctx.child_seed("t6-baseline", method, seed) % 2**31,
                              **options)
    checks = _Checkpoints(data, ctx.device, model)
    when = set(_checkpoint_steps(gens, cfg.checkpoints))
    step_s = 0.0
    for g in range(1, gens + 1):
        xb, yb = next(stream)
        t0 = time.perf_counter()
        opt.step(lstm_population_closure(model, xb, yb, opt.params, mode=cfg.population_eval))
        step_s += time.perf_counter() - t0
        if g in when:
            checks.record(g, opt.forward_evals)
    return {"curve": checks.curve(), **checks.summary(), "evals": opt.forward_evals, "generations": gens,
            "step_s": step_s}
