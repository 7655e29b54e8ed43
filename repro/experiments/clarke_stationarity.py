"""Clarke upgrade of the stationarity guarantee (reconstructed) and its vacuity on piecewise-constant losses.

The abstract says the conservative-stationarity result is "upgraded to Clarke-stationary on the
headline architectures"; the mechanism and the list of architectures could not be read (digest
section 3.3, [U]). Two checks (digest section 3.3 and section 6 item 4), with the measures of
:mod:`theory.stationarity`:

1. **Upgrade.** Bolte & Pauwels' program ``f(x) = sum_i [ReLU(x_i) - ReLU(-x_i)] + mu ||x||^2``
   (``D = 4``, ``mu = 0.5``; as a function ``f`` is smooth, ``grad f = 1 + 2 mu x``, minimiser
   ``x_i = -1``). At ``x = 0`` the autodiff selection ``ReLU'(0) = 0`` returns the gradient ``0``: the
   point is conservative-stationary (``0 in D_f(0)``) but not Clarke-stationary
   (``dist(0, partial_C f(0)) = ||1|| = 2``). PolyStep (``r_s = r_p = 1/sqrt(t+1)``, ``eps = 0.1``,
   ``eta_max = 0.05``, one particle ``d_p = D``) is started *at* that spurious point; a first-order
   method fed by the autodiff selection (``x <- x - eta_t g``) from the same point is the contrast. The
   Clarke measure of PolyStep's iterates is exact here (``||grad f||``); the Goldstein estimate
   ``G_delta(x_T)`` (``4D`` sampled gradients, exact min-norm QP) is reported for ``delta`` from
   ``1e-4`` to ``1`` (the claim's ``delta in {1e-1, 1e-2, 1e-3}``). A genuinely nonsmooth loss,
   ``||Bx - c||_1 + 0.1 ||x||^2`` (``D = 8``, one particle ``d_p = 8``), is shown alongside: the Goldstein curve of the final
   iterate has a knee at ``delta ~ ||x_T - x*||``, and the exact Clarke measure at the minimiser
   (``clarke_subgradients`` at ``x*``) is ~0. The same loss run with two *block* particles of
   ``d_p = 4`` (the optimizer's block-coordinate costs) is the counter-check: its limit is tested for
   block-wise versus full Goldstein stationarity (:func:`theory.stationarity.block_goldstein_measures`).
2. **Vacuity.** On piecewise-constant losses -- the radial staircase ``floor(||x||)`` (``d_p = 8``) and
   a linear classifier with weights rounded to a grid of ``1/8`` (like the int8 headline model) --
   every PolyStep iterate is checked for local constancy (``f`` equal at 16 random points of a ball of
   radius ``1e-7`` and their mirror images): there the Clarke subdifferential is ``{0}``. The
   fraction of such iterates is the measurement; the loss is meanwhile far from its minimum.

Scales: ``ci`` T = 800, 5 seeds (seconds); ``cpu`` T = 5000, 20 seeds, 500 vacuity steps (about a
minute); ``paper`` T = 10^5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from polystep import objectives as O
from repro.context import RunContext
from theory.hitting_time import hitting_config, radial_start
from theory.rates import RateProblem, record_grid, run_rates
from theory.stationarity import (
    QuantizedLinearClassifier,
    block_goldstein_measures,
    clarke_measure,
    goldstein_measures,
    locally_constant,
    subgradient_descent,
)

ID = "clarke_stationarity"
TITLE = "Clarke stationarity of PolyStep limit points (ReLU-selection program, L1) and vacuity on piecewise-constant losses"
#: a finding of this reproduction, registered as a (refuted) claim: block-particle limit points
PROPOSED_BLOCK_CLAIM = "polystep.clarke_block_coordinate"
CLAIMS = ("polystep.clarke_upgrade", "polystep.clarke_vacuous_piecewise_constant", PROPOSED_BLOCK_CLAIM)
VERSION = 1

CLARKE_TOL = 0.01                 # claim: dist(0, Clarke) <= 0.01
CLAIM_DELTAS = (1e-1, 1e-2, 1e-3)  # the claim's delta -> 0 sequence
VACUOUS_MIN = 0.99                # claim: fraction of iterates with zero Clarke measure >= 1 - 0.01
ACTIVE_TOL = 1e-7                 # kinks within this of the minimiser count as active (x* solved to ~1e-12)
FLOOR = 1e-12                     # figures: estimates below this are rounding (the origin is in the hull)


@dataclass(frozen=True)
class Config:
    steps: int = 800
    seeds: int = 5
    T_points: tuple[int, ...] = (10, 100, 800)
    record_points: int = 50
    deltas: tuple[float, ...] = tuple(float(x) for x in np.logspace(-4, 0, 9))
    goldstein_samples: int = 0        # 0: 4 D
    r0: float = 1.0
    eps: float = 0.1
    jitter: float = 0.05
    relu_dim: int = 4
    relu_mu: float = 0.5
    autodiff_eta0: float = 0.1
    l1_dim: int = 8
    l1_mu: float = 0.1
    block_delta_factor: float = 2.0   # block-wise vs full Goldstein at T_max with delta = this x r_p(T_max)
    block_samples: int = 500          # sampled gradients of both estimates there
    vac_steps: int = 100
    vac_chains: int = 8
    vac_delta: float = 1e-7
    vac_dirs: int = 8
    stair_dim: int = 8
    stair_r: float = 1.0              # r_s/w = 1: keeps descending (r_s <= w/2 stalls mid-shell, see hitting_time)
    quant_r: float = 0.25
    quant_n: int = 200
    quant_dim: int = 4


_CPU = Config(steps=5000, seeds=20, T_points=(10, 100, 1000, 5000), record_points=60, block_samples=2000,
              deltas=tuple(float(x) for x in np.logspace(-4, 0, 13)), vac_steps=500, vac_chains=20)
_PAPER = Config(**{**_CPU.__dict__, "steps": 100_000, "T_points": (10, 100, 1000, 10_000, 100_000),
                   "vac_steps": 2000})
CONFIGS = {"ci": Config(), "cpu": _CPU, "paper": _PAPER}


def run(cfg: Config, ctx: RunContext) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(cfg, ctx)
    finally:
        torch.set_num_threads(threads)


def _goldstein_grid(obj, x_rec: np.ndarray, idx: np.ndarray, deltas, gen, samples) -> np.ndarray:
    """G_delta at the recorded iterates ``x_rec[idx]``: ``[n_T, n_delta, S]``."""
    n_t, s, d = len(idx), x_rec.shape[1], x_rec.shape[2]
    out = np.empty((n_t, len(deltas), s))
    for j, delta in enumerate(deltas):
        xs = torch.from_numpy(np.ascontiguousarray(x_rec[idx]).reshape(-1, d))
        out[:, j] = goldstein_measures(obj.grad, xs, delta, gen, num_samples=samples or None).reshape(n_t, s)
    return out


def _run(cfg: Config, ctx: RunContext) -> dict:
    T = np.asarray(cfg.T_points)
    rec = record_grid(cfg.steps, cfg.record_points, T)
    idx = np.searchsorted(rec, T)

    # 1a. ReLU-selection program (PolyStep from the spurious point x = 0) and 1c. L1 regression: one
    # particle per run (d_p = D) and, separately, two block particles of d_p = D/2 (the optimizer's
    # block-coordinate mode). relu and the block L1 share d_p = 4 and run in one batch.
    relu = O.relu_selection_example(cfg.relu_dim, mu=cfg.relu_mu)
    gl = ctx.torch_generator("l1-instance", device="cpu")
    b = torch.randn(2 * cfg.l1_dim, cfg.l1_dim, generator=gl, dtype=torch.float64)
    c = torch.randn(2 * cfg.l1_dim, generator=gl, dtype=torch.float64)
    l1 = O.l1_regression(b, c, cfg.l1_mu)
    block = cfg.l1_dim // 2
    block_delta = cfg.block_delta_factor * cfg.r0 / math.sqrt(cfg.steps + 1)

    def l1_summary(q, g):
        xr = q["x_record"]
        x_last = xr[idx[-1]]
        return {"goldstein": _goldstein_grid(l1, xr, idx, cfg.deltas, g, cfg.goldstein_samples),
                "dist": np.linalg.norm(xr[idx] - l1.minimizer.numpy(), axis=2),
                "f_gap": np.array([[float(l1(torch.from_numpy(xr[i, k]))) - l1.minimum for k in range(cfg.seeds)]
                                   for i in idx]),
                "clarke_T": np.array([[clarke_measure(l1, torch.from_numpy(xr[i, k])).norm
                                       for k in range(cfg.seeds)] for i in idx]),
                "block_goldstein": np.stack([block_goldstein_measures(l1.grad, torch.from_numpy(x_last[k]),
                                                                      block_delta, block, g,
                                                                      num_samples=cfg.block_samples)
                                             for k in range(cfg.seeds)]),  # [S, n_blocks] at T_max
                "full_goldstein_block_delta": goldstein_measures(l1.grad, torch.from_numpy(x_last), block_delta,
                                                                 g, num_samples=cfg.block_samples)}

    def polystep_runs():
        g = ctx.torch_generator("polystep", device="cpu")
        probs = [RateProblem("relu", relu, cfg.relu_dim, cfg.relu_dim, cfg.r0, cfg.eps, x0_scale=0.0),
                 RateProblem("l1_block", l1, cfg.l1_dim, block, cfg.r0, cfg.eps)]
        res = run_rates(probs, steps=cfg.steps, seeds=cfg.seeds, generator=g, jitter=cfg.jitter, record=rec,
                        keep_iterates=True)
        g8 = ctx.torch_generator("polystep-full", device="cpu")
        full = run_rates([RateProblem("l1", l1, cfg.l1_dim, cfg.l1_dim, cfg.r0, cfg.eps)], steps=cfg.steps,
                         seeds=cfg.seeds, generator=g8, jitter=cfg.jitter, record=rec, keep_iterates=True)["l1"]
        ctx.count_evals(cfg.steps * cfg.seeds * 2 * (cfg.relu_dim + 2 * cfg.l1_dim))
        r = res["relu"]
        return {"relu": {"record": r["record"], "clarke": r["value"], "x_T": r["x_record"][idx],
                         "f_final": r["f_final"],
                         "goldstein": _goldstein_grid(relu, r["x_record"], idx, cfg.deltas, g, cfg.goldstein_samples),
                         "clarke_T": np.array([[clarke_measure(relu, torch.from_numpy(r["x_record"][i, k])).norm
                                                for k in range(cfg.seeds)] for i in idx])},
                "l1": l1_summary(full, g8), "l1_block": l1_summary(res["l1_block"], g)}

    runs = ctx.checkpoint("polystep", polystep_runs)
    relu_res = runs["relu"]

    # 1b. the autodiff-selection first-order method from the same point
    xs = subgradient_descent(relu.autodiff_selection_grad, torch.zeros(cfg.relu_dim, dtype=torch.float64),
                             cfg.steps, cfg.autodiff_eta0)
    x_ad = torch.from_numpy(xs[-1])
    lo, hi = relu.conservative_field_bounds(x_ad)
    g_ad = ctx.torch_generator("autodiff-goldstein", device="cpu")
    autodiff = {"x_final": xs[-1], "max_abs_x": float(np.abs(xs).max()),
                "clarke": float(clarke_measure(relu, x_ad).norm),
                "conservative_dist": float(torch.linalg.vector_norm(torch.clamp(lo, min=0) + torch.clamp(-hi, min=0))),
                "goldstein": goldstein_measures(relu.grad, x_ad[None].expand(len(cfg.deltas), -1), np.asarray(cfg.deltas),
                                                g_ad, num_samples=cfg.goldstein_samples or None)}

    star = clarke_measure(l1, l1.minimizer, tol=ACTIVE_TOL)
    l1_res = {**runs["l1"], "clarke_at_minimizer": star.norm, "clarke_gap_at_minimizer": star.gap,
              "active_at_minimizer": int(l1.active_set(l1.minimizer, tol=ACTIVE_TOL).sum()),
              "minimum_gap": l1.minimum_gap}
    l1_block = {**runs["l1_block"], "block_size": block}

    # 2. vacuity on piecewise-constant losses
    def vacuity():
        out = {}
        g = ctx.torch_generator("vacuity", device="cpu")
        stair = O.staircase_radial(1.0)
        quant = QuantizedLinearClassifier(cfg.quant_n, cfg.quant_dim, ctx.torch_generator("quant-data", device="cpu"))
        from polystep import functional as F

        for name, obj, x0, conf in (
            ("staircase", stair, radial_start(cfg.stair_dim, 20, 1.0, 0.4).expand(cfg.vac_chains, -1).clone(),
             hitting_config("orthoplex", cfg.stair_r)),
            ("quantized", quant, torch.randn(cfg.vac_chains, quant.dim, generator=g, dtype=torch.float64),
             hitting_config("orthoplex", cfg.quant_r)),
        ):
            x, state = x0, F.init()
            loss = np.empty((cfg.vac_steps + 1, cfg.vac_chains))
            const = np.empty((cfg.vac_steps + 1, cfg.vac_chains), dtype=bool)
            gradz = np.empty((cfg.vac_steps + 1, cfg.vac_chains), dtype=bool)
            for t in range(cfg.vac_steps + 1):
                loss[t] = obj(x).numpy()
                const[t] = locally_constant(obj, x, cfg.vac_delta, cfg.vac_dirs, g)
                gradz[t] = (obj.grad(x) == 0).all(dim=1).numpy()
                if t < cfg.vac_steps:
                    x, state, _ = F.step(x, obj, state, conf, g)
            ctx.count_evals(cfg.vac_steps * cfg.vac_chains * 2 * x.shape[1])
            out[name] = {"loss": loss, "locally_constant": const, "grad_zero": gradz, "dim": int(x.shape[1]),
                         "minimum": float(getattr(obj, "minimum", math.nan))}
        return out

    vac = ctx.checkpoint("vacuity", vacuity)
    return {"scale": ctx.scale, "T": T, "deltas": np.asarray(cfg.deltas), "relu": relu_res, "autodiff": autodiff,
            "l1": l1_res, "l1_block": l1_block, "vacuity": vac,
            "settings": {"r0": cfg.r0, "eps": cfg.eps, "eta_max": cfg.jitter, "steps": cfg.steps, "seeds": cfg.seeds,
                         "relu_dim": cfg.relu_dim, "relu_mu": cfg.relu_mu, "l1_dim": cfg.l1_dim,
                         "block_delta": block_delta,
                         "vac_delta": cfg.vac_delta, "vac_dirs": cfg.vac_dirs, "vac_steps": cfg.vac_steps,
                         "vac_chains": cfg.vac_chains}}


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------


def _claim_delta_values(results: dict) -> dict[float, float]:
    """max over seeds of G_delta(x_T) at the largest T, for the claim's deltas (nearest grid point)."""
    deltas = np.asarray(results["deltas"])
    gs = np.asarray(results["relu"]["goldstein"])[-1]  # [n_delta, S]
    out = {}
    for d in CLAIM_DELTAS:
        j = int(np.argmin(np.abs(np.log(deltas / d))))
        out[float(deltas[j])] = float(gs[j].max())
    return out


def l1_knee(results: dict) -> list[float]:
    """Per T: the smallest delta of the grid whose seed-mean G_delta(x_T) is <= CLARKE_TOL (inf if none)."""
    deltas = np.asarray(results["deltas"])
    gs = np.asarray(results["l1"]["goldstein"]).mean(axis=2)  # [n_T, n_delta]
    out = []
    for row in gs:
        ok = np.flatnonzero(row <= CLARKE_TOL)
        out.append(float(deltas[ok.min()]) if len(ok) else math.inf)
    return out


def block_stall(results: dict) -> dict:
    """The block-particle L1 run at T_max: distance to x*, f - f*, block-wise vs full Goldstein."""
    lb = results["l1_block"]
    bg = np.asarray(lb["block_goldstein"])
    full = np.asarray(lb["full_goldstein_block_delta"])
    return {"dist": float(np.mean(lb["dist"][-1])), "f_gap": float(np.mean(lb["f_gap"][-1])),
            "block_max": float(bg.max()), "full_min": float(full.min()), "full_mean": float(full.mean()),
            "clarke": float(np.mean(lb["clarke_T"][-1])),
            "stalled": bool(bg.max() <= CLARKE_TOL < full.min())}


def block_stall_text(results: dict) -> str:
    b = block_stall(results)
    s = results["settings"]
    lb = results["l1_block"]
    return (f"Block particles (two of d_p = {lb['block_size']}, the optimizer's block-coordinate costs) on the same "
            f"L1 loss: at T = {int(results['T'][-1])} mean ||x_T - x*|| = {b['dist']:.3g}, f - f* = {b['f_gap']:.3g}; "
            f"block-wise Goldstein measures <= {b['block_max']:.1e} but the full one >= {b['full_min']:.3g} "
            f"(delta = 2 r_p(T) = {s['block_delta']:.3g}): "
            + ("every seed stalls at a block-wise stationary point that is NOT Clarke-stationary "
               "(block-coordinate stall; outside this claim's one-particle setting)" if b["stalled"]
               else "no block-coordinate stall detected"))


def _measure_all(results: dict) -> dict:
    s = results["settings"]
    cd = _claim_delta_values(results)
    value = max(cd.values())
    clarke_final = float(np.max(results["relu"]["clarke_T"][-1]))
    ad = results["autodiff"]
    T = np.asarray(results["T"])
    l1 = results["l1"]
    knee = l1_knee(results)
    dist = np.asarray(l1["dist"]).mean(axis=1)
    out = {
        "polystep.clarke_upgrade": {
            "value": value, "verdict": "reproduced" if value <= CLARKE_TOL else "not reproduced",
            "detail": f"ReLU(x) - ReLU(-x) + {s['relu_mu']:g}x^2 program, D = {s['relu_dim']}, PolyStep from the "
                      f"spurious point x = 0 (r = {s['r0']:g}/sqrt(t+1), eps = {s['eps']:g}, {s['seeds']} seeds, "
                      f"T = {int(T[-1])}): max over seeds of G_delta(x_T) = "
                      + ", ".join(f"{v:.2e} (delta = {d:g})" for d, v in cd.items())
                      + f" (value = the largest; tolerance {CLARKE_TOL}); exact Clarke measure ||grad f(x_T)|| <= "
                      f"{clarke_final:.2e}. The autodiff-selection method from x = 0 never moves (max |x_t| = "
                      f"{ad['max_abs_x']:.1g}): conservative-stationary (dist(0, D_f) = {ad['conservative_dist']:.1g}) "
                      f"but Clarke measure {ad['clarke']:.3g}. L1 (nonsmooth at x*): exact Clarke measure at x* = "
                      f"{l1['clarke_at_minimizer']:.1e} ({l1['active_at_minimizer']} active kinks); G_delta(x_T) <= "
                      f"{CLARKE_TOL} for delta >= "
                      + ", ".join(f"{k:.2g} (T = {t}, ||x_T - x*|| = {dd:.2g})" for k, t, dd in zip(knee, T, dist))
                      + ". " + block_stall_text(results)},
    }
    b = block_stall(results)
    converged = b["dist"] < 0.05 and b["full_min"] <= CLARKE_TOL
    out[PROPOSED_BLOCK_CLAIM] = {
        "value": b["full_min"],
        "verdict": "refuted" if b["stalled"] else ("reproduced" if converged else "not reproduced"),
        "detail": "(proposed claim: limit points of block-particle PolyStep are Clarke-stationary) value = min over "
                  "seeds of the full Goldstein estimate at the final iterate. " + block_stall_text(results)}
    vac = results["vacuity"]
    fr = {n: float(np.mean(v["locally_constant"])) for n, v in vac.items()}
    gz = {n: float(np.mean(v["grad_zero"])) for n, v in vac.items()}
    loss = {n: (float(np.mean(v["loss"][0])), float(np.mean(v["loss"][-1]))) for n, v in vac.items()}
    v = min(fr.values())
    out["polystep.clarke_vacuous_piecewise_constant"] = {
        "value": v, "verdict": "reproduced" if v >= VACUOUS_MIN else "not reproduced",
        "detail": f"fraction of PolyStep iterates ({s['vac_steps'] + 1} steps x {s['vac_chains']} chains) where the "
                  f"loss is constant on a ball of radius {s['vac_delta']:g} ({2 * s['vac_dirs']} random points), hence "
                  f"Clarke measure 0: "
                  + "; ".join(f"{n}: {fr[n]:.4f} (gradient exactly 0 at {gz[n]:.4f}; mean loss {loss[n][0]:.3g} -> "
                              f"{loss[n][1]:.3g})" for n in fr)
                  + " -- every iterate is Clarke-stationary while the loss is still decreasing: the guarantee says "
                    "nothing on piecewise-constant models"}
    return out


def measure(results: dict) -> dict:
    """Measurements of this experiment's claims whose scale this run reaches."""
    from repro.claims import reachable

    return reachable(_measure_all(results), results.get("scale", "cpu"), only=CLAIMS)


# ---------------------------------------------------------------------------------------------
# figures and table
# ---------------------------------------------------------------------------------------------


def _plot_clarke(results: dict):
    import matplotlib.pyplot as plt

    s = results["settings"]
    T = np.asarray(results["T"])
    deltas = np.asarray(results["deltas"])
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, 4, figsize=(22, 5.2))

    ax = axes[0]
    rec = np.asarray(results["relu"]["record"], dtype=float)
    cl = np.asarray(results["relu"]["clarke"])
    ax.fill_between(rec, np.quantile(cl, 0.1, axis=1), np.quantile(cl, 0.9, axis=1), color="#0072B2", alpha=0.25, lw=0)
    ax.plot(rec, cl.mean(axis=1), color="#0072B2", lw=2, label="PolyStep from x₀ = 0 (mean, 10–90%)")
    ad = results["autodiff"]
    ax.axhline(ad["clarke"], color="#D55E00", lw=2, ls="--",
               label=f"autodiff-selection GD from x₀ = 0: stuck, Clarke measure {ad['clarke']:.2g}\n"
                     f"(conservative-stationary: 0 ∈ D$_f$(0))")
    ax.axhline(CLARKE_TOL, color="0.4", ls=":", lw=1, label=f"tolerance {CLARKE_TOL}")
    ax.set(xscale="log", yscale="log", xlabel="step t", ylabel="exact Clarke measure dist(0, ∂$_C$f(x$_t$)) = ‖∇f(x$_t$)‖",
           title=f"ReLU(x) − ReLU(−x) + {s['relu_mu']:g}x², D = {s['relu_dim']}: PolyStep leaves the\n"
                 "spurious conservative-stationary point; autodiff GD does not")
    ax.legend(fontsize=7.5, loc="lower left")

    ax = axes[1]
    gs = np.asarray(results["relu"]["goldstein"])
    for i, t in enumerate(T):
        ax.plot(deltas, np.maximum(gs[i].mean(axis=1), FLOOR), "o-", ms=3, color=cmap(i / max(1, len(T) - 1) * 0.9),
                label=f"PolyStep x$_T$, T = {t} (mean over seeds)")
    ax.axhspan(FLOOR / 3, FLOOR * 1.5, color="0.9", zorder=0)
    ax.text(deltas[0], FLOOR * 2, "origin inside the sampled hull (rounding)", fontsize=7, color="0.35")
    ax.plot(deltas, ad["goldstein"], "s--", ms=3, color="#D55E00", label="autodiff-GD point x = 0")
    ax.axhline(CLARKE_TOL, color="0.4", ls=":", lw=1)
    for d in CLAIM_DELTAS:
        ax.axvline(d, color="0.85", lw=4, zorder=0)
    ax.set(xscale="log", yscale="log", xlabel="δ", ylabel="Goldstein estimate G$_δ$(x$_T$) (sampled upper bound)",
           title="Goldstein δ-measure of the final iterate as δ → 0 (grey: the\nclaim's δ ∈ {1e-1, 1e-2, 1e-3}; "
                 "4D samples: dips = origin caught in the hull)")
    ax.legend(fontsize=7.5, loc="lower right")

    for ax, key, title in ((axes[2], "l1", f"one particle (d$_p$ = {s['l1_dim']})"),
                           (axes[3], "l1_block", f"two block particles (d$_p$ = {results['l1_block']['block_size']})")):
        l1 = results[key]
        gl = np.asarray(l1["goldstein"])
        dist = np.asarray(l1["dist"]).mean(axis=1)
        for i, t in enumerate(T):
            col = cmap(i / max(1, len(T) - 1) * 0.9)
            ax.plot(deltas, np.maximum(gl[i].mean(axis=1), FLOOR), "o-", ms=3, color=col,
                    label=f"T = {t}: mean ‖x$_T$ − x*‖ = {dist[i]:.2g}")
            ax.axvline(dist[i], color=col, ls=":", lw=1)
        ax.axhline(CLARKE_TOL, color="0.4", ls=":", lw=1)
        if key == "l1":
            ax.plot([deltas.min() / 2], [max(results["l1"]["clarke_at_minimizer"], FLOOR)], "*", color="k", ms=12,
                    label=f"exact Clarke measure at x* ({results['l1']['clarke_at_minimizer']:.0e})")
            sub = "G$_δ$(x$_T$) ≈ 0 once δ ≳ ‖x$_T$ − x*‖ (dotted):\nthe limit point x* is Clarke-stationary"
        else:
            b = block_stall(results)
            ax.plot([s["block_delta"]], [max(b["block_max"], FLOOR)], "v", color="#D55E00", ms=10,
                    label=f"block-wise Goldstein at δ = {s['block_delta']:.2g} (max {b['block_max']:.0e})")
            ax.plot([s["block_delta"]], [b["full_min"]], "^", color="#C0392B", ms=10,
                    label=f"full Goldstein at δ = {s['block_delta']:.2g} (min over seeds {b['full_min']:.2g})")
            sub = ("block-wise stationary, not Clarke-stationary:\na block-coordinate stall" if b["stalled"]
                   else "no block-coordinate stall")
        ax.set(xscale="log", yscale="log", xlabel="δ", ylabel="mean Goldstein estimate G$_δ$(x$_T$)",
               title=f"‖Bx − c‖$_1$ + 0.1‖x‖², D = {s['l1_dim']}, {title}:\n{sub}")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def _plot_vacuity(results: dict):
    import matplotlib.pyplot as plt

    vac = results["vacuity"]
    fig, axes = plt.subplots(1, len(vac), figsize=(6.2 * len(vac), 4.4))
    titles = {"staircase": "radial staircase floor(‖x‖), d$_p$ = 8",
              "quantized": "linear classifier, weights rounded to 1/8 (int8-like)"}
    for ax, (name, v) in zip(np.atleast_1d(axes), vac.items()):
        loss = np.asarray(v["loss"])
        t = np.arange(loss.shape[0])
        ax.plot(t, loss, color="#0072B2", alpha=0.15, lw=0.7)
        ax.plot(t, loss.mean(axis=1), color="#0072B2", lw=2, label="loss (mean over chains)")
        ax.set(xlabel="PolyStep step", ylabel="loss", title=f"{titles.get(name, name)}")
        ax2 = ax.twinx()
        fr = np.asarray(v["locally_constant"]).mean(axis=1)
        ax2.plot(t, fr, color="#009E73", lw=1.5, label="fraction of iterates locally constant (Clarke measure 0)")
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("fraction with Clarke measure 0", color="#009E73")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7.5, loc="center right")
    fig.suptitle("Piecewise-constant losses: every iterate is Clarke-stationary while the loss keeps falling "
                 "(the stationarity guarantee is vacuous)", fontsize=11)
    fig.tight_layout()
    return fig


def plot(results: dict) -> dict:
    return {"clarke": _plot_clarke(results), "vacuity": _plot_vacuity(results)}


def table(results: dict) -> str:
    from repro.report import measurement_table

    lines = measurement_table(_measure_all(results))
    return "\n".join(lines)
