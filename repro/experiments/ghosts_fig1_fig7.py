r"""Ghosts of softmax, Figs 1 and 7 (reconstruction): one descent step of size r * rho_a, six nets.

Protocol (reconstruction; the authors released only the plot scripts, not the generator,
paper/ghosts_notes.md §0 caveat 1 and §4.3):

* Data: scikit-learn digits as the released ghosts code loads them (pixels/16, stratified 80/20
  train/test split, split seed 0 for every seed; :func:`repro.tasks.digits.load_digits_split` with
  ``standardise=False``).  The paper names neither data set nor preprocessing.  The preprocessing
  matters: with the package's standardised features (``Config.features = "standardised"``, :func:`repro.tasks.digits.load_digits_split`,
  whose border pixels are rescaled by up to 32x) a first cpu-scale run found the linear model and
  the MLP far more robust (neither fell to 50% retained by r = 100), while with pixels/16 the linear
  model's 50% point lands where Fig 7 puts it.  The seed varies initialisation and batches.
* Models: the six architectures of :mod:`repro.tasks.zoo` (Linear, MLP, CNN, MLP+LN, CNN+BN,
  TinyTransformer), trained "to convergence" with Adam (PyTorch defaults besides the learning
  rate) on mini-batches of 128.  Rule used: train until the test accuracy plateaus (checked every
  200 steps on seed 0 before the runs): 600 steps at lr 3e-3 (MLP, CNN, MLP+LN, TinyTransformer;
  training loss 1e-3 to 1e-4), 600 steps at 1e-2 for the linear model (its loss keeps falling
  slowly as the weights grow: 0.11 at 600 steps, 0.065 at 1200), 1000 steps at 1e-2 for CNN+BN,
  whose archgrid design (a 1-D conv over the flattened image with global average pooling) learns
  slowly and reaches only ~80% test accuracy (the paper's own Table 1 has it at 71.6%).  How far
  training goes changes the numbers: the linear model's 50% point moves from r ~ 6 after 400 steps
  to r ~ 12 after 3000 steps (exploratory check, 2 seeds).  BatchNorm statistics are recomputed on
  the full training set after training (:func:`repro.tasks.training.recalibrate_batchnorm`);
  everything below runs in eval mode.
* Direction: the **descent** direction ``v = -g/||g||`` of the full training-set mean loss (the
  paper says "gradient step"; the dip of the loss ratio below 1 in Fig 7B indicates descent,
  paper/ghosts_notes.md §4.2).
* Radius: ``rho_a(v) = pi / max_x Delta_a(x; v)`` by one forward-mode JVP on the full training
  split (:func:`ghosts.radius_models.model_rho_a`), i.e. Fig 7's JVP definition.  **Fig 1 is a
  different computation** (the plot scripts load a different result file and rank Linear
  oppositely, paper/ghosts_notes.md §5 item 9); this experiment reproduces Fig 7's definition and compares
  both figures' numbers with it.
* Sweep: ``tau = r rho_a`` for ``r`` on ``logspace(-2, 2, n_r)`` (plus r = 1 exactly); at each
  ``theta + tau v`` (no training): test accuracy retained ``acc/acc_0`` (%), the training-loss
  ratio ``L_train(theta + tau v)/L_train(theta)`` (the loss whose gradient was taken; the test-loss
  ratio is stored too) and the test flip fraction.
* Bands: median and interquartile range over seeds (the paper's plot script draws mean +- std;
  the package convention is median + IQR).
* Appendix 1.2.2 (``Delta_a`` varies "~1%" across mini-batches; no setting given): for each
  trained model, ``Delta_a^B = max_{x in B} Delta_a(x; v)`` on ``cv_batches`` random mini-batches
  of ``cv_batch_size`` (the training batch size) (i) along the fixed full-batch direction and
  (ii) along each batch's own descent direction; the coefficient of variation std/mean is reported.

Failure (shared thresholds, :mod:`repro.experiments._ghosts_common`): a step fails when the test
accuracy retained is below ``FAILURE_ACC_RETAINED`` = 90% or the loss ratio is at least
``FAILURE_LOSS_RATIO`` = 2.  "Starts rising" (Fig 7B) is the first r with loss ratio >= 1.1 (the
released ``phasetransition`` onset, ``rise_loss_ratio`` of the registry).  The verdict rules (windows,
thresholds) are the claims' registered rules in ``paper/claims.toml``; one ``@claim`` function per
claim below returns the measurement they read.

Paper numbers (read from the plots, paper/ghosts_notes.md §3): Fig 1 50%-retained points TinyTfm ~2,
CNN+BN ~2.5, MLP+LN ~3.5, CNN ~6, MLP ~20, Linear ~28; Fig 7 Linear ~97% retained at r = 1 and 50% at
r ~ 5-6, others hold to r ~ 2-3 (50% points ~10-17); loss inflation starts at r ~ 1 and reaches
~1e6 (CNN+BN), 1e4-1e5 (TinyTfm, MLP+LN), ~2e2 (Linear) at r = 100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from repro.cells import Cell
from repro.claims import claim, claims_of, get_claim
from repro.context import RunContext
from repro.experiments._ghosts_common import (ARCH_COLORS, FAILURE_ACC_RETAINED, FAILURE_LOSS_RATIO,
                                              first_crossing, gradient_direction, loss_gradient,
                                              median_iqr, one_step_sweep, plot_median_iqr)
from repro.tasks.digits import load_digits_split
from repro.tasks.training import train_classifier

ID = "ghosts_fig1_fig7"
TITLE = "Ghosts of softmax, Figs 1/7 (reconstruction): one descent step of r * rho_a on six digits nets"
CLAIMS = claims_of(ID)
VERSION = 1

PRETTY = {"linear": "Linear", "mlp": "MLP", "cnn": "CNN", "mlp_ln": "MLP+LN", "cnn_bn": "CNN+BN",
          "transformer": "TinyTransformer"}


@dataclass(frozen=True)
class Config:
    #: (architecture, Adam learning rate, steps)
    recipes: tuple[tuple[str, float, int], ...] = (
        ("linear", 1e-2, 600), ("mlp", 3e-3, 600), ("cnn", 3e-3, 600), ("mlp_ln", 3e-3, 600),
        ("cnn_bn", 1e-2, 1000), ("transformer", 3e-3, 600))
    features: str = "pixels"          # "pixels" (x/16, released code) | "standardised"
    test_fraction: float = 0.2        # pixels only
    batch_size: int = 128
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    split_seed: int = 0
    log10_r: tuple[float, float] = (-2.0, 2.0)
    n_r: int = 41
    cv_batches: int = 30
    cv_batch_size: int = 128


CONFIGS = {
    "ci": Config(recipes=(("linear", 1e-2, 60), ("mlp", 3e-3, 60), ("cnn", 3e-3, 40), ("mlp_ln", 3e-3, 60),
                          ("cnn_bn", 1e-2, 40), ("transformer", 3e-3, 30)),
                 seeds=(0,), n_r=13, cv_batches=5),
    "cpu": Config(seeds=(0, 1, 2, 3, 4)),
    "paper": Config(seeds=(0, 1, 2, 3, 4), n_r=81, cv_batches=100),
}


def r_grid(cfg: Config) -> np.ndarray:
    """``logspace(log10_r, n_r)`` with r = 1 included exactly."""
    r = np.logspace(cfg.log10_r[0], cfg.log10_r[1], cfg.n_r)
    return np.unique(np.concatenate([r, [1.0]]))


def _delta_a_cv(model, x, y, v, cfg: Config, rng: np.random.Generator) -> dict:
    """Coefficient of variation of the batch spread ``Delta_a^B`` over random mini-batches."""
    from ghosts.radius_models import directional_logit_derivatives

    a = directional_logit_derivatives(model, x, v)
    spread = (a.amax(-1) - a.amin(-1)).double().cpu().numpy()
    n = len(spread)
    fixed, own = [], []
    for _ in range(cfg.cv_batches):
        idx = np.sort(rng.choice(n, size=min(cfg.cv_batch_size, n), replace=False))
        fixed.append(spread[idx].max())
        ti = torch.as_tensor(idx, device=x.device)
        vb = gradient_direction(model, x[ti], y[ti], sign=-1)
        ab = directional_logit_derivatives(model, x[ti], vb)
        own.append(float((ab.amax(-1) - ab.amin(-1)).max()))
    fixed, own = np.asarray(fixed), np.asarray(own)
    return {"delta_a_full": float(spread.max()), "delta_a_batches_fixed_v": fixed,
            "delta_a_batches_own_v": own,
            "cv_fixed_v": float(fixed.std() / fixed.mean()), "cv_own_v": float(own.std() / own.mean())}


def _data(cfg: Config):
    if cfg.features == "pixels":
        return load_digits_split(seed=cfg.split_seed, test_fraction=cfg.test_fraction, val_fraction=0.0,
                                 standardise=False)
    if cfg.features == "standardised":
        return load_digits_split(seed=cfg.split_seed)
    raise ValueError(f"features must be 'pixels' or 'standardised', got {cfg.features!r}")


def _unit(arch: str, lr: float, steps: int, seed: int, cfg: Config, ctx: RunContext) -> dict:
    from repro.tasks.zoo import build
    from ghosts.radius_models import model_rho_a

    data = _data(cfg)
    dev = ctx.device
    xtr, ytr = data.x_train.to(dev), data.y_train.to(dev)
    xte, yte = data.x_test.to(dev), data.y_test.to(dev)
    model = build(arch, ctx.torch_generator("init", arch, seed, device="cpu"), device=dev)
    hist = train_classifier(model, xtr, ytr, steps=steps, optimizer=torch.optim.Adam(model.parameters(), lr=lr),
                            batch_size=cfg.batch_size, generator=ctx.torch_generator("batches", arch, seed,
                                                                                      device="cpu"))
    g = loss_gradient(model, xtr, ytr)
    v = -g / g.norm()
    rho = model_rho_a(model, xtr, v)
    r = r_grid(cfg)
    taus = r * rho
    test = one_step_sweep(model, v, taus, xte, yte)
    train = one_step_sweep(model, v, taus, xtr, ytr)
    ctx.count_evals(steps + 2 * len(r))
    cv = _delta_a_cv(model, xtr, ytr, v, cfg, ctx.numpy_rng("cv", arch, seed))
    return {"arch": arch, "seed": seed, "lr": lr, "steps": steps, "r": r, "rho_a": rho,
            "grad_norm": float(g.norm()), "final_batch_loss": float(hist["loss"][-1]),
            "train_loss0": train["loss0"], "train_acc0": train["acc0"],
            "test_loss0": test["loss0"], "test_acc0": test["acc0"],
            "acc_retained": test["acc_retained"], "test_acc": test["acc"],
            "train_loss_ratio": train["loss_ratio"], "test_loss_ratio": test["loss_ratio"],
            "flip_fraction": test["flip_fraction"], "train_acc_retained": train["acc_retained"], **cv}


def run(cfg: Config, ctx: RunContext) -> dict:
    """One cell per (architecture, seed): train, take the descent direction, sweep ``r``."""
    cells = [Cell(f"{arch}-seed{s}", _unit, (arch, lr, steps, s, cfg))
             for arch, lr, steps in cfg.recipes for s in cfg.seeds]
    values = iter(ctx.map(cells, desc="architecture x seed"))
    archs = {}
    for arch, _, _ in cfg.recipes:
        units = [next(values) for _ in cfg.seeds]
        archs[arch] = {
            "runs": units,
            "acc_retained": np.stack([u["acc_retained"] for u in units]),
            "train_loss_ratio": np.stack([u["train_loss_ratio"] for u in units]),
            "test_loss_ratio": np.stack([u["test_loss_ratio"] for u in units]),
            "flip_fraction": np.stack([u["flip_fraction"] for u in units]),
        }
    return {"r": r_grid(cfg), "archs": archs, "seeds": list(cfg.seeds), "features": cfg.features}


# ----------------------------------------------------------------------------------------------
# derived numbers (the verdicts' thresholds live in paper/claims.toml)

C_NO_FAILURE = "ghosts.abstract_no_failure_below_r1"
C_COLLAPSE = "ghosts.intro_collapse_twice_rho_a"
C_RETAINED = "ghosts.fig1_accuracy_retained_below_r1"
C_HALF = "ghosts.fig1_half_accuracy_points"
C_LINEAR = "ghosts.fig7_linear_transition_r1"
C_ONSET = "ghosts.fig7_loss_inflation_onset"
C_CV = "ghosts.app122_delta_a_batch_cv"


def paper_half_points() -> dict[str, float]:
    """Fig 1 50%-retained points (read from the plot, paper/ghosts_notes.md §3), from the registry."""
    return {k: float(v) for k, v in get_claim(C_HALF).extra["paper_half_points"].items()}


def rise_loss_ratio() -> float:
    """"Starts rising" (Fig 7B): the loss-ratio level of the released phasetransition onset."""
    return float(get_claim(C_ONSET).extra["rise_loss_ratio"])


def _interp_log(r: np.ndarray, y: np.ndarray, at: float) -> float:
    return float(np.interp(math.log(at), np.log(r), y))


def _archs(results: dict) -> list[str]:
    """Architectures in the paper's order (stored results come back with sorted keys)."""
    return [a for a in PRETTY if a in results["archs"]] + sorted(set(results["archs"]) - set(PRETTY))


def _median_acc(results: dict, arch: str) -> np.ndarray:
    """Median (over seeds) test accuracy retained, in %."""
    return 100 * median_iqr(results["archs"][arch]["acc_retained"])[0]


def summarize(results: dict) -> dict:
    """Per architecture: median curves and the derived numbers every claim reads."""
    r = np.asarray(results["r"])
    rise = rise_loss_ratio()
    out = {}
    for arch in _archs(results):
        res = results["archs"][arch]
        acc = _median_acc(results, arch)
        lr_ = median_iqr(res["train_loss_ratio"])[0]
        below = r < 1
        runs = res["runs"]
        out[arch] = {
            "test_acc0": float(np.median([u["test_acc0"] for u in runs])),
            "rho_a": float(np.median([u["rho_a"] for u in runs])),
            "acc_at_r1": _interp_log(r, acc, 1.0),
            "min_acc_below_r1": float(acc[below].min()),
            "worst_seed_min_acc_below_r1": float(100 * res["acc_retained"][:, below].min()),
            "max_loss_ratio_below_r1": float(lr_[below].max()),
            # over the whole grid r <= 100 (nan counts as failed, as in first_crossing)
            "min_acc_all_r": float(np.where(np.isnan(acc), -np.inf, acc).min()),
            "max_loss_ratio_all_r": float(np.where(np.isnan(lr_), np.inf, lr_).max()),
            "r_half": first_crossing(r, acc, 50.0, below=True),
            "r_fail_acc": first_crossing(r, acc, 100 * FAILURE_ACC_RETAINED, below=True),
            "r_fail_loss": first_crossing(r, lr_, FAILURE_LOSS_RATIO),
            "r_rise": first_crossing(r, lr_, rise),
            "loss_ratio_r100": float(lr_[-1]),
            "acc_retained_r100": float(acc[-1]),
            "min_loss_ratio": float(lr_.min()),
            "cv_fixed_v": float(np.median([u["cv_fixed_v"] for u in runs])),
            "cv_own_v": float(np.median([u["cv_own_v"] for u in runs])),
        }
    return out


def _fmt(x: float, nd: int = 3) -> str:
    return "none" if not np.isfinite(x) else f"{x:.{nd}g}"


def _scale_note(results: dict) -> str:
    return (f"digits ({results.get('features', 'pixels')} features) reconstruction, {len(results['seeds'])} "
            "seed(s), median over seeds")


@claim(C_NO_FAILURE)
def _no_failure_below_r1(results: dict) -> dict:
    s = summarize(results)
    archs = list(s)
    first_fail = [float(np.nanmin([s[a]["r_fail_acc"], s[a]["r_fail_loss"], np.inf])) for a in archs]
    return {
        "value": f"min retained for r<1: {min(s[a]['min_acc_below_r1'] for a in archs):.1f}%; fail somewhere "
                 f"in r<=100: {sum(np.isfinite(first_fail))}/{len(archs)}",
        "detail": f"{_scale_note(results)}; failure = test acc retained < {100 * FAILURE_ACC_RETAINED:.0f}% or "
                  f"train loss ratio >= {FAILURE_LOSS_RATIO:g}; min retained for r<1: "
                  + ", ".join(f"{PRETTY[a]} {s[a]['min_acc_below_r1']:.1f}% (worst seed "
                              f"{s[a]['worst_seed_min_acc_below_r1']:.1f}%)" for a in archs)
                  + "; first failing r: " + ", ".join(f"{PRETTY[a]} {_fmt(f)}" for a, f in zip(archs, first_fail))
                  + ". Prediction flips are not counted (see ghosts_fig8).",
        "evidence": {"archs": archs,
                     "min_acc_below_r1": [s[a]["min_acc_below_r1"] for a in archs],
                     "max_loss_ratio_below_r1": [s[a]["max_loss_ratio_below_r1"] for a in archs],
                     "min_acc_max_loss_all_r": [[s[a]["min_acc_all_r"], s[a]["max_loss_ratio_all_r"]]
                                                for a in archs],
                     "first_failure_r": first_fail},
    }


@claim(C_COLLAPSE)
def _collapse_twice_rho_a(results: dict) -> dict:
    s = summarize(results)
    archs = list(s)
    fails = np.array([s[a]["r_fail_acc"] for a in archs])
    finite = fails[np.isfinite(fails)]
    value = float(np.median(finite)) if len(finite) else float("nan")
    return {
        "value": value,
        "detail": f"median over architectures of the first r with test acc retained < "
                  f"{100 * FAILURE_ACC_RETAINED:.0f}% (median curve over seeds): "
                  + ", ".join(f"{PRETTY[a]} {_fmt(s[a]['r_fail_acc'])}" for a in archs)
                  + "; 50% points: " + ", ".join(f"{PRETTY[a]} {_fmt(s[a]['r_half'])}" for a in archs)
                  + "; by loss instead, the training loss doubles (ratio >= 2) at r = "
                  + ", ".join(f"{PRETTY[a]} {_fmt(s[a]['r_fail_loss'])}" for a in archs)
                  + f"; {_scale_note(results)} (the paper's collapse criterion is unstated)",
        "evidence": {"archs": archs, "r_fail_acc": [s[a]["r_fail_acc"] for a in archs],
                     "r_fail_loss": [s[a]["r_fail_loss"] for a in archs],
                     "r_half": [s[a]["r_half"] for a in archs]},
    }


@claim(C_RETAINED)
def _retained_below_r1(results: dict) -> dict:
    s = summarize(results)
    archs = list(s)
    return {
        "value": min(s[a]["acc_at_r1"] for a in archs),
        "detail": "min over architectures of the median test accuracy retained (%) at r = 1: "
                  + ", ".join(f"{PRETTY[a]} {s[a]['acc_at_r1']:.1f}" for a in archs)
                  + "; min over r < 1: " + ", ".join(f"{PRETTY[a]} {s[a]['min_acc_below_r1']:.1f}" for a in archs)
                  + f"; JVP rho_a (Fig 7's definition; Fig 1's estimator is not the paper's stated one); "
                  f"{_scale_note(results)}",
        "evidence": {"archs": archs, "acc_at_r1": [s[a]["acc_at_r1"] for a in archs],
                     "min_acc_below_r1": [s[a]["min_acc_below_r1"] for a in archs]},
    }


@claim(C_HALF)
def _half_accuracy_points(results: dict) -> dict:
    s = summarize(results)
    archs = list(s)
    paper = paper_half_points()
    ratio = {a: s[a]["r_half"] / paper[a] for a in archs if a in paper}
    return {
        "value": ", ".join(f"{PRETTY[a]} {_fmt(s[a]['r_half'])}" for a in archs),
        "detail": "r at 50% test accuracy retained (median curve); measured/paper: "
                  + ", ".join(f"{PRETTY[a]} {_fmt(q, 2)}" for a, q in ratio.items())
                  + "; retained at r = 100: "
                  + ", ".join(f"{PRETTY[a]} {s[a]['acc_retained_r100']:.0f}%" for a in archs)
                  + f". Fig 1 uses an unstated radius estimator (paper/ghosts_notes.md §5 item 9), so its r-axis "
                  f"need not equal this JVP one; {_scale_note(results)}",
        "evidence": {"archs": list(ratio), "r_half": [s[a]["r_half"] for a in ratio],
                     "ratio_to_paper": list(ratio.values()),
                     "acc_retained_r100": [s[a]["acc_retained_r100"] for a in ratio]},
    }


@claim(C_LINEAR)
def _linear_transition_r1(results: dict) -> dict | None:
    s = summarize(results)
    lin = s.get("linear")
    if lin is None:
        return None
    others = [a for a in s if a != "linear"]
    r = np.asarray(results["r"])
    hold_r = float(get_claim(C_LINEAR).extra["others_hold_to_r"])
    hold = {a: float(_median_acc(results, a)[r <= hold_r].min()) for a in others}
    return {
        "value": lin["acc_at_r1"],
        "detail": f"linear retained at r=1 {lin['acc_at_r1']:.1f}%; linear 50% point {_fmt(lin['r_half'])}; "
                  "other 50% points: " + ", ".join(f"{PRETTY[a]} {_fmt(s[a]['r_half'])}" for a in others)
                  + f"; min retained up to r={hold_r:g}: "
                  + ", ".join(f"{PRETTY[a]} {v:.1f}%" for a, v in hold.items()) + f"; {_scale_note(results)}",
        "evidence": {"linear_r_half": lin["r_half"], "others": others,
                     "others_min_acc_up_to_hold_r": list(hold.values()),
                     # a net whose median curve never falls below 50% on the grid: r_half = inf
                     "others_r_half": [s[a]["r_half"] if np.isfinite(s[a]["r_half"]) else math.inf for a in others]},
    }


@claim(C_ONSET)
def _loss_inflation_onset(results: dict) -> dict:
    s = summarize(results)
    archs = list(s)
    return {
        "value": ", ".join(f"{PRETTY[a]} {_fmt(s[a]['r_rise'])}" for a in archs),
        "detail": f"first r with median train loss ratio >= {rise_loss_ratio():g}; "
                  f"ratio >= {FAILURE_LOSS_RATIO:g} at: " + ", ".join(f"{PRETTY[a]} {_fmt(s[a]['r_fail_loss'])}"
                                                                      for a in archs)
                  + "; loss ratio at r = 100: " + ", ".join(f"{PRETTY[a]} {s[a]['loss_ratio_r100']:.2g}"
                                                             for a in archs)
                  + " (paper: CNN+BN ~1e6, TinyTfm/MLP+LN 1e4-1e5, Linear ~2e2); minimum ratio (descent dip): "
                  + ", ".join(f"{PRETTY[a]} {s[a]['min_loss_ratio']:.2g}" for a in archs)
                  + f"; {_scale_note(results)}",
        "evidence": {"archs": archs, "r_rise": [s[a]["r_rise"] for a in archs],
                     "loss_ratio_r100": [s[a]["loss_ratio_r100"] for a in archs],
                     "min_loss_ratio": [s[a]["min_loss_ratio"] for a in archs]},
    }


@claim(C_CV)
def _delta_a_batch_cv(results: dict) -> dict:
    s = summarize(results)
    archs = list(s)
    cvs = np.array([u["cv_fixed_v"] for a in archs for u in results["archs"][a]["runs"]])
    own = np.array([u["cv_own_v"] for a in archs for u in results["archs"][a]["runs"]])
    n_batches = np.asarray(results["archs"][archs[0]]["runs"][0]["delta_a_batches_fixed_v"]).size
    return {
        "value": float(np.median(cvs)),
        "detail": "median over architectures x seeds of std/mean of Delta_a^B = max over a random mini-batch "
                  f"of {n_batches} batches (fixed full-batch descent direction); per architecture: "
                  + ", ".join(f"{PRETTY[a]} {s[a]['cv_fixed_v']:.3f}" for a in archs)
                  + f"; with each batch's own descent direction: median {np.median(own):.3f} ("
                  + ", ".join(f"{PRETTY[a]} {s[a]['cv_own_v']:.3f}" for a in archs)
                  + "); the paper gives no setting",
        "evidence": {"archs": archs, "cv_fixed_v": [s[a]["cv_fixed_v"] for a in archs],
                     "cv_own_v": [s[a]["cv_own_v"] for a in archs], "median_cv_own_v": float(np.median(own))},
    }


def table(results: dict) -> str:
    s = summarize(results)
    paper = paper_half_points()
    lines = ["| architecture | test acc | rho_a | retained at r=1 | min retained r<1 | r(90%) | r(50%) "
             "| Fig 1 r(50%) | r(loss x1.1) | r(loss x2) | loss ratio r=100 | CV Delta_a (fixed v / own v) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for a, v in s.items():
        lines.append(f"| {PRETTY[a]} | {100 * v['test_acc0']:.1f}% | {v['rho_a']:.3g} | {v['acc_at_r1']:.1f}% "
                     f"| {v['min_acc_below_r1']:.1f}% | {_fmt(v['r_fail_acc'])} | {_fmt(v['r_half'])} "
                     f"| {paper.get(a, float('nan')):g} | {_fmt(v['r_rise'])} | {_fmt(v['r_fail_loss'])} "
                     f"| {v['loss_ratio_r100']:.3g} | {v['cv_fixed_v']:.3f} / {v['cv_own_v']:.3f} |")
    lines.append("")
    lines.append(f"Medians over {len(results['seeds'])} seed(s). Descent direction -g/||g||, rho_a by JVP on the "
                 f"training split, test accuracy, training-loss ratio. Failure: retained < "
                 f"{100 * FAILURE_ACC_RETAINED:.0f}% or loss ratio >= {FAILURE_LOSS_RATIO:g}.")
    return "\n".join(lines)


def plot(results: dict):
    import matplotlib.pyplot as plt

    r = np.asarray(results["r"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for arch in _archs(results):
        res = results["archs"][arch]
        color = ARCH_COLORS.get(arch)
        plot_median_iqr(axes[0], r, 100 * res["acc_retained"], color=color, label=PRETTY[arch])
        plot_median_iqr(axes[1], r, res["train_loss_ratio"], color=color, label=PRETTY[arch])
    for ax in axes:
        ax.set_xscale("log")
        ax.axvspan(r[0], 1.0, color="#009E73", alpha=0.07, lw=0)
        ax.axvline(1.0, color="0.3", ls="--", lw=1)
        ax.set_xlim(r[0], r[-1])
        ax.set_xlabel(r"normalized step $r = \tau/\rho_a$ (one step along $-g/\|g\|$)")
    axes[0].axhline(100 * FAILURE_ACC_RETAINED, color="0.5", ls=":", lw=1)
    axes[0].text(r[0] * 1.3, 100 * FAILURE_ACC_RETAINED - 7, f"failure: < {100 * FAILURE_ACC_RETAINED:.0f}% retained",
                 fontsize=8, color="0.4")
    axes[0].text(0.1, 50, "safe zone r < 1", fontsize=9, color="#006040", ha="center")
    axes[0].set(ylabel="test accuracy retained (%)", ylim=(0, 105),
                title="(A) accuracy retained after one step")
    axes[1].axhline(FAILURE_LOSS_RATIO, color="0.5", ls=":", lw=1)
    axes[1].set(yscale="log", ylabel=r"loss inflation $L_{train}(\theta+\tau v)/L_{train}(\theta)$",
                title="(B) training-loss inflation after one step")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"One descent step of size r·ρ_a (JVP ρ_a on the training split), digits, "
                 f"median + IQR over {len(results['seeds'])} seed(s)", fontsize=11)
    fig.tight_layout()
    return fig


def summary_lines(results: dict) -> list[str]:
    s = summarize(results)
    return [f"  {PRETTY[a]}: rho_a {v['rho_a']:.3g}, retained at r=1 {v['acc_at_r1']:.1f}%, "
            f"r(50%) {_fmt(v['r_half'])}, loss ratio x2 at r {_fmt(v['r_fail_loss'])}" for a, v in s.items()]
