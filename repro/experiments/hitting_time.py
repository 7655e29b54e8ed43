"""Hitting-time bound on piecewise-constant losses (reconstructed): geometric law, cap bound, trends,
and the ES/SPSA zero-gradient stall.

The paper's bound could not be read (paper/polystep_reconstruction.md §3.4, [U]); the version checked is the
hypothesis stated there, as implemented in :mod:`theory.hitting_time`:

* staircases ``floor(||x||/w)`` (radial) and ``sum_i floor(|x_i|/w)`` (separable), ``w = 1``, start
  at level ``m0 = 20`` a fraction ``beta = 0.4`` of a step above the lower boundary
  (radial: ``||x0|| = 20.4 w``; separable: ``x0_i = (k_i + 0.4) w``, ``sum k_i = 20``);
* PolyStep with constant radii, probes at the vertices (``r_p = 2 r_s``, ``K = 1``), no jitter,
  ``eps = 0.01`` (a level gap of 1 weighs ``e^{-100}``);
* per cell ``(staircase, d_p, polytope, r_s/w)``: the one-step hit probability ``p_hat`` at ``x0``
  (Monte Carlo), the hitting times ``tau`` of independent chains, ``E[tau] p_hat`` (1 for a geometric
  law), the chi-square fit to ``Geometric(p_hat)``, the analytic cap bound ``p_lower`` (radial) and
  the check ``E[tau] <= 1/p_lower``; trends of ``E[tau]`` in ``d_p``, ``V`` and ``r_s/w``;
* a "stall" cell: mid-shell start (``beta = 0.5``) with ``r_s = w/2``: no vertex can change level;
* OpenAI-ES (8 antithetic pairs, ``sigma = 0.02 w``) and SPSA (``c = 0.02 w``), 1,000 iterations from
  the same starts (and, reported only, from uniformly random points of the level-20 shell).

Scales: ``ci`` a 2 x 2 x 2 radial grid, 500 chains (seconds); ``cpu`` the grid of check 1 of
reconstruction §3.4 (``d_p in {2, 4, 8}``, simplex/orthoplex/cube, ``r_s/w in {0.5, 1, 2}``, separable orthoplex cells),
2,000 chains, 20,000 one-step draws (about a minute); ``paper`` 10,000 chains and 100,000 draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from theory import objectives as O
from polystep import polytopes
from repro.claims import claim, claims_of, get_claim
from repro.claims import measure as measure_claims
from repro.cells import Cell
from repro.context import RunContext
from theory.hitting_time import (
    geometric_summary,
    hitting_config,
    hitting_times,
    level_trajectories,
    one_step_hit_probability,
    radial_start,
    run_two_point_baseline,
    separable_start,
    vertex_hit_bounds,
)

ID = "hitting_time"
TITLE = "Hitting times of PolyStep on staircase losses vs the geometric law and the cap bound; ES/SPSA stall"
CLAIMS = claims_of(ID)  # the rules (tolerances, the trend's reversal_se) are in paper/claims.toml
VERSION = 1


@dataclass(frozen=True)
class Config:
    w: float = 1.0
    level: int = 20
    beta: float = 0.4
    eps: float = 0.01
    radial_dims: tuple[int, ...] = (2, 4)
    radial_kinds: tuple[str, ...] = ("simplex", "orthoplex")
    radii: tuple[float, ...] = (0.5, 1.0)
    separable_dims: tuple[int, ...] = (4,)
    separable_radii: tuple[float, ...] = (0.5,)
    stall: tuple[int, str, float, float] = (4, "orthoplex", 0.5, 0.5)  # (d_p, kind, r_s/w, beta)
    n_runs: int = 500
    p_samples: int = 5000
    max_steps: int = 2000
    stall_steps: int = 200
    traj_runs: int = 20
    traj_steps: int = 150
    traj_cells: tuple[tuple[int, str, float], ...] = ((4, "orthoplex", 0.5), (4, "orthoplex", 1.0))
    baseline_iters: int = 1000
    baseline_dims: tuple[int, ...] = (2, 4, 8)
    baseline_starts: int = 3
    baseline_random_starts: int = 3
    perturbation: float = 0.02        # x w
    es_pairs: int = 8
    es_lr: float = 0.01
    spsa_lr: float = 0.01


_CPU = Config(radial_dims=(2, 4, 8), radial_kinds=("simplex", "orthoplex", "cube"), radii=(0.5, 1.0, 2.0),
              separable_dims=(2, 4, 8), separable_radii=(0.5, 1.0, 2.0), n_runs=2000, p_samples=20_000,
              stall_steps=1000, traj_runs=50, traj_steps=300,
              traj_cells=((8, "orthoplex", 0.5), (8, "orthoplex", 1.0)),
              baseline_starts=5, baseline_random_starts=20)
_PAPER = Config(**{**_CPU.__dict__, "n_runs": 10_000, "p_samples": 100_000, "max_steps": 10_000,
                   "baseline_starts": 20, "baseline_random_starts": 100})
CONFIGS = {"ci": Config(), "cpu": _CPU, "paper": _PAPER}


def _cell(stair: str, d: int, kind: str, r: float, beta: float, max_steps: int, cfg: Config,
          ctx: RunContext) -> dict:
    """One cell ``(staircase, d_p, polytope, r_s/w)``: ``p_hat`` at ``x0``, the hitting times and the cap bound."""
    obj = O.staircase_radial(cfg.w) if stair == "radial" else O.staircase_separable(cfg.w)
    x0 = (radial_start if stair == "radial" else separable_start)(d, cfg.level, cfg.w, beta)
    conf = hitting_config(kind, r * cfg.w, cfg.eps)
    g = ctx.torch_generator("cell", stair, d, kind, r, beta, device="cpu")
    n_p = cfg.p_samples if polytopes.num_vertices(kind, d) <= 64 else max(cfg.p_samples // 5, 1000)
    ph = one_step_hit_probability(obj, x0, conf, n_p, g)
    ht = hitting_times(obj, x0, conf, cfg.n_runs, max_steps, g)
    V = polytopes.num_vertices(kind, d)
    ctx.count_evals(n_p * V + int(np.minimum(ht["tau"], max_steps).sum()) * V)
    out = {"stair": stair, "d": d, "kind": kind, "V": V, "r": r, "beta": beta, "p_hat": ph["p_hat"],
           "p_se": ph["se"], "p_vertex": ph["p_vertex"], "n_p": ph["n"], "tau": ht["tau"],
           "censored": int(ht["censored"].sum()), "moved": ht["moved"], "max_steps": max_steps,
           "rho0": float(x0.norm())}
    if stair == "radial":
        b = vertex_hit_bounds(kind, d, float(x0.norm()), cfg.w, cfg.level, r * cfg.w)
        out.update({"kappa": b["kappa"], "mu": b["mu"], "p_lower": b["p_lower"],
                    "p_vertex_upper": b["p_vertex_upper"]})
    return out


def _trajectories(d: int, kind: str, r: float, cfg: Config, ctx: RunContext) -> dict:
    """Level trajectories of PolyStep over many levels (for the figure and the stall statistics)."""
    g = ctx.torch_generator("trajectories", d, kind, r, device="cpu")
    lv = level_trajectories(O.staircase_radial(cfg.w), radial_start(d, cfg.level, cfg.w, cfg.beta),
                            hitting_config(kind, r * cfg.w, cfg.eps), cfg.traj_runs, cfg.traj_steps, g)
    ctx.count_evals(cfg.traj_steps * cfg.traj_runs * polytopes.num_vertices(kind, d))
    return {"d": d, "kind": kind, "r": r, "levels": lv}


def _baselines(cfg: Config, ctx: RunContext) -> list[dict]:
    """ES / SPSA from the PolyStep starts (rotated at random: the radial law does not depend on the
    direction) and, reported only, from uniform points of the level-m0 shell.

    One cell: every start and run draws from the one ``"baselines"`` stream in turn, so the runs
    are not independent units (splitting them would change their random numbers)."""
    f = O.staircase_radial(cfg.w)
    g = ctx.torch_generator("baselines", device="cpu")
    rows = []
    for d in cfg.baseline_dims:
        for origin, n in (("polystep_start", cfg.baseline_starts), ("random_shell", cfg.baseline_random_starts)):
            for i in range(n):
                u = torch.randn(d, generator=g, dtype=torch.float64)
                u = u / u.norm()
                frac = cfg.beta if origin == "polystep_start" else float(torch.rand((), generator=g, dtype=torch.float64))
                x0 = (cfg.level + frac) * cfg.w * u
                for method, lr in (("es", cfg.es_lr), ("spsa", cfg.spsa_lr)):
                    res = run_two_point_baseline(method, f, x0, cfg.baseline_iters, cfg.perturbation * cfg.w,
                                                 lr, g, n_pairs=cfg.es_pairs)
                    ctx.count_evals(res["evals"])
                    rows.append({"method": method, "origin": origin, "d": d, "start_frac": frac,
                                 "zero_fraction": res["zero_fraction"], "level_changes": res["level_changes"],
                                 "start_level": res["start_level"], "final_level": res["final_level"],
                                 "levels": res["levels"][:: max(1, cfg.baseline_iters // 200)]})
    return rows


def run(cfg: Config, ctx: RunContext) -> dict:
    """Cells: one per grid cell ``(staircase, d_p, polytope, r_s/w)`` (``radial-d4-orthoplex-r0.5``), the
    stall cell, one per trajectory cell (``trajectories-d4-orthoplex-r0.5``) and the ES/SPSA baselines."""
    grid = [("radial", d, k, r) for d in cfg.radial_dims for k in cfg.radial_kinds for r in cfg.radii]
    grid += [("separable", d, "orthoplex", r) for d in cfg.separable_dims for r in cfg.separable_radii]
    sd, sk, sr, sb = cfg.stall
    cells = [Cell(f"{stair}-d{d}-{kind}-r{r:g}", _cell, (stair, d, kind, r, cfg.beta, cfg.max_steps, cfg))
             for stair, d, kind, r in grid]
    cells.append(Cell("stall", _cell, ("radial", sd, sk, sr, sb, cfg.stall_steps, cfg)))
    cells += [Cell(f"trajectories-d{d}-{k}-r{r:g}", _trajectories, (d, k, r, cfg)) for d, k, r in cfg.traj_cells]
    cells.append(Cell("baselines", _baselines, (cfg,)))
    values = ctx.map(cells, desc="cells")
    n = len(grid)
    return {"scale": ctx.scale, "cells": values[:n], "stall": values[n],
            "trajectories": values[n + 1:n + 1 + len(cfg.traj_cells)], "baselines": values[-1],
            "settings": {"w": cfg.w, "level": cfg.level, "beta": cfg.beta, "eps": cfg.eps, "n_runs": cfg.n_runs,
                         "perturbation": cfg.perturbation, "baseline_iters": cfg.baseline_iters,
                         "es_pairs": cfg.es_pairs}}


# ---------------------------------------------------------------------------------------------
# measurements (one @claim function per claim; the rules are in paper/claims.toml)
# ---------------------------------------------------------------------------------------------


def summaries(results: dict) -> list[dict]:
    """Per cell: E[tau], E[tau] p_hat (delta-method SE), chi-square p, the cap-bound check, and
    whether the cell can say anything about the law of tau (``informative``).

    A cell is uninformative about the geometric law when ``p_hat = 1`` (every step hits: tau = 1)
    or when the iterate never moves within the level (``moved = 0``: each idle step is then an
    independent trial from ``x0`` and tau is geometric with ``p(x0)`` by construction, so
    ``E[tau] p_hat = 1`` only checks two Monte-Carlo estimates of the same ``p(x0)``).
    """
    out = []
    for c in results["cells"]:
        tau = np.asarray(c["tau"])
        s = {k: c[k] for k in ("stair", "d", "kind", "V", "r", "p_hat", "p_se", "p_vertex", "moved", "censored")}
        s["p_lower"] = c.get("p_lower", math.nan)
        if c["censored"]:
            s.update({"mean_tau": math.inf, "se_tau": 0.0, "product": math.nan, "se_product": math.nan,
                      "gof_p": math.nan})
        else:
            s.update(geometric_summary(tau, c["p_hat"], c["p_se"]))
        s["bound_ok"] = bool(s["mean_tau"] <= 1.0 / s["p_lower"]) if s["p_lower"] > 0 else True
        s["p_one"] = bool(c["p_hat"] >= 1.0)
        s["never_moves"] = bool(not s["p_one"] and c["moved"] == 0)
        s["informative"] = bool(0 < c["p_hat"] < 1 and c["moved"] > 0)
        out.append(s)
    return out


def _label(x: dict) -> str:
    return f"{x['stair']} d{x['d']} {x['kind']} r{x['r']:g}"


def _measured_cells(summ: list[dict]) -> list[dict]:
    """The cells where E[tau] p_hat(x0) is defined: p_hat(x0) > 0 and no censored chain."""
    return [x for x in summ if x["p_hat"] > 0 and not x["censored"]]


def _setting(results: dict) -> str:
    s = results["settings"]
    return (f"staircase w = {s['w']:g}, start level {s['level']} at beta = {s['beta']:g}, eps = {s['eps']:g}, "
            f"r_p = 2 r_s, {s['n_runs']} chains")


def _informative_counts(cells: list[dict]) -> str:
    return (f"{sum(x['p_one'] for x in cells)} with p_hat = 1, {sum(x['never_moves'] for x in cells)} where "
            f"the iterate never moves within the level (geometric by construction), "
            f"{sum(x['informative'] for x in cells)} informative")


@claim("polystep.hitting_time_geometric")
def _hitting_time_geometric(results: dict) -> dict:
    summ = summaries(results)
    cells = _measured_cells(summ)
    radial = [x for x in cells if x["stair"] == "radial"]
    worst = max(cells, key=lambda x: abs(x["product"] - 1))
    errors = [float(abs(x["product"] - 1)) for x in cells]
    zero_p = [x for x in summ if x["p_hat"] == 0 and not x["censored"]]
    st = results["stall"]
    by_err = sorted(cells, key=lambda x: -abs(x["product"] - 1))[:4]
    return {
        "value": float(worst["product"]),
        "detail": f"E[tau] p_hat over {len(cells)} cells with p_hat > 0 ({_setting(results)}); value = the cell "
                  f"farthest from 1: {_label(worst)} = {worst['product']:.3f} +- {worst['se_product']:.3f}; "
                  "largest |E[tau] p_hat - 1|: "
                  + ", ".join(f"{_label(x)} {abs(x['product'] - 1):.3f} (moved within level in {x['moved']:.0%} "
                              f"of idle steps)" for x in by_err)
                  + f". Informative cells: of {len(cells)}, {_informative_counts(cells)}; of the {len(radial)} "
                  f"radial ones, {_informative_counts(radial)}"
                  + ("; p_hat(x0) = 0 but finite tau (the iterate drifts first; not in the value): "
                     + ", ".join(f"{_label(x)} E[tau] = {x['mean_tau']:.2f}" for x in zero_p) if zero_p else "")
                  + f". Stall cell (beta = {st['beta']:g}, r_s/w = {st['r']:g}): p_hat = {st['p_hat']:.3g}, "
                  f"{st['censored']}/{len(st['tau'])} chains without a hit in {st['max_steps']} steps",
        "evidence": {
            "cell_errors": errors,
            "cells": [_label(x) for x in cells],
            "n_cells": len(cells),
            "cells_p_hat_one": sum(x["p_one"] for x in cells),
            "cells_never_move": sum(x["never_moves"] for x in cells),
            "cells_informative": sum(x["informative"] for x in cells),
            "informative_errors": [float(abs(x["product"] - 1)) for x in cells if x["informative"]],
            "radial_cells": len(radial),
            "radial_p_hat_one": sum(x["p_one"] for x in radial),
            "radial_never_move": sum(x["never_moves"] for x in radial),
            "radial_informative": sum(x["informative"] for x in radial),
            "zero_p_cells": len(zero_p),
            "censored_cells": sum(bool(x["censored"]) for x in summ),
        },
    }


@claim("polystep.hitting_time_geometric_radial")
def _hitting_time_geometric_radial(results: dict) -> dict:
    summ = summaries(results)
    radial = [x for x in _measured_cells(summ) if x["stair"] == "radial"]
    all_radial = [x for x in summ if x["stair"] == "radial"]
    if not radial:
        return None
    worst = max(radial, key=lambda x: abs(x["product"] - 1))
    others = [x for x in _measured_cells(summ) if x["stair"] != "radial"]
    inf = [x for x in radial if x["informative"]]
    return {
        "value": float(worst["product"]),
        "detail": f"E[tau] p_hat over the {len(radial)} radial cells with p_hat > 0 ({_setting(results)}): range "
                  f"{min(x['product'] for x in radial):.3f}..{max(x['product'] for x in radial):.3f}, value = the "
                  f"cell farthest from 1 ({_label(worst)}). Of these cells {_informative_counts(radial)}"
                  + (": " + ", ".join(f"{_label(x)} p_hat = {x['p_hat']:.3f}, E[tau] p_hat = {x['product']:.3f} "
                                      f"+- {x['se_product']:.3f}, moved in {x['moved']:.0%} of idle steps"
                                      for x in inf) if inf else "")
                  + f". E[tau] <= 1/p_lower (cap bound) in {sum(x['bound_ok'] for x in all_radial)}/{len(all_radial)} "
                  f"radial cells. Not in the rule: on the separable staircase E[tau] p_hat ranges "
                  + (f"{min(x['product'] for x in others):.3f}..{max(x['product'] for x in others):.3f}"
                     if others else "(no cells)"),
        "evidence": {
            "radial_cell_errors": [float(abs(x["product"] - 1)) for x in radial],
            "radial_cells": [_label(x) for x in radial],
            "radial_informative": len(inf),
            "informative_errors": [float(abs(x["product"] - 1)) for x in inf],
            "radial_p_hat_one": sum(x["p_one"] for x in radial),
            "radial_never_move": sum(x["never_moves"] for x in radial),
            "cap_bound_violations": sum(not x["bound_ok"] for x in all_radial),
            "max_product_all_cells": float(max(x["product"] for x in _measured_cells(summ))),
        },
    }


def trend_checks(summ: list[dict], reversal_se: float | None = None) -> dict:
    """Monotonicity of E[tau] (radial cells) in d_p (up), V (down) and r_s/w (down).

    A pair of neighbouring cells is a *violation* when E[tau] moves the wrong way by more than
    ``reversal_se`` combined standard errors, a *strict* confirmation when it moves the right way by
    more than that; everything else is a tie within Monte-Carlo error. ``reversal_se`` is the
    registry's ``reversal_se`` of ``polystep.hitting_time_trends``.
    """
    k_se = float(get_claim("polystep.hitting_time_trends").extra["reversal_se"]) if reversal_se is None else reversal_se
    rad = [s for s in summ if s["stair"] == "radial"]
    key = {(s["d"], s["kind"], s["r"]): s for s in rad}
    dims = sorted({s["d"] for s in rad})
    kinds = [k for k in ("simplex", "orthoplex", "cube") if any(s["kind"] == k for s in rad)]
    radii = sorted({s["r"] for s in rad})

    def compare(a, b, sign):
        """sign = +1: expect E[tau](b) >= E[tau](a); -1: expect <=."""
        ma, mb = a["mean_tau"], b["mean_tau"]
        if math.isinf(ma) and math.isinf(mb):
            return "tie"
        diff = sign * (mb - ma)
        se = math.hypot(a["se_tau"], b["se_tau"])
        if math.isinf(diff):
            return "strict" if diff > 0 else "violation"
        if diff > k_se * se and diff > 0:
            return "strict"
        if diff < -k_se * se:
            return "violation"
        return "tie"

    out = {}
    pairs = {"d_p": [], "V": [], "r": []}
    for k in kinds:
        for r in radii:
            seq = [key[(d, k, r)] for d in dims if (d, k, r) in key]
            pairs["d_p"] += [(a, b, compare(a, b, +1)) for a, b in zip(seq, seq[1:])]
    for d in dims:
        for r in radii:
            seq = sorted([key[(d, k, r)] for k in kinds if (d, k, r) in key], key=lambda s: s["V"])
            pairs["V"] += [(a, b, compare(a, b, -1)) for a, b in zip(seq, seq[1:])]
        for k in kinds:
            seq = [key[(d, k, r)] for r in radii if (d, k, r) in key]
            pairs["r"] += [(a, b, compare(a, b, -1)) for a, b in zip(seq, seq[1:])]
    for f, ps in pairs.items():
        out[f] = {"pairs": len(ps), "strict": sum(p[2] == "strict" for p in ps),
                  "violations": [f"{a['kind']} d{a['d']} r{a['r']:g} -> {b['kind']} d{b['d']} r{b['r']:g}"
                                 for a, b, v in ps if v == "violation"]}
    return out


@claim("polystep.hitting_time_trends")
def _hitting_time_trends(results: dict) -> dict:
    k_se = float(get_claim("polystep.hitting_time_trends").extra["reversal_se"])
    tc = trend_checks(summaries(results), k_se)
    factors = list(tc)
    return {
        "value": sum(len(v["violations"]) for v in tc.values()),
        "detail": f"significant reversals (> {k_se:g} SE) of E[tau] among radial cells (value): "
                  + "; ".join(f"{f} ({'up' if f == 'd_p' else 'down'}): {v['strict']}/{v['pairs']} strict, "
                              f"{len(v['violations'])} reversals{' ' + str(v['violations']) if v['violations'] else ''}"
                              for f, v in tc.items())
                  + ". Ties are saturated cells (p = 1, tau = 1) or equal laws (orthoplex = cube at d = 2)",
        "evidence": {
            "factors": factors,
            "strict_pairs": [tc[f]["strict"] for f in factors],
            "pairs": [tc[f]["pairs"] for f in factors],
            "reversals": [len(tc[f]["violations"]) for f in factors],
            "reversal_se": k_se,
        },
    }


def _es_stats(results: dict) -> dict:
    rows = [b for b in results["baselines"] if b["origin"] == "polystep_start"]
    rnd = [b for b in results["baselines"] if b["origin"] == "random_shell"]
    return {
        "rows": rows,
        "zf": {m: float(np.mean([b["zero_fraction"] for b in rows if b["method"] == m])) for m in ("es", "spsa")},
        "changes": int(sum(b["level_changes"] for b in rows)),
        "zr": {m: float(np.mean([b["zero_fraction"] for b in rnd if b["method"] == m])) if rnd else math.nan
               for m in ("es", "spsa")},
        "moved_r": {m: sum(b["level_changes"] > 0 for b in rnd if b["method"] == m) for m in ("es", "spsa")},
        "n_r": {m: sum(b["method"] == m for b in rnd) for m in ("es", "spsa")},
    }


@claim("polystep.hitting_time_es_stall")
def _hitting_time_es_stall(results: dict) -> dict:
    s = results["settings"]
    e = _es_stats(results)
    zf, zr, moved_r, n_r = e["zf"], e["zr"], e["moved_r"], e["n_r"]
    return {
        "value": min(zf.values()),
        "detail": f"fraction of iterations with an exactly zero two-point estimate (perturbation "
                  f"{s['perturbation']:g} w, {s['baseline_iters']} iterations, "
                  f"{len(e['rows']) // 2} runs per method from the PolyStep starts): ES {zf['es']:.4f}, SPSA "
                  f"{zf['spsa']:.4f}; level changes {e['changes']}. From uniform points of the level-{s['level']} "
                  f"shell (not in the rule): ES {zr['es']:.4f}, SPSA {zr['spsa']:.4f} zero, with a level change "
                  f"in {moved_r['es']}/{n_r['es']} (ES) and {moved_r['spsa']}/{n_r['spsa']} (SPSA) runs -- near a "
                  f"jump the estimate is ~1/(2 sigma) and throws the iterate. ES without fitness shaping. PolyStep "
                  f"from the same start, mean level after {np.asarray(results['trajectories'][0]['levels']).shape[0] - 1} "
                  f"steps: " + ", ".join(f"r_s/w = {tr['r']:g}: {np.asarray(tr['levels'])[-1].mean():.2f}"
                                          for tr in results["trajectories"]),
        "evidence": {
            "zero_fraction_es": zf["es"], "zero_fraction_spsa": zf["spsa"],
            "level_changes": e["changes"], "runs": len(e["rows"]),
            "random_shell_zero_fraction_es": zr["es"], "random_shell_zero_fraction_spsa": zr["spsa"],
            "random_shell_runs_with_level_change": moved_r["es"] + moved_r["spsa"],
        },
    }


# ---------------------------------------------------------------------------------------------
# figures and table
# ---------------------------------------------------------------------------------------------

KIND_COLORS = {"simplex": "#E69F00", "orthoplex": "#0072B2", "cube": "#009E73"}
KIND_MARKERS = {"simplex": "^", "orthoplex": "o", "cube": "s"}


def _pick_hist_cells(results: dict) -> list[dict]:
    """Up to three informative cells: the radial one with the smallest p_hat, a mid one, and the
    separable cell farthest from the geometric law."""
    summ = summaries(results)
    fin = [(c, s) for c, s in zip(results["cells"], summ) if 0 < s["p_hat"] < 0.95 and not s["censored"]]
    rad = sorted([cs for cs in fin if cs[0]["stair"] == "radial"], key=lambda cs: cs[1]["p_hat"])
    picked = []
    if rad:
        picked.append(rad[0])
        if len(rad) > 2:
            picked.append(rad[len(rad) // 2])
    sep = [cs for cs in fin if cs[0]["stair"] == "separable"]
    if sep:
        picked.append(max(sep, key=lambda cs: abs(cs[1]["product"] - 1)))
    return picked


def _plot_hitting(results: dict):
    import matplotlib.pyplot as plt

    summ = summaries(results)
    fig, axes = plt.subplots(1, 4, figsize=(21, 5.0))
    ax = axes[0]
    cols = ["#0072B2", "#E69F00", "#C0392B"]
    for (c, s), col in zip(_pick_hist_cells(results), cols):
        tau = np.asarray(c["tau"])
        k = np.arange(1, int(min(tau.max(), np.quantile(tau, 0.995))) + 1)
        freq = np.array([(tau == kk).mean() for kk in k])
        ax.bar(k + (cols.index(col) - 1) * 0.27, np.maximum(freq, 1e-9), width=0.27, color=col, alpha=0.75,
               label=f"{c['stair']} d{c['d']} {c['kind']} r{c['r']:g}: E[τ]p̂ = {s['product']:.2f}")
        ax.plot(k, c["p_hat"] * (1 - c["p_hat"]) ** (k - 1), color=col, lw=1.4, ls="--")
    ax.set(yscale="log", ylim=(1e-4, 1.2), xlabel="τ (steps to the first lower level)", ylabel="frequency",
           title="Hitting-time histograms vs Geometric(p̂) (dashed)")
    ax.legend(fontsize=7)

    ax = axes[1]
    fin = [s for s in summ if s["p_hat"] > 0 and not s["censored"]]
    for i, s in enumerate(fin):
        col = KIND_COLORS[s["kind"]] if s["stair"] == "radial" else "#C0392B"
        mk = KIND_MARKERS[s["kind"]] if s["stair"] == "radial" else "D"
        ax.errorbar([i], [s["product"]], yerr=[2 * s["se_product"]], fmt=mk, color=col, ms=5,
                    mfc=col if s["moved"] < 0.5 else "white", capsize=2)
    geo = get_claim("polystep.hitting_time_geometric")
    band = float(geo.tolerance)
    ax.axhspan(geo.paper_value - band, geo.paper_value + band, color="0.9", zorder=0)
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xticks(range(len(fin)))
    ax.set_xticklabels([f"{'R' if s['stair'] == 'radial' else 'S'}{s['d']}{s['kind'][0]}{s['r']:g}" for s in fin],
                       rotation=90, fontsize=6.5)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker=KIND_MARKERS[k], color=KIND_COLORS[k], ls="none", label=f"radial, {k}")
               for k in KIND_COLORS if any(s["kind"] == k and s["stair"] == "radial" for s in fin)]
    handles += [Line2D([], [], marker="D", color="#C0392B", ls="none", label="separable, orthoplex"),
                Line2D([], [], marker="o", color="0.4", mfc="white", ls="none", label="open: iterate moves within a level")]
    ax.legend(handles=handles, fontsize=7, loc="lower left")
    ax.set(ylabel="E[τ] · p̂(x$_0$)  (±2 SE)", title=f"Geometric law: E[τ]·p̂ = {geo.paper_value:g} ± {band:g} (band)\n"
           "label: R/S staircase, d$_p$, polytope, r$_s$/w")

    rad = [s for s in summ if s["stair"] == "radial"]
    dims = sorted({s["d"] for s in rad})
    radii = sorted({s["r"] for s in rad})
    for ax, (xname, xs, fixed) in zip(axes[2:], (("d_p", dims, ("r", min(radii))), ("r", radii, ("d", max(dims))))):
        for k in KIND_COLORS:
            seq = [s for s in rad if s["kind"] == k and s[fixed[0]] == fixed[1]]
            if not seq:
                continue
            seq = sorted(seq, key=lambda s: s["d"] if xname == "d_p" else s["r"])
            x = [s["d"] if xname == "d_p" else s["r"] for s in seq]
            m = np.array([s["mean_tau"] for s in seq])
            se = np.array([s["se_tau"] for s in seq])
            ax.errorbar(x, m, yerr=2 * se, marker=KIND_MARKERS[k], color=KIND_COLORS[k], capsize=3,
                        label=f"{k} (V = {'d+1' if k == 'simplex' else '2d' if k == 'orthoplex' else '2^d'})")
            ax.plot(x, [1 / s["p_lower"] if s["p_lower"] > 0 else np.nan for s in seq], color=KIND_COLORS[k],
                    ls=":", lw=1.2)
        ax.set(yscale="log", xlabel="particle dimension d$_p$" if xname == "d_p" else "r$_s$ / w",
               ylabel="E[τ] (±2 SE); dotted: 1/p$_{lower}$ (cap bound)",
               title=(f"E[τ] grows with d$_p$ (r$_s$/w = {fixed[1]:g})" if xname == "d_p"
                      else f"E[τ] falls with r$_s$/w and V (d$_p$ = {fixed[1]})"))
        ax.set_xticks(x)
        ax.legend(fontsize=7.5)
    fig.suptitle(f"Radial staircase floor(‖x‖/w) and separable Σ floor(|x$_i$|/w), start level "
                 f"{results['settings']['level']} (β = {results['settings']['beta']:g}), ε = {results['settings']['eps']:g}, "
                 f"probes at the vertices; {results['settings']['n_runs']} chains per cell", fontsize=11.5)
    fig.tight_layout()
    return fig


def _plot_baselines(results: dict):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    ax = axes[0]
    styles = ("-", "-.", ":")
    tmax = 0
    for tr, ls in zip(results["trajectories"], styles):
        lv = np.asarray(tr["levels"])
        t = np.arange(lv.shape[0])
        tmax = max(tmax, t[-1])
        for j in range(min(lv.shape[1], 20)):
            ax.plot(t, lv[:, j], color="#0072B2", alpha=0.15, lw=0.7, ls=ls)
        ax.plot(t, lv.mean(axis=1), color="#0072B2", lw=2.2, ls=ls,
                label=f"PolyStep d$_p$ = {tr['d']}, {tr['kind']}, r$_s$/w = {tr['r']:g} (mean; final "
                      f"{lv[-1].mean():.1f})")
    it = results["settings"]["baseline_iters"]
    for m, col in (("es", "#009E73"), ("spsa", "#CC79A7")):
        rows = [b for b in results["baselines"] if b["method"] == m and b["origin"] == "polystep_start"]
        lv = np.mean([b["levels"] for b in rows], axis=0)
        ti = np.linspace(0, it, len(lv))
        sel = ti <= tmax
        ax.plot(ti[sel], lv[sel], color=col, lw=2, ls="--", label=f"{'OpenAI-ES' if m == 'es' else 'SPSA'} (mean)")
    ax.set(xlabel="iteration", ylabel="level floor(‖x‖/w)",
           title=f"Radial staircase: PolyStep with r$_s$ = w keeps descending, with r$_s$ = w/2 it parks\n"
                 f"mid-shell (no vertex changes level); ES/SPSA ({results['settings']['perturbation']:g}w) never move",
           )
    ax.legend(fontsize=7.5)
    ax = axes[1]
    stall_claim = get_claim("polystep.hitting_time_es_stall")
    labels, vals, cols = [], [], []
    for origin, hatch in (("polystep_start", ""), ("random_shell", "//")):
        for meth, col in (("es", "#009E73"), ("spsa", "#CC79A7")):
            rows = [b for b in results["baselines"] if b["method"] == meth and b["origin"] == origin]
            if rows:
                labels.append(f"{'ES' if meth == 'es' else 'SPSA'}\n{'PolyStep start' if origin == 'polystep_start' else 'random in shell'}")
                vals.append(np.mean([b["zero_fraction"] for b in rows]))
                cols.append(col)
    ax.bar(range(len(vals)), vals, color=cols, alpha=0.8)
    for i, v in enumerate(vals):
        ax.text(i, v + 0.002, f"{v:.4f}", ha="center", fontsize=8)
    ax.axhline(stall_claim.paper_value, color="#C0392B", ls=":", label=f"claim: ≥ {stall_claim.paper_value:g}")
    ax.set_xticks(range(len(vals)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set(ylim=(min(0.9, min(vals) - 0.02), 1.01), ylabel="fraction of exactly-zero estimates",
           title="Two-point estimates on the staircase from the same starts")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot(results: dict) -> dict:
    return {"hitting": _plot_hitting(results), "baselines": _plot_baselines(results)}


def table(results: dict) -> str:
    from repro.report import measurement_table

    lines = measurement_table(measure_claims(ID, results))
    lines += ["", "| staircase | d_p | polytope | V | r_s/w | p_lower | p_hat | E[tau] | E[tau] p_hat | chi2 p | moved |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries(results):
        lines.append(f"| {s['stair']} | {s['d']} | {s['kind']} | {s['V']} | {s['r']:g} | {s['p_lower']:.4f} | "
                     f"{s['p_hat']:.4f} | {s['mean_tau']:.3f} | {s['product']:.3f} | {s['gof_p']:.3f} | "
                     f"{s['moved']:.2f} |")
    return "\n".join(lines)
