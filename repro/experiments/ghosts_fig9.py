r"""Ghosts of softmax, Fig 9: the temperature fingerprint of the radius, rho_T = pi T / Delta_a.

Protocol (the released ``tempfingerprint`` experiment, paper/ghosts_notes.md §4.6):

* Data: scikit-learn digits as the released code loads them, pixels/16, stratified train/test
  split (test 0.2, split seed ``Config.split_seed`` for every seed; the notes do not give the
  code's split) via :func:`repro.tasks.digits.load_digits_split` (``standardise=False``); everything below
  is on the training split.
* For each seed and temperature T in {0.25, 0.5, 1, 2, 4, 8} (the plotted and released set; the
  caption's 16 and 64 are not in the plot or the code): train the MLP 64-128-128-10 GELU
  (:mod:`repro.tasks.zoo` ``"mlp"``) with Adam lr 0.01 on mini-batches of 256 (epoch-wise
  reshuffled rather than an independent draw per step), 120 steps, loss ``CE(z/T)``.
* Direction: descent ``v = -grad L_T / ||grad L_T||`` on the training split.
* ``Delta_a``: spread of the directional derivative of the **raw** (untempered) logits by finite
  differences (central, :func:`ghosts.radius_models.directional_logit_derivatives_fd` with its
  default step ``h = eps^(1/3)``; the released code uses a forward difference with 1e-4); the JVP
  value is stored as a check.  ``rho_T = pi T / Delta_a``.
* Sweep ``tau = geomspace(1e-4, max(4 rho_T, 2), n_tau)`` (the released grid), record the tempered
  loss ratio ``L_T(theta + tau v)/L_T(theta)`` and the flip fraction; ``r_T = tau Delta_a/(pi T)``.
* Bands: median and IQR over seeds after log-interpolation onto common grids (raw tau: the common
  range of all runs; r_T: ``geomspace(1e-3, 10)``), as in the released plot.

"Collapse std" (0.992 raw -> 0.164 normalized, "6x") is defined neither in the paper nor in the
code (paper/ghosts_notes.md §4.6 and §5 item 10).  The onset of a run is its first step size with loss
ratio >= ``FAILURE_LOSS_RATIO`` = 2 (the shared failure threshold and the code's summary
threshold), in tau and in r_T units; per temperature the median over seeds is taken.  Across the
six temperatures we report (population std, ``ddof = 0``): std of the onset in tau units and in
r_T units (the paper's two numbers are presumably of this kind; the units differ, so their ratio
is not unit-free), std of log10(onset) and the coefficient of variation std/mean (both unit-free),
and the raw/normalized ratio of each.  The verdict rules (fixed before the runs) are registered
with the claims in ``paper/claims.toml`` (``polystep-repro claim <id>``): for the raw claim a
minimum log10 std of the raw onsets; for the normalized claim a minimum factor by which
normalization shrinks both unit-free spreads; for the alignment claim a window for every
temperature's r_T onset and a bound on their max/min.  The measuring functions (``@claim``) return
these spreads as evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from repro.claims import claim, claims_of, get_claim
from repro.cells import Cell
from repro.context import RunContext
from repro.experiments._ghosts_common import (FAILURE_LOSS_RATIO, first_crossing, gradient_direction, median_iqr,
                                              one_step_sweep)
from repro.tasks.digits import load_digits_split
from repro.tasks.training import train_classifier

ID = "ghosts_fig9"
TITLE = "Ghosts of softmax, Fig 9: one-step loss ratio vs raw tau and vs r_T = tau Delta_a/(pi T) across temperatures"
CLAIMS = claims_of(ID)
VERSION = 1


@dataclass(frozen=True)
class Config:
    temperatures: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    steps: int = 120
    lr: float = 0.01
    batch_size: int = 256
    split_seed: int = 0
    test_fraction: float = 0.2
    n_tau: int = 80
    tau_min: float = 1e-4


CONFIGS = {
    "ci": Config(seeds=(0,), steps=40, n_tau=30),
    "cpu": Config(),
    "paper": Config(),
}


def _unit(T: float, seed: int, cfg: Config, ctx: RunContext) -> dict:
    from repro.tasks.zoo import build
    from ghosts.radius_models import directional_logit_derivatives, directional_logit_derivatives_fd

    data = load_digits_split(seed=cfg.split_seed, test_fraction=cfg.test_fraction, val_fraction=0.0,
                             standardise=False)
    dev = ctx.device
    x, y = data.x_train.to(dev), data.y_train.to(dev)
    model = build("mlp", ctx.torch_generator("init", seed, device="cpu"), device=dev)
    hist = train_classifier(model, x, y, steps=cfg.steps, optimizer=torch.optim.Adam(model.parameters(), lr=cfg.lr),
                            batch_size=cfg.batch_size,
                            generator=ctx.torch_generator("batches", seed, T, device="cpu"), temperature=T)
    v = gradient_direction(model, x, y, sign=-1, temperature=T)
    a_fd = directional_logit_derivatives_fd(model, x, v)
    a_jvp = directional_logit_derivatives(model, x, v)
    delta_fd = float((a_fd.amax(-1) - a_fd.amin(-1)).max())
    delta_jvp = float((a_jvp.amax(-1) - a_jvp.amin(-1)).max())
    rho_t = math.pi * T / delta_fd
    taus = np.geomspace(cfg.tau_min, max(4 * rho_t, 2.0), cfg.n_tau)
    sweep = one_step_sweep(model, v, taus, x, y, temperature=T)
    ctx.count_evals(cfg.steps + len(taus))
    r_t = taus * delta_fd / (math.pi * T)
    onset_tau = first_crossing(taus, sweep["loss_ratio"], FAILURE_LOSS_RATIO)
    return {"T": T, "seed": seed, "tau": taus, "r_T": r_t, "loss_ratio": sweep["loss_ratio"],
            "flip_fraction": sweep["flip_fraction"], "loss0": sweep["loss0"], "acc0": sweep["acc0"],
            "delta_a": delta_fd, "delta_a_jvp": delta_jvp, "rho_T": rho_t,
            "final_batch_loss": float(hist["loss"][-1]),
            "onset_tau": onset_tau, "onset_r": onset_tau * delta_fd / (math.pi * T)}


def run(cfg: Config, ctx: RunContext) -> dict:
    cells = [Cell(f"T{T:g}-seed{s}", _unit, (T, s, cfg)) for T in cfg.temperatures for s in cfg.seeds]
    values = iter(ctx.map(cells, desc="temperature x seed"))
    temps = {f"{T:g}": [next(values) for _ in cfg.seeds] for T in cfg.temperatures}
    return {"temperatures": list(cfg.temperatures), "seeds": list(cfg.seeds), "runs": temps}


# ----------------------------------------------------------------------------------------------

def _keys(results: dict) -> list[str]:
    """Temperature keys in increasing T (stored results come back with sorted string keys)."""
    return [f"{T:g}" for T in results["temperatures"]]


def _interp_curves(units: list[dict], xkey: str, grid: np.ndarray, ykey: str = "loss_ratio") -> np.ndarray:
    """Each run's curve log-log-interpolated onto ``grid`` (NaN outside its range)."""
    out = np.full((len(units), len(grid)), np.nan)
    for i, u in enumerate(units):
        xs, ys = np.log(np.asarray(u[xkey])), np.asarray(u[ykey], dtype=float)
        lg = np.log(grid)
        inside = (lg >= xs[0]) & (lg <= xs[-1])
        with np.errstate(divide="ignore"):
            ly = np.log(np.clip(ys, 1e-300, None))
        out[i, inside] = np.exp(np.interp(lg[inside], xs, ly))
    return out


def common_tau_grid(results: dict, n: int = 100) -> np.ndarray:
    lo = max(u["tau"][0] for units in results["runs"].values() for u in units)
    hi = min(u["tau"][-1] for units in results["runs"].values() for u in units)
    return np.geomspace(lo, hi, n)


R_GRID = np.geomspace(1e-3, 10.0, 200)


def spread_metrics(onsets: np.ndarray) -> dict:
    """Spread across temperatures of the per-temperature onsets (population std)."""
    o = np.asarray(onsets, dtype=float)
    o = o[np.isfinite(o)]
    if len(o) < 2:
        return {"std": float("nan"), "std_log10": float("nan"), "cv": float("nan"), "n": len(o)}
    return {"std": float(o.std()), "std_log10": float(np.log10(o).std()), "cv": float(o.std() / o.mean()),
            "mean": float(o.mean()), "max_over_min": float(o.max() / o.min()), "n": len(o)}


def summarize(results: dict) -> dict:
    per_t = {}
    for key in _keys(results):
        units = results["runs"][key]
        per_t[key] = {
            "onset_tau": float(np.nanmedian([u["onset_tau"] for u in units])),
            "onset_r": float(np.nanmedian([u["onset_r"] for u in units])),
            "delta_a": float(np.median([u["delta_a"] for u in units])),
            "delta_a_jvp": float(np.median([u["delta_a_jvp"] for u in units])),
            "rho_T": float(np.median([u["rho_T"] for u in units])),
            "acc0": float(np.median([u["acc0"] for u in units])),
            "loss0": float(np.median([u["loss0"] for u in units])),
            "min_ratio": float(np.median([np.nanmin(u["loss_ratio"]) for u in units])),
            "fd_jvp_rel": float(np.max([abs(u["delta_a"] - u["delta_a_jvp"]) / u["delta_a_jvp"] for u in units])),
        }
    raw = spread_metrics([v["onset_tau"] for v in per_t.values()])
    norm = spread_metrics([v["onset_r"] for v in per_t.values()])
    ratios = {k: raw[k] / norm[k] if norm.get(k) else float("nan") for k in ("std", "std_log10", "cv")}
    return {"per_T": per_t, "raw": raw, "normalized": norm, "raw_over_normalized": ratios}


def _spread_text(results: dict) -> tuple[dict, str, str]:
    """The summary, the spread metrics in words and the onset definition in words."""
    s = summarize(results)
    raw, norm, ratio = s["raw"], s["normalized"], s["raw_over_normalized"]
    paper_raw = get_claim("ghosts.fig9_collapse_std_raw").paper_value
    paper_norm = get_claim("ghosts.fig9_collapse_std_normalized").paper_value
    note = (f"onset = first tau with loss ratio >= {FAILURE_LOSS_RATIO:g}, median over {len(results['seeds'])} "
            f"seed(s) per T, spread across T in {list(s['per_T'])} (population std); the paper's 'collapse std' "
            "is undefined")
    metrics = (f"raw tau: std {raw['std']:.3g}, std log10 {raw['std_log10']:.3g}, CV {raw['cv']:.3g}; "
               f"r_T: std {norm['std']:.3g}, std log10 {norm['std_log10']:.3g}, CV {norm['cv']:.3g}; "
               f"raw/normalized: std {ratio['std']:.3g}x, std log10 {ratio['std_log10']:.3g}x, CV {ratio['cv']:.3g}x "
               f"(paper {paper_raw:g}/{paper_norm:g} = {paper_raw / paper_norm:.3g}x)")
    return s, metrics, note


def _spread_evidence(s: dict) -> dict:
    raw, norm, ratio = s["raw"], s["normalized"], s["raw_over_normalized"]
    return {"raw_std": raw["std"], "raw_std_log10": raw["std_log10"], "raw_cv": raw["cv"],
            "normalized_std": norm["std"], "normalized_std_log10": norm["std_log10"], "normalized_cv": norm["cv"],
            "shrink_std": ratio["std"], "shrink_std_log10": ratio["std_log10"], "shrink_cv": ratio["cv"],
            "n_temperatures": raw["n"]}


@claim("ghosts.fig9_collapse_std_raw")
def _collapse_std_raw(results: dict) -> dict:
    s, metrics, note = _spread_text(results)
    return {
        "value": s["raw"]["std"],
        "detail": f"{metrics}; raw Delta_a grows with T (the nets trained at high T learn larger raw logits), so "
                  "rho_T = pi T/Delta_a varies less than T: "
                  + ", ".join(f"T={k}: Delta_a {v['delta_a']:.3g}, rho_T {v['rho_T']:.3g}"
                              for k, v in s["per_T"].items())
                  + f"; {note}",
        "evidence": {**_spread_evidence(s), "delta_a": [v["delta_a"] for v in s["per_T"].values()],
                     "rho_T": [v["rho_T"] for v in s["per_T"].values()]}}


@claim("ghosts.fig9_collapse_std_normalized")
def _collapse_std_normalized(results: dict) -> dict:
    s, metrics, note = _spread_text(results)
    return {"value": s["normalized"]["std"], "detail": f"{metrics}; {note}", "evidence": _spread_evidence(s)}


@claim("ghosts.fig9_curves_align_at_r1")
def _curves_align_at_r1(results: dict) -> dict:
    s = summarize(results)
    onsets = {k: v["onset_r"] for k, v in s["per_T"].items()}
    finite = [o for o in onsets.values() if np.isfinite(o)]
    spread = max(finite) / min(finite) if finite else float("nan")
    return {
        "value": ", ".join(f"T={k}: {v:.3g}" for k, v in onsets.items()),
        "detail": f"r_T at loss ratio {FAILURE_LOSS_RATIO:g} per temperature (median over seeds); max/min "
                  f"{spread:.3g}; minimum loss ratio before the rise (descent dip): "
                  + ", ".join(f"T={k}: {v['min_ratio']:.2f}" for k, v in s["per_T"].items()),
        "evidence": {"temperatures": [float(k) for k in onsets], "onset_r": list(onsets.values()),
                     "max_over_min": spread, "min_ratio": [v["min_ratio"] for v in s["per_T"].values()]}}


def table(results: dict) -> str:
    s = summarize(results)
    lines = ["| T | train acc | L_T(theta) | Delta_a (FD) | FD vs JVP | rho_T | onset tau | onset r_T | min ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k, v in s["per_T"].items():
        lines.append(f"| {k} | {100 * v['acc0']:.1f}% | {v['loss0']:.3g} | {v['delta_a']:.3g} | {v['fd_jvp_rel']:.1e} "
                     f"| {v['rho_T']:.3g} | {v['onset_tau']:.3g} | {v['onset_r']:.3g} | {v['min_ratio']:.2f} |")
    lines += ["", "| spread across T | std | std log10 | CV | max/min |", "|---|---|---|---|---|"]
    for name, m in (("raw tau", s["raw"]), ("r_T", s["normalized"])):
        lines.append(f"| {name} | {m['std']:.3g} | {m['std_log10']:.3g} | {m['cv']:.3g} "
                     f"| {m.get('max_over_min', float('nan')):.3g} |")
    r = s["raw_over_normalized"]
    lines.append(f"| raw / r_T | {r['std']:.3g}x | {r['std_log10']:.3g}x | {r['cv']:.3g}x | |")
    paper_raw = get_claim("ghosts.fig9_collapse_std_raw").paper_value
    paper_norm = get_claim("ghosts.fig9_collapse_std_normalized").paper_value
    lines.append(f"\nPaper: 'collapse std' {paper_raw:g} (raw) -> {paper_norm:g} (normalized), "
                 f"{paper_raw / paper_norm:.3g}x, metric undefined. Onset = "
                 f"loss ratio >= {FAILURE_LOSS_RATIO:g}; medians over {len(results['seeds'])} seed(s).")
    return "\n".join(lines)


def plot(results: dict):
    import matplotlib.pyplot as plt

    s = summarize(results)
    keys = _keys(results)
    cmap = plt.get_cmap("viridis")
    colors = {k: cmap(i / max(1, len(keys) - 1)) for i, k in enumerate(keys)}
    tau_grid = common_tau_grid(results)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1, 1, 0.7]})
    for k in keys:
        units = results["runs"][k]
        for ax, xkey, grid in ((axes[0], "tau", tau_grid), (axes[1], "r_T", R_GRID)):
            curves = _interp_curves(units, xkey, grid)
            med, q25, q75 = median_iqr(curves)
            ax.plot(grid, med, color=colors[k], label=f"T = {k}")
            ax.fill_between(grid, q25, q75, color=colors[k], alpha=0.2, lw=0)
    for ax in axes[:2]:
        ax.set(xscale="log", yscale="log", ylim=(0.3, 1e3))
        ax.axhline(FAILURE_LOSS_RATIO, color="0.5", ls=":", lw=1)
        ax.axhline(1.0, color="0.7", lw=0.8)
    axes[0].set(xlabel=r"raw step size $\tau$ (parameter-space distance)",
                ylabel=r"loss ratio $L_T(\theta+\tau v)/L_T(\theta)$", title=r"(A) vs raw $\tau$")
    axes[1].axvline(1.0, color="0.3", ls="--", lw=1)
    axes[1].set(xlabel=r"$r_T = \tau\,\Delta_a/(\pi T)$", title=r"(B) vs normalized $r_T$")
    axes[0].legend(fontsize=8, loc="upper left")
    temps = np.asarray(results["temperatures"], dtype=float)
    on_tau = np.array([s["per_T"][k]["onset_tau"] for k in keys])
    on_r = np.array([s["per_T"][k]["onset_r"] for k in keys])
    axes[2].plot(temps, on_tau / np.nanmedian(on_tau), "o-", color="#D55E00",
                 label=f"raw τ (std log10 {s['raw']['std_log10']:.2f})")
    axes[2].plot(temps, on_r / np.nanmedian(on_r), "s-", color="#0072B2",
                 label=f"r_T (std log10 {s['normalized']['std_log10']:.2f})")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xticks(temps, [f"{t:g}" for t in temps])
    axes[2].minorticks_off()
    rel = np.concatenate([on_tau / np.nanmedian(on_tau), on_r / np.nanmedian(on_r)])
    rel = rel[np.isfinite(rel)]
    lo, hi = (min(0.25, rel.min() / 1.3), max(4.0, rel.max() * 1.3)) if len(rel) else (0.25, 4.0)
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8) if lo <= t <= hi]
    axes[2].set_yscale("log")
    axes[2].set_yticks(ticks, [f"{t:g}" for t in ticks])
    axes[2].yaxis.set_minor_formatter(plt.NullFormatter())
    axes[2].set(ylim=(lo, hi), xlabel="temperature T", ylabel="onset / median onset across T",
                title=f"(C) loss-ratio-{FAILURE_LOSS_RATIO:g} onset")
    axes[2].axhline(1.0, color="0.7", lw=0.8)
    axes[2].legend(fontsize=8)
    fig.suptitle(f"Temperature fingerprint: MLP trained with CE(z/T), one descent step, digits; median + IQR over "
                 f"{len(results['seeds'])} seed(s)", fontsize=11)
    fig.tight_layout()
    return fig


def summary_lines(results: dict) -> list[str]:
    s = summarize(results)
    return [f"  onset spread across T: raw std {s['raw']['std']:.3g} (log10 {s['raw']['std_log10']:.3g}), "
            f"r_T std {s['normalized']['std']:.3g} (log10 {s['normalized']['std_log10']:.3g})"]
