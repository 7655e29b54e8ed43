r"""Ghosts of softmax, Figure 10 and Table 1: one LR spike, three architectures, four methods.

Protocol (paper/ghosts_notes.md §4.5, the authors' ``experiments/archgrid``)
----------------------------------------------------------------------------
* Data: scikit-learn digits in file order, pixels / 16 (the authors' preprocessing), test = the
  first 20% of the rows (359), train = the other 1438; **full-batch** training on the whole train
  split at every step, 200 steps.  The split is fixed; a seed changes only the initialisation.
* Architectures (:mod:`repro.tasks.zoo`): ``mlp_ln`` is the authors' MLP+LN; ``cnn_bn`` is their
  CNN+BN except that the zoo's convolutions are unpadded (the released ones use padding 1: length
  64 -> 62 -> 60 instead of 64 -> 64 -> 64 before the global average pool).  ``transformer`` is the
  zoo's real TinyTransformer (8 row tokens + CLS, 2 pre-LN blocks, 4 heads).  **The authors'
  archgrid "Transformer" embeds the 64 pixels as a single token (sequence length 1), so its
  attention softmax is identically 1 and attention is a no-op** (paper/ghosts_notes.md §5 item 13); its
  Table 1 numbers are those of a one-block pre-LN MLP.  Our transformer rows are therefore
  compared with the paper's only qualitatively.
* Test accuracy and BatchNorm: the released archgrid never calls ``model.eval()`` outside the JVP,
  so its test accuracy of CNN+BN normalises by the *test batch's own* statistics (and those test
  forwards also feed the running statistics that its eval-mode JVP then uses).  We record both
  ``test_acc_bs`` (BatchNorm on the test batch's statistics, running statistics untouched: the
  authors' convention, used for the claims, Table 1 and the solid curves) and ``test_acc`` (eval
  mode with the running statistics of the training forwards only: dashed CNN+BN curves and the
  "eval mode" numbers of the table).  For the models without BatchNorm the two are identical.
  Our ``rho_a`` JVPs use running statistics from training forwards only.
* Optimizer: ``torch.optim.Adam`` (beta = (0.9, 0.999), eps = 1e-8), base LR 0.015.
* Spike: the LR is multiplied by ``spike`` in {10, 100, 1000, 10000} **for step 50 only** (a
  single-step spike, as in archgrid; Fig 6 holds its spike instead).
* Methods:
  - ``plain``: Adam;
  - ``clip``: ``clip_grad_norm_(max_norm=1)`` then Adam (a weak baseline: Adam's step is nearly
    invariant to the gradient's scale, paper/ghosts_notes.md §5 item 13);
  - ``ctrl_grad``: the authors' released controller, :class:`~ghosts.radius_controller.RadiusController`
    mode ``"gradient_direction"``: ``rho_a`` by JVP along ``g/||g||`` on the train split (eval mode),
    ``tau_raw = lr ||g||``, Adam's LR multiplied by ``min(1, rho_a/tau_raw)`` for the step.  It does
    **not** bound Adam's realized step (Adam's step is not ``lr g``).  **The paper's Table 1 numbers
    come from this controller**, so the claims ``table1_*_ctrl`` are compared with it;
  - ``ctrl_exact``: the exact controller of Proposition 5.2 (Section 5.3), mode ``"actual_step"``:
    ``rho_a`` along Adam's actual step, realized step ``min(||p||, rho_a)``, so ``r <= 1`` always.
    The authors ran it only in a notebook (Transformer and MLP+LN, 10000x); it is reported beside.
* Logged at every step ``t`` (before its update): the full-batch training loss (train mode) and the
  test accuracy (eval mode); for the update: realized step length ``tau``, the controller's
  ``rho_a`` and scale.  At the spike step ``rho_a`` is also computed along *every* method's
  realized step, giving the realized ``r = tau/rho_a`` of the spiked update.
* Final test accuracy: after step 199 (both conventions above).  **Divergent**: final loss (full-batch training loss at the
  last step) ``> DIVERGED_LOSS`` = 10, the Table 1 caption's definition, applied explicitly and
  reported per cell (the paper states it but its table does not use it).  A non-finite loss stops
  a run (NaN padding), which then counts as divergent and is scored at chance (10%).
* Failure/recovery (shared ghosts thresholds, :mod:`repro.experiments._ghosts_common`): a run
  "survives" a spike when its final test accuracy retains ``>= FAILURE_ACC_RETAINED`` = 90% of its
  pre-spike accuracy (test accuracy just before step 50); median over seeds of the per-seed ratio.
  (With full-batch Adam at LR 0.015 the CNN+BN is still far from converged at step 50, so its
  "retained" fractions exceed 1 whenever it keeps learning.)  The experiment measures the retained
  fractions; the claims' rules in ``paper/claims.toml`` apply the threshold.
* Seeds: 5 at paper scale (the paper's count), median and IQR over seeds.

Scales: ``paper`` is the full grid (3 architectures x 4 spikes x 4 methods x 5 seeds; about 1.5-2
hours on one CPU core: the transformer and the CNN+BN cost 0.15-0.2 s per full-batch step plus a
0.2-0.3 s JVP per controller step).  ``cpu`` is the full grid for MLP+LN only (3 seeds, ~2 min), the
only architecture that fits the few-minute budget; the Transformer and CNN+BN claims are "not run
at this scale" there.  ``ci`` is MLP+LN, spike 1000x at step 20 of 40, one seed.  The steps before
the spike are shared by the four spike values of a (architecture, method, seed) (computed once
and deep-copied), so each (architecture, method, seed) is one cell (:mod:`repro.cells`) holding
its four spiked branches.

Paper's numbers (Table 1, median final test accuracy at 10000x, plain / clip / controller):
Transformer 31.8 / 38.7 / 95.3 %, MLP+LN 44.6 / 51.5 / 93.9 %, CNN+BN 13.4 / 10.3 / 71.6 %.
Fig 10: plain Transformer recovers from 10x but not 1000x; MLP+LN tolerates 100x and collapses
at 10000x; CNN+BN is damaged even at 10x; clipping helps only partially; the controller survives all.

Claims: one ``@claim`` measuring function per claim of ``paper/claims.toml`` returns the measured
numbers (value, detail, evidence: retained fractions per cell, realized ``r`` of the spiked step,
...); the verdict is the claim's registered rule, applied by :mod:`repro.claims`
(``polystep-repro claim <id>``).  A run without the cells a claim needs (the 10000x spike, all four
spikes, an architecture) does not measure it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from repro.cells import Cell
from repro.claims import claim, claims_of, get_claim
from repro.context import RunContext
from repro.experiments._ghosts_common import DIVERGED_LOSS, FAILURE_ACC_RETAINED, plot_median_iqr
from repro.tasks.training import accuracy, cross_entropy_backward

ID = "ghosts_table1_fig10"
TITLE = "Ghosts of softmax, Fig. 10 / Table 1: a single LR spike across architectures"
CLAIMS = claims_of(ID)
VERSION = 2

ARCHS = ("transformer", "mlp_ln", "cnn_bn")
METHODS = ("plain", "clip", "ctrl_grad", "ctrl_exact")
PRETTY_ARCH = {"transformer": "Transformer", "mlp_ln": "MLP+LN", "cnn_bn": "CNN+BN"}
LABELS = {"plain": "plain Adam", "clip": "Adam + grad-norm clip at 1",
          "ctrl_grad": "rho_a controller, gradient direction (paper's)",
          "ctrl_exact": "rho_a controller, actual step (exact, Prop. 5.2)"}
TEX_LABELS = {"plain": "plain Adam", "clip": r"Adam + clip $\|g\| \leq 1$",
              "ctrl_grad": r"$\rho_a$ ctrl, gradient dir. (paper's)",
              "ctrl_exact": r"$\rho_a$ ctrl, actual step (exact)"}
COLORS = {"plain": "#D55E00", "clip": "#009E73", "ctrl_grad": "#E69F00", "ctrl_exact": "#0072B2"}
CHANCE = 0.10
#: architectures with BatchNorm: test accuracy is reported both ways (see the module docstring)
BN_ARCHS = ("cnn_bn",)
#: the Table 1 claims: claim id -> (architecture, method); the paper's numbers are the claims'
#: ``paper_value`` in ``paper/claims.toml`` (the paper's controller is the gradient-direction one)
TABLE1_CLAIMS = {
    "ghosts.table1_transformer_plain": ("transformer", "plain"),
    "ghosts.table1_transformer_clip": ("transformer", "clip"),
    "ghosts.table1_transformer_ctrl": ("transformer", "ctrl_grad"),
    "ghosts.table1_mlpln_plain": ("mlp_ln", "plain"),
    "ghosts.table1_mlpln_clip": ("mlp_ln", "clip"),
    "ghosts.table1_mlpln_ctrl": ("mlp_ln", "ctrl_grad"),
    "ghosts.table1_cnnbn_plain": ("cnn_bn", "plain"),
    "ghosts.table1_cnnbn_clip": ("cnn_bn", "clip"),
    "ghosts.table1_cnnbn_ctrl": ("cnn_bn", "ctrl_grad"),
}


def _paper_value(arch: str, method: str):
    """The paper's Table 1 number for (architecture, method), from the registry, or ``None``."""
    cid = next((c for c, am in TABLE1_CLAIMS.items() if am == (arch, method)), None)
    return None if cid is None else get_claim(cid).paper_value


@dataclass(frozen=True)
class Config:
    archs: tuple[str, ...] = ARCHS
    spikes: tuple[float, ...] = (10.0, 100.0, 1000.0, 10000.0)
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    steps: int = 200
    spike_step: int = 50
    lr: float = 0.015
    clip_norm: float = 1.0
    r_target: float = 1.0
    test_rows: int = 359      # the first 20% of digits' 1797 rows


CONFIGS = {
    "ci": Config(archs=("mlp_ln",), spikes=(1000.0,), seeds=(0,), steps=40, spike_step=20),
    "cpu": Config(archs=("mlp_ln",), seeds=(0, 1, 2)),
    "paper": Config(),
}


def _data(cfg: Config, device):
    """Digits in file order, pixels / 16: test = first ``test_rows`` rows, train = the rest."""
    from repro.tasks.digits import _raw_digits

    x, y = _raw_digits()
    x = torch.tensor(np.array(x, dtype=np.float32), device=device)
    y = torch.tensor(np.array(y), device=device)
    n = cfg.test_rows
    return x[n:], y[n:], x[:n], y[:n]


def _batchnorms(model) -> list:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def _evaluate_batch_stats(model, x, y) -> float:
    """Test accuracy with every BatchNorm normalising by the statistics of the test batch itself,
    as the authors' archgrid measures it (its model stays in train mode).  The running statistics
    are left untouched (momentum 0 for this pass); every other module is in eval mode."""
    bns = _batchnorms(model)
    flags = [(m, m.training) for m in model.modules()]
    momenta = [bn.momentum for bn in bns]
    tracked = [None if bn.num_batches_tracked is None else bn.num_batches_tracked.clone() for bn in bns]
    model.eval()
    for bn in bns:
        bn.train()
        bn.momentum = 0.0
    try:
        acc = float((model(x).argmax(1) == y).float().mean())
    finally:
        for bn, mom, n in zip(bns, momenta, tracked):
            bn.momentum = mom
            if n is not None:
                bn.num_batches_tracked.copy_(n)
        for m, flag in flags:
            m.training = flag
    return acc


class _Run:
    """One training run's live state (model, Adam, optional controller) and its logs."""

    def __init__(self, arch: str, method: str, seed: int, cfg: Config, ctx: RunContext, data):
        from repro.tasks.zoo import build
        from ghosts.radius_controller import RadiusController

        self.cfg, self.method = cfg, method
        self.x_tr, self.y_tr, self.x_te, self.y_te = data
        self.model = build(arch, ctx.torch_generator("init", arch, seed, device="cpu"), device=ctx.device)
        self.model.train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
        mode = {"ctrl_grad": "gradient_direction", "ctrl_exact": "actual_step"}.get(method)
        self.ctrl = (RadiusController(self.opt, self.model, cfg.r_target, mode=mode, rho_inputs=self.x_tr)
                     if mode else None)
        n = cfg.steps
        self.log = {k: np.full(n, np.nan) for k in ("train_loss", "test_acc", "test_acc_bs", "tau", "rho_a",
                                                     "scale")}
        self.has_bn = bool(_batchnorms(self.model))
        self.spike_rho_step = math.nan  # rho_a along the realized spiked step
        self.t = 0
        self.stopped = -1

    def clone(self) -> "_Run":
        return copy.deepcopy(self)  # model, optimizer and controller share one memo: stays consistent

    def advance(self, until: int, spike: float) -> None:
        from ghosts.radius_models import model_rho_a

        cfg, model, opt = self.cfg, self.model, self.opt
        params = list(model.parameters())
        names = [k for k, _ in model.named_parameters()]
        while self.t < until and self.stopped < 0:
            t = self.t
            lr = cfg.lr * (spike if t == cfg.spike_step else 1.0)
            for g in opt.param_groups:
                g["lr"] = lr
            self.log["test_acc"][t] = accuracy(model, self.x_te, self.y_te)  # eval mode: BN running stats
            self.log["test_acc_bs"][t] = (_evaluate_batch_stats(model, self.x_te, self.y_te) if self.has_bn
                                          else self.log["test_acc"][t])
            loss = cross_entropy_backward(model, opt, self.x_tr, self.y_tr)
            self.log["train_loss"][t] = float(loss)
            if not math.isfinite(self.log["train_loss"][t]):
                self.stopped = t
                break
            old = [p.detach().clone() for p in params]
            try:
                if self.method == "clip":
                    torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
                if self.ctrl is not None:
                    self.ctrl.step()
                    h = self.ctrl.history[-1]
                    self.log["rho_a"][t], self.log["scale"][t] = h["rho_a"], h["scale"]
                else:
                    opt.step()
            except FloatingPointError:
                self.stopped = t
                break
            with torch.no_grad():
                disp = [p.detach() - o for p, o in zip(params, old)]
                tau = math.sqrt(sum(float((d.double() ** 2).sum()) for d in disp))
            if not math.isfinite(tau):
                self.stopped = t
                break
            self.log["tau"][t] = tau
            if t == cfg.spike_step and tau > 0:
                self.spike_rho_step = model_rho_a(model, self.x_tr, {k: d / tau for k, d in zip(names, disp)},
                                                  params=dict(zip(names, old)))
            self.t += 1

    def result(self) -> dict:
        cfg = self.cfg
        if self.stopped < 0:
            final_acc = accuracy(self.model, self.x_te, self.y_te)
            final_acc_bs = (_evaluate_batch_stats(self.model, self.x_te, self.y_te) if self.has_bn
                            else final_acc)
            final_loss = float(self.log["train_loss"][cfg.steps - 1])
        else:
            final_acc = final_acc_bs = CHANCE
            final_loss = math.inf
        s = cfg.spike_step
        return {**self.log, "final_test_acc": final_acc, "final_test_acc_bs": final_acc_bs,
                "final_loss": final_loss,
                "divergent": bool(not math.isfinite(final_loss) or final_loss > DIVERGED_LOSS),
                "pre_acc": float(self.log["test_acc"][s]), "pre_acc_bs": float(self.log["test_acc_bs"][s]),
                "stopped_at": self.stopped,
                "spike_tau": float(self.log["tau"][s]), "spike_rho_step": self.spike_rho_step,
                "spike_r": float(self.log["tau"][s] / self.spike_rho_step)}


def _branches(arch: str, method: str, seed: int, cfg: Config, ctx: RunContext) -> list[dict]:
    """One cell: the run of (``arch``, ``method``, ``seed``) up to the spike step, then one deep-copied
    branch per spike value of ``cfg.spikes`` (their results, in that order)."""
    pre = _Run(arch, method, seed, cfg, ctx, _data(cfg, ctx.device))
    pre.advance(cfg.spike_step, 1.0)
    out = []
    for spike in cfg.spikes:
        r = pre.clone()
        r.advance(cfg.steps, spike)
        ctx.count_evals(cfg.steps)
        out.append(r.result())
    return out


def run(cfg: Config, ctx: RunContext) -> dict:
    """One cell per (architecture, method, seed) (:func:`_branches`: the spike values share the
    steps before the spike), then the runs stacked over seeds per (architecture, spike, method)."""
    work = [Cell(f"{arch}-{method}-seed{seed}", _branches, (arch, method, seed, cfg))
            for arch in cfg.archs for method in cfg.methods for seed in cfg.seeds]
    values = iter(ctx.map(work, desc="architecture x method x seed"))
    per_cell: dict = {}
    for arch in cfg.archs:
        for method in cfg.methods:
            for _ in cfg.seeds:
                for spike, result in zip(cfg.spikes, next(values), strict=True):
                    per_cell.setdefault((arch, spike, method), []).append(result)
    cells = {f"{a}|{s:g}|{m}": {k: np.stack([np.asarray(r[k], dtype=float) for r in runs]) for k in runs[0]}
             for (a, s, m), runs in per_cell.items()}
    return {"cells": cells, "archs": list(cfg.archs), "spikes": [float(s) for s in cfg.spikes],
            "methods": list(cfg.methods), "seeds": list(cfg.seeds), "steps": cfg.steps,
            "spike_step": cfg.spike_step, "lr": cfg.lr,
            "full_protocol": cfg.steps == 200 and cfg.spike_step == 50 and len(cfg.seeds) >= 3}


# ---------------------------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------------------------

def cell_stats(results: dict, arch: str, spike: float, method: str) -> dict | None:
    c = results["cells"].get(f"{arch}|{spike:g}|{method}")
    if c is None:
        return None
    final = c["final_test_acc_bs"]  # the authors' convention (BatchNorm on test-batch statistics)
    retained = final / c["pre_acc_bs"]
    final_ev = c["final_test_acc"]  # eval mode (running statistics); the same for models without BN
    retained_ev = final_ev / c["pre_acc"]
    return {"final_acc": float(np.median(final)), "iqr": [float(q) for q in np.percentile(final, [25, 75])],
            "pre_acc": float(np.median(c["pre_acc_bs"])), "retained": float(np.median(retained)),
            "final_acc_eval": float(np.median(final_ev)), "pre_acc_eval": float(np.median(c["pre_acc"])),
            "retained_eval": float(np.median(retained_ev)),
            "n_divergent": int(np.sum(c["divergent"])), "n": int(len(final)),
            "final_loss": float(np.median(c["final_loss"])),
            "spike_r": float(np.median(c["spike_r"]))}


def _fmt_cell(s: dict, arch: str) -> str:
    out = (f"{100 * s['final_acc']:.1f} ({100 * s['iqr'][0]:.1f}-{100 * s['iqr'][1]:.1f}); "
           f"div {s['n_divergent']}/{s['n']}")
    if arch in BN_ARCHS:
        out += f"; eval mode {100 * s['final_acc_eval']:.1f}"
    return out


# ---------------------------------------------------------------------------------------------
# claims: one measuring function per claim (the verdict is the rule registered in claims.toml)
# ---------------------------------------------------------------------------------------------

def _paper_seeds() -> int:
    return len(CONFIGS["paper"].seeds)


def _table1(results: dict, cid: str) -> dict | None:
    """Table 1 cell of ``cid`` at the 10000x spike: median final test accuracy in %."""
    arch, method = TABLE1_CLAIMS[cid]
    s = cell_stats(results, arch, 10000.0, method)
    if s is None:  # the architecture or the 10000x spike is not in this run
        return None
    value = 100 * s["final_acc"]
    detail = (f"median final test acc over {s['n']} seeds {value:.1f}% (IQR "
              f"{100 * s['iqr'][0]:.1f}-{100 * s['iqr'][1]:.1f}), divergent (final loss > "
              f"{DIVERGED_LOSS:g}) {s['n_divergent']}/{s['n']}, r of the spiked step {s['spike_r']:.3g}")
    evidence = {"final_acc_iqr": [100 * q for q in s["iqr"]], "n_seeds": s["n"],
                "n_divergent": s["n_divergent"], "retained": s["retained"], "spike_r": s["spike_r"]}
    if arch in BN_ARCHS:
        evidence["final_acc_eval_mode"] = 100 * s["final_acc_eval"]
    if method == "ctrl_grad":
        e = cell_stats(results, arch, 10000.0, "ctrl_exact")
        if e is not None:
            detail += (f"; exact actual-step controller: {100 * e['final_acc']:.1f}% "
                       f"(div {e['n_divergent']}/{e['n']})")
            evidence["ctrl_exact_final_acc"] = 100 * e["final_acc"]
    if s["n"] < _paper_seeds():
        detail += f"; {s['n']} seeds (paper: {_paper_seeds()})"
    if arch == "transformer":  # a different model from the authors' sequence-length-1 one
        detail += ("; our transformer has 8 tokens and real attention, the authors' had one token "
                   "(attention a no-op), so the number is compared qualitatively")
    return {"value": value, "detail": detail, "evidence": evidence}


@claim("ghosts.table1_transformer_plain")
def _table1_transformer_plain(results: dict) -> dict | None:
    return _table1(results, "ghosts.table1_transformer_plain")


@claim("ghosts.table1_transformer_clip")
def _table1_transformer_clip(results: dict) -> dict | None:
    return _table1(results, "ghosts.table1_transformer_clip")


@claim("ghosts.table1_transformer_ctrl")
def _table1_transformer_ctrl(results: dict) -> dict | None:
    return _table1(results, "ghosts.table1_transformer_ctrl")


@claim("ghosts.table1_mlpln_plain")
def _table1_mlpln_plain(results: dict) -> dict | None:
    return _table1(results, "ghosts.table1_mlpln_plain")


@claim("ghosts.table1_mlpln_clip")
def _table1_mlpln_clip(results: dict) -> dict | None:
    return _table1(results, "ghosts.table1_mlpln_clip")


@claim("ghosts.table1_mlpln_ctrl")
def _table1_mlpln_ctrl(results: dict) -> dict | None:
    return _table1(results, "ghosts.table1_mlpln_ctrl")


@claim("ghosts.table1_cnnbn_plain")
def _table1_cnnbn_plain(results: dict) -> dict | None:
    return _table1(results, "ghosts.table1_cnnbn_plain")


@claim("ghosts.table1_cnnbn_clip")
def _table1_cnnbn_clip(results: dict) -> dict | None:
    return _table1(results, "ghosts.table1_cnnbn_clip")


@claim("ghosts.table1_cnnbn_ctrl")
def _table1_cnnbn_ctrl(results: dict) -> dict | None:
    return _table1(results, "ghosts.table1_cnnbn_ctrl")


def _retained(results: dict, arch: str, spike: float, method: str) -> list[float]:
    """``[median retained fraction]`` of one cell, ``[]`` when the run does not have it."""
    s = cell_stats(results, arch, spike, method)
    return [] if s is None else [s["retained"]]


def _pct(values: list[float]) -> str:
    return "/".join(f"{100 * v:.0f}%" for v in values) if values else "n/a"


@claim("ghosts.abstract_spike_10000x")
def _abstract_spike_10000x(results: dict) -> dict | None:
    archs = [a for a in results["archs"] if cell_stats(results, a, 10000.0, "ctrl_exact") is not None
             and cell_stats(results, a, 10000.0, "clip") is not None]
    if not archs:  # needs the 10000x spike with the exact controller and clipping
        return None
    stats = {(a, m): cell_stats(results, a, 10000.0, m) for a in archs for m in ("ctrl_exact", "ctrl_grad", "clip")}
    parts = []
    for a in archs:
        ex, gr, cl = stats[(a, "ctrl_exact")], stats[(a, "ctrl_grad")], stats[(a, "clip")]
        part = (f"{PRETTY_ARCH[a]}: exact ctrl {100 * ex['final_acc']:.1f}% (retained {100 * ex['retained']:.0f}%)"
                + (f", gradient-dir ctrl {100 * gr['final_acc']:.1f}% (retained {100 * gr['retained']:.0f}%)"
                   if gr is not None else "")
                + f", clip {100 * cl['final_acc']:.1f}% (retained {100 * cl['retained']:.0f}%)")
        parts.append(part)
    missing = [PRETTY_ARCH[a] for a in ARCHS if a not in archs]
    retained_exact = [stats[(a, "ctrl_exact")]["retained"] for a in archs]
    retained_clip = [stats[(a, "clip")]["retained"] for a in archs]
    return {
        "value": (f"retained fraction of the pre-spike test accuracy at 10000x: exact controller "
                  f"{_pct(retained_exact)}, clipping {_pct(retained_clip)} "
                  f"({', '.join(PRETTY_ARCH[a] for a in archs)})"),
        "detail": ("retained = median over seeds of final / pre-spike test accuracy; " + "; ".join(parts)
                   + (f"; {', '.join(missing)}: paper scale only" if missing else "")),
        "evidence": {"architectures": archs, "retained_ctrl_exact": retained_exact,
                     "retained_ctrl_grad": [stats[(a, "ctrl_grad")]["retained"] for a in archs
                                            if stats[(a, "ctrl_grad")] is not None],
                     "retained_clip": retained_clip,
                     "final_acc_ctrl_exact": [100 * stats[(a, "ctrl_exact")]["final_acc"] for a in archs],
                     "final_acc_clip": [100 * stats[(a, "clip")]["final_acc"] for a in archs]}}


@claim("ghosts.fig10_plain_tolerance")
def _fig10_plain_tolerance(results: dict) -> dict | None:
    spikes = (10.0, 100.0, 1000.0, 10000.0)
    if not all(s in results["spikes"] for s in spikes):  # needs all four spikes
        return None
    archs = results["archs"]

    def cells(method):
        return [r for a in archs for s in spikes for r in _retained(results, a, s, method)]

    ev = {
        "architectures": list(archs),
        "plain_transformer_10x": _retained(results, "transformer", 10.0, "plain"),
        "plain_transformer_1000x": _retained(results, "transformer", 1000.0, "plain"),
        "plain_mlpln_10x_100x": _retained(results, "mlp_ln", 10.0, "plain") + _retained(results, "mlp_ln", 100.0, "plain"),
        "plain_mlpln_10000x": _retained(results, "mlp_ln", 10000.0, "plain"),
        "plain_cnnbn_10x": _retained(results, "cnn_bn", 10.0, "plain"),
        "clip_all": cells("clip"), "ctrl_grad_all": cells("ctrl_grad"), "ctrl_exact_all": cells("ctrl_exact"),
    }
    plain = "; ".join(f"{PRETTY_ARCH[a]} " + "/".join(f"{100 * r:.0f}%" for s in spikes
                                                      for r in _retained(results, a, s, "plain"))
                      for a in archs)
    detail = (f"retained fraction (median over seeds of final / pre-spike test accuracy) of plain Adam at "
              f"10x/100x/1000x/10000x: {plain}; clipping: {min(ev['clip_all']):.0%} to {max(ev['clip_all']):.0%} "
              f"over the {len(ev['clip_all'])} cells; gradient-direction (paper's) controller: lowest "
              f"{min(ev['ctrl_grad_all']):.0%}; exact controller: lowest {min(ev['ctrl_exact_all']):.0%}")
    if "cnn_bn" in archs:
        p10, c10 = cell_stats(results, "cnn_bn", 10.0, "plain"), cell_stats(results, "cnn_bn", 10.0, "ctrl_grad")
        detail += (f"; CNN+BN at 10x: plain {100 * p10['final_acc']:.1f}% vs controller {100 * c10['final_acc']:.1f}% "
                   f"(eval mode {100 * p10['final_acc_eval']:.1f}% vs {100 * c10['final_acc_eval']:.1f}%)")
    missing = [PRETTY_ARCH[a] for a in ARCHS if a not in archs]
    if missing:
        detail += f"; the {' and '.join(missing)} parts run at paper scale only"
    return {"value": f"plain Adam retained at 10x/100x/1000x/10000x: {plain}", "detail": detail, "evidence": ev}


@claim("ghosts.fig10_controller_enforces_r_le_1")
def _fig10_controller_enforces_r_le_1(results: dict) -> dict | None:
    keys = [f"{a}|{s:g}" for a in results["archs"] for s in results["spikes"]]
    grad_r = [float(np.nanmax(results["cells"][f"{k}|ctrl_grad"]["spike_r"]))
              for k in keys if f"{k}|ctrl_grad" in results["cells"]]
    if not grad_r:
        return None
    exact = [results["cells"][f"{k}|ctrl_exact"] for k in keys if f"{k}|ctrl_exact" in results["cells"]]
    exact_max = max((float(np.nanmax(c["tau"] / c["rho_a"])) for c in exact), default=float("nan"))
    worst = max(grad_r)
    return {
        "value": worst,
        "detail": (f"largest realized r = tau/rho_a (rho_a along the step actually taken) of the spiked "
                   f"step under the released gradient-direction controller: {worst:.3g} (it caps lr*||g|| "
                   f"along g, not Adam's step); the exact actual-step controller's largest r over all "
                   f"steps: {exact_max:.6f}"),
        "evidence": {"spike_r_ctrl_grad": grad_r, "n_cells": len(grad_r), "max_r_ctrl_exact_all_steps": exact_max}}


# ---------------------------------------------------------------------------------------------
# figures and tables
# ---------------------------------------------------------------------------------------------

def plot(results: dict):
    import warnings

    import matplotlib.pyplot as plt

    archs, spikes, methods = results["archs"], results["spikes"], results["methods"]
    s0 = results["spike_step"]
    steps = np.arange(results["steps"])
    fig, axes = plt.subplots(len(archs), len(spikes), figsize=(3.3 * len(spikes) + 0.6, 2.7 * len(archs) + 0.9),
                             squeeze=False, sharex=True, sharey=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, arch in enumerate(archs):
            for j, spike in enumerate(spikes):
                ax = axes[i, j]
                for m in methods:
                    c = results["cells"][f"{arch}|{spike:g}|{m}"]
                    acc = 100 * np.column_stack([c["test_acc_bs"], c["final_test_acc_bs"]])
                    x = np.arange(acc.shape[1])
                    plot_median_iqr(ax, x, acc, color=COLORS[m], label=TEX_LABELS[m], lw=1.5)
                    if arch in BN_ARCHS:  # eval mode (running statistics): median only, dashed
                        ev = 100 * np.column_stack([c["test_acc"], c["final_test_acc"]])
                        ax.plot(x, np.nanmedian(ev, axis=0), color=COLORS[m], lw=0.9, ls="--")
                if arch in BN_ARCHS:
                    ax.plot([], [], color="0.4", lw=0.9, ls="--", label="dashed: eval mode (BN running stats), median")
                ax.axvline(s0, color="0.35", ls="--", lw=1)
                ax.axhline(100 * CHANCE, color="0.5", ls=":", lw=1)
                ax.set_title(f"{PRETTY_ARCH[arch]}, {spike:g}x spike at step {s0}", fontsize=10)
                if j == 0:
                    ax.set_ylabel("test accuracy (%)")
                if i == len(archs) - 1:
                    ax.set_xlabel("optimizer step (full batch)")
        axes[0, 0].set_ylim(0, 100)
        axes[0, 0].set_xlim(0, len(steps))
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), bbox_to_anchor=(0.5, -0.01))
    n = len(results["seeds"])
    fig.suptitle(f"Single-step LR spike (Adam, base LR {results['lr']:g}, digits, full batch): test accuracy, "
                 f"median and IQR over {n} seed{'s' if n > 1 else ''}"
                 + ("\nCNN+BN solid: BatchNorm on the test batch's statistics (as the authors measure it)"
                    if any(a in BN_ARCHS for a in archs) else ""), fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))

    # the realized normalized step r = tau / rho_a(step direction) of the spiked update
    fig2, axes2 = plt.subplots(1, len(archs), figsize=(max(4.2 * len(archs), 8.5) + 0.5, 4.2), squeeze=False,
                               sharey=True)
    width = 0.8 / len(methods)
    for i, arch in enumerate(archs):
        ax = axes2[0, i]
        for k, m in enumerate(methods):
            vals = [results["cells"][f"{arch}|{s:g}|{m}"]["spike_r"] for s in spikes]
            med = [float(np.nanmedian(v)) for v in vals]
            lo = [float(np.nanpercentile(v, 25)) for v in vals]
            hi = [float(np.nanpercentile(v, 75)) for v in vals]
            xs = np.arange(len(spikes)) + (k - (len(methods) - 1) / 2) * width
            ax.bar(xs, med, width, color=COLORS[m], label=TEX_LABELS[m])
            ax.errorbar(xs, med, yerr=[np.subtract(med, lo), np.subtract(hi, med)], fmt="none", ecolor="0.2", lw=0.8)
        ax.axhline(1.0, color="k", ls="--", lw=1, label="r = 1")
        ax.set(yscale="log", xticks=np.arange(len(spikes)), xticklabels=[f"{s:g}x" for s in spikes],
               xlabel="LR spike multiplier", title=PRETTY_ARCH[arch])
        if i == 0:
            ax.set_ylabel(r"$r = \tau/\rho_a$ of the spiked step")
    h2, l2 = axes2[0, 0].get_legend_handles_labels()
    fig2.legend(h2, l2, loc="lower center", ncol=len(l2), fontsize=8, bbox_to_anchor=(0.5, -0.01))
    fig2.suptitle("Realized normalized step of the spiked update\n"
                  r"($\rho_a$ by JVP along the step actually taken, train split; median and IQR over seeds)",
                  fontsize=10)
    fig2.tight_layout(rect=(0, 0.08, 1, 1))
    return {"": fig, "spike_r": fig2}


def table(results: dict) -> str:
    archs, spikes, methods = results["archs"], results["spikes"], results["methods"]
    lines = []
    if 10000.0 in spikes:
        lines += ["**Table 1** (10000x spike): median final test accuracy in % (IQR over seeds); "
                  f"divergent = final loss > {DIVERGED_LOSS:g} (seeds); paper value in brackets.", "",
                  "| architecture | " + " | ".join(LABELS[m] for m in methods) + " |",
                  "|---|" + "---|" * len(methods)]
        for arch in archs:
            row = []
            for m in methods:
                s = cell_stats(results, arch, 10000.0, m)
                pv = _paper_value(arch, m)
                row.append(_fmt_cell(s, arch) + (f" [paper {pv}]" if pv is not None else ""))
            lines.append(f"| {PRETTY_ARCH[arch]} | " + " | ".join(row) + " |")
        lines.append("")
    lines += ["**All spikes**: median final test accuracy in % (retained fraction of the pre-spike accuracy; "
              "r of the spiked step).", "",
              "| architecture | spike | " + " | ".join(LABELS[m] for m in methods) + " |",
              "|---|---|" + "---|" * len(methods)]
    for arch in archs:
        for spike in spikes:
            row = []
            for m in methods:
                s = cell_stats(results, arch, spike, m)
                row.append(f"{100 * s['final_acc']:.1f} ({100 * s['retained']:.0f}%; r={s['spike_r']:.2g})")
            lines.append(f"| {PRETTY_ARCH[arch]} | {spike:g}x | " + " | ".join(row) + " |")
    lines += ["", f"Survive = final accuracy >= {100 * FAILURE_ACC_RETAINED:.0f}% of the pre-spike accuracy "
              "(shared ghosts threshold). The Transformer is the zoo's 8-token model; the authors' had "
              "sequence length 1 (attention a no-op)."]
    return "\n".join(lines)


def summary_lines(results: dict) -> list[str]:
    out = []
    top = max(results["spikes"])
    for arch in results["archs"]:
        parts = [f"{m} {100 * cell_stats(results, arch, top, m)['final_acc']:.1f}%" for m in results["methods"]]
        out.append(f"  {PRETTY_ARCH[arch]} at {top:g}x: " + ", ".join(parts))
    return out
