r"""Ghosts of softmax, Figure 6: a 1000x learning-rate spike, plain Adam vs the rho_a controller.

Protocol (paper/ghosts_notes.md §4.4, the authors' ``experiments/lrspike``)
---------------------------------------------------------------------------
* Data: scikit-learn digits, pixels / 16 (the authors' preprocessing, not the package's
  standardisation), a stratified 80/20 train/test split drawn per seed (1437 train / 360 test;
  :func:`repro.tasks.digits.load_digits_split` with ``standardise=False``, test fraction 0.2 and
  no validation part, a child seed of the root seed as ``random_state``, where the authors used the
  run seed itself).
* Model: MLP 64-128-10, ReLU, PyTorch-default initialisation drawn from the seed's generator.
* Optimizer: ``torch.optim.Adam`` (beta = (0.9, 0.999), eps = 1e-8, bias corrected).  Its update
  ``theta <- theta - eta * m_hat / (sqrt(v_hat) + eps)`` is exactly the authors' custom Adam
  (same formula, same eps placement); the custom class exists in the authors' code only so that
  ``eta_eff`` can be changed per step, which :class:`~ghosts.radius_controller.RadiusController`
  does by rescaling the displacement (Adam's moments do not depend on ``eta``).
* Mini-batches of 64 from per-epoch permutations (:class:`repro.tasks.batches.BatchStream`), 200 steps.
* Learning rate ``eta_t = eta0`` for ``t < 50`` and ``1000 * eta0`` for ``t >= 50`` (held to the
  end: 150 steps at the spiked rate), ``eta0`` in {1e-4, 1e-3, 1e-2}, i.e. post-spike rates 0.1, 1, 10.
* Controller: :class:`~ghosts.radius_controller.RadiusController` in mode ``"actual_step"`` with
  ``r_target = 1`` -- the exact controller of Proposition 5.2: Adam proposes ``p = eta_t u``,
  ``rho_a`` is computed by one JVP along ``p/||p||`` on the whole training split (eval mode) and the
  realized step is ``min(||p||, rho_a)``.  This is the authors' lrspike controller
  (``eta_eff = min(eta_t, rho_a/||u||)``) written as a clip of the displacement.
* Plain Adam: ``rho_a`` is computed along *its own* step at every step as well (logging only), so
  the right-hand panels can show ``tau_plain / rho_a(plain direction)``.  The paper's panel plots
  ``rho_a`` of the *controller* runs next to ``tau_plain`` (paper/ghosts_notes.md §5 item 8); both are shown.
* Logged at every step ``t`` before the update: mini-batch training loss and test accuracy; for the
  update itself: realized ``tau``, ``rho_a`` and ``r = tau/rho_a``.  The final test accuracy is
  evaluated after step 199.  A non-finite loss or step stops a run; the rest is padded with NaN
  and the run is scored at chance (10%) accuracy (it never happened at these settings).
* Seeds 0-4 (five child seeds of the root seed: split, initialisation and batch order), median and
  inter-quartile range over seeds, as in the paper.

Paper's numbers (Fig. 6 of arXiv 2603.13552 and its text; paper/ghosts_notes.md §3)
------------------------------------------------------------------------------------
* Controller ~95-97% final test accuracy in all three rows.
* Row 1 (post-spike LR 0.1): both recover; the text says "tau stays below rho_a", but the paper's
  own right panel shows tau_plain ~1.3-2x rho_a after the spike.
* Row 2 (post-spike LR 1): the text says plain accuracy drops to "~50%" ("partial recovery");
  the plot shows ~20% with no recovery, tau ~10x rho_a.
* Row 3 (post-spike LR 10): plain falls to chance (~10%), tau ~100x rho_a.

Failure criteria (shared by every ghosts experiment, :mod:`repro.experiments._ghosts_common`):
a run "recovers" when its final test accuracy retains at least ``FAILURE_ACC_RETAINED`` = 90% of
its pre-spike test accuracy (the accuracy logged just before step 50); otherwise it "collapses".
``r = tau/rho_a > 1`` is reported as the fraction and the median over post-spike steps.

Claims: one ``@claim`` measuring function per claim returns the measured numbers (``evidence``:
``retained`` = median over seeds of final / pre-spike accuracy, ``r_median``, ...); the verdict is
the rule registered for the claim in ``paper/claims.toml`` (``polystep-repro claim <id>``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as Fn

from repro.cells import Cell
from repro.claims import claim, claims_of
from repro.context import RunContext
from repro.experiments._ghosts_common import FAILURE_ACC_RETAINED, plot_median_iqr
from repro.tasks.digits import load_digits_split
from repro.tasks.training import accuracy, cross_entropy_backward

ID = "ghosts_fig6"
TITLE = "Ghosts of softmax, Fig. 6: a held 1000x LR spike, plain Adam vs the rho_a controller"
CLAIMS = claims_of(ID)
VERSION = 1

METHODS = ("plain", "controller")
LABELS = {"plain": "plain Adam", "controller": r"$\rho_a$ controller (exact, $r \leq 1$)"}
TEXT_LABELS = {"plain": "plain Adam", "controller": "rho_a controller (exact, r <= 1)"}
COLORS = {"plain": "#D55E00", "controller": "#E69F00", "rho": "#009E73"}
CHANCE = 0.10


@dataclass(frozen=True)
class Config:
    eta0s: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    spike_mult: float = 1000.0
    spike_step: int = 50          # eta_t = spike_mult * eta0 for t >= spike_step (held)
    steps: int = 200
    batch_size: int = 64
    hidden: int = 128
    r_target: float = 1.0
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)


CONFIGS = {
    "ci": Config(steps=40, spike_step=15, seeds=(0,)),
    "cpu": Config(),
    "paper": Config(),  # same data set and sizes as the paper: the cpu run *is* the paper's protocol
}


def _data(seed: int, device):
    """Stratified 80/20 split of digits, pixels / 16 (the released lrspike preprocessing)."""
    split = load_digits_split(seed=seed, test_fraction=0.2, val_fraction=0.0, standardise=False)
    return (split.x_train.to(device), split.y_train.to(device),
            split.x_test.to(device), split.y_test.to(device))


def _train(method: str, eta0: float, seed: int, cfg: Config, ctx: RunContext) -> dict:
    from repro.tasks.batches import BatchStream
    from repro.tasks.models import mlp
    from ghosts.radius_controller import RadiusController
    from ghosts.radius_models import model_rho_a

    dev = ctx.device
    x_tr, y_tr, x_te, y_te = _data(ctx.child_seed("split", seed) % 2**32, dev)
    model = mlp((64, cfg.hidden, 10), ctx.torch_generator("init", seed, device="cpu"), device=dev)
    batches = BatchStream(x_tr, y_tr, cfg.batch_size, ctx.torch_generator("batches", seed, device="cpu"))
    opt = torch.optim.Adam(model.parameters(), lr=eta0, betas=(0.9, 0.999), eps=1e-8)
    ctrl = RadiusController(opt, model, cfg.r_target, mode="actual_step", rho_inputs=x_tr) \
        if method == "controller" else None
    params = list(model.parameters())
    names = [k for k, _ in model.named_parameters()]
    n = cfg.steps
    log = {k: np.full(n, np.nan) for k in ("loss", "test_acc", "tau", "rho_a", "lr")}
    stopped = None
    for t in range(n):
        lr = eta0 * (cfg.spike_mult if t >= cfg.spike_step else 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        xb, yb = next(batches)
        log["test_acc"][t] = accuracy(model, x_te, y_te)
        log["lr"][t] = lr
        loss = cross_entropy_backward(model, opt, xb, yb)
        log["loss"][t] = float(loss)
        if not math.isfinite(log["loss"][t]):
            stopped = t
            break
        if ctrl is not None:
            try:
                ctrl.step()
            except FloatingPointError:
                stopped = t
                break
            h = ctrl.history[-1]
            log["tau"][t], log["rho_a"][t] = h["tau"], h["rho_a"]
        else:
            old = [p.detach().clone() for p in params]
            opt.step()
            with torch.no_grad():
                disp = [p.detach() - o for p, o in zip(params, old)]
                tau = math.sqrt(sum(float((d.double() ** 2).sum()) for d in disp))
            if not math.isfinite(tau):
                stopped = t
                break
            log["tau"][t] = tau
            if tau > 0:
                log["rho_a"][t] = model_rho_a(model, x_tr, {k: d / tau for k, d in zip(names, disp)},
                                              params=dict(zip(names, old)))
        ctx.count_evals(1)
    if stopped is None:
        final_acc = accuracy(model, x_te, y_te)
        with torch.no_grad():
            final_loss = float(Fn.cross_entropy(model(x_te), y_te))
    else:
        final_acc, final_loss = CHANCE, math.inf
    return {**log, "final_test_acc": final_acc, "final_test_loss": final_loss,
            "stopped_at": -1 if stopped is None else stopped}


def run(cfg: Config, ctx: RunContext) -> dict:
    """One cell per (eta0, method, seed): a whole training run (:func:`_train`)."""
    cells = [Cell(f"eta{eta0:g}-{method}-seed{s}", _train, (method, eta0, s, cfg))
             for eta0 in cfg.eta0s for method in METHODS for s in cfg.seeds]
    values = iter(ctx.map(cells, desc="eta0 x method x seed"))
    rows = []
    for eta0 in cfg.eta0s:
        row = {"eta0": eta0, "post_spike_lr": eta0 * cfg.spike_mult}
        for method in METHODS:
            runs = [next(values) for _ in cfg.seeds]
            row[method] = {k: np.stack([np.asarray(r[k], dtype=float) for r in runs])
                           for k in runs[0]}
        rows.append(row)
    return {"rows": rows, "seeds": list(cfg.seeds), "spike_step": cfg.spike_step,
            "spike_mult": cfg.spike_mult, "steps": cfg.steps, "r_target": cfg.r_target,
            "full_protocol": cfg.steps == 200 and cfg.spike_step == 50 and len(cfg.seeds) >= 5}


# ---------------------------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------------------------

def _stats(row: dict, method: str, spike: int) -> dict:
    """Median-over-seeds summaries of one (eta0, method) cell."""
    r = row[method]
    pre = r["test_acc"][:, spike - 1]
    final = r["final_test_acc"]
    ratio = r["tau"][:, spike:] / r["rho_a"][:, spike:]
    out = {"final_acc": float(np.median(final)), "pre_acc": float(np.median(pre)),
           "r_first": float(np.nanmedian(ratio[:, 0])),
           "retained": float(np.median(final / pre)),
           "r_median": float(np.nanmedian(np.nanmedian(ratio, axis=1))),
           "frac_r_gt_1": float(np.nanmedian(np.nanmean(ratio > 1 + 1e-9, axis=1))),
           "iqr": [float(q) for q in np.percentile(final, [25, 75])]}
    if method == "plain":  # the paper's panel: tau_plain against the controller runs' rho_a
        paper_ratio = r["tau"][:, spike:] / row["controller"]["rho_a"][:, spike:]
        out["r_vs_ctrl_rho"] = float(np.nanmedian(np.nanmedian(paper_ratio, axis=1)))
    out["recovers"] = out["retained"] >= FAILURE_ACC_RETAINED
    return out


def summary(results: dict) -> list[dict]:
    s = results["spike_step"]
    return [{"eta0": row["eta0"], "post_spike_lr": row["post_spike_lr"],
             **{m: _stats(row, m, s) for m in METHODS}} for row in results["rows"]]


def _scale_note(results: dict) -> str:
    if results["full_protocol"]:
        return ""
    return (f" (reduced run: {len(results['seeds'])} seed(s), {results['steps']} steps, spike at "
            f"{results['spike_step']}; the claims need the 200-step, 5-seed protocol)")


def _row(results: dict, eta0: float) -> dict | None:
    """The summary of the row with this ``eta0`` (None when the run has no such row)."""
    return next((r for r in summary(results) if round(r["eta0"], 12) == round(eta0, 12)), None)


def _plain_evidence(p: dict) -> dict:
    """Evidence of a plain-Adam row: accuracies (fractions), retention and the tau/rho_a ratios."""
    return {"final_acc": p["final_acc"], "pre_acc": p["pre_acc"], "retained": p["retained"],
            "final_acc_iqr": p["iqr"], "r_first": p["r_first"], "r_median": p["r_median"],
            "frac_r_gt_1": p["frac_r_gt_1"], "r_vs_ctrl_rho": p["r_vs_ctrl_rho"]}


@claim("ghosts.fig6_controller_survives_spike")
def _controller_survives_spike(results: dict) -> dict:
    rows = summary(results)
    ctrl = {r["eta0"]: r["controller"] for r in rows}
    worst = min(c["final_acc"] for c in ctrl.values())
    detail = "controller median final test acc per eta0: " + ", ".join(
        f"{e:g}: {100 * c['final_acc']:.1f}% (IQR {100 * c['iqr'][0]:.1f}-{100 * c['iqr'][1]:.1f}, "
        f"r<=1 always: {c['frac_r_gt_1'] == 0})" for e, c in ctrl.items()) + "; value = worst row"
    return {"value": 100 * worst, "detail": detail + _scale_note(results),
            "evidence": {"eta0": list(ctrl), "final_acc_percent": [100 * c["final_acc"] for c in ctrl.values()],
                         "frac_r_gt_1": [c["frac_r_gt_1"] for c in ctrl.values()]}}


@claim("ghosts.fig6_row1_plain_recovers")
def _row1_plain_recovers(results: dict) -> dict | None:
    row = _row(results, 1e-4)
    if row is None:
        return None
    p1 = row["plain"]
    recovers = p1["recovers"]  # the shared ghosts definition (FAILURE_ACC_RETAINED), for the text only
    return {
        "value": f"final {100 * p1['final_acc']:.1f}% (retained {100 * p1['retained']:.0f}%), "
                 f"median tau/rho_a {p1['r_median']:.2f}",
        "detail": (f"plain Adam at post-spike LR {row['post_spike_lr']:g}: "
                   f"{'recovers' if recovers else 'does not recover'} "
                   f"(>= {100 * FAILURE_ACC_RETAINED:.0f}% of the pre-spike accuracy "
                   f"{100 * p1['pre_acc']:.1f}%); after the spike tau/rho_a has median {p1['r_median']:.2f} "
                   f"along plain Adam's own step ({100 * p1['frac_r_gt_1']:.0f}% of the steps have r > 1) "
                   f"and {p1['r_vs_ctrl_rho']:.2f} against the controller runs' rho_a (the paper's panel)"
                   + ("; so the run recovers although tau exceeds rho_a: r < 1 is sufficient, not necessary"
                      if recovers and p1["r_median"] >= 1 else "") + _scale_note(results)),
        "evidence": _plain_evidence(p1)}


@claim("ghosts.fig6_row2_plain_collapse")
def _row2_plain_collapse(results: dict) -> dict | None:
    row = _row(results, 1e-3)
    if row is None:
        return None
    p2 = row["plain"]
    acc = 100 * p2["final_acc"]
    return {
        "value": acc,
        "detail": (f"plain Adam at post-spike LR {row['post_spike_lr']:g}: median final test acc {acc:.1f}% "
                   f"(IQR {100 * p2['iqr'][0]:.1f}-{100 * p2['iqr'][1]:.1f}; chance {100 * CHANCE:g}%), "
                   f"{'no recovery' if not p2['recovers'] else 'recovers'} (retained "
                   f"{100 * p2['retained']:.0f}% of the pre-spike accuracy); r = tau/rho_a of the first "
                   f"spiked step {p2['r_first']:.1f}, median over the post-spike steps {p2['r_median']:.1f} "
                   f"along plain Adam's own step and {p2['r_vs_ctrl_rho']:.1f} against the controller runs' "
                   f"rho_a (the paper's panel)" + _scale_note(results)),
        "evidence": _plain_evidence(p2)}


@claim("ghosts.fig6_row3_plain_chance")
def _row3_plain_chance(results: dict) -> dict | None:
    row = _row(results, 1e-2)
    if row is None:
        return None
    p3 = row["plain"]
    return {
        "value": 100 * p3["final_acc"],
        "detail": (f"plain Adam at post-spike LR {row['post_spike_lr']:g}: median final test acc "
                   f"{100 * p3['final_acc']:.1f}% (IQR {100 * p3['iqr'][0]:.1f}-{100 * p3['iqr'][1]:.1f}); "
                   f"r = tau/rho_a of the first spiked step {p3['r_first']:.0f}, median over the post-spike "
                   f"steps {p3['r_median']:.1f} along plain Adam's own step (its rho_a grows once the "
                   f"network is dead) and {p3['r_vs_ctrl_rho']:.0f} against the controller runs' "
                   f"rho_a (the paper's panel)" + _scale_note(results)),
        "evidence": _plain_evidence(p3)}


# ---------------------------------------------------------------------------------------------
# figure and summary
# ---------------------------------------------------------------------------------------------

def _band(ax, steps, arr, color, label, scale=1.0, ls="-"):
    if np.isfinite(arr).any():
        plot_median_iqr(ax, steps, np.asarray(arr) * scale, color=color, label=label, ls=ls, alpha=0.22)


def plot(results: dict):
    import warnings

    import matplotlib.pyplot as plt

    rows = results["rows"]
    spike = results["spike_step"]
    steps = np.arange(results["steps"])
    summ = summary(results)
    fig, axes = plt.subplots(len(rows), 3, figsize=(13, 3.1 * len(rows) + 0.6), squeeze=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns after a stopped run
        for i, (row, s) in enumerate(zip(rows, summ)):
            ax_l, ax_a, ax_t = axes[i]
            for m in METHODS:
                _band(ax_l, steps, row[m]["loss"], COLORS[m], LABELS[m])
                _band(ax_a, steps, row[m]["test_acc"], COLORS[m],
                      f"{LABELS[m]}: final {100 * s[m]['final_acc']:.1f}%", scale=100)
            _band(ax_t, steps, row["controller"]["rho_a"], COLORS["rho"], r"$\rho_a$ (controller runs)")
            _band(ax_t, steps, row["plain"]["rho_a"], COLORS["rho"], r"$\rho_a$ along plain Adam's step",
                  ls="--")
            _band(ax_t, steps, row["plain"]["tau"], COLORS["plain"], r"$\tau$ plain Adam")
            _band(ax_t, steps, row["controller"]["tau"], COLORS["controller"], r"$\tau$ controller")
            lr = f"$\\eta_0$ = {row['eta0']:g} → {row['post_spike_lr']:g} from step {spike}"
            ax_l.set(yscale="log", ylabel="mini-batch train loss", title=f"train loss ({lr})")
            ax_a.set(ylabel="test accuracy (%)", ylim=(0, 100),
                     title=f"test accuracy (plain: r = {s['plain']['r_first']:.2g} at the spike)")
            ax_a.axhline(100 * CHANCE, color="0.5", ls=":", lw=1)
            ax_t.set(yscale="log", ylabel="parameter-space distance",
                     title=r"step length $\tau$ vs radius $\rho_a$")
            for ax in axes[i]:
                ax.axvline(spike, color="0.35", ls="--", lw=1)
                if i == len(rows) - 1:
                    ax.set_xlabel("optimizer step")
            if i == 0:
                ax_l.legend(loc="lower left", fontsize=8)
                ax_t.legend(loc="lower right", fontsize=7.5, ncol=2)
            ax_a.legend(loc="center right", fontsize=8)
    n = len(results["seeds"])
    fig.suptitle(f"Held {results['spike_mult']:g}x LR spike on digits (MLP 64-128-10, Adam, batch 64): "
                 f"median and IQR over {n} seed{'s' if n > 1 else ''}; dashed line = spike onset", fontsize=11)
    fig.tight_layout()
    return fig


def table(results: dict) -> str:
    lines = ["| eta0 | post-spike LR | method | pre-spike acc | final test acc (median, IQR) | retained | "
             "r at the first spiked step | median r after spike | steps with r > 1 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in summary(results):
        for m in METHODS:
            c = s[m]
            lines.append(f"| {s['eta0']:g} | {s['post_spike_lr']:g} | {TEXT_LABELS[m]} "
                         f"| {100 * c['pre_acc']:.1f}% | {100 * c['final_acc']:.1f}% "
                         f"({100 * c['iqr'][0]:.1f}-{100 * c['iqr'][1]:.1f}) | {100 * c['retained']:.0f}% "
                         f"| {c['r_first']:.3g} | {c['r_median']:.3g} | {100 * c['frac_r_gt_1']:.0f}% |")
    lines.append("")
    lines.append(f"Recovery = final accuracy >= {100 * FAILURE_ACC_RETAINED:.0f}% of the pre-spike accuracy "
                 "(shared ghosts threshold). tau/rho_a uses rho_a along each run's own step.")
    return "\n".join(lines)


def summary_lines(results: dict) -> list[str]:
    return [f"  eta0={s['eta0']:g}: plain {100 * s['plain']['final_acc']:.1f}% "
            f"(r = {s['plain']['r_first']:.3g} at the spike), controller {100 * s['controller']['final_acc']:.1f}%"
            for s in summary(results)]
