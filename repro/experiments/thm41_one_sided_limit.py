"""Theorem 4.1 (one-sided limit / solver continuum), as reconstructed: numerical checks of all its parts.

The paper body of arXiv 2605.01928v1 was **not readable** (paper/polystep_reconstruction.md §0); the
statement checked is the reconstruction of Theorem 4.1 in paper/polystep_reconstruction.md §3.1,
implemented and documented in
:mod:`theory.one_sided_limit`. For ``C in R^{P x V}``, marginals ``a``, ``b``, ``eps > 0`` and
``lam in [0, inf]``::

    P_lam = argmin_{P >= 0, P 1 = a}  <C,P> + eps sum_ij P_ij (log P_ij - 1) + lam KL(P^T 1 || b)

(i) ``P_0`` is PolyStep's row softmax, (ii) ``P_lam -> `` the entropic OT (Sinkhorn) plan, (iii) rows
equal ``a`` for every ``lam`` and ``KL(q_lam || b)`` (``q_lam = P_lam^T 1``) is non-increasing and
tends to 0, near ``lam = 0`` the plan departs linearly from the softmax; (iv) the method figure's
bound ``KL(q_lam || b) <= (eps/lam) log(PV)`` -- false in general (a deterministic counterexample)
-- and the corrected bound ``KL <= osc(C)/lam`` (uniform ``b``; a slack term for other ``b``);
and the figure's note "P/V small => softmax = OT", probed by the barycentre gap between the
softmax and the OT step as a function of ``P``.

Problems: ``C ~ U[0, 1)^{P x V}`` (torch generators of the run context), uniform marginals on the
grid ``P x V x eps`` plus a few problems with random (Dirichlet) marginals ``a``, ``b``. Solvers are
run to a marginal residual of ``1e-12``; a problem whose solver stops at ``max_iter`` on some
``lam`` is reported and left out of the exactness checks.

Scales: this is a pure-math experiment on small matrices (float64, CPU, whatever the device).
``ci`` runs one problem per grid cell on one point per decade of ``lam`` (seconds); ``cpu`` runs a
denser ``lam`` grid (4 per decade), 3 problems per cell, more random-marginal problems and a larger
barycentre-gap study (under a minute on 2 cores, dominated by the slow Sinkhorn instances at
``eps = 0.01``); ``paper`` is the same as ``cpu`` -- there is no larger "paper" version of a theorem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from repro.claims import claim, claims_of, get_claim
from repro.claims import measure as measure_claims
from repro.cells import Cell
from repro.context import RunContext
from theory.one_sided_limit import (
    TIGHT_SOLVER,
    figure_kl_bound,
    find_figure_bound_counterexample,
    lambda_path,
    osc_kl_bound,
    softmax_vs_ot_gap,
)

ID = "thm41_one_sided_limit"
TITLE = "Theorem 4.1: softmax (λ = 0) to Sinkhorn (λ = ∞) along the KL-relaxed entropic-OT continuum"
CLAIMS = claims_of(ID)  # their rules (tolerances included) are in paper/claims.toml

KL_NOISE = 1e-15  # plotting only: KL values below this are rounding noise and are not drawn


@dataclass(frozen=True)
class Config:
    P_values: tuple[int, ...] = (3, 20, 100)
    V_values: tuple[int, ...] = (4, 16)
    eps_values: tuple[float, ...] = (0.01, 0.1, 1.0)
    draws: int = 1                                   # random problems per (P, V, eps) cell
    #: extra problems with Dirichlet(1) marginals a, b: (P, V, eps) each
    nonuniform: tuple[tuple[int, int, float], ...] = ((20, 16, 0.1), (100, 4, 1.0))
    lam_decades: tuple[int, int] = (-3, 6)           # finite lam grid 10^lo .. 10^hi (plus 0 and inf)
    lam_per_decade: int = 1
    max_iter: int = 20_000
    tol: float = TIGHT_SOLVER["tol"]
    slope_window: tuple[float, float] = (1e-4, 1e-2)  # lam / eps window of the small-lam slope
    slope_points: int = 5
    #: absolute lam window of check 3 in paper/polystep_reconstruction.md §3.1 (reported, not judged)
    check3_window: tuple[float, float] = (1e-4, 1e-2)
    ce_eps: float = 0.01                              # the counterexample (theory module, 6 x 8)
    ce_lam: float = 1.0
    ce_grid_eps: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    ce_grid_lam: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
    gap_P: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    gap_V: tuple[int, ...] = (16,)
    gap_claim_V: int = 16
    gap_eps: float = 0.1
    gap_trials: int = 8


_CPU = Config(draws=3,
              nonuniform=((3, 4, 0.1), (20, 16, 0.01), (20, 16, 0.1), (100, 4, 1.0), (100, 16, 0.1),
                          (20, 4, 1.0)),
              lam_per_decade=4, max_iter=TIGHT_SOLVER["max_iter"],
              gap_P=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), gap_V=(4, 16, 64), gap_trials=32)

CONFIGS = {"ci": Config(), "cpu": _CPU, "paper": _CPU}  # paper = cpu: a theorem has no paper scale


def _lams(cfg: Config) -> np.ndarray:
    lo, hi = cfg.lam_decades
    finite = np.logspace(lo, hi, (hi - lo) * cfg.lam_per_decade + 1)
    return np.concatenate([[0.0], finite, [math.inf]])


def _slope(lams: np.ndarray, dist: np.ndarray) -> float:
    if np.any(dist <= 0) or not np.all(np.isfinite(dist)):
        return math.nan
    return float(np.polyfit(np.log(lams), np.log(dist), 1)[0])


def _problem(cfg: Config, C: torch.Tensor, eps: float, lams: np.ndarray, a=None, b=None) -> dict:
    opts = {"max_iter": cfg.max_iter, "tol": cfg.tol, "check_every": TIGHT_SOLVER["check_every"]}
    P, V = C.shape
    path = lambda_path(C, eps, lams.tolist(), a=a, b=b, **opts)
    rel = eps * np.logspace(np.log10(cfg.slope_window[0]), np.log10(cfg.slope_window[1]), cfg.slope_points)
    check3_lams = np.logspace(np.log10(cfg.check3_window[0]), np.log10(cfg.check3_window[1]), cfg.slope_points)
    near_rel = lambda_path(C, eps, rel.tolist(), a=a, b=b, **opts)
    near_check3 = lambda_path(C, eps, check3_lams.tolist(), a=a, b=b, **opts)
    osc = [osc_kl_bound(C, lam, eps=eps, b=b) for lam in lams]
    fig = [figure_kl_bound(eps, lam, P, V) for lam in lams]
    return {
        "P": int(P), "V": int(V), "eps": float(eps), "uniform": a is None and b is None,
        "osc": float(C.max() - C.min()), "path": path,
        "osc_bound": np.asarray(osc), "figure_bound": np.asarray(fig),
        "slope": _slope(rel, near_rel["dist_softmax"]),
        "slope_check3": _slope(check3_lams, near_check3["dist_softmax"]),
        "slope_converged": bool(near_rel["converged"].all()),
        "converged": bool(path["converged"].all()),
    }


def _uniform_problem(P: int, V: int, eps: float, k: int, cfg: Config, ctx: RunContext) -> dict:
    """Draw ``k`` of the uniform-marginal cell ``(P, V, eps)``: ``C ~ U[0, 1)^{P x V}``."""
    gen = ctx.torch_generator("cost", P, V, eps, k, device="cpu")
    C = torch.rand((P, V), generator=gen, dtype=torch.float64)
    return _problem(cfg, C, eps, _lams(cfg))


def _nonuniform_problem(i: int, P: int, V: int, eps: float, cfg: Config, ctx: RunContext) -> dict:
    """Random-marginal problem ``i``: ``C ~ U[0, 1)^{P x V}``, Dirichlet(1) marginals ``a``, ``b``."""
    gen = ctx.torch_generator("cost-nonuniform", i, device="cpu")
    C = torch.rand((P, V), generator=gen, dtype=torch.float64)
    rng = ctx.numpy_rng("marginals", i)
    a, b = rng.dirichlet(np.ones(P)), rng.dirichlet(np.ones(V))
    out = _problem(cfg, C, eps, _lams(cfg), a=a, b=b)
    out["a"], out["b"] = a, b
    return out


def _counterexample(cfg: Config, ctx: RunContext) -> dict:
    """The figure's bound: the deterministic counterexample of the theory module and its whole lam path."""
    lams = _lams(cfg)
    ce = find_figure_bound_counterexample(eps=cfg.ce_eps, lam=cfg.ce_lam)
    C_ce = torch.as_tensor(ce["C"])
    Pc, Vc = ce["C"].shape
    return {
        "C": ce["C"], "eps": ce["eps"], "lam": ce["lam"], "kl": ce["kl"], "bound": ce["bound"],
        "osc_bound": ce["osc_bound"], "violated": ce["violated"], "ratio": ce["ratio"],
        "path": lambda_path(C_ce, cfg.ce_eps, lams.tolist(), **TIGHT_SOLVER),
        "path_figure_bound": np.asarray([figure_kl_bound(cfg.ce_eps, lam, Pc, Vc) for lam in lams]),
        "path_osc_bound": np.asarray([osc_kl_bound(C_ce, lam) for lam in lams]),
    }


def _counterexample_row(e: float, cfg: Config, ctx: RunContext) -> dict:
    """One row ``eps = e`` of the counterexample's ``(eps, lam)`` grid (same construction, same cost matrix)."""
    cells = [find_figure_bound_counterexample(eps=e, lam=lam) for lam in cfg.ce_grid_lam]
    return {k: np.asarray([c[k] for c in cells], dtype=np.float64) for k in ("kl", "bound", "osc_bound")}


def _gap_trials(V: int, cfg: Config, ctx: RunContext) -> np.ndarray:
    """"P/V small => softmax = OT": per-trial barycentre gaps (one trial per call of the theory
    function), ``[trials, len(gap_P)]``; the trials draw from one stream in turn, so they are one cell."""
    gen = ctx.torch_generator("gap", V, device="cpu")
    return np.stack([softmax_vs_ot_gap(cfg.gap_P, V, cfg.gap_eps, 1, gen) for _ in range(cfg.gap_trials)])


def run(cfg: Config, ctx: RunContext) -> dict:
    """Cells: one per random problem (``uniform-P20-V16-eps0.1-0``, ``nonuniform-0``), the counterexample
    and its path, one per row of its ``(eps, lam)`` grid (``ce-grid-eps0.01``) and one per ``V`` of the
    barycentre-gap study (``gap-V16``)."""
    lams = _lams(cfg)
    uniform = [Cell(f"uniform-P{P}-V{V}-eps{eps}-{k}", _uniform_problem, (P, V, eps, k, cfg))
               for P in cfg.P_values for V in cfg.V_values for eps in cfg.eps_values for k in range(cfg.draws)]
    nonuniform = [Cell(f"nonuniform-{i}", _nonuniform_problem, (i, P, V, eps, cfg))
                  for i, (P, V, eps) in enumerate(cfg.nonuniform)]
    ce_rows = [Cell(f"ce-grid-eps{e:g}", _counterexample_row, (e, cfg)) for e in cfg.ce_grid_eps]
    gap = [Cell(f"gap-V{V}", _gap_trials, (V, cfg)) for V in cfg.gap_V]
    cells = uniform + nonuniform + [Cell("counterexample", _counterexample, (cfg,))] + ce_rows + gap
    values = ctx.map(cells, desc="problems")
    n = len(uniform) + len(nonuniform)
    problems, ce, rows, trials = values[:n], values[n], values[n + 1:n + 1 + len(ce_rows)], values[n + 1 + len(ce_rows):]
    counterexample = {**ce, "grid_eps": np.asarray(cfg.ce_grid_eps), "grid_lam": np.asarray(cfg.ce_grid_lam),
                      **{f"grid_{k}": np.stack([r[k] for r in rows]) for k in ("kl", "bound", "osc_bound")}}
    return {"lams": lams, "problems": problems, "counterexample": counterexample,
            "slope_window": np.asarray(cfg.slope_window), "check3_window": np.asarray(cfg.check3_window),
            "gap": {"P": np.asarray(cfg.gap_P), "eps": cfg.gap_eps, "claim_V": cfg.gap_claim_V,
                    "trials": {str(V): t for V, t in zip(cfg.gap_V, trials)}}}


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------


def _spearman(x, y) -> float:
    from scipy import stats

    return float(stats.spearmanr(x, y).statistic)


def _bound_checks(results: dict) -> dict:
    """Every (problem, finite positive lam) instance: KL, the figure's bound and the osc bound."""
    kl, fig, osc, where = [], [], [], []
    lams = results["lams"]
    finite = (lams > 0) & np.isfinite(lams)
    for pr in results["problems"]:
        if not pr["converged"]:
            continue
        kl.append(pr["path"]["kl"][finite])
        fig.append(pr["figure_bound"][finite])
        osc.append(pr["osc_bound"][finite])
        where += ["random"] * int(finite.sum())
    ce = results["counterexample"]
    cfin = (ce["path"]["lam"] > 0) & np.isfinite(ce["path"]["lam"])
    kl.append(ce["path"]["kl"][cfin])
    fig.append(ce["path_figure_bound"][cfin])
    osc.append(ce["path_osc_bound"][cfin])
    where += ["counterexample path"] * int(cfin.sum())
    kl.append(ce["grid_kl"].ravel())
    fig.append(ce["grid_bound"].ravel())
    osc.append(ce["grid_osc_bound"].ravel())
    where += ["counterexample grid"] * ce["grid_kl"].size
    return {"kl": np.concatenate(kl), "fig": np.concatenate(fig), "osc": np.concatenate(osc),
            "where": np.asarray(where)}


def _gap_summary(results: dict) -> dict:
    g = results["gap"]
    out = {}
    for V, trials in g["trials"].items():
        mean = trials.mean(axis=0)
        out[int(V)] = {"mean": mean, "rho": _spearman(g["P"], mean),
                       "lo": np.quantile(trials, 0.1, axis=0), "hi": np.quantile(trials, 0.9, axis=0)}
    return out


def _converged(results: dict) -> list[dict]:
    """The problems whose solver reached the residual on every lam (the others are left out)."""
    return [p for p in results["problems"] if p["converged"]]


def _problems_note(results: dict) -> str:
    probs = results["problems"]
    ok = _converged(results)
    skipped = len(probs) - len(ok)
    return (f"{len(ok)} random problems (P in {sorted({p['P'] for p in probs})}, "
            f"V in {sorted({p['V'] for p in probs})}, eps in {sorted({p['eps'] for p in probs})}, "
            f"{sum(not p['uniform'] for p in ok)} with random marginals)"
            + (f"; {skipped} left out: solver stopped at max_iter" if skipped else ""))


def _common_evidence(results: dict) -> dict:
    return {"problems": len(_converged(results)),
            "left_out": len(results["problems"]) - len(_converged(results)),
            "lams": len(results["lams"])}


@claim("polystep.thm41_softmax_is_lambda0")
def _softmax_is_lambda0(results: dict) -> dict:
    ok = _converged(results)
    err0 = max(float(p["path"]["softmax_closed_form_err"][0]) for p in ok)
    return {"value": err0,
            "detail": f"max |P_0 - diag(a) softmax(-C/eps)| over {_problems_note(results)}; the lam = 0 plan is "
                      "also the path's own softmax end exactly (dist_softmax = 0) in "
                      f"{sum(p['path']['dist_softmax'][0] == 0.0 for p in ok)}/{len(ok)}",
            "evidence": {**_common_evidence(results),
                         "exact_at_zero": all(bool(p["path"]["dist_softmax"][0] == 0.0) for p in ok)}}


@claim("polystep.thm41_rows_equal_a")
def _rows_equal_a(results: dict) -> dict:
    ce = results["counterexample"]
    rows = max(float(p["path"]["row_err"].max()) for p in _converged(results) + [{"path": ce["path"]}])
    return {"value": rows,
            "detail": f"max |P_lam 1 - a| over {len(results['lams'])} lam in [0, inf] x {_problems_note(results)} "
                      "+ the counterexample",
            "evidence": _common_evidence(results)}


@claim("polystep.thm41_kl_monotone")
def _kl_monotone(results: dict) -> dict:
    ok = _converged(results)
    rises = [float(np.max(np.diff(p["path"]["kl"]))) for p in ok]
    kl_inf = max(abs(float(p["path"]["kl"][-1])) for p in ok)
    kl_0 = min(float(p["path"]["kl"][0]) for p in ok)
    return {"value": max(rises),
            "detail": f"largest increase of KL(q_lam||b) between consecutive lam ({len(results['lams'])} lam, "
                      f"{_problems_note(results)}); max |KL| at lam = inf {kl_inf:.1e}; min KL at lam = 0 {kl_0:.2e}",
            "evidence": {**_common_evidence(results), "kl_at_inf": kl_inf, "min_kl_at_zero": kl_0}}


@claim("polystep.thm41_sinkhorn_limit")
def _sinkhorn_limit(results: dict) -> dict:
    ok = _converged(results)
    lams = results["lams"]
    big = int(np.argmax(np.where(np.isfinite(lams), lams, -1.0)))
    d_big = max(float(p["path"]["dist_sinkhorn"][big]) for p in ok)
    d_inf = max(float(p["path"]["dist_sinkhorn"][-1]) for p in ok)
    tail = (lams >= lams[big] / 1e3) & np.isfinite(lams)
    rate = float(np.nanmedian([_slope(lams[tail], p["path"]["dist_sinkhorn"][tail]) for p in ok]))
    return {"value": d_big,
            "detail": f"max ||P_lam - P_Sinkhorn||_inf at lam = {lams[big]:g} over {_problems_note(results)}; at "
                      f"lam = inf {d_inf:.1e}; log-log rate over the last 3 decades {rate:.2f} (median, O(1/lam))",
            "evidence": {**_common_evidence(results), "largest_finite_lam": float(lams[big]),
                         "dist_at_inf": d_inf, "median_tail_rate": rate}}


@claim("polystep.thm41_small_lambda_linear")
def _small_lambda_linear(results: dict) -> dict:
    ok = _converged(results)
    band = get_claim("polystep.thm41_small_lambda_linear")  # the check-3 window is judged by the same band
    slopes = np.asarray([p["slope"] if p["slope_converged"] else math.nan for p in ok])
    check3 = np.asarray([p["slope_check3"] for p in ok])
    worst = float(slopes[np.nanargmax(np.abs(slopes - 1))]) if np.any(np.isfinite(slopes)) else math.nan
    miss = ~(np.abs(check3 - band.paper_value) <= band.tolerance)
    check3_misses = int(np.sum(miss))
    miss_eps = sorted({p["eps"] for p, m in zip(ok, miss) if m})
    return {"value": worst,
            "detail": f"slope of log||P_lam - P_0||_inf vs log lam for lam/eps in "
                      f"[{results['slope_window'][0]:g}, {results['slope_window'][1]:g}]; "
                      f"the slope farthest from 1 of {len(slopes)} problems (median {np.nanmedian(slopes):.3f}); "
                      f"on check 3's absolute window lam in "
                      f"[{results['check3_window'][0]:g}, {results['check3_window'][1]:g}] (reconstruction §3.1) "
                      f"{check3_misses} of {len(check3)} "
                      f"problems miss {band.paper_value:g} +- {band.tolerance:g} (range {np.nanmin(check3):.2f}.."
                      f"{np.nanmax(check3):.2f}"
                      + (f"; misses at eps in {miss_eps}, where that window reaches lam/eps ~ 1)" if check3_misses else ")"),
            "evidence": {**_common_evidence(results),
                         "nonfinite_slopes": int(np.sum(~np.isfinite(slopes))),
                         "min_slope": float(np.nanmin(slopes)) if np.any(np.isfinite(slopes)) else math.nan,
                         "max_slope": float(np.nanmax(slopes)) if np.any(np.isfinite(slopes)) else math.nan,
                         "check3_window_misses": check3_misses}}


@claim("polystep.thm41_figure_kl_bound")
def _figure_kl_bound(results: dict) -> dict:
    ce = results["counterexample"]
    bc = _bound_checks(results)
    viol = bc["kl"] > bc["fig"]

    def count(where):
        return int(np.sum(viol & (bc["where"] == where))), int(np.sum(bc["where"] == where))

    (v_rand, n_rand), (v_grid, n_grid), (v_path, n_path) = (count("random"), count("counterexample grid"),
                                                            count("counterexample path"))
    return {"value": float(ce["kl"]),
            "detail": f"counterexample {ce['C'].shape[0]}x{ce['C'].shape[1]}, C in [{ce['C'].min():g}, "
                      f"{ce['C'].max():.2f}], eps = {ce['eps']:g}, lam = {ce['lam']:g}: KL = {ce['kl']:.4g} vs "
                      f"(eps/lam) log(PV) = {ce['bound']:.4g} ({ce['ratio']:.1f}x); violated in {v_grid} of "
                      f"{n_grid} (eps, lam) cells on the same C, {v_path} of {n_path} lam of its path, and in "
                      f"{v_rand} of {n_rand} (problem, lam) pairs of the random U[0,1) problems",
            "evidence": {"counterexample_violated": bool(ce["kl"] > ce["bound"]), "bound": float(ce["bound"]),
                         "ratio": float(ce["ratio"]), "violations": int(viol.sum()), "instances": int(viol.size),
                         "violations_random": v_rand, "violations_grid": v_grid, "violations_path": v_path}}


@claim("polystep.thm41_osc_bound")
def _osc_bound(results: dict) -> dict:
    ce = results["counterexample"]
    bc = _bound_checks(results)
    ratio = bc["kl"] / bc["osc"]
    excess = float(np.max(bc["kl"] - bc["osc"]))
    fig_viol = int(np.sum(bc["kl"] > bc["fig"])) + int(ce["kl"] > ce["bound"])
    return {"value": float(np.max(ratio)),
            "detail": f"max KL(q_lam||b) / [(osc(C) + eps(log V - H(b)))/lam] over {len(ratio)} instances "
                      f"(random problems incl. random marginals, the counterexample's path and grid); largest "
                      f"KL - bound {excess:.2e} ({int(np.sum(bc['kl'] > bc['osc']))} instances above the bound at "
                      f"all); on the counterexample KL = {ce['kl']:.3g} <= osc(C)/lam = {ce['osc_bound']:.3g}, "
                      f"where the figure's bound fails ({fig_viol} violations of it on the same instances)",
            "evidence": {"max_osc_excess": excess, "instances": int(len(ratio)),
                         "figure_bound_violations": fig_viol}}


@claim("polystep.thm41_softmax_ot_gap_small_pv")
def _softmax_ot_gap_small_pv(results: dict) -> dict:
    gs = _gap_summary(results)
    Vc = int(results["gap"]["claim_V"])
    g = gs[Vc]
    P = results["gap"]["P"]
    direction = "decreases" if g["rho"] < 0 else "increases"
    return {"value": g["rho"],
            "detail": f"Spearman rho of the mean barycentre gap ||x'_softmax - x'_OT|| against P at V = {Vc} "
                      f"(eps = {results['gap']['eps']:g}, {results['gap']['trials'][str(Vc)].shape[0]} trials per "
                      f"P): the gap {direction} with P, {g['mean'][0]:.3f} at P = {P[0]} -> {g['mean'][-1]:.3f} at "
                      f"P = {P[-1]}",
            "evidence": {"V": Vc, "gap_at_smallest_P": float(g["mean"][0]), "gap_at_largest_P": float(g["mean"][-1]),
                         "smallest_P": int(P[0]), "largest_P": int(P[-1])}}


# ---------------------------------------------------------------------------------------------
# figures and table
# ---------------------------------------------------------------------------------------------

EPS_COLORS = {0.01: "#D55E00", 0.1: "#0072B2", 1.0: "#009E73"}
FIG_BOUND_COLOR, OSC_COLOR, VIOL_COLOR = "#CC79A7", "0.35", "#C0392B"


def _ends(ax, lams: np.ndarray):
    """x positions for the whole grid with lam = 0 and lam = inf drawn at the two ends of a log axis."""
    from matplotlib import ticker

    fin = lams[(lams > 0) & np.isfinite(lams)]
    lo, hi = np.log10(fin.min()), np.log10(fin.max())
    x0, xinf = 10 ** (lo - 1.2), 10 ** (hi + 1.2)
    x = np.where(lams == 0, x0, np.where(np.isinf(lams), xinf, np.where(lams > 0, lams, x0)))
    ax.set_xscale("log")
    ax.set_xlim(10 ** (lo - 1.6), 10 ** (hi + 1.6))
    for xb in (10 ** (lo - 0.6), 10 ** (hi + 0.6)):  # axis breaks
        ax.axvline(xb, color="0.75", lw=0.8, ls=(0, (2, 2)), zorder=0)
    decades = [10.0 ** k for k in range(int(math.ceil(lo)), int(math.floor(hi)) + 1, 3)]
    ax.set_xticks([x0] + decades + [xinf])
    ax.set_xticklabels(["0\nsoftmax"] + [f"$10^{{{int(np.log10(d))}}}$" for d in decades] + ["∞\nSinkhorn"])
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    return x


def _kl_curve(ax, x, kl, floor, **kw):
    """KL along lam on a log axis; rounding-level values are not drawn, lam = inf (KL = 0) sits on the floor."""
    y = np.where(kl > KL_NOISE, kl, np.nan)
    line, = ax.plot(x[:-1], y[:-1], **kw)
    ax.plot([x[-1]], [floor], marker="v", ls="none", color=line.get_color(), ms=6, clip_on=False)
    return line


def _pick_examples(results: dict) -> list[dict]:
    """Per eps, the uniform-marginal random problem that comes closest to (or beyond) the figure's bound."""
    lams = results["lams"]
    fin = (lams > 0) & np.isfinite(lams)
    uni = [p for p in results["problems"] if p["uniform"] and p["converged"]]
    picked = []
    for eps in sorted({p["eps"] for p in uni}):
        cand = [p for p in uni if p["eps"] == eps]
        picked.append(max(cand, key=lambda p: float(np.max(p["path"]["kl"][fin] / p["figure_bound"][fin]))))
    return picked


def _plot_continuum(results: dict):
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    lams = results["lams"]
    fin = (lams > 0) & np.isfinite(lams)
    floor = 1e-16
    fig, axes = plt.subplots(1, 3, figsize=(15.5, 4.9), gridspec_kw={"width_ratios": [1.05, 1.05, 1.0]})

    # (1) random problems: KL along the continuum with both bounds
    ax = axes[0]
    x = _ends(ax, lams)
    for p in _pick_examples(results):
        c = EPS_COLORS.get(p["eps"], None)
        line = _kl_curve(ax, x, p["path"]["kl"], floor, color=c, marker="o", ms=3,
                         label=f"ε = {p['eps']:g}  (P = {p['P']}, V = {p['V']})")
        c = line.get_color()
        ax.plot(x[fin], p["figure_bound"][fin], color=c, ls="--", lw=1.2, alpha=0.9)
        bad = fin & (p["path"]["kl"] > p["figure_bound"])
        if bad.any():
            ax.plot(x[bad], p["path"]["kl"][bad], ls="none", marker="o", ms=9, mfc="none", mec=VIOL_COLOR, mew=1.6)
    osc = max(p["osc"] for p in _pick_examples(results))
    rise = max(float(np.max(np.diff(p["path"]["kl"]))) for p in results["problems"] if p["converged"])
    ax.plot(x[fin], osc / lams[fin], color=OSC_COLOR, ls=":", lw=2)
    n_all = sum(int(fin.sum()) for p in results["problems"] if p["converged"])
    v_all = sum(int(np.sum(fin & (p["path"]["kl"] > p["figure_bound"]))) for p in results["problems"]
                if p["converged"])
    ax.set(yscale="log", ylim=(floor, 30), xlabel="λ (penalty on the column marginal)",
           ylabel="KL($q_\\lambda \\,\\|\\, b$)  (column-marginal violation)",
           title=f"Random C ~ U[0,1): KL rises by at most {max(rise, 0.0):.0e} between consecutive λ;\n"
                 f"figure's bound fails on {v_all} of {n_all} (problem, λ) pairs")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.3", ls="--", lw=1.2, label="figure's bound (ε/λ) log(PV), same colour"),
                Line2D([], [], color=OSC_COLOR, ls=":", lw=2, label="corrected bound osc(C)/λ"),
                Line2D([], [], ls="none", marker="o", ms=9, mfc="none", mec=VIOL_COLOR, mew=1.6,
                       label="figure's bound violated")]
    ax.legend(handles=handles, loc="lower left", fontsize=8,
              title="KL($q_\\lambda\\|b$): per ε the problem closest to the figure's bound", title_fontsize=8)

    # (2) the counterexample
    ce = results["counterexample"]
    ax = axes[1]
    x = _ends(ax, lams)
    kl = ce["path"]["kl"]
    fb, ob = ce["path_figure_bound"], ce["path_osc_bound"]
    ax.plot(x[fin], fb[fin], color=FIG_BOUND_COLOR, ls="--", lw=1.6, label="figure's bound (ε/λ) log(PV)")
    ax.plot(x[fin], ob[fin], color=OSC_COLOR, ls=":", lw=2, label="corrected bound osc(C)/λ")
    _kl_curve(ax, x, kl, floor, color="k", marker="o", ms=3, label="KL($q_\\lambda\\|b$)")
    bad = fin & (kl > fb)
    if bad.any():
        ax.fill_between(x[fin], fb[fin], kl[fin], where=(kl > fb)[fin], color=VIOL_COLOR, alpha=0.25, lw=0, interpolate=True,
                        label="KL above the figure's bound")
        lo_v, hi_v = lams[bad].min(), lams[bad].max()
    P_ce, V_ce = ce["C"].shape
    ax.annotate(f"λ = {ce['lam']:g}: KL = {ce['kl']:.3g}\nbound = {ce['bound']:.3g}  ({ce['ratio']:.0f}× over)",
                xy=(ce["lam"], ce["kl"]), xytext=(ce["lam"] * 20, 2.0), fontsize=9, va="center",
                arrowprops={"arrowstyle": "->", "color": VIOL_COLOR}, color=VIOL_COLOR)
    ax.plot([ce["lam"]], [ce["kl"]], marker="*", ms=14, color=VIOL_COLOR, ls="none", zorder=5)
    where = f"for λ in [{lo_v:.3g}, {hi_v:.3g}]" if bad.any() else "nowhere on the grid"
    ax.set(yscale="log", ylim=(floor, 30), xlabel="λ (penalty on the column marginal)",
           title=f"Counterexample ({P_ce}×{V_ce}, C in [{ce['C'].min():g}, {ce['C'].max():.1f}], "
                 f"ε = {ce['eps']:g}):\n"
                 f"the figure's bound fails {where}")
    ax.legend(loc="lower left", fontsize=8)

    # (3) distance to the two ends: linear departure from softmax, O(1/lam) approach to Sinkhorn
    ax = axes[2]
    for p in _pick_examples(results):
        c = EPS_COLORS.get(p["eps"], None)
        d0, dinf = p["path"]["dist_softmax"][fin], p["path"]["dist_sinkhorn"][fin]
        ax.plot(lams[fin], np.where(d0 > 0, d0, np.nan), color=c, lw=1.8,
                label=f"ε = {p['eps']:g} (P = {p['P']}, V = {p['V']})")
        ax.plot(lams[fin], np.where(dinf > 0, dinf, np.nan), color=c, lw=1.8, ls="--")
    # slope guides, drawn a factor 4 below the lowest curves over their first / last 3 decades
    ref = lams[fin]
    d0s = np.array([p["path"]["dist_softmax"][fin] for p in _pick_examples(results)])
    dis = np.array([p["path"]["dist_sinkhorn"][fin] for p in _pick_examples(results)])
    head, tail = ref <= ref[0] * 1e2, ref >= ref[-1] / 1e3
    y0 = d0s[:, 0].min() / 4
    ax.plot(ref[head], y0 * ref[head] / ref[0], color="0.45", lw=1.2, ls="-.")
    ax.text(ref[head][-1] * 1.4, y0 * ref[head][-1] / ref[0], "∝ λ", color="0.3", fontsize=10, va="center")
    y1 = dis[:, -1].max() * 5
    ax.plot(ref[tail], y1 * ref[-1] / ref[tail], color="0.45", lw=1.2, ls="-.")
    ax.text(ref[tail][0] * 1.4, y1 * ref[-1] / ref[tail][0] * 1.5, "∝ 1/λ", color="0.3", fontsize=10,
            va="bottom", ha="left")
    ax.set(xscale="log", yscale="log", xlabel="λ", ylabel="sup-norm distance between plans",
           title="Distance to the two ends: leaves the softmax linearly\n"
                 "(for λ ≪ ε), reaches the Sinkhorn plan as 1/λ")
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.3", lw=1.8, label="$\\|P_\\lambda - P_0\\|_\\infty$ (to softmax)"),
                Line2D([], [], color="0.3", lw=1.8, ls="--",
                       label="$\\|P_\\lambda - P_\\infty\\|_\\infty$ (to Sinkhorn)")]
    ax.legend(handles=handles, loc="lower right", fontsize=7.5, ncol=1, borderaxespad=0.2)
    rows = max(float(p["path"]["row_err"].max()) for p in results["problems"])
    fig.suptitle("Theorem 4.1 (reconstructed): λ moves the KL-relaxed plan from PolyStep's softmax (λ = 0) to "
                 f"entropic OT (λ = ∞); row sums stay equal to a (max error {rows:.0e})", fontsize=11.5)
    fig.tight_layout()
    return fig


def _plot_gap(results: dict):
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    g = results["gap"]
    P = g["P"]
    gs = _gap_summary(results)
    Vc = int(g["claim_V"])
    palette = {4: "#009E73", 16: "#0072B2", 64: "#D55E00"}
    extra = iter(["#CC79A7", "#E69F00", "#56B4E9", "#000000"])
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    for V, s in sorted(gs.items()):
        c = palette.get(V) or next(extra)
        lw = 2.4 if V == Vc else 1.5
        ax.fill_between(P, s["lo"], s["hi"], color=c, alpha=0.18, lw=0)
        ax.plot(P, s["mean"], color=c, lw=lw, marker="o", ms=4,
                label=f"V = {V}: Spearman ρ = {s['rho']:+.2f}")
        if P.min() <= V <= P.max():
            ax.plot([V], [np.interp(np.log(V), np.log(P), s["mean"])], marker="D", ms=7, color=c,
                    mec="k", ls="none", zorder=5)
    slope, icpt = np.polyfit(np.log(P), np.log(gs[Vc]["mean"]), 1)
    ax.plot(P, np.exp(icpt) * P ** slope, color="0.45", ls=":", lw=1.3,
            label=f"power-law fit at V = {Vc}: ∝ $P^{{{slope:.2f}}}$")
    ax.axvspan(P.min() / 1.3, Vc, color="0.85", alpha=0.5, lw=0, zorder=0)
    ax.text(np.sqrt(P.min() * Vc), 0.98, f"P < V = {Vc}\n('P/V small')", transform=ax.get_xaxis_transform(),
            ha="center", va="top", fontsize=8.5, color="0.3")
    ax.plot([], [], marker="D", ms=7, color="0.7", mec="k", ls="none", label="P = V")
    rho = gs[Vc]["rho"]
    trend = "shrinks" if rho < 0 else "grows"
    ax.set(xscale="log", yscale="log", xlabel="P (particles sharing the V vertex slots)",
           ylabel="mean ‖x'$_{softmax}$ − x'$_{OT}$‖ per particle",
           title=f"Softmax-vs-OT barycentre gap {trend} as P grows (ρ = {rho:+.2f} at V = {Vc});\n"
                 f"the figure note expects it to be small when P/V is small")
    ax.set_xlim(P.min() / 1.3, P.max() * 1.3)
    ax.set_xticks(P)
    ax.set_xticklabels([str(p) for p in P])
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.legend(loc="lower left", fontsize=8.5,
              title=f"mean and 10-90% band over {g['trials'][str(Vc)].shape[0]} random problems, ε = {g['eps']:g}",
              title_fontsize=8.5)
    fig.tight_layout()
    return fig


def plot(results: dict) -> dict:
    return {"continuum": _plot_continuum(results), "gap": _plot_gap(results)}


def table(results: dict) -> str:
    from repro.report import measurement_table

    lines = measurement_table(measure_claims(ID, results))
    return "\n".join(lines)


def summary_lines(results: dict) -> list[str]:
    probs = results["problems"]
    bad = [f"P{p['P']}-V{p['V']}-eps{p['eps']:g}" for p in probs if not p["converged"]]
    return [f"  {len(probs)} problems x {len(results['lams'])} lam; not converged within max_iter: "
            f"{', '.join(bad) if bad else 'none'}"]
