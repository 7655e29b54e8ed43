"""Zeroth-order query complexity: PolyStep, OpenAI-ES and SPSA at a fixed query budget ``Q``, final
gradient norm against the dimension ``D``, fitted exponents in ``D`` and ``Q`` against the known
``sqrt(D / Q)`` order.

Claim (abstract): PolyStep's rates "match the known zeroth-order query-complexity lower bounds that
all forward-only methods inherit"; which bound is cited is unknown (paper/polystep_reconstruction.md
§3.5). The reference used here, with its sources, is in the docstring of :mod:`theory.zo_lower_bound`:

* lower bound: Duchi, Jordan, Wainwright & Wibisono, "Optimal rates for zero-order convex
  optimization: the power of two function evaluations", IEEE Trans. Inf. Theory 61(5), 2015 --
  minimax error of order ``sqrt(d / k)`` after ``k`` two-point rounds (stochastic convex);
* matching upper bound for smooth nonconvex ``f``: Nesterov & Spokoiny, "Random gradient-free
  minimization of convex functions", Found. Comput. Math. 17(2), 2017 (§7) --
  ``||grad f|| <= eps`` after ``O(d L Delta / eps^2)`` evaluations, i.e. ``||grad f|| ~ sqrt(d / Q)``;

so the reference exponents of ``g(D, Q) ~ D^a Q^b`` are ``a = 1/2``, ``b = -1/2``. Both are
statements about function classes; on one deterministic function a method can decay faster in ``Q``
(see the theory module), which is why the registered rules test the dimension dependence and the
``Q / D`` form rather than equality with ``-1/2``.

Protocol (fixed before any measurement; the rules are in paper/claims.toml):

* objectives ``1/2 ||x||^2`` and ``sum_i log cosh x_i`` (smooth, non-quadratic; both with Hessian
  ``I`` at the minimiser 0), starts ``x_0 ~ N(0, I / D)`` (``f(x_0) - f* ~ 1/2`` at every ``D``);
* PolyStep: block particles ``d_p = 4``, orthoplex, ``K = 1`` (``P V K = 2D`` queries a step),
  ``r_s = r_p = 1/sqrt(t+1)`` (absolute), jitter 0.05, ``eps = 0.1`` (package defaults; the main
  setting, linear-regime exponent ``c = 1/(2 d_p eps) = 1.25``) and ``eps = 0.25`` (``c = 1/2``: the
  setting where Theorem 4.2's ``T^{-1/2}`` holds, shown for comparison);
* OpenAI-ES: population 50, sigma 0.02, lr 0.01 constant, no weight decay, centred ranks; SPSA:
  ``a = c = 0.1``, ``A = 0.1 x Q_ref / 2``, ``alpha = 0.602``, ``gamma = 0.101`` (the package defaults
  with the horizon of the reference budget); every schedule is horizon-free, so one run per
  ``(method, D)`` is recorded at every budget of the grid (the last step within the budget);
* fits: ``log E g = alpha + a log D + b log Q`` over the grid (least squares, bootstrap CI over
  seeds) and the slope in ``D`` at the reference budget ``Q_ref``.

Cells: one per ``(method, D)`` (all objectives and seeds of it; PolyStep: both temperatures).

Scales: ``ci`` D in {4, 16, 64}, Q in {2e3, 4e3, 8e3}, 3 seeds (seconds); ``cpu`` D in
{4, ..., 1024}, Q in {5e4, 1e5, 2e5, 4e5}, 5 seeds (estimated ~2.5 min in one process on the shared
2-core machine at load ~5, from timed cells: PolyStep ~30 s (D = 4: 20 s, D = 1024: 1.3 s), OpenAI-ES
~60 s (D = 1024: ~45 s), SPSA ~65 s (D = 1024: ~21 s, D = 4: ~8 s); about half with ``--jobs 2``);
``paper``: 20 seeds and D up to 4096, Q up to 1.6e6 (not run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from repro.cells import Cell
from repro.claims import claim, claims_of
from repro.context import RunContext
from theory import zo_lower_bound as Z

ID = "zo_lower_bound"
TITLE = "Zeroth-order query complexity: final gradient norm vs dimension at a fixed query budget (PolyStep, OpenAI-ES, SPSA)"
CLAIMS = claims_of(ID)
VERSION = 1

BOOT_SEED = 20261205  # bootstrap resamples (measurements must be deterministic)
METHOD_LABELS = {"polystep": "PolyStep", "openai_es": "OpenAI-ES", "spsa": "SPSA"}


@dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (4, 16, 64)
    budgets: tuple[int, ...] = (2_000, 4_000, 8_000)
    reference_budget: int = 4_000
    seeds: int = 3
    methods: tuple[str, ...] = ("polystep", "openai_es", "spsa")
    objectives: tuple[str, ...] = ("quadratic", "logcosh")
    # PolyStep
    particle_dim: int = 4
    r0: float = 1.0
    eps: float = 0.1
    eps_theorem: float = 0.25
    jitter: float = 0.05
    # OpenAI-ES
    es_population: int = 50
    es_sigma: float = 0.02
    es_lr: float = 0.01
    es_weight_decay: float = 0.0
    # SPSA (A = spsa_a_frac * reference_budget / 2)
    spsa_a: float = 0.1
    spsa_c: float = 0.1
    spsa_a_frac: float = 0.1
    spsa_alpha: float = 0.602
    spsa_gamma: float = 0.101
    n_boot: int = 1000


_CPU = Config(dims=(4, 16, 64, 256, 1024), budgets=(50_000, 100_000, 200_000, 400_000), reference_budget=100_000,
              seeds=5)
CONFIGS = {
    "ci": Config(),
    "cpu": _CPU,
    "paper": Config(**{**_CPU.__dict__, "dims": (4, 16, 64, 256, 1024, 4096),
                       "budgets": (100_000, 200_000, 400_000, 800_000, 1_600_000), "seeds": 20, "n_boot": 2000}),
}


def _objectives(cfg: Config) -> dict:
    return {name: Z.OBJECTIVES[name]() for name in cfg.objectives}


def _cell(method: str, dim: int, cfg: Config, ctx: RunContext) -> dict:
    """One method at one dimension: every objective and seed, recorded at every budget."""
    objs = _objectives(cfg)
    if method == "polystep":
        out = Z.run_polystep(objs, dim, cfg.seeds, cfg.budgets, ctx.torch_generator("polystep", dim, device="cpu"),
                             particle_dim=cfg.particle_dim, r0=cfg.r0, eps=(cfg.eps, cfg.eps_theorem),
                             jitter=cfg.jitter)
        ctx.count_evals(int(out["queries"].max()) * cfg.seeds * len(objs) * 2)
        return {"queries": out["queries"], "steps": out["steps"], "queries_per_step": out["queries_per_step"],
                "g": {f"{name}|{e:g}": v for (name, e), v in out["g"].items()}}
    # the same starts for both baselines (common random numbers), per objective; every objective's
    # seeds are rows of one batch (one loop: the baselines' steps are cheap, the loop is not)
    x0 = torch.cat([Z.normalised_starts(dim, cfg.seeds, ctx.torch_generator("starts", name, dim, device="cpu"))
                    for name in objs])
    stacked = Z.RowStack(list(objs.values()), [cfg.seeds] * len(objs))
    gen = ctx.torch_generator(method, dim, device="cpu")
    if method == "openai_es":
        info = Z.run_openai_es(stacked, x0, cfg.budgets, gen, population=cfg.es_population, sigma=cfg.es_sigma,
                               lr=cfg.es_lr, weight_decay=cfg.es_weight_decay)
    elif method == "spsa":
        info = Z.run_spsa(stacked, x0, cfg.budgets, gen, a=cfg.spsa_a, c=cfg.spsa_c,
                          A=cfg.spsa_a_frac * cfg.reference_budget / 2, alpha=cfg.spsa_alpha, gamma=cfg.spsa_gamma)
    else:
        raise ValueError(f"unknown method {method!r}")
    ctx.count_evals(int(info["queries"].max()) * cfg.seeds * len(objs))
    g = {name: info["g"][:, k * cfg.seeds:(k + 1) * cfg.seeds] for k, name in enumerate(objs)}
    return {"queries": info["queries"], "steps": info["steps"], "queries_per_step": info["queries_per_step"], "g": g}


def run(cfg: Config, ctx: RunContext) -> dict:
    if cfg.reference_budget not in cfg.budgets:
        raise ValueError("reference_budget must be one of budgets")
    if any(d % cfg.particle_dim for d in cfg.dims):
        raise ValueError(f"every D must be a multiple of particle_dim = {cfg.particle_dim}")
    cells = [Cell(f"{m}-D{d}", _cell, (m, d, cfg)) for m in cfg.methods for d in cfg.dims]
    values = ctx.map(cells, desc="method x D")
    by = dict(zip([(m, d) for m in cfg.methods for d in cfg.dims], values))
    series = {}
    for m in cfg.methods:
        variants = ([("polystep", cfg.eps), (f"polystep_eps{cfg.eps_theorem:g}", cfg.eps_theorem)]
                    if m == "polystep" else [(m, None)])
        for name, e in variants:
            key = (lambda o: f"{o}|{e:g}") if m == "polystep" else (lambda o: o)
            series[name] = {"method": m, "eps": e,
                            "queries_per_step": [int(by[(m, d)]["queries_per_step"]) for d in cfg.dims],
                            "queries": np.stack([by[(m, d)]["queries"] for d in cfg.dims]),  # [n_D, n_Q]
                            "g": {o: np.stack([by[(m, d)]["g"][key(o)] for d in cfg.dims])  # [n_D, n_Q, S]
                                  for o in cfg.objectives}}
    return {"scale": ctx.scale, "dims": np.asarray(cfg.dims), "budgets": np.asarray(cfg.budgets),
            "reference_budget": cfg.reference_budget, "series": series,
            "settings": {"seeds": cfg.seeds, "particle_dim": cfg.particle_dim, "r0": cfg.r0, "eps": cfg.eps,
                         "eps_theorem": cfg.eps_theorem, "jitter": cfg.jitter,
                         "linear_regime_c": {f"{e:g}": cfg.r0 ** 2 / (2 * cfg.particle_dim * e)
                                             for e in (cfg.eps, cfg.eps_theorem)},
                         "es": {"population": cfg.es_population, "sigma": cfg.es_sigma, "lr": cfg.es_lr,
                                "weight_decay": cfg.es_weight_decay},
                         "spsa": {"a": cfg.spsa_a, "c": cfg.spsa_c, "A": cfg.spsa_a_frac * cfg.reference_budget / 2,
                                  "alpha": cfg.spsa_alpha, "gamma": cfg.spsa_gamma},
                         "n_boot": cfg.n_boot}}


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------


def fits(results: dict) -> dict:
    """Per series and objective: the power-law fit over the grid and the D-slope at ``Q_ref``."""
    dims = np.asarray(results["dims"])
    iref = int(np.flatnonzero(np.asarray(results["budgets"]) == results["reference_budget"])[0])
    n_boot = int(results["settings"]["n_boot"])
    out = {}
    for name, s in results["series"].items():
        for obj, g in s["g"].items():
            pl = Z.fit_power_law(dims, s["queries"], g, np.random.default_rng(BOOT_SEED), n_boot=n_boot)
            ds = Z.fit_slope(dims, g[:, iref, :], np.random.default_rng(BOOT_SEED), n_boot=n_boot)
            out[(name, obj)] = {"a": pl["a"], "b": pl["b"], "a_ci": pl["a_ci"], "b_ci": pl["b_ci"],
                                "alpha": pl["alpha"], "residual_rms": pl["residual_rms"], "mean": pl["mean"],
                                "d_slope": ds["slope"], "d_slope_ci": ds["ci"], "at_ref": ds["mean"]}
    return out


def _fmt(f: dict) -> str:
    return (f"a = {f['a']:+.2f} [{f['a_ci'][0]:+.2f}, {f['a_ci'][1]:+.2f}], b = {f['b']:+.2f} "
            f"[{f['b_ci'][0]:+.2f}, {f['b_ci'][1]:+.2f}], a + b = {f['a'] + f['b']:+.2f}")


def _grid(results: dict) -> str:
    d, q = results["dims"], results["budgets"]
    return (f"D in {{{', '.join(map(str, d))}}}, Q in {{{', '.join(f'{x:g}' for x in q)}}}, "
            f"{results['settings']['seeds']} seeds")


@claim("polystep.zo_dimension_dependence")
def _dimension_dependence(results: dict) -> dict:
    fs = fits(results)
    q = fs[("polystep", "quadratic")]
    lc = fs.get(("polystep", "logcosh"))
    c = results["settings"]["linear_regime_c"][f"{results['settings']['eps']:g}"]
    return {
        "value": q["d_slope"],
        "detail": f"PolyStep (eps {results['settings']['eps']:g}, d_p {results['settings']['particle_dim']}) on "
                  f"0.5||x||^2 at Q = {results['reference_budget']:g}: log-log slope of the final ||grad f|| over D "
                  f"= {q['d_slope']:+.2f} [bootstrap 95% CI {q['d_slope_ci'][0]:+.2f}, {q['d_slope_ci'][1]:+.2f}]"
                  + (f"; on sum log cosh: {lc['d_slope']:+.2f}" if lc else "")
                  + f". Reference order sqrt(D/Q): +0.5; linear-regime prediction c = {c:.2f} "
                  f"({_grid(results)})",
        "evidence": {"d_slope_ci": [float(x) for x in q["d_slope_ci"]],
                     "logcosh_d_slope": float(lc["d_slope"]) if lc else math.nan,
                     "grad_norm_at_ref": [float(x) for x in q["at_ref"]],
                     "dims": [int(x) for x in results["dims"]], "predicted_c": float(c)},
    }


@claim("polystep.zo_rates_match_lower_bound")
def _rates_match(results: dict) -> dict:
    fs = fits(results)
    objs = list(results["series"]["polystep"]["g"])
    gaps = {o: abs(fs[("polystep", o)]["a"] + fs[("polystep", o)]["b"]) for o in objs}
    worst = max(gaps, key=gaps.get)
    th = f"polystep_eps{results['settings']['eps_theorem']:g}"
    theorem = "; ".join(f"{o}: {_fmt(fs[(th, o)])}" for o in objs if (th, o) in fs)
    return {
        "value": float(gaps[worst]),
        "detail": f"PolyStep (eps {results['settings']['eps']:g}), log E||grad f|| = alpha + a log D + b log Q over "
                  f"{_grid(results)}: " + "; ".join(f"{o}: {_fmt(fs[('polystep', o)])}" for o in objs)
                  + f". Reference sqrt(D/Q): a = +0.5, b = -0.5. At eps {results['settings']['eps_theorem']:g} "
                  f"(T^-1/2 setting): {theorem}",
        "evidence": {"worst_objective": worst,
                     "worst_q_exponent": float(max(fs[("polystep", o)]["b"] for o in objs)),
                     "d_exponents": [float(fs[("polystep", o)]["a"]) for o in objs],
                     "q_exponents": [float(fs[("polystep", o)]["b"]) for o in objs],
                     "objectives": objs,
                     "theorem_setting_d_exponents": [float(fs[(th, o)]["a"]) for o in objs if (th, o) in fs],
                     "theorem_setting_q_exponents": [float(fs[(th, o)]["b"]) for o in objs if (th, o) in fs],
                     "residual_rms": [float(fs[("polystep", o)]["residual_rms"]) for o in objs]},
    }


@claim("polystep.zo_baselines_dimension_dependence")
def _baselines_dimension(results: dict) -> dict:
    fs = fits(results)
    base = [m for m in ("openai_es", "spsa") if m in results["series"]]
    slopes = {m: fs[(m, "quadratic")]["d_slope"] for m in base}
    low = min(slopes, key=slopes.get)
    return {
        "value": float(slopes[low]),
        "detail": f"D-slope of the final ||grad f|| on 0.5||x||^2 at Q = {results['reference_budget']:g}: "
                  + "; ".join(f"{METHOD_LABELS[m]} {slopes[m]:+.2f} [{fs[(m, 'quadratic')]['d_slope_ci'][0]:+.2f}, "
                              f"{fs[(m, 'quadratic')]['d_slope_ci'][1]:+.2f}]" for m in base)
                  + f" (PolyStep {fs[('polystep', 'quadratic')]['d_slope']:+.2f}); grid fits: "
                  + "; ".join(f"{METHOD_LABELS[m]} {_fmt(fs[(m, 'quadratic')])}" for m in base),
        "evidence": {"methods": base, "d_slopes": [float(slopes[m]) for m in base],
                     "grad_norm_at_ref": {m: [float(x) for x in fs[(m, "quadratic")]["at_ref"]] for m in base}},
    }


# ---------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------

_COLORS = {"polystep": "#0072B2", "openai_es": "#D55E00", "spsa": "#009E73"}


def _label(name: str, s: dict) -> str:
    return METHOD_LABELS[s["method"]] + (f" (ε = {s['eps']:g})" if s["method"] == "polystep" else "")


def plot(results: dict):
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    fs = fits(results)
    dims = np.asarray(results["dims"], dtype=float)
    qref = results["reference_budget"]
    objs = list(results["series"]["polystep"]["g"])
    fig, axes = plt.subplots(2, len(objs), figsize=(5.6 * len(objs), 8.6), squeeze=False)
    iref = int(np.flatnonzero(np.asarray(results["budgets"]) == qref)[0])
    for j, o in enumerate(objs):
        ax = axes[0, j]
        for name, s in results["series"].items():
            f = fs[(name, o)]
            ls = "--" if name != s["method"] else "-"
            ax.loglog(dims, f["at_ref"], "o" + ls, color=_COLORS[s["method"]],
                      label=f"{_label(name, s)}: slope {f['d_slope']:+.2f}")
        ref = Z.reference_order(dims, qref)
        anchor = fs[("polystep", o)]["at_ref"][0]
        ax.loglog(dims, anchor * ref / ref[0], "k:", label="∝ sqrt(D/Q) (reference order)")
        ax.set_xticks(dims, [f"{d:g}" for d in dims])
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set(xlabel="dimension D", ylabel=f"final ‖∇f‖ at Q = {qref:g}",
               title=("½‖x‖²" if o == "quadratic" else "Σ log cosh xᵢ") + f": gradient norm vs D at Q = {qref:g}")
        ax.legend(fontsize=7.5)
        ax = axes[1, j]
        for name, s in results["series"].items():
            if s["method"] != "polystep":
                continue
            q = np.asarray(s["queries"], dtype=float)
            g = s["g"][o].mean(axis=2)
            ax.loglog((q / dims[:, None]).ravel(), g.ravel(), "o" if name == "polystep" else "s",
                      color=_COLORS["polystep"], mfc="none" if name != "polystep" else None,
                      label=f"{_label(name, s)}: {_fmt(fs[(name, o)])}")
        x = np.geomspace(*ax.get_xlim(), 20)
        g0 = results["series"]["polystep"]["g"][o].mean(axis=2)
        q0 = np.asarray(results["series"]["polystep"]["queries"], dtype=float) / dims[:, None]
        ax.loglog(x, g0.max() * np.sqrt(q0.min() / x), "k:", label="∝ (Q/D)^-1/2")
        ax.set(xlabel="queries per dimension Q/D", ylabel="final ‖∇f‖ (mean over seeds)",
               title="PolyStep over the whole (D, Q) grid: one curve in Q/D")
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Zeroth-order query complexity ({results['scale']} scale, {results['settings']['seeds']} seeds; "
                 f"starts ‖x₀‖ ≈ 1)", fontsize=12)
    fig.tight_layout()
    return fig


def table(results: dict) -> str:
    from repro.claims import measure as measure_claims
    from repro.report import measurement_table

    fs = fits(results)
    lines = measurement_table(measure_claims(ID, results))
    lines += ["", f"| method | objective | a (D) [95% CI] | b (Q) [95% CI] | a + b | D-slope at Q = "
                  f"{results['reference_budget']:g} | rms log residual |", "|---|---|---|---|---|---|---|"]
    for name, s in results["series"].items():
        for o in s["g"]:
            f = fs[(name, o)]
            lines.append(f"| {_label(name, s)} | {o} | {f['a']:+.2f} [{f['a_ci'][0]:+.2f}, {f['a_ci'][1]:+.2f}] | "
                         f"{f['b']:+.2f} [{f['b_ci'][0]:+.2f}, {f['b_ci'][1]:+.2f}] | {f['a'] + f['b']:+.2f} | "
                         f"{f['d_slope']:+.2f} | {f['residual_rms']:.2f} |")
    lines.append("| reference order sqrt(D/Q) | (class minimax) | +0.50 | -0.50 | 0.00 | +0.50 | |")
    return "\n".join(lines)
