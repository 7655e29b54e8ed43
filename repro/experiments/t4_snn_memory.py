r"""Table T4 / Figure F5: peak memory of a spiking VGG, forward-only (PolyStep) vs BPTT, over T steps.

PolyStep paper §5.4 / App O (paper/polystep_reconstruction.md §4, "F5/T4"): ``SNNVGG11Small``, batch
4, T in {25, 50, 100, 200, 400}; peak GPU memory forward-only 31.8 -> 51.6 MB (nearly flat), BPTT
132.3 -> 1,538.2 MB (linear in T), ratio 4.2x -> 29.8x.  The runner and the model were not shipped.

Why: PolyStep needs forward evaluations only, and a time-step-major forward pass of a spiking net
keeps the membrane states and one step's activations,

    M_fwd(T) = M_model + M_input(T) + O(1),         M_input(T) = T B * 3 * 32 * 32 * 4 bytes,

while backpropagation through time stores every step's activations for the backward pass,

    M_bptt(T) = M_model + M_grad + M_input(T) + T * m_step   (m_step: one step's saved tensors).

Protocol (:mod:`repro.tasks.snn_vgg`, where the reconstruction and the measurement are stated in
full): the reconstructed spiking VGG-11 (VGG-11 layout, widths / 4 at ``cpu`` and ``paper`` scale,
``3 x 32 x 32`` rate-coded inputs, conv -> LIF blocks, mean readout), batch 4.  One cell per
(method, T): a fresh Python process builds model and input (seeded by ``ctx.child_seed("init")``
and ``ctx.child_seed("input", T)``; the same for both methods), runs a warm-up pass and measures the
region -- ``forward_only``: ``with torch.no_grad(): model(x)`` with hard spikes; ``bptt``:
``CE(model(x), y).backward()`` with the fast-sigmoid surrogate (the same forward spikes).  Reported
per cell:

* ``work_mb``: the peak above the baseline with model and input built (CPU: the resident set's
  high-water mark ``VmHWM``, reset through ``/proc/self/clear_refs``, minus ``VmRSS`` before; CUDA:
  ``max_memory_allocated - memory_allocated``);
* ``peak_mb``: the peak memory as the paper counts it -- CUDA: ``max_memory_allocated`` (model and
  input included); CPU: parameter bytes + input bytes + ``work_mb`` (the interpreter's and the
  libraries' resident memory left out).

Memory does not depend on the machine's load, so the experiment needs no quiet machine; each cell
takes the median of ``repeats`` measurements in its process.  The paper-scale claims compare
``peak_mb`` (and its ratio) with the paper's MB; the ``cpu`` claims (registered before any
measurement) state the shapes: forward-only working memory flat in T, BPTT's linear, their ratio
rising past 10.  At ``cpu`` scale the absolute MB are those of a reconstructed net on a CPU,
indicative only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repro.cells import Cell
from repro.claims import claim, claims_of, get_claim
from repro.context import RunContext
from repro.tasks.snn_vgg import METHODS, SMALL_WIDTHS, MemorySpec, measure_in_subprocess

ID = "t4_snn_memory"
TITLE = "Table T4 / Figure F5: SNN peak memory, forward-only (PolyStep) vs BPTT, over time steps"
CLAIMS = claims_of(ID)
VERSION = 1

LABELS = {"forward_only": "forward-only (PolyStep)", "bptt": "BPTT (forward + backward)"}
COLORS = {"forward_only": "#0072B2", "bptt": "#D55E00"}


@dataclass(frozen=True)
class Config:
    timesteps: tuple[int, ...] = (25, 50, 100, 200, 400)
    widths: tuple[int, ...] = SMALL_WIDTHS
    batch: int = 4
    surrogate: float = 5.0
    repeats_forward_only: int = 3
    repeats_bptt: int = 1


CONFIGS = {
    "ci": Config(timesteps=(4, 8, 16), widths=(4, 8, 16, 16, 32, 32, 32, 32), repeats_bptt=3),
    "cpu": Config(),
    "paper": Config(),
}


def _unit(method: str, steps: int, cfg: Config, ctx: RunContext) -> dict:
    """One (method, T) measured in a fresh process (:func:`repro.tasks.snn_vgg.measure_in_subprocess`)."""
    repeats = cfg.repeats_forward_only if method == "forward_only" else cfg.repeats_bptt
    spec = MemorySpec(method=method, steps=steps, widths=cfg.widths, batch=cfg.batch, device=str(ctx.device),
                      init_seed=ctx.child_seed("init"), data_seed=ctx.child_seed("input", steps),
                      threads=ctx.threads, repeats=repeats, surrogate=cfg.surrogate)
    return measure_in_subprocess(spec)


def run(cfg: Config, ctx: RunContext) -> dict:
    cells = [Cell(f"{m}-T{T}", _unit, (m, T, cfg)) for m in METHODS for T in cfg.timesteps]
    values = iter(ctx.map(cells, desc="method x time steps"))
    runs = {m: [next(values) for _ in cfg.timesteps] for m in METHODS}
    return {"timesteps": list(cfg.timesteps), "widths": list(cfg.widths), "batch": cfg.batch, "runs": runs}


# ----------------------------------------------------------------------------------------------

def _series(results: dict, method: str, key: str) -> np.ndarray:
    return np.array([u[key] for u in results["runs"][method]], dtype=float)


def _index(results: dict, steps: int, fallback: int) -> int:
    """Index of ``steps`` in the T grid, else ``fallback`` (0: the smallest T, -1: the largest)."""
    ts = list(results["timesteps"])
    return ts.index(steps) if steps in ts else (fallback % len(ts))


def linear_fit(x: np.ndarray, y: np.ndarray) -> dict:
    """Least-squares line ``y = a + b x``: slope ``b``, intercept ``a`` and ``R^2``."""
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / total if total > 0 else float("nan")
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2}


def summarize(results: dict) -> dict:
    """Per method peak and working memory over T, their growth from the smallest to the largest T
    and line fits in T; the BPTT / forward-only ratio of peaks per T."""
    ts = np.asarray(results["timesteps"], dtype=float)
    out: dict = {"timesteps": [int(t) for t in ts], "t_min": int(ts[0]), "t_max": int(ts[-1])}
    for m in METHODS:
        peak, work = _series(results, m, "peak_mb"), _series(results, m, "work_mb")
        out[m] = {"peak_mb": peak.tolist(), "work_mb": work.tolist(),
                  "peak_growth": float(peak[-1] / peak[0]), "work_growth": float(work[-1] / work[0]),
                  "work_fit": linear_fit(ts, work), "peak_fit": linear_fit(ts, peak)}
    ratio = np.asarray(out["bptt"]["peak_mb"]) / np.asarray(out["forward_only"]["peak_mb"])
    out["ratio"] = ratio.tolist()
    out["ratio_increasing"] = bool(np.all(np.diff(ratio) > 0))
    first = results["runs"]["forward_only"][0]
    out.update(peak_kind=first["peak_kind"], device=first["device"], n_parameters=int(first["n_parameters"]))
    return out


def _where(results: dict) -> str:
    s = summarize(results)
    return (f"{s['n_parameters']:,}-parameter spiking VGG-11 (widths {results['widths']}), batch {results['batch']}, "
            f"{s['device']}, {s['peak_kind']}")


def _peak_claim(results: dict, method: str) -> dict:
    s = summarize(results)
    i = _index(results, 400, -1)
    T = s["timesteps"][i]
    return {"value": s[method]["peak_mb"][i],
            "detail": f"{LABELS[method]} peak at T = {T}: {s[method]['peak_mb'][i]:.1f} MB (model + input + "
                      f"{s[method]['work_mb'][i]:.1f} MB working memory); over T = {s['timesteps']}: "
                      + ", ".join(f"{v:.1f}" for v in s[method]["peak_mb"]) + f" MB; {_where(results)}",
            "evidence": {"T": T, "peak_mb": s[method]["peak_mb"], "work_mb": s[method]["work_mb"],
                         "timesteps": s["timesteps"]}}


@claim("polystep.t4_polystep_peak_mb_t400")
def _polystep_peak_t400(results: dict) -> dict:
    return _peak_claim(results, "forward_only")


@claim("polystep.t4_bptt_peak_mb_t400")
def _bptt_peak_t400(results: dict) -> dict:
    return _peak_claim(results, "bptt")


def _ratio_claim(results: dict, steps: int, fallback: int) -> dict:
    s = summarize(results)
    i = _index(results, steps, fallback)
    T = s["timesteps"][i]
    return {"value": s["ratio"][i],
            "detail": f"BPTT / forward-only peak at T = {T}: {s['bptt']['peak_mb'][i]:.1f} / "
                      f"{s['forward_only']['peak_mb'][i]:.1f} MB = {s['ratio'][i]:.2f}x; over T = {s['timesteps']}: "
                      + ", ".join(f"{r:.2f}" for r in s["ratio"]) + f"x; {_where(results)}",
            "evidence": {"T": T, "ratio": s["ratio"], "ratio_increasing": s["ratio_increasing"],
                         "timesteps": s["timesteps"]}}


@claim("polystep.t4_memory_ratio_t25")
def _ratio_t25(results: dict) -> dict:
    return _ratio_claim(results, 25, 0)


@claim("polystep.t4_memory_ratio_t400")
def _ratio_t400(results: dict) -> dict:
    return _ratio_claim(results, 400, -1)


@claim("polystep.t4_cpu_forward_only_flat")
def _forward_only_flat(results: dict) -> dict:
    s = summarize(results)
    f = s["forward_only"]
    return {"value": f["work_growth"],
            "detail": f"forward-only working memory over T = {s['timesteps']}: "
                      + ", ".join(f"{v:.2f}" for v in f["work_mb"])
                      + f" MB ({f['work_growth']:.2f}x from T = {s['t_min']} to {s['t_max']}; line slope "
                      f"{1e3 * f['work_fit']['slope']:.2f} kB/step); peak with model and input "
                      f"{f['peak_growth']:.2f}x; {_where(results)}",
            "evidence": {"t_min": s["t_min"], "t_max": s["t_max"], "work_mb": f["work_mb"],
                         "peak_growth": f["peak_growth"], "slope_mb_per_step": f["work_fit"]["slope"]}}


@claim("polystep.t4_cpu_bptt_linear_in_t")
def _bptt_linear(results: dict) -> dict:
    s = summarize(results)
    b = s["bptt"]
    fit = b["work_fit"]
    return {"value": b["work_growth"],
            "detail": f"BPTT working memory over T = {s['timesteps']}: " + ", ".join(f"{v:.1f}" for v in b["work_mb"])
                      + f" MB ({b['work_growth']:.2f}x from T = {s['t_min']} to {s['t_max']}, T grows "
                      f"{s['t_max'] / s['t_min']:g}x); line {fit['intercept']:.1f} MB + {fit['slope']:.3f} MB x T, "
                      f"R^2 = {fit['r2']:.5f}; {_where(results)}",
            "evidence": {"t_min": s["t_min"], "t_max": s["t_max"], "linear_r2": fit["r2"],
                         "slope_mb_per_step": fit["slope"], "intercept_mb": fit["intercept"], "work_mb": b["work_mb"]}}


@claim("polystep.t4_cpu_ratio_grows")
def _ratio_grows(results: dict) -> dict:
    s = summarize(results)
    return {"value": s["ratio"][-1],
            "detail": f"BPTT / forward-only peak over T = {s['timesteps']}: " + ", ".join(f"{r:.2f}" for r in s["ratio"])
                      + f"x ({'strictly increasing' if s['ratio_increasing'] else 'not increasing'}); "
                      f"{_where(results)}",
            "evidence": {"t_min": s["t_min"], "t_max": s["t_max"], "ratio_increasing": s["ratio_increasing"],
                         "ratio": s["ratio"]}}


def _paper_values() -> dict:
    """The paper's numbers that the registry holds: peaks at T = 400 and ratios at T = 25 and 400."""
    return {"forward_only": (400, get_claim("polystep.t4_polystep_peak_mb_t400").paper_value),
            "bptt": (400, get_claim("polystep.t4_bptt_peak_mb_t400").paper_value),
            "ratio": [(25, get_claim("polystep.t4_memory_ratio_t25").paper_value),
                      (400, get_claim("polystep.t4_memory_ratio_t400").paper_value)]}


def table(results: dict) -> str:
    s = summarize(results)
    lines = ["| T | forward-only peak MB | its working MB | BPTT peak MB | its working MB | BPTT / forward-only |",
             "|---|---|---|---|---|---|"]
    for i, T in enumerate(s["timesteps"]):
        f, b = s["forward_only"], s["bptt"]
        lines.append(f"| {T} | {f['peak_mb'][i]:.2f} | {f['work_mb'][i]:.2f} | {b['peak_mb'][i]:.1f} | "
                     f"{b['work_mb'][i]:.1f} | {s['ratio'][i]:.2f}x |")
    fit = s["bptt"]["work_fit"]
    pv = _paper_values()
    lines.append(f"\nBPTT working memory: {fit['intercept']:.1f} MB + {fit['slope']:.3f} MB per step (R^2 "
                 f"{fit['r2']:.4f}). Paper (GPU, SNNVGG11Small): forward-only {pv['forward_only'][1]:g} MB and BPTT "
                 f"{pv['bptt'][1]:g} MB at T = 400, ratio {pv['ratio'][0][1]:g}x at T = 25 and {pv['ratio'][1][1]:g}x "
                 f"at T = 400. Ours: {_where(results)}; peak = parameters + input + working memory.")
    return "\n".join(lines)


def plot(results: dict):
    import matplotlib.pyplot as plt

    s = summarize(results)
    ts = np.asarray(s["timesteps"], dtype=float)
    pv = _paper_values()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for m in METHODS:
        axes[0].plot(ts, s[m]["peak_mb"], "o-", color=COLORS[m], label=f"{LABELS[m]}: peak")
        axes[0].plot(ts, s[m]["work_mb"], "o--", color=COLORS[m], alpha=0.6, label=f"{LABELS[m]}: working memory")
        T, value = pv[m]
        axes[0].plot([T], [value], "*", ms=13, color=COLORS[m], mec="k", label=f"paper (GPU): {m.replace('_', '-')}, T = {T}")
    axes[0].set(xscale="log", yscale="log", xlabel="time steps T", ylabel="peak memory (MB)",
                title="(A) peak memory vs T")
    axes[0].legend(fontsize=7)
    axes[1].plot(ts, s["ratio"], "o-", color="0.2", label="ours: BPTT / forward-only peak")
    paper_t, paper_r = zip(*pv["ratio"])
    axes[1].plot(paper_t, paper_r, "*", ms=13, color="#CC79A7", mec="k", label="paper (GPU)")
    axes[1].set(xscale="log", yscale="log", xlabel="time steps T", ylabel="BPTT / forward-only",
                title="(B) memory ratio vs T")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.set_xticks(ts, [f"{t:g}" for t in ts])
        ax.minorticks_off()
    lo, hi = axes[1].get_ylim()
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200) if lo <= t <= hi]
    axes[1].set_yticks(ticks, [f"{t:g}" for t in ticks])
    fig.suptitle(f"Spiking VGG-11 (reconstructed, {s['n_parameters']:,} parameters), batch {results['batch']}, "
                 f"{s['device']}: {s['peak_kind']}", fontsize=10)
    fig.tight_layout()
    return fig


def summary_lines(results: dict) -> list[str]:
    s = summarize(results)
    return [f"  T {s['t_min']} -> {s['t_max']}: forward-only peak {s['forward_only']['peak_mb'][0]:.1f} -> "
            f"{s['forward_only']['peak_mb'][-1]:.1f} MB, BPTT {s['bptt']['peak_mb'][0]:.1f} -> "
            f"{s['bptt']['peak_mb'][-1]:.1f} MB, ratio {s['ratio'][0]:.2f}x -> {s['ratio'][-1]:.2f}x"]
