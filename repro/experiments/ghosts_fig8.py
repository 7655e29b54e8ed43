r"""Ghosts of softmax, Fig 8 and Appendix 5.4: random directions vs the gradient on a linear classifier.

Protocol (the released ``randomdirs`` experiment, paper/ghosts_notes.md §4.7; the paper itself
does not name the model, paper/ghosts_notes.md §5 item 12):

* Data: scikit-learn digits as the released code loads them, pixels/16, stratified 70/30
  train/test split with seed 42 (:func:`repro.tasks.digits.load_digits_split` with ``standardise=False``).
  All Fig 8 metrics are on the **training** split, as in the code.
* Model: ``nn.Linear(64, 10)`` (:mod:`repro.tasks.zoo` ``"linear"``), plain SGD lr 0.1, batch 64
  (epoch-wise reshuffled).  Checkpoints after 30 / 180 / 700 steps ("early / mid / late"), taken
  from one run per seed (identical to retraining each stage from scratch with the same seed).
* Directions: the **ascent** gradient ``+g/||g||`` of the full training loss (the released code
  adds ``tau * g/||g||``, paper/ghosts_notes.md §4.2; the paper just says "gradient") and 20 random
  directions (i.i.d. normal per parameter, unit global norm).
* Per direction: ``rho_a`` by one JVP on the training split (exact here: the logits are affine in
  the parameters), ``kappa = v^T H v`` by a Hessian-vector product, the Hessian step scale
  ``tau_H = 2/kappa``; sweep ``tau = r rho_a`` with ``r`` on ``logspace(-2, 2)`` (plus r = 1);
  record the loss ratio and the flip fraction (argmax changes) on the training split.
* Seeds: the paper uses one seed (42); here ``Config.seeds`` (init, batches and random directions
  vary, the split stays seed 42); medians over seeds are compared with the paper's single run.
* Appendix 5.4, "delta* ~ A + B ln eta with R^2 ~ 1 across learning rates" (no data, setting or
  definition given): our reading trains the same linear model for 700 steps at each learning rate
  of ``Config.lr_sweep`` and computes, along the gradient direction at the end of training,
  (i) the crossover margin of Eq. 48, ``delta* = ln(pi Delta_a / 2)`` with ``Delta_a = pi/rho_a``
  the bottleneck spread, and (ii) the effective margin implied by the measured Hessian/radius
  ratio through Eq. 47, ``delta_eff = ln(pi Delta_a (tau_H/rho_a) / 2)``; each is regressed on
  ``ln eta`` (medians over seeds) and R^2 is reported.  The verdict uses reading (i).

Failure thresholds: the shared ``FAILURE_LOSS_RATIO = 2`` defines the crossing r (loss ratio >= 2,
the released summary's threshold), in rho_a units and in Hessian units ``tau/tau_H``.

Paper numbers (Fig 8 of arXiv 2603.13552, read from the plot, paper/ghosts_notes.md §3): stage accuracies 73/91/94%; at r = 1 the loss ratio is
1.50/1.08, 1.48/1.14, 1.59/1.20 and the flip fraction 84/72%, 21/17%, 12/6% (gradient / median
random; early, mid, late).  Appendix 5.4: rho_a < 2/kappa in every one of 20 x 3 cases; the Hessian
scale overestimates rho_a by ~10x early and ~460x late.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from repro.cells import Cell
from repro.claims import claim, claims_of, get_claim
from repro.context import RunContext
from repro.experiments._ghosts_common import (FAILURE_LOSS_RATIO, curvature_along, first_crossing,
                                              gradient_direction, median_iqr, one_step_sweep, random_direction)
from repro.tasks.digits import load_digits_split
from repro.tasks.training import accuracy, train_classifier

ID = "ghosts_fig8"
TITLE = "Ghosts of softmax, Fig 8 / App. 5.4: gradient vs random directions on a linear digits classifier"
CLAIMS = claims_of(ID)
VERSION = 1

GRAD_COLOR, RANDOM_COLOR = "#D55E00", "#0072B2"


@dataclass(frozen=True)
class Config:
    stages: tuple[tuple[str, int], ...] = (("early", 30), ("mid", 180), ("late", 700))
    lr: float = 0.1
    batch_size: int = 64
    n_random: int = 20
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    split_seed: int = 42
    test_fraction: float = 0.3
    log10_r: tuple[float, float] = (-2.0, 2.0)
    n_r: int = 81
    lr_sweep: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    lr_sweep_steps: int = 700


CONFIGS = {
    "ci": Config(n_random=5, seeds=(0,), n_r=25, lr_sweep=(0.03, 0.1, 0.3), lr_sweep_steps=200),
    "cpu": Config(),
    "paper": Config(seeds=(42,)),
}


def r_grid(cfg: Config) -> np.ndarray:
    r = np.logspace(cfg.log10_r[0], cfg.log10_r[1], cfg.n_r)
    return np.unique(np.concatenate([r, [1.0]]))


def _direction_record(model, v, x, y, r) -> dict:
    from ghosts.radius_models import model_rho_a

    rho = model_rho_a(model, x, v)
    kappa = curvature_along(model, v, x, y)
    tau_h = 2.0 / kappa if kappa > 0 else math.inf
    sweep = one_step_sweep(model, v, r * rho, x, y)
    r_cross = first_crossing(r, sweep["loss_ratio"], FAILURE_LOSS_RATIO)
    return {"rho_a": rho, "kappa": kappa, "tau_h": tau_h, "hessian_over_rho": tau_h / rho,
            "loss_ratio": sweep["loss_ratio"], "flip_fraction": sweep["flip_fraction"],
            "r_cross": r_cross, "r_cross_hessian": r_cross * rho / tau_h}


def _seed_unit(seed: int, cfg: Config, ctx: RunContext) -> dict:
    from repro.tasks.zoo import build

    data = load_digits_split(seed=cfg.split_seed, test_fraction=cfg.test_fraction, val_fraction=0.0,
                             standardise=False)
    dev = ctx.device
    x, y = data.x_train.to(dev), data.y_train.to(dev)
    model = build("linear", ctx.torch_generator("init", seed, device="cpu"), device=dev)
    steps = tuple(s for _, s in cfg.stages)
    hist = train_classifier(model, x, y, steps=max(steps), optimizer=torch.optim.SGD(model.parameters(), lr=cfg.lr),
                            batch_size=cfg.batch_size,
                            generator=ctx.torch_generator("batches", seed, device="cpu"), snapshot_steps=steps)
    r = r_grid(cfg)
    stages = {}
    for name, step in cfg.stages:
        model.load_state_dict(hist["snapshots"][step])
        acc = accuracy(model, x, y)
        grad = _direction_record(model, gradient_direction(model, x, y, sign=+1), x, y, r)
        gen = ctx.torch_generator("random-directions", seed, name, device="cpu")
        rand = [_direction_record(model, random_direction(model, gen), x, y, r) for _ in range(cfg.n_random)]
        ctx.count_evals(len(r) * (1 + cfg.n_random))
        stages[name] = {
            "step": step, "train_acc": acc, "gradient": grad,
            "random": {k: np.asarray([d[k] for d in rand]) for k in rand[0]},
        }
    return {"seed": seed, "stages": stages}


def _lr_unit(lr: float, seed: int, cfg: Config, ctx: RunContext) -> dict:
    """Appendix 5.4 at one learning rate: train ``lr_sweep_steps`` from the seed's initialisation
    and batch order, then ``rho_a`` and ``tau_H`` along the gradient at the end."""
    from repro.tasks.zoo import build
    from ghosts.radius_models import model_rho_a

    data = load_digits_split(seed=cfg.split_seed, test_fraction=cfg.test_fraction, val_fraction=0.0,
                             standardise=False)
    dev = ctx.device
    x, y = data.x_train.to(dev), data.y_train.to(dev)
    model = build("linear", ctx.torch_generator("init", seed, device="cpu"), device=dev)
    hist = train_classifier(model, x, y, steps=cfg.lr_sweep_steps,
                            optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                            batch_size=cfg.batch_size,
                            generator=ctx.torch_generator("batches", seed, device="cpu"))
    v = gradient_direction(model, x, y, sign=+1)
    kappa = curvature_along(model, v, x, y)
    train_acc = accuracy(model, x, y)
    rho = model_rho_a(model, x, v)
    ctx.count_evals(cfg.lr_sweep_steps)
    return {"lr": lr, "rho_a": rho, "tau_h": 2.0 / kappa if kappa > 0 else math.inf,
            "train_acc": train_acc, "final_loss": float(hist["loss"][-1])}


def run(cfg: Config, ctx: RunContext) -> dict:
    """Cells: one per seed (the staged run and its directions, :func:`_seed_unit`) and one per
    (learning rate, seed) of the Appendix 5.4 sweep (:func:`_lr_unit`)."""
    cells = ([Cell(f"seed{s}", _seed_unit, (s, cfg)) for s in cfg.seeds]
             + [Cell(f"lr{lr:g}-seed{s}", _lr_unit, (lr, s, cfg)) for s in cfg.seeds for lr in cfg.lr_sweep])
    values = ctx.map(cells, desc="seeds and learning rates")
    seeds, sweep = values[:len(cfg.seeds)], iter(values[len(cfg.seeds):])
    lrs = []
    for _ in cfg.seeds:
        points = [next(sweep) for _ in cfg.lr_sweep]
        lrs.append({k: np.asarray([p[k] for p in points]) for k in ("lr", "rho_a", "tau_h", "train_acc", "final_loss")})
    return {"r": r_grid(cfg), "stages": [n for n, _ in cfg.stages], "seeds": list(cfg.seeds),
            "runs": seeds, "lr_sweep": lrs, "lr_sweep_steps": cfg.lr_sweep_steps, "n_random": cfg.n_random}


# ----------------------------------------------------------------------------------------------

def _at_r1(r: np.ndarray, curve: np.ndarray) -> float:
    return float(np.interp(0.0, np.log(r), curve))


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least squares ``y = A + B x``: ``(A, B, R^2)``."""
    b, a = np.polyfit(x, y, 1)
    res = y - (a + b * x)
    ss = float(((y - y.mean()) ** 2).sum())
    return float(a), float(b), float(1 - (res ** 2).sum() / ss) if ss > 0 else float("nan")


def summarize(results: dict) -> dict:
    r = np.asarray(results["r"])
    out = {"stages": {}}
    for name in results["stages"]:
        per_seed = [run["stages"][name] for run in results["runs"]]
        grad_lr = [_at_r1(r, s["gradient"]["loss_ratio"]) for s in per_seed]
        grad_flip = [_at_r1(r, s["gradient"]["flip_fraction"]) for s in per_seed]
        rand_lr = [float(np.median([_at_r1(r, c) for c in s["random"]["loss_ratio"]])) for s in per_seed]
        rand_flip = [float(np.median([_at_r1(r, c) for c in s["random"]["flip_fraction"]])) for s in per_seed]
        ratio_rand = np.concatenate([s["random"]["hessian_over_rho"] for s in per_seed])
        ratio_grad = np.asarray([s["gradient"]["hessian_over_rho"] for s in per_seed])
        cross = np.concatenate([s["random"]["r_cross"] for s in per_seed])
        cross_h = np.concatenate([s["random"]["r_cross_hessian"] for s in per_seed])

        def cv(a):
            a = a[np.isfinite(a)]
            return float(a.std() / a.mean()) if len(a) > 1 else float("nan")

        out["stages"][name] = {
            "train_acc": 100 * float(np.median([s["train_acc"] for s in per_seed])),
            "loss_ratio_r1": (float(np.median(grad_lr)), float(np.median(rand_lr))),
            "flip_r1": (100 * float(np.median(grad_flip)), 100 * float(np.median(rand_flip))),
            "rho_below_hessian": (int((ratio_rand > 1).sum()), int(ratio_rand.size)),
            "grad_rho_below_hessian": (int((ratio_grad > 1).sum()), int(ratio_grad.size)),
            "hessian_over_rho_random_median": float(np.median(ratio_rand)),
            "hessian_over_rho_random_range": (float(ratio_rand.min()), float(ratio_rand.max())),
            "hessian_over_rho_gradient_median": float(np.median(ratio_grad)),
            "r_cross_median": float(np.nanmedian(cross)), "r_cross_cv": cv(cross),
            "r_cross_hessian_median": float(np.nanmedian(cross_h)), "r_cross_hessian_cv": cv(cross_h),
            "grad_r_cross_median": float(np.nanmedian([s["gradient"]["r_cross"] for s in per_seed])),
        }
    lr = np.asarray(results["lr_sweep"][0]["lr"])
    rho = np.stack([u["rho_a"] for u in results["lr_sweep"]])
    tau_h = np.stack([u["tau_h"] for u in results["lr_sweep"]])
    delta_a = math.pi / rho
    d_star = np.median(np.log(math.pi * delta_a / 2), axis=0)
    d_eff = np.median(np.log(math.pi * delta_a * (tau_h / rho) / 2), axis=0)
    out["lr_sweep"] = {"lr": lr, "delta_star": d_star, "delta_eff": d_eff,
                       "fit_star": _fit(np.log(lr), d_star), "fit_eff": _fit(np.log(lr), d_eff),
                       "train_acc": 100 * np.median(np.stack([u["train_acc"] for u in results["lr_sweep"]]), axis=0)}
    return out


def _note(results: dict) -> str:
    return (f"linear digits classifier (released randomdirs protocol), median over {len(results['seeds'])} "
            "seed(s); the paper reports one seed")


def _paired(results: dict, key: str) -> list[list[float]]:
    """``[[gradient, median random], ...]`` of a summary key per stage (early, mid, late)."""
    return [[float(v) for v in st[key]] for st in summarize(results)["stages"].values()]


def _abs_errors(claim_id: str, values) -> list[float]:
    """``|measured - paper|`` element by element (flattened, in stage order) against the claim's
    registered ``paper_value``; shorter than the paper's list when a stage is missing."""
    flat = np.asarray(values, dtype=float).ravel()
    paper = np.asarray(get_claim(claim_id).paper_value, dtype=float).ravel()
    return [float(abs(v - p)) for v, p in zip(flat, paper)]


def _paired_evidence(claim_id: str, vals: list[list[float]]) -> dict:
    """Evidence of a [gradient, random] x stage claim: the values, their distance to the paper's,
    gradient - random per stage and the stage-to-stage drop of each direction's value."""
    return {"values": vals, "abs_err": _abs_errors(claim_id, vals),
            "gradient_minus_random": [g - r for g, r in vals],
            "stage_drop": [vals[i][k] - vals[i + 1][k] for i in range(len(vals) - 1) for k in (0, 1)]}


@claim("ghosts.fig8_stage_accuracies")
def _stage_accuracies(results: dict) -> dict:
    st = summarize(results)["stages"]
    names = list(st)
    acc = [st[n]["train_acc"] for n in names]
    lo = [100 * min(rr["stages"][n]["train_acc"] for rr in results["runs"]) for n in names]
    hi = [100 * max(rr["stages"][n]["train_acc"] for rr in results["runs"]) for n in names]
    cid = "ghosts.fig8_stage_accuracies"
    paper = list(get_claim(cid).paper_value)
    inside = len(acc) == len(paper) and all(a <= p <= b for a, p, b in zip(lo, paper, hi))
    return {
        "value": [round(a, 1) for a in acc],
        "detail": f"train-split accuracy (%) after {[results['runs'][0]['stages'][n]['step'] for n in names]} SGD "
                  "steps; per-seed range: " + ", ".join(f"{n} {a:.1f}-{b:.1f}%" for n, a, b in zip(names, lo, hi))
                  + f"; the paper's single-seed values lie {'inside' if inside else 'outside'} these per-seed ranges"
                  + f"; {_note(results)}",
        "evidence": {"train_acc": acc, "abs_err": _abs_errors(cid, acc), "seed_min": lo, "seed_max": hi,
                     "paper_inside_seed_range": inside}}


@claim("ghosts.fig8_loss_ratio_at_r1")
def _loss_ratio_at_r1(results: dict) -> dict:
    vals = _paired(results, "loss_ratio_r1")
    return {"value": [[round(v, 2) for v in pair] for pair in vals],
            "detail": "[gradient (ascent), median of random] loss ratio at r = 1 per stage (early, mid, late); "
                      + _note(results),
            "evidence": _paired_evidence("ghosts.fig8_loss_ratio_at_r1", vals)}


@claim("ghosts.fig8_flip_fraction_at_r1")
def _flip_fraction_at_r1(results: dict) -> dict:
    vals = _paired(results, "flip_r1")
    return {"value": [[round(v, 1) for v in pair] for pair in vals],
            "detail": "[gradient, median random] flip fraction (%) at r = 1 per stage (early, mid, late). The early "
                      f"stage already flips {vals[0][1]:.0f}% of predictions at r = 1 along random directions, so "
                      "'no failure below r = 1' holds for loss, not for prediction churn; " + _note(results),
            "evidence": _paired_evidence("ghosts.fig8_flip_fraction_at_r1", vals)}


@claim("ghosts.app54_rho_a_below_hessian_scale")
def _rho_a_below_hessian_scale(results: dict) -> dict:
    st = summarize(results)["stages"]
    names = list(st)
    below = [st[n]["rho_below_hessian"] for n in names]
    hit, tot = sum(b[0] for b in below), sum(b[1] for b in below)
    grad = [st[n]["grad_rho_below_hessian"] for n in names]
    return {
        "value": f"{hit}/{tot}",
        "detail": "random directions with rho_a < 2/kappa, per stage: "
                  + ", ".join(f"{n} {b[0]}/{b[1]}" for n, b in zip(names, below))
                  + f" ({results['n_random']} directions x {len(results['seeds'])} seed(s)); gradient direction: "
                  + ", ".join(f"{n} {g[0]}/{g[1]}" for n, g in zip(names, grad))
                  + "; the paper's source experiment is unspecified (randomdirs or phasetransition)",
        "evidence": {"below": hit, "total": tot, "gradient_below": sum(g[0] for g in grad),
                     "gradient_total": sum(g[1] for g in grad)}}


@claim("ghosts.app54_hessian_overestimate_growth")
def _hessian_overestimate_growth(results: dict) -> dict:
    st = summarize(results)["stages"]
    names = list(st)
    rand = [st[n]["hessian_over_rho_random_median"] for n in names]
    grad = [st[n]["hessian_over_rho_gradient_median"] for n in names]
    late_range = st[names[-1]]["hessian_over_rho_random_range"]
    return {
        "value": f"{rand[0]:.3g}x -> {rand[-1]:.3g}x",
        "detail": "median over random directions of (2/kappa)/rho_a, early -> late: "
                  + " -> ".join(f"{v:.3g}x" for v in rand)
                  + f" (range late {late_range[0]:.3g}-{late_range[1]:.3g}x); "
                    f"gradient direction {grad[0]:.3g}x -> {grad[-1]:.3g}x; " + _note(results),
        "evidence": {"early": rand[0], "late": rand[-1], "random_median_per_stage": rand,
                     "gradient_median_per_stage": grad, "late_range": list(late_range)}}


@claim("ghosts.app54_crossover_vs_lr")
def _crossover_vs_lr(results: dict) -> dict:
    lr = summarize(results)["lr_sweep"]
    a, b, r2 = lr["fit_star"]
    ae, be, r2e = lr["fit_eff"]
    return {
        "value": r2,
        "detail": f"our reading (undefined in the paper): delta* = ln(pi Delta_a/2) along the gradient after "
                  f"{results['lr_sweep_steps']} SGD steps at eta in {[float(e) for e in lr['lr']]}: "
                  f"{[round(float(e), 3) for e in lr['delta_star']]}, fit A={a:.3f}, B={b:.3f}, R^2={r2:.3f}; "
                  f"effective margin ln(pi Delta_a tau_H/(2 rho_a)): {[round(float(e), 3) for e in lr['delta_eff']]}, "
                  f"A={ae:.3f}, B={be:.3f}, R^2={r2e:.3f}",
        "evidence": {"r2_star": r2, "slope_star": b, "intercept_star": a, "r2_eff": r2e, "slope_eff": be,
                     "intercept_eff": ae, "lr": [float(e) for e in lr["lr"]],
                     "delta_star": [float(e) for e in lr["delta_star"]],
                     "delta_eff": [float(e) for e in lr["delta_eff"]]}}


def table(results: dict) -> str:
    s = summarize(results)
    lines = ["| stage | train acc | loss ratio r=1 (grad / random) | flips r=1 (grad / random) "
             "| rho_a < 2/kappa | (2/kappa)/rho_a random (median) | gradient | r(loss x2) random (CV) "
             "| tau/tau_H at loss x2 (CV) |",
             "|---|---|---|---|---|---|---|---|---|"]
    paper_acc = get_claim("ghosts.fig8_stage_accuracies").paper_value
    paper_loss = get_claim("ghosts.fig8_loss_ratio_at_r1").paper_value
    paper_flip = get_claim("ghosts.fig8_flip_fraction_at_r1").paper_value
    for i, (n, v) in enumerate(s["stages"].items()):
        pa = f" (paper {paper_acc[i]:g}%)" if i < 3 else ""
        pl = f" (paper {paper_loss[i][0]:g} / {paper_loss[i][1]:g})" if i < 3 else ""
        pf = f" (paper {paper_flip[i][0]:g} / {paper_flip[i][1]:g})" if i < 3 else ""
        lines.append(f"| {n} | {v['train_acc']:.1f}%{pa} "
                     f"| {v['loss_ratio_r1'][0]:.2f} / {v['loss_ratio_r1'][1]:.2f}{pl} "
                     f"| {v['flip_r1'][0]:.0f}% / {v['flip_r1'][1]:.0f}%{pf} "
                     f"| {v['rho_below_hessian'][0]}/{v['rho_below_hessian'][1]} "
                     f"| {v['hessian_over_rho_random_median']:.3g}x | {v['hessian_over_rho_gradient_median']:.3g}x "
                     f"| {v['r_cross_median']:.3g} ({v['r_cross_cv']:.2f}) "
                     f"| {v['r_cross_hessian_median']:.3g} ({v['r_cross_hessian_cv']:.2f}) |")
    lr = s["lr_sweep"]
    lines += ["", "| eta | train acc | delta* = ln(pi Delta_a/2) | delta_eff |", "|---|---|---|---|"]
    for e, acc, d, de in zip(lr["lr"], lr["train_acc"], lr["delta_star"], lr["delta_eff"]):
        lines.append(f"| {e:g} | {acc:.1f}% | {d:.3f} | {de:.3f} |")
    lines.append(f"\nFits on ln eta: delta* R^2 = {lr['fit_star'][2]:.3f}, delta_eff R^2 = {lr['fit_eff'][2]:.3f}. "
                 f"Medians over {len(results['seeds'])} seed(s); gradient = ascent direction +g/||g||.")
    return "\n".join(lines)


def plot(results: dict):
    import matplotlib.pyplot as plt

    r = np.asarray(results["r"])
    s = summarize(results)
    names = results["stages"]
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 7.0), sharex=True)
    axes = np.atleast_2d(axes)
    for j, name in enumerate(names):
        per_seed = [run["stages"][name] for run in results["runs"]]
        for i, key in enumerate(("loss_ratio", "flip_fraction")):
            ax = axes[i, j]
            scale = 100.0 if key == "flip_fraction" else 1.0
            rand = scale * np.concatenate([p["random"][key] for p in per_seed])
            lo, med, hi = np.nanpercentile(rand, [10, 50, 90], axis=0)
            ax.plot(r, med, color=RANDOM_COLOR, label=f"random: median of {rand.shape[0]}, 10-90%")
            ax.fill_between(r, lo, hi, color=RANDOM_COLOR, alpha=0.2, lw=0)
            grad = scale * np.stack([p["gradient"][key] for p in per_seed])
            gm, g25, g75 = median_iqr(grad)
            ax.plot(r, gm, color=GRAD_COLOR, label="gradient +g/||g||: median, IQR")
            ax.fill_between(r, g25, g75, color=GRAD_COLOR, alpha=0.25, lw=0)
            ax.axvline(1.0, color="0.3", ls="--", lw=1)
            ax.set_xscale("log")
            ax.set_xlim(r[0], r[-1])
            if key == "loss_ratio":
                ax.axhline(FAILURE_LOSS_RATIO, color="0.5", ls=":", lw=1)
                ax.set_ylim(0, 10)
                ax.set_title(f"{name} ({per_seed[0]['step']} steps, train acc {s['stages'][name]['train_acc']:.0f}%)")
                if j == 0:
                    ax.set_ylabel(r"loss ratio $L(\theta+\tau v)/L(\theta)$")
            else:
                ax.set_ylim(0, 100)
                ax.set_xlabel(r"$r = \tau/\rho_a(v)$")
                if j == 0:
                    ax.set_ylabel("prediction flips (% of training samples)")
    axes[0, 0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"One step along the gradient vs {results['n_random']} random directions, linear classifier on "
                 f"digits (train split, {len(results['seeds'])} seed(s))", fontsize=11)
    fig.tight_layout()

    fig2, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for j, name in enumerate(names):
        per_seed = [run["stages"][name] for run in results["runs"]]
        rand = np.concatenate([p["random"]["hessian_over_rho"] for p in per_seed])
        jitter = np.linspace(-0.15, 0.15, len(rand))
        a1.scatter(j + jitter, rand, s=10, color=RANDOM_COLOR, alpha=0.6, label="random" if j == 0 else None)
        grad = [p["gradient"]["hessian_over_rho"] for p in per_seed]
        a1.scatter(np.full(len(grad), j), grad, s=40, marker="D", color=GRAD_COLOR,
                   label="gradient" if j == 0 else None)
    a1.axhline(1.0, color="0.3", ls="--", lw=1)
    a1.set(yscale="log", xticks=range(len(names)), xticklabels=names,
           ylabel=r"Hessian scale / radius $(2/\kappa)/\rho_a$", title="Hessian step scale vs rho_a per direction")
    a1.legend(fontsize=8)
    lr = s["lr_sweep"]
    for key, label, marker in (("delta_star", r"$\delta^*=\ln(\pi\Delta_a/2)$", "o"),
                               ("delta_eff", r"$\delta_{eff}=\ln(\pi\Delta_a\tau_H/(2\rho_a))$", "s")):
        fit = lr["fit_star" if key == "delta_star" else "fit_eff"]
        a2.plot(lr["lr"], lr[key], marker=marker, ls="none", label=f"{label}, $R^2$={fit[2]:.2f}")
        xs = np.log(lr["lr"])
        a2.plot(lr["lr"], fit[0] + fit[1] * xs, color="0.5", lw=1)
    a2.set_xscale("log")
    a2.set_xticks(lr["lr"], [f"{e:g}" for e in lr["lr"]])
    a2.minorticks_off()
    a2.set(xlabel=rf"SGD learning rate $\eta$ ({results['lr_sweep_steps']}-step runs)", ylabel="margin (logit units)",
           title="crossover margin vs learning rate (our reading of App. 5.4)")
    a2.legend(fontsize=8)
    fig2.tight_layout()
    return {"": fig, "hessian": fig2}


def summary_lines(results: dict) -> list[str]:
    s = summarize(results)
    return [f"  {n}: acc {v['train_acc']:.1f}%, "
            f"loss ratio r=1 {v['loss_ratio_r1'][0]:.2f}/{v['loss_ratio_r1'][1]:.2f}, "
            f"flips {v['flip_r1'][0]:.0f}%/{v['flip_r1'][1]:.0f}%, "
            f"(2/kappa)/rho_a {v['hessian_over_rho_random_median']:.3g}x"
            for n, v in s["stages"].items()]
