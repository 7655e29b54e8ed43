"""Theorem 4.2 (rate O(log T/sqrt T)), as reconstructed: decaying-radius PolyStep runs, rate fits,
the jitter condition and the constant-radius ablation.

The paper body was **not readable** (paper/polystep_reconstruction.md §0); the version checked is the "most
plausible reading" of Theorem 4.2 in paper/polystep_reconstruction.md §3.2 (checks 1-4), implemented in
:mod:`theory.rates`:

* PolyStep (softmax, orthoplex, ``K = 1``) with ``r_s = r_p = r0/sqrt(t+1)`` (``InverseSqrt``,
  ``radius_mode="absolute"``), a **fixed** ``eps`` and probe jitter ``eta_max = 0.05``, on independent
  particles (``d_p = D = 8``) or block particles (``D = 32``, four particles of ``d_p = 8``);
* smooth losses (``1/2 x^T A x + sum log cosh x_i`` with a random SPD ``A`` of condition 10, and
  Rosenbrock) with ``g_T = min_{t <= T} ||grad L(x_t)||``; a piecewise-smooth loss
  (``||B x - c||_1 + 0.1 ||x||^2``, ``B`` Gaussian ``2D x D``) with the Goldstein measure at
  ``delta_t = r_p(t)`` (:mod:`theory.stationarity`, ``4D`` sampled gradients, exact min-norm QP);
* fits: log-log slope of the seed mean of ``g_T`` over ``T`` in ``[1e2, T_max]`` with a bootstrap 95 %
  CI over seeds, and the envelope ratio ``g_T sqrt(T)/log T`` (max/min over the grid);
* an ``eps`` sweep on the log-cosh quadratic (``D = 8``) that checks the derived linear-regime
  exponent ``c = lambda_min r0^2/(2 d_p eps)`` (theory module docstring): with fixed ``eps`` the
  late phase is gradient descent with a ``1/t`` step, so the rate is ``T^{-c}``, not ``log T/sqrt T``;
* check 3: the jitter factor ``1 + eta_t`` is ``U[0.95, 1.05]`` and the rotations are Haar;
* check 4: constant radii ``r`` at the main ``eps`` and in the direct-search regime (``eps = 1e-3``).

Main settings (fixed before running, package defaults): ``r0 = 1`` (``PolyStepConfig.step_radius``),
``eps = 0.1`` (``PolyStepConfig.eps``). Starts: ``x0 ~ N(0, I)`` (log-cosh, L1) and ``N(0, 0.25 I)``
(Rosenbrock).

Scales: ``ci`` T = 1000, 5 seeds, D = 8 only (seconds); ``cpu`` T = 10^4, 20 seeds, D in {8, 32}
(check 1 of reconstruction §3.2; measured 73 s at load average 3 and 155 s at load average 7 on 2 shared cores);
``paper`` T = 10^5, 20 seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from theory import objectives as O
from repro.claims import claim, claims_of, get_claim
from repro.claims import measure as measure_claims
from repro.cells import Cell
from repro.context import RunContext
from theory.rates import (
    RateProblem,
    envelope_stats,
    fit_grid,
    fit_rate,
    plateau_stats,
    probe_law_sample,
    record_grid,
    rotation_haar_stats,
    run_rates,
)

ID = "thm42_rates"
TITLE = "Theorem 4.2: rate of PolyStep with r ∝ 1/√t at fixed ε (smooth, piecewise smooth), jitter, constant radii"
CLAIMS = claims_of(ID)  # their rules (thresholds included) are in paper/claims.toml
VERSION = 1

# Numerical settings of the measurements (not acceptance thresholds: those are the rules in the registry).
BOOT_SEED = 20260503         # bootstrap resamples (the measurements must be deterministic)
FIT_FLOOR = 1e-12            # horizons whose mean g_T is below this (rounding) are left out of a fit
ZERO_MEASURE = 1e-12         # a Goldstein estimate below this is "exactly" 0 (origin in the hull)


@dataclass(frozen=True)
class Config:
    steps: int = 1000
    seeds: int = 5
    t_min: int = 100
    per_decade: int = 4
    record_points: int = 60
    r0: float = 1.0
    eps: float = 0.1
    jitter: float = 0.05
    cond: float = 10.0
    #: (kind, D); kind in logcosh | rosenbrock; d_p = 8 throughout
    smooth: tuple[tuple[str, int], ...] = (("logcosh", 8), ("rosenbrock", 8))
    #: (D, instance): random L1-regression instances (B, c drawn per instance)
    nonsmooth: tuple[tuple[int, int], ...] = ((8, 0), (8, 1))
    particle_dim: int = 8
    l1_mu: float = 0.1
    eps_sweep: tuple[float, ...] = (0.05, 0.5)
    n_boot: int = 1000
    goldstein_samples: int = 0          # 0: 4 D
    const_steps: int = 500
    const_seeds: int = 5
    const_radii: tuple[float, ...] = (0.1, 1.0)
    const_eps: tuple[float, ...] = (0.1, 1e-3)  # the main eps, then the direct-search regime
    jitter_draws: int = 1000
    jitter_dim: int = 8


_CPU = Config(steps=10_000, seeds=20, record_points=80,
              smooth=(("logcosh", 8), ("logcosh", 32), ("rosenbrock", 8), ("rosenbrock", 32)),
              nonsmooth=((8, 0), (8, 1), (8, 2), (32, 0)), eps_sweep=(0.05, 0.25, 0.5, 1.0), n_boot=2000,
              const_steps=3000, const_seeds=10, const_radii=(0.1, 0.3, 1.0), jitter_draws=5000)
_PAPER = Config(**{**_CPU.__dict__, "steps": 100_000, "record_points": 100, "const_steps": 10_000})

CONFIGS = {"ci": Config(), "cpu": _CPU, "paper": _PAPER}


# ---------------------------------------------------------------------------------------------
# problems
# ---------------------------------------------------------------------------------------------


def _objective(kind: str, dim: int, cfg: Config, gen: torch.Generator):
    """The objective, its minimiser's Hessian lambda_min (nan if nonsmooth) and the start spread."""
    if kind == "logcosh":
        a = O.random_spd(dim, cfg.cond, gen)
        # Hessian at the minimiser 0: A + diag(1 - tanh(0)^2) = A + I
        lam = float(torch.linalg.eigvalsh(a + torch.eye(dim, dtype=torch.float64))[0])
        return O.log_cosh_quadratic(a), lam, 1.0
    if kind == "rosenbrock":
        obj = O.rosenbrock()
        h = torch.autograd.functional.hessian(lambda x: obj(x), torch.ones(dim, dtype=torch.float64))
        return obj, float(torch.linalg.eigvalsh(h)[0]), 0.5
    if kind == "l1":
        b = torch.randn(2 * dim, dim, generator=gen, dtype=torch.float64)
        c = torch.randn(2 * dim, generator=gen, dtype=torch.float64)
        return O.l1_regression(b, c, cfg.l1_mu), math.nan, 1.0
    raise ValueError(f"unknown objective kind {kind!r}")


def _name(kind: str, dim: int, eps: float | None = None, instance: int | None = None) -> str:
    return f"{kind}_D{dim}" + ("" if instance is None else f"_i{instance}") + ("" if eps is None else f"_eps{eps:g}")


def _problems(cfg: Config, ctx: RunContext) -> tuple[list[RateProblem], dict, tuple]:
    """The decaying-radius problems (smooth, nonsmooth, the eps sweep) in batch order, their
    descriptions, and the log-cosh quadratic ``D = 8`` with its lambda_min (for check 4).

    The objectives are drawn from the run's ``objectives`` and ``l1`` streams, so every cell that
    needs them rebuilds the same ones."""
    gen = ctx.torch_generator("objectives", device="cpu")
    objs = {}
    for kind, dim in cfg.smooth:
        objs[(kind, dim)] = _objective(kind, dim, cfg, gen)
    if ("logcosh", 8) not in objs:
        objs[("logcosh", 8)] = _objective("logcosh", 8, cfg, gen)
    for dim, inst in cfg.nonsmooth:
        objs[("l1", dim, inst)] = _objective("l1", dim, cfg, ctx.torch_generator("l1", dim, inst, device="cpu"))

    problems, info = [], {}
    for kind, dim in cfg.smooth:
        obj, lam, spread = objs[(kind, dim)]
        p = RateProblem(_name(kind, dim), obj, dim, cfg.particle_dim, cfg.r0, cfg.eps, x0_scale=spread,
                        hessian_min_eig=lam)
        problems.append(p)
        info[p.name] = {"kind": kind, "dim": dim, "group": "smooth"}
    for dim, inst in cfg.nonsmooth:
        obj, lam, spread = objs[("l1", dim, inst)]
        p = RateProblem(_name("l1", dim, instance=inst), obj, dim, cfg.particle_dim, cfg.r0, cfg.eps,
                        measure="goldstein", x0_scale=spread)
        problems.append(p)
        info[p.name] = {"kind": "l1", "dim": dim, "group": "nonsmooth", "instance": inst}
    lc_obj, lc_lam, _ = objs[("logcosh", 8)]
    for e in cfg.eps_sweep:
        p = RateProblem(_name("logcosh", 8, e), lc_obj, 8, cfg.particle_dim, cfg.r0, e, hessian_min_eig=lc_lam)
        problems.append(p)
        info[p.name] = {"kind": "logcosh", "dim": 8, "group": "sweep"}
    return problems, info, (lc_obj, lc_lam)


def _const_problems(cfg: Config, ctx: RunContext) -> list[RateProblem]:
    """Check 4: constant radii on the log-cosh quadratic ``D = 8``, at each eps of ``const_eps``."""
    _, _, (lc_obj, lc_lam) = _problems(cfg, ctx)
    return [RateProblem(f"const_r{rr:g}_eps{e:g}", lc_obj, 8, cfg.particle_dim, rr, e, hessian_min_eig=lc_lam)
            for e in cfg.const_eps for rr in cfg.const_radii]


def _decaying(cfg: Config, ctx: RunContext) -> dict:
    """Every decaying-radius problem and seed, in one batch: the problems share the ``decaying``
    stream step by step, so they are one cell (splitting them would change their random numbers)."""
    problems, _, _ = _problems(cfg, ctx)
    T = fit_grid(cfg.t_min, cfg.steps, cfg.per_decade)
    g = ctx.torch_generator("decaying", device="cpu")
    res = run_rates(problems, steps=cfg.steps, seeds=cfg.seeds, generator=g, jitter=cfg.jitter,
                    record=record_grid(cfg.steps, cfg.record_points, T),
                    goldstein_samples=cfg.goldstein_samples or None)
    ctx.count_evals(cfg.steps * sum(p.num_particles for p in problems) * cfg.seeds * 2 * cfg.particle_dim)
    return res


def _constant(cfg: Config, ctx: RunContext) -> dict:
    """Check 4, every radius and eps in one batch (one ``constant`` stream, as for :func:`_decaying`)."""
    const_problems = _const_problems(cfg, ctx)
    g = ctx.torch_generator("constant", device="cpu")
    res = run_rates(const_problems, steps=cfg.const_steps, seeds=cfg.const_seeds, generator=g,
                    schedule="constant", jitter=cfg.jitter,
                    record=record_grid(cfg.const_steps, cfg.record_points))
    ctx.count_evals(cfg.const_steps * len(const_problems) * cfg.const_seeds * 2 * cfg.particle_dim)
    return res


def _jitter(cfg: Config, ctx: RunContext) -> dict:
    """Check 3: the jitter factor and the Haar rotations."""
    g = ctx.torch_generator("jitter", device="cpu")
    s = probe_law_sample(cfg.jitter_draws, cfg.jitter_dim, 1.0, cfg.jitter, g)
    return {"factor": s["factor"], "probe_norm": s["probe_norm"], "haar": rotation_haar_stats(s["rotations"]),
            "r11": s["rotations"][:, 0, 0]}


def run(cfg: Config, ctx: RunContext) -> dict:
    """Cells: ``decaying`` (checks 1-2 and the eps sweep), ``constant`` (check 4) and ``jitter`` (check 3).
    Each batch runs all its problems and seeds on one random stream, so it is one cell."""
    cells = [Cell("decaying", _decaying, (cfg,)), Cell("constant", _constant, (cfg,)), Cell("jitter", _jitter, (cfg,))]
    runs, cruns, jit = ctx.map(cells, desc="batches")

    problems, info, _ = _problems(cfg, ctx)
    T = fit_grid(cfg.t_min, cfg.steps, cfg.per_decade)
    out_problems = {}
    for p in problems:
        r = runs[p.name]
        idx = np.searchsorted(r["record"], T)
        out_problems[p.name] = {
            **info[p.name], "eps": p.eps, "r0": p.r0, "measure": p.measure, "particle_dim": p.particle_dim,
            "lambda_min": p.hessian_min_eig, "exponent": p.exponent,
            "g_T": r["running_min"][idx],            # [n_T, S]
            "record": r["record"], "mean_running_min": r["running_min"].mean(axis=1),
            "mean_value": r["value"].mean(axis=1),
            "f_final": r["f_final"], "f_min": float(p.objective.minimum),
            "dist_final": (np.linalg.norm(r["x_final"] - p.objective.minimizer.numpy(), axis=1)
                           if hasattr(p.objective, "minimizer") else np.full(cfg.seeds, np.nan)),
        }
    const = {}
    for p in _const_problems(cfg, ctx):
        r = cruns[p.name]
        const[p.name] = {"r": p.r0, "eps": p.eps, "record": r["record"], "value": r["value"],
                         "tail_mean": r["tail_mean"], "mean_value": r["value"].mean(axis=1),
                         "step_size": p.r0 ** 2 / (2 * p.particle_dim * p.eps)}
    return {"scale": ctx.scale, "T": T, "problems": out_problems, "constant": const, "jitter": jit,
            "settings": {"r0": cfg.r0, "eps": cfg.eps, "eta_max": cfg.jitter, "steps": cfg.steps,
                         "seeds": cfg.seeds, "const_steps": cfg.const_steps, "const_eps": list(cfg.const_eps),
                         "jitter_dim": cfg.jitter_dim, "particle_dim": cfg.particle_dim}}


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------


def fits(results: dict) -> dict:
    """Slope (bootstrap CI) and envelope statistics of every decaying-radius series."""
    rng = np.random.default_rng(BOOT_SEED)
    T = np.asarray(results["T"])
    out = {}
    for name, p in results["problems"].items():
        f = fit_rate(T, p["g_T"], rng, n_boot=2000 if p["g_T"].shape[1] > 5 else 1000, floor=FIT_FLOOR)
        if not math.isfinite(f["slope"]) and not np.all(f["used"]):
            # fewer than 3 horizons above the rounding floor: g_T reached exact stationarity, a decay
            # faster than any power of T
            f = {**f, "slope": -math.inf, "ci": np.array([-math.inf, -math.inf])}
        out[name] = {**f, **envelope_stats(T, f["mean"]), "group": p["group"], "exponent": p["exponent"]}
    return out


def _fmt_slopes(fs: dict, names: list[str]) -> str:
    return "; ".join(f"{n}: {fs[n]['slope']:+.2f} [{fs[n]['ci'][0]:+.2f}, {fs[n]['ci'][1]:+.2f}]"
                     + (f" (predicted -c = {-fs[n]['exponent']:+.2f})" if math.isfinite(fs[n]["exponent"]) else "")
                     for n in names)


def plateau_summary(results: dict) -> dict:
    """Per temperature: plateau statistics per radius and the fitted exponent of plateau ~ r^a.

    A cell is *flat* when the tail slope of its seed-mean ``||grad L||`` is at most
    ``plateau_flat_slope`` in absolute value, *converged* when its final value is at most
    ``converged_drop`` times its first (both from the registry entry of
    ``polystep.thm42_constant_radius_plateau``).
    """
    spec = get_claim("polystep.thm42_constant_radius_plateau").extra
    flat_max, drop = float(spec["plateau_flat_slope"]), float(spec["converged_drop"])
    const = results["constant"]
    out = {}
    for e in sorted({c["eps"] for c in const.values()}, reverse=True):
        cells = sorted((c for c in const.values() if c["eps"] == e), key=lambda c: c["r"])
        stats = []
        for c in cells:
            st = plateau_stats(c["record"], c["value"], c["tail_mean"])
            st["converged"] = bool(st["final"] <= drop * st["first"])
            st["flat"] = bool(abs(st["tail_slope"]) <= flat_max) if math.isfinite(st["tail_slope"]) else False
            stats.append({"r": c["r"], "step_size": c["step_size"], **st})
        r = np.array([s["r"] for s in stats])
        lv = np.array([s["plateau"] for s in stats])
        expo = float(np.polyfit(np.log(r), np.log(lv), 1)[0]) if len(r) >= 2 and np.all(lv > 0) else math.nan
        out[e] = {"cells": stats, "exponent": expo,
                  "plateaus": sum(s["flat"] and not s["converged"] for s in stats)}
        out[e]["plateau_all"] = out[e]["plateaus"] == len(stats)
    return out


def _groups(results: dict) -> tuple[list[str], list[str], list[str]]:
    probs = results["problems"]
    smooth = [n for n, p in probs.items() if p["group"] == "smooth"]
    nonsmooth = [n for n, p in probs.items() if p["group"] == "nonsmooth"]
    sweep = [n for n, p in probs.items() if p["group"] == "sweep" or (p["group"] == "smooth" and
                                                                       p["kind"] == "logcosh" and p["dim"] == 8)]
    return smooth, nonsmooth, sweep


def _setting(results: dict) -> str:
    s = results["settings"]
    return (f"r_s = r_p = {s['r0']:g}/sqrt(t+1), eps = {s['eps']:g}, eta_max = {s['eta_max']:g}, "
            f"T <= {s['steps']}, {s['seeds']} seeds")


@claim("polystep.thm42_rate_smooth")
def _rate_smooth(results: dict) -> dict:
    fs = fits(results)
    probs = results["problems"]
    smooth, _, sweep = _groups(results)
    sweep_txt = "; ".join(f"eps = {probs[n]['eps']:g}: {fs[n]['slope']:+.2f} vs -c = {-fs[n]['exponent']:+.2f}"
                          for n in sorted(sweep, key=lambda n: probs[n]["eps"]))
    worst = max(smooth, key=lambda n: fs[n]["slope"])
    return {
        "value": fs[worst]["slope"],
        "detail": f"largest (worst) log-log slope of E g_T over {len(smooth)} smooth problems ({_setting(results)}): "
                  f"{worst}. Slopes [bootstrap 95% CI]: {_fmt_slopes(fs, smooth)}. The rate is T^-c with the "
                  f"linear-regime exponent c = lambda_min r0^2/(2 d_p eps), not log T/sqrt T"
                  + (f": eps sweep on {sweep[0].split('_eps')[0]}: {sweep_txt}" if sweep else ""),
        "evidence": {"problems": smooth, "slopes": [fs[n]["slope"] for n in smooth],
                     "ci_high": [float(fs[n]["ci"][1]) for n in smooth],
                     "predicted_slopes": [-fs[n]["exponent"] for n in smooth],
                     "sweep_slopes": [fs[n]["slope"] for n in sweep],
                     "sweep_predicted": [-fs[n]["exponent"] for n in sweep]},
    }


@claim("polystep.thm42_rate_envelope")
def _rate_envelope(results: dict) -> dict:
    fs = fits(results)
    smooth, _, _ = _groups(results)
    mom = {n: fs[n]["max_over_min"] for n in smooth}
    grow = {n: fs[n]["growth"] for n in smooth}
    worst = max(mom, key=mom.get)
    falling = [n for n in smooth if grow[n] <= 1.0 + 1e-12]
    rising = [n for n in smooth if grow[n] > 1.0 + 1e-12]
    return {
        "value": float(mom[worst]),
        "detail": f"max/min of g_T sqrt(T)/log T over T in [{int(results['T'][0])}, {int(results['T'][-1])}] "
                  f"(value: the largest over {len(smooth)} smooth problems); per problem max/min (growth = max "
                  f"ratio / ratio at T_min; > 1 means g_T decays slower than log T/sqrt T): "
                  + "; ".join(f"{n}: {mom[n]:.1f} (growth {grow[n]:.2f})" for n in smooth)
                  + ". " + "; ".join(x for x in (
                      ("ratio never above its T_min value, i.e. g_T decays at least as fast as log T/sqrt T (the O() "
                       "upper bound holds; a large max/min then means faster): " + ", ".join(falling)) if falling else "",
                      ("ratio growing, i.e. slower than log T/sqrt T: "
                       + ", ".join(f"{n} (x{grow[n]:.2f})" for n in rising)) if rising else "") if x),
        "evidence": {"problems": smooth, "max_over_min": [float(mom[n]) for n in smooth],
                     "growth": [float(grow[n]) for n in smooth]},
    }


@claim("polystep.thm42_rate_nonsmooth")
def _rate_nonsmooth(results: dict) -> dict:
    fs = fits(results)
    probs = results["problems"]
    _, nonsmooth, _ = _groups(results)
    worst = max(nonsmooth, key=lambda n: fs[n]["slope"])
    pooled = fit_rate(np.asarray(results["T"]), np.concatenate([probs[n]["g_T"] for n in nonsmooth], axis=1),
                      np.random.default_rng(BOOT_SEED))
    stationary = {n: int(np.sum(probs[n]["g_T"][-1] < ZERO_MEASURE)) for n in nonsmooth}
    zeros = "; ".join(f"{n}: {stationary[n]}/{probs[n]['g_T'].shape[1]}" for n in nonsmooth)
    dist = "; ".join(f"{n}: {np.mean(probs[n]['dist_final']):.3g}"
                     + (f" ({probs[n]['dim'] // probs[n]['particle_dim']} block particles; see clarke_stationarity "
                        f"for the block-coordinate stall on L1)" if probs[n]["particle_dim"] < probs[n]["dim"] else "")
                     for n in nonsmooth)
    return {
        "value": fs[worst]["slope"],
        "detail": f"largest (worst-instance) log-log slope of E g_T, g_T = min_t Goldstein measure at delta = "
                  f"r_p(t) (4D sampled gradients, exact min-norm QP), over {len(nonsmooth)} random "
                  f"||Bx - c||_1 + 0.1||x||^2 instances ({_setting(results)}): {_fmt_slopes(fs, nonsmooth)}; pooled "
                  f"over instances {pooled['slope']:+.2f} [{pooled['ci'][0]:+.2f}, {pooled['ci'][1]:+.2f}]. The "
                  f"measure is step-like: it drops to rounding (exact delta-stationarity, horizons below "
                  f"{FIT_FLOOR:g} are left out of the fit) once the delta_t-ball around x_t catches the minimiser; "
                  f"runs exactly stationary at T_max: {zeros}; mean ||x_T - x*||: {dist}",
        "evidence": {"problems": nonsmooth, "slopes": [fs[n]["slope"] for n in nonsmooth],
                     "pooled_slope": float(pooled["slope"]),
                     "stationary_at_T_max": [stationary[n] for n in nonsmooth],
                     "mean_dist_final": [float(np.mean(probs[n]["dist_final"])) for n in nonsmooth]},
    }


@claim("polystep.thm42_jitter_condition")
def _jitter_condition(results: dict) -> dict:
    from scipy import stats

    s = results["settings"]
    jit = results["jitter"]
    eta = s["eta_max"]
    fac = np.asarray(jit["factor"])
    ks_f = float(stats.kstest(fac, stats.uniform(loc=1 - eta, scale=2 * eta).cdf).pvalue)
    h = jit["haar"]
    d = s["jitter_dim"]
    return {
        "value": min(ks_f, float(h["ks_p"])),
        "detail": f"{len(fac)} proposals, d = {d}: jitter factor in [{fac.min():.4f}, {fac.max():.4f}] "
                  f"(allowed [{1 - eta:g}, {1 + eta:g}]), KS p vs U = {ks_f:.3f}; rotations: max|E R_ij| = "
                  f"{h['max_abs_mean']:.3f}, E R_11^2 = {h['r11_sq_mean']:.4f} (1/d = {1 / d:.4f}), max|det R - 1| = "
                  f"{h['det_err']:.1e}, KS p of R_11^2 vs Beta(1/2, (d-1)/2) = {h['ks_p']:.3f}; value = the smaller "
                  f"KS p. One eta_t is drawn per step for all particles (functional.propose)",
        "evidence": {"draws": int(len(fac)), "dim": int(d), "eta_max": float(eta),
                     "factor_in_range": bool(np.all((fac >= 1 - eta) & (fac <= 1 + eta))),
                     "ks_p_factor": ks_f, "ks_p_r11": float(h["ks_p"]),
                     "max_abs_mean_R": float(h["max_abs_mean"]), "r11_sq_mean": float(h["r11_sq_mean"]),
                     "det_err": float(h["det_err"])},
    }


@claim("polystep.thm42_constant_radius_plateau")
def _constant_radius_plateau(results: dict) -> dict:
    s = results["settings"]
    ps = plateau_summary(results)
    e_main, e_small = max(ps), min(ps)
    small, main = ps[e_small], ps[e_main]
    conv_main = [c for c in main["cells"] if c["converged"]]

    def cells_txt(x):
        return ", ".join(f"r = {c['r']:g}: tail mean ||grad|| {c['plateau']:.2g}, tail slope "
                         f"{c['tail_slope']:+.2f}{' (converged)' if c['converged'] else ''}" for c in x["cells"])

    return {
        "value": small["exponent"],
        "detail": (f"constant r_s = r_p = r, log-cosh quadratic D = 8, {s['const_steps']} steps. Direct-search "
                  f"regime eps = {e_small:g}: {cells_txt(small)}; plateau ~ r^{small['exponent']:.2f} (value). "
                  f"Main eps = {e_main:g}: {cells_txt(main)}. "
                  + ("At the main eps and small r PolyStep is gradient descent with the constant step "
                     "r^2/(2 d_p eps) and converges (to rounding: the loss is symmetric about its minimiser, "
                     "so the orthoplex step vanishes there) -- the O(r) plateau is a property of the "
                     "direct-search regime r ||grad L|| >> eps, not of constant radii as such."
                     if conv_main else "")).rstrip(),
        "evidence": {"direct_search_eps": float(e_small), "main_eps": float(e_main),
                     "direct_search_cells": len(small["cells"]), "direct_search_plateaus": small["plateaus"],
                     "direct_search_tail_slopes": [c["tail_slope"] for c in small["cells"]],
                     "main_cells": len(main["cells"]), "main_converged": len(conv_main),
                     "main_converged_radii": [c["r"] for c in conv_main],
                     "main_exponent": main["exponent"]},
    }


# ---------------------------------------------------------------------------------------------
# figures and table
# ---------------------------------------------------------------------------------------------

COLORS = {"logcosh_D8": "#0072B2", "logcosh_D32": "#56B4E9", "rosenbrock_D8": "#D55E00",
          "rosenbrock_D32": "#E69F00"}
L1_COLORS = ("#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#E69F00", "#000000")


def _color(results: dict, name: str) -> str:
    if name in COLORS:
        return COLORS[name]
    ns = [n for n, p in results["problems"].items() if p["group"] == "nonsmooth"]
    return L1_COLORS[ns.index(name) % len(L1_COLORS)] if name in ns else "0.3"


def _rate_panel(ax, results, fs, names, ylabel, title, legend_loc=("lower left", (0.0, 0.06))):
    T = np.asarray(results["T"], dtype=float)
    for n in names:
        p = results["problems"][n]
        c = _color(results, n)
        rec = np.asarray(p["record"], dtype=float)
        m = np.asarray(p["mean_running_min"])
        sel = (rec >= 10) & (m > 0)
        ax.plot(rec[sel], np.maximum(m[sel], FIT_FLOOR / 10), color=c, lw=1.0, alpha=0.55)
        f = fs[n]
        ax.plot(T, np.maximum(f["mean"], FIT_FLOOR / 10), "o", color=c, ms=4)
        if not np.all(f["used"]):
            ax.plot(T[~f["used"]], np.full((~f["used"]).sum(), FIT_FLOOR / 10), "x", color=c, ms=7, mew=2)
        if math.isfinite(f["slope"]):
            ax.plot(T, np.exp(f["intercept"]) * T ** f["slope"], color=c, lw=2.0,
                    label=f"{n}: slope {f['slope']:+.2f} [{f['ci'][0]:+.2f}, {f['ci'][1]:+.2f}]")
        else:
            ax.plot([], [], color=c, lw=2.0, label=f"{n}: slope −∞ (exactly stationary, ×)")
    # reference C log T / sqrt T through the geometric mean of the first points
    g0 = np.exp(np.mean([np.log(max(fs[n]["mean"][0], FIT_FLOOR)) for n in names]))
    ref = g0 * (np.log(T) / np.sqrt(T)) / (np.log(T[0]) / np.sqrt(T[0]))
    ax.plot(T, ref, color="k", ls="--", lw=1.3, label="reference ∝ log T/√T")
    if any(not np.all(fs[n]["used"]) for n in names):
        ax.axhline(FIT_FLOOR, color="0.5", lw=0.8, ls=":")
        ax.text(T[-1], FIT_FLOOR * 3, "× exactly stationary (rounding; left out of the fit)", fontsize=7,
                color="0.3", ha="right")
    ax.set(xscale="log", yscale="log", xlabel="T (steps)", ylabel=ylabel, title=title)
    ax.axvspan(T[0], T[-1], color="0.93", zorder=0, lw=0)
    ax.legend(fontsize=7.5, loc=legend_loc[0], bbox_to_anchor=legend_loc[1])


def _plot_rates(results: dict):
    import matplotlib.pyplot as plt

    fs = fits(results)
    probs = results["problems"]
    smooth = [n for n, p in probs.items() if p["group"] == "smooth"]
    nonsmooth = [n for n, p in probs.items() if p["group"] == "nonsmooth"]
    s = results["settings"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    _rate_panel(axes[0], results, fs, smooth, "E min$_{t≤T}$ ‖∇L(x$_t$)‖",
                "Smooth losses: g$_T$ = min$_{t≤T}$‖∇L(x$_t$)‖ (fit on shaded T range)")
    _rate_panel(axes[1], results, fs, nonsmooth, "E min$_{t≤T}$ G$_{δ_t}$(x$_t$)",
                "‖Bx − c‖$_1$ + 0.1‖x‖² (random instances): Goldstein, δ$_t$ = r$_p$(t)",
                legend_loc=("center left", (0.0, 0.45)))
    ax = axes[2]
    sweep = sorted([n for n, p in probs.items() if math.isfinite(p["exponent"])], key=lambda n: probs[n]["exponent"])
    c_pred = np.array([probs[n]["exponent"] for n in sweep])
    slopes = np.array([fs[n]["slope"] for n in sweep])
    lo = np.array([fs[n]["ci"][0] for n in sweep])
    hi = np.array([fs[n]["ci"][1] for n in sweep])
    for i, (n, c, sl, a, b) in enumerate(zip(sweep, c_pred, slopes, lo, hi)):
        col = COLORS.get(n, "#0072B2" if probs[n]["kind"] == "logcosh" else "0.3")
        ax.errorbar([c], [sl], yerr=[[max(sl - a, 0)], [max(b - sl, 0)]], fmt="o", color=col, ms=6, capsize=3)
        lab = f"{probs[n]['kind']} D{probs[n]['dim']}, ε={probs[n]['eps']:g}" + \
            (" (transient)" if probs[n]["kind"] == "rosenbrock" else "")
        dup = sum(abs(c2 - c) < 0.06 * c for c2 in c_pred[:i])
        ax.annotate(lab, (c, sl), textcoords="offset points", xytext=(7, -3 - 10 * dup), fontsize=7)
    grid = np.logspace(np.log10(c_pred.min() / 1.5), np.log10(c_pred.max() * 1.5), 50)
    ax.plot(grid, -grid, color="0.4", lw=1.2, label="slope = −c (linear-regime prediction)")
    ax.axhline(-0.5, color="k", ls="--", lw=1.0, label="−1/2 (the T$^{-1/2}$ of log T/√T)")
    smooth_claim = get_claim("polystep.thm42_rate_smooth")
    slope_max = smooth_claim.paper_value + smooth_claim.tolerance
    ax.axhline(slope_max, color="#C0392B", ls=":", lw=1.0, label=f"claim threshold {slope_max:g}")
    ax.set(xscale="log", xlabel="c = λ$_{min}$ r$_0^2$ / (2 d$_p$ ε)", ylabel="fitted log-log slope of g$_T$",
           title="Fixed ε: the late phase is GD with step r$_0^2$/(2d$_p$ε(t+1)),\nso g$_T$ ~ T$^{-c}$ (measured vs predicted)")
    from matplotlib import ticker

    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.legend(fontsize=7.5, loc="lower left")
    fig.suptitle(f"Theorem 4.2 (reconstructed): PolyStep with r$_s$ = r$_p$ = {s['r0']:g}/√(t+1), ε = {s['eps']:g}, "
                 f"η$_{{max}}$ = {s['eta_max']:g}, {s['seeds']} seeds (bootstrap 95% CI over seeds)", fontsize=12)
    fig.tight_layout()
    return fig


def _plot_ablation(results: dict):
    import matplotlib.pyplot as plt

    ps = plateau_summary(results)
    const = results["constant"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.9))
    ax = axes[0]
    radii = sorted({c["r"] for c in const.values()})
    cmap = plt.get_cmap("viridis")
    styles = {max(ps): "-", min(ps): "--"}
    for c in const.values():
        col = cmap(radii.index(c["r"]) / max(1, len(radii) - 1) * 0.85)
        rec = np.asarray(c["record"], dtype=float)
        ax.plot(rec, np.maximum(c["mean_value"], 1e-17), color=col, ls=styles[c["eps"]], lw=1.5,
                label=f"r = {c['r']:g}, ε = {c['eps']:g} (GD step r²/(2d$_p$ε) = {c['step_size']:.2g})")
    ax.set(xscale="log", yscale="log", xlabel="t", ylabel="mean ‖∇L(x$_t$)‖ over seeds",
           title=f"Constant radii, log-cosh quadratic D = 8: plateau at ε = {min(ps):g};\n"
                 f"at ε = {max(ps):g} small r converge (GD regime), large r oscillate")
    ax.legend(fontsize=7)
    ax = axes[1]
    for e, st in ps.items():
        r = np.array([c["r"] for c in st["cells"]])
        lv = np.array([c["plateau"] for c in st["cells"]])
        conv = [f"{c['r']:g}" for c in st["cells"] if c["converged"]]
        lab = (f"ε = {e:g}: converged to rounding at r = {', '.join(conv)}" if conv
               else f"ε = {e:g}: plateau ∝ r^{st['exponent']:.2f}")
        ax.plot(r, np.maximum(lv, 1e-17), "o" + styles[e], label=lab)
    r = np.array(radii)
    ref0 = [c["plateau"] for c in ps[min(ps)]["cells"]][0]
    ax.plot(r, ref0 * r / r[0], color="0.5", ls=":", label="∝ r")
    ax.set(xscale="log", yscale="log", xlabel="constant radius r", ylabel="tail mean ‖∇L‖ (last 20% of steps)",
           title="Plateau level vs r: O(r) in the direct-search regime only")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plot_jitter(results: dict):
    import matplotlib.pyplot as plt
    from scipy import stats

    jit = results["jitter"]
    s = results["settings"]
    eta, d = s["eta_max"], s["jitter_dim"]
    fac = np.asarray(jit["factor"])
    r11 = np.asarray(jit["r11"]) ** 2
    from scipy import stats as st

    ks_f = float(st.kstest(fac, st.uniform(loc=1 - eta, scale=2 * eta).cdf).pvalue)
    h = jit["haar"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    ax.hist(fac, bins=25, range=(1 - eta, 1 + eta), density=True, color="#0072B2", alpha=0.6,
            label=f"{len(fac)} draws")
    ax.axhline(1 / (2 * eta), color="k", lw=1.2, ls="--", label=f"U[{1 - eta:g}, {1 + eta:g}] density")
    ax.set(xlabel="probe-radius factor r$_p$/r = 1 + η$_t$", ylabel="density",
           title="Condition (iv): jitter factor is uniform")
    ax.legend(fontsize=8, loc="lower center")
    ax = axes[1]
    xs = np.linspace(1e-3, 1, 300)
    ax.hist(r11, bins=40, range=(0, 1), density=True, color="#D55E00", alpha=0.6, label="R$_{11}^2$ of the rotations")
    ax.plot(xs, stats.beta(0.5, (d - 1) / 2).pdf(xs), color="k", ls="--", lw=1.2, label="Beta(1/2, (d−1)/2) (Haar)")
    ax.set(xlabel="R$_{11}^2$", ylabel="density", ylim=(0, 8), title=f"Rotations (d = {d}) are Haar on SO(d)")
    ax.legend(fontsize=8)
    fig.suptitle(f"{len(fac)} proposals: jitter KS p = {ks_f:.2f}; rotations: max|E R$_{{ij}}$| = "
                 f"{h['max_abs_mean']:.3f}, E R$_{{11}}^2$ = {h['r11_sq_mean']:.4f} (1/d = {1 / d:.4f}), "
                 f"max|det R − 1| = {h['det_err']:.0e}, KS p (R$_{{11}}^2$) = {h['ks_p']:.2f}", fontsize=10)
    fig.tight_layout()
    return fig


def plot(results: dict) -> dict:
    return {"rates": _plot_rates(results), "ablation": _plot_ablation(results), "jitter": _plot_jitter(results)}


def table(results: dict) -> str:
    from repro.report import measurement_table

    lines = measurement_table(measure_claims(ID, results))
    fs = fits(results)
    lines += ["", "| series | ε | predicted −c | slope | 95% CI | max/min envelope |", "|---|---|---|---|---|---|"]
    for n, p in results["problems"].items():
        f = fs[n]
        env = f"{f['max_over_min']:.2f}" if np.all(f["used"]) else "– (reaches rounding)"
        lines.append(f"| {n} | {p['eps']:g} | {-p['exponent']:+.3f} | {f['slope']:+.3f} | "
                     f"[{f['ci'][0]:+.3f}, {f['ci'][1]:+.3f}] | {env} |")
    return "\n".join(lines)
