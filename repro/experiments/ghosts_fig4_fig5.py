r"""Figures 4 and 5 of "Ghosts of softmax", drawn from real zeros of random partition functions.

Along a step ``t`` (complex), the linearized partition function is
``F(t) = sum_k V_k(t)``, ``V_k(t) = w_k e^{a_k t}``, ``w_k = e^{z_k} > 0``.  Write ``t = u + i y``:
``V_k`` has modulus ``w_k e^{a_k u}`` and argument ``a_k y``, so the arguments of all ``V_k`` lie in
an interval of length ``Delta_a |y|`` (``Delta_a = max a - min a``).

* **Figure 4 / Lemma 4.5**: if ``Delta_a |Im t| < pi`` the vectors ``V_k`` lie in an open half-plane,
  so their positive combination ``F`` cannot vanish.  Quantitatively (rotate by the bisector ``phi``
  of the arguments): ``|F| >= Re(e^{-i phi} F) >= cos(Delta_a |Im t| / 2) sum_k |V_k| > 0``.
* **Figure 5 / Theorem 4.6**: hence the strip ``|Im t| < pi/Delta_a`` is zero-free, every zero has
  ``|t| >= |Im t| >= pi/Delta_a`` and ``rho* >= rho_a = pi/Delta_a``.  Binary partitions
  (and any with two slope values) have their zeros exactly on the strip's edge.

The paper draws both as schematics.  Here they are drawn from computed zeros (Lemma 4.5 and
Theorem 4.6 of arXiv 2603.13552; overlaying real zeros on Fig 5 as suggested in paper/ghosts_notes.md §3):

* ``n_instances`` random instances with ``n ~ U{2..11}`` classes, ``z ~ N(0, s_z^2)``,
  ``a ~ N(0, s_a^2)``, ``s_z, s_a`` log-uniform on ``[0.1, 10]`` (the random stress test of
  paper/ghosts_notes.md §2.5); their nearest zeros from :func:`ghosts.softmax_radius.nearest_zeros` (argument
  principle, certified; float64 Newton without the mpmath polish, which would triple the run time
  -- the residual check below bounds their accuracy);
* ``n_lattice`` instances with integer slopes, whose *every* zero in a window comes from the roots of
  the polynomial ``P(u) = sum_k w_k u^{m_k}`` (``t = (Log u + 2 pi i k)/g``); their nearest zeros
  are cross-checked against :func:`ghosts.softmax_radius.polynomial_zeros`; every zero's residual
  ``|F(t)| / sum_k |V_k(t)|`` is recorded;
* the Lemma 4.5 bound at ``n_strip_points`` points per random instance inside the strip
  (``|Im s| = pi * U(0, 0.999)``, real parts around the nearest zero), and, as contrast, as many
  points in ``pi <= |Im s| <= 2 pi``;
* at each nearest zero, the smallest arc containing all arguments of the ``V_k`` (Lemma 4.5 says it
  must be ``>= pi``).

Coordinates: the plane is drawn in the scale-free variable ``s = Delta_a t``, in which the strip is
``|Im s| < pi`` and the disk of radius ``rho_a`` is ``|s| < pi`` for every instance.  Figure 4's
instance is the one, among ``fig4_candidates`` random 5-class instances, whose vectors at its nearest
zero are the most balanced in length (legibility; documented choice).

**The ci, cpu and paper configurations are identical** (pure mathematics, about 2 s).

Claims (their rules, with the slacks of the float64 checks, are registered in ``paper/claims.toml``):

* ``ghosts.fig5_zeros_outside_strip``: value = ``min Delta_a |Im t| / pi`` over every zero found
  (Theorem 4.6 makes it ``>= 1``); evidence: the largest residual ``|F|/sum|V_k|`` of a zero and the
  largest disagreement of the two zero finders (the rule requires the zeros to be zeros and the
  finders to agree).
* ``ghosts.fig4_half_plane``: value = ``min |F(t)| / (cos(Delta_a |Im t|/2) sum_k |V_k(t)|)`` over the
  in-strip points (Lemma 4.5 makes it ``>= 1``); evidence: the smallest arc holding the arguments of
  the ``V_k`` at a zero, in units of ``pi`` (Lemma 4.5 makes it ``>= 1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from repro.claims import claim, claims_of
from repro.context import RunContext

from . import _ghosts_analytic as ga

ID = "ghosts_fig4_fig5"
TITLE = "Lemma 4.5 and Theorem 4.6 drawn from computed zeros: no ghost inside |Im t| < pi/Delta_a"
CLAIMS = claims_of(ID)

PI = math.pi
#: Figure 4(a) evaluates the vectors at the nearest zero's real part and Delta_a Im t = 0.85 pi
IN_STRIP = 0.85


@dataclass(frozen=True)
class Config:
    n_instances: int = 200
    classes: tuple[int, int] = (2, 11)
    scale_range: tuple[float, float] = (0.1, 10.0)   # log-uniform std of z and of a
    n_strip_points: int = 200
    n_lattice: int = 8
    lattice_degree: tuple[int, int] = (3, 8)
    window: float = 6 * PI                           # |Re s|, |Im s| of the lattice zeros kept
    fig4_candidates: int = 12
    fig4_classes: int = 5


CONFIGS = {"ci": Config(), "cpu": Config(), "paper": Config()}


# --------------------------------------------------------------------------------------------
# F in the scale-free variable s = Delta_a t
# --------------------------------------------------------------------------------------------


def _vectors(z: np.ndarray, a: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``V_k`` at ``t = s/Delta_a``, up to the common factor ``e^{max z + c t}`` (c = mid-slope).

    Shape ``[len(s), n]``.  A common complex factor rotates and scales every ``V_k`` alike, so
    half-plane membership, argument arcs and ``|F|/sum|V_k|`` are unchanged.
    """
    spread = a.max() - a.min()
    b = (a - 0.5 * (a.max() + a.min())) / spread
    return np.exp((z - z.max())[None, :] + np.asarray(s)[:, None] * b[None, :])


def _min_arc(v: np.ndarray) -> np.ndarray:
    """Length of the smallest arc of the circle containing the arguments of each row of ``v``."""
    ang = np.sort(np.mod(np.angle(v), 2 * PI), axis=-1)
    gaps = np.diff(np.concatenate([ang, ang[..., :1] + 2 * PI], axis=-1), axis=-1)
    return 2 * PI - gaps.max(axis=-1)


def _random_instance(rng: np.random.Generator, cfg: Config, n: int | None = None):
    lo, hi = np.log(cfg.scale_range[0]), np.log(cfg.scale_range[1])
    n = int(rng.integers(cfg.classes[0], cfg.classes[1] + 1)) if n is None else n
    s_z, s_a = np.exp(rng.uniform(lo, hi, size=2))
    return rng.normal(0, s_z, n), rng.normal(0, s_a, n)


def _lattice_zeros(z: np.ndarray, m: np.ndarray, window: float) -> np.ndarray:
    """Every zero ``s = Delta_a t`` with ``|Re s|, |Im s| <= window`` of ``F = sum e^{z_k + m_k t}``.

    Integer slopes ``m_k`` (min 0, max ``D`` = ``Delta_a``, ``g = 1``): ``F(t) = P(e^t)``, each root
    ``u`` of ``P`` gives the column ``t = Log u + 2 pi i k``, i.e. ``s = D (Log u + 2 pi i k)``.
    """
    deg = int(m.max())
    coeffs = np.zeros(deg + 1)
    np.add.at(coeffs, deg - m, np.exp(z - z.max()))
    out = []
    for u in np.roots(coeffs):
        base = deg * np.log(complex(u))
        kmax = int(math.ceil((window + abs(base.imag)) / (2 * PI * deg))) + 1
        for k in range(-kmax, kmax + 1):
            s = base + 2j * PI * deg * k
            if abs(s.real) <= window and abs(s.imag) <= window:
                out.append(s)
    return np.array(out, dtype=np.complex128)


def _residual(z: np.ndarray, a: np.ndarray, s: np.ndarray) -> np.ndarray:
    v = _vectors(z, a, s)
    return np.abs(v.sum(axis=1)) / np.abs(v).sum(axis=1)


# --------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------


def _pick_fig4_instance(ctx: RunContext, cfg: Config) -> dict:
    from ghosts import softmax_radius as sr

    rng = ctx.numpy_rng("fig4_candidates")
    best = None
    for _ in range(cfg.fig4_candidates):
        z = rng.normal(0, 1.0, cfg.fig4_classes)
        a = rng.normal(0, 1.0, cfg.fig4_classes)
        zeros = sr.nearest_zeros(z, a, polish=False)
        spread = a.max() - a.min()
        s_star = complex(zeros[np.argmax(zeros.imag)]) * spread
        mags = np.abs(_vectors(z, a, np.array([s_star]))[0])
        balance = mags.min() / mags.max()
        if best is None or balance > best["balance"]:
            best = {"z": z, "a": a, "s_star": s_star, "balance": float(balance)}
    z, a, s_star = best["z"], best["a"], best["s_star"]
    s_in = s_star.real + 1j * IN_STRIP * PI
    return {"z": z, "a": a, "spread": float(a.max() - a.min()), "balance": best["balance"],
            "s_star_re": s_star.real, "s_star_im": s_star.imag,
            "rho_star_over_rho_a": abs(s_star) / PI,
            "v_star": _vectors(z, a, np.array([s_star]))[0], "s_in_im": s_in.imag,
            "v_in": _vectors(z, a, np.array([s_in]))[0]}


def run(cfg: Config, ctx: RunContext) -> dict:
    from ghosts import softmax_radius as sr

    rng = ctx.numpy_rng("instances")
    n_cls, near_re, near_im, near_inst, rho_ratio = [], [], [], [], []
    bound_ratio, strip_u, strip_norm = [], [], []
    outside_u, outside_norm = [], []
    arcs, residuals = [], []
    for i in ctx.bar(range(cfg.n_instances), desc="random instances"):
        z, a = _random_instance(rng, cfg)
        spread = float(a.max() - a.min())
        zeros = sr.nearest_zeros(z, a, polish=False) * spread  # s = Delta_a t
        n_cls.append(len(z))
        rho_ratio.append(float(np.min(np.abs(zeros))) / PI)
        near_re += list(zeros.real)
        near_im += list(zeros.imag)
        near_inst += [i] * len(zeros)
        v0 = _vectors(z, a, zeros)
        arcs += list(_min_arc(v0))
        residuals += list(np.abs(v0.sum(axis=1)) / np.abs(v0).sum(axis=1))
        # Lemma 4.5 inside the strip, and contrast points beyond it
        re0 = float(zeros.real[0])
        u_in = rng.uniform(0, 0.999, cfg.n_strip_points) * rng.choice([-1, 1], cfg.n_strip_points)
        re_in = re0 + rng.normal(0, 3.0, cfg.n_strip_points)
        v = _vectors(z, a, re_in + 1j * PI * u_in)
        f_abs, tot = np.abs(v.sum(axis=1)), np.abs(v).sum(axis=1)
        bound_ratio += list(f_abs / (np.cos(PI * np.abs(u_in) / 2) * tot))
        strip_u += list(np.abs(u_in))
        strip_norm += list(f_abs / tot)
        u_out = rng.uniform(1.0, 2.0, cfg.n_strip_points)
        v = _vectors(z, a, re0 + rng.normal(0, 3.0, cfg.n_strip_points) + 1j * PI * u_out)
        outside_u += list(u_out)
        outside_norm += list(np.abs(v.sum(axis=1)) / np.abs(v).sum(axis=1))

    # integer-slope instances: every zero in a window, from polynomial roots
    lrng = ctx.numpy_rng("lattice")
    lat_re, lat_im, lat_inst, lat_res, poly_vs_ap = [], [], [], [], []
    for j in range(cfg.n_lattice):
        deg = int(lrng.integers(cfg.lattice_degree[0], cfg.lattice_degree[1] + 1))
        n = int(lrng.integers(3, 8))
        m = np.concatenate([[0, deg], lrng.integers(0, deg + 1, n - 2)]).astype(np.int64)
        z = lrng.normal(0, 1.5, n)
        a = m.astype(np.float64)
        s_all = _lattice_zeros(z, m, cfg.window)
        lat_re += list(s_all.real)
        lat_im += list(s_all.imag)
        lat_inst += [j] * len(s_all)
        lat_res += list(_residual(z, a, s_all))
        r_poly = float(np.min(np.abs(sr.polynomial_zeros(z, a))))
        r_ap = float(np.min(np.abs(sr.nearest_zeros(z, a, polish=False))))
        r_lat = float(np.min(np.abs(s_all))) / deg
        poly_vs_ap.append(max(abs(r_poly - r_ap), abs(r_lat - r_ap)) / r_ap)

    return {
        "n_classes": np.array(n_cls), "rho_star_over_rho_a": np.array(rho_ratio),
        "nearest": {"re": np.array(near_re), "im": np.array(near_im), "instance": np.array(near_inst)},
        "zero_arc_over_pi": np.array(arcs) / PI, "zero_residual": np.array(residuals),
        "strip": {"u": np.array(strip_u), "norm_abs_f": np.array(strip_norm),
                  "bound_ratio": np.array(bound_ratio)},
        "outside": {"u": np.array(outside_u), "norm_abs_f": np.array(outside_norm)},
        "lattice": {"re": np.array(lat_re), "im": np.array(lat_im), "instance": np.array(lat_inst),
                    "residual": np.array(lat_res), "nearest_rel_diff": np.array(poly_vs_ap)},
        "fig4": _pick_fig4_instance(ctx, cfg),
    }


# --------------------------------------------------------------------------------------------
# claims
# --------------------------------------------------------------------------------------------


def _all_im_over_pi(results: dict) -> np.ndarray:
    return np.abs(np.concatenate([results["nearest"]["im"], results["lattice"]["im"]])) / PI


@claim("ghosts.fig5_zeros_outside_strip")
def _fig5_zeros_outside_strip(results: dict) -> dict:
    im = _all_im_over_pi(results)
    n_zeros = im.size
    max_res = float(max(results["zero_residual"].max(), results["lattice"]["residual"].max()))
    max_diff = float(results["lattice"]["nearest_rel_diff"].max())
    binary = results["n_classes"] == 2
    rho = results["rho_star_over_rho_a"]
    near = results["nearest"]
    edge_dev = np.abs(np.abs(near["im"][np.isin(near["instance"], np.flatnonzero(binary))]) / PI - 1)
    detail = (f"min Delta_a|Im t|/pi over {n_zeros} zeros ({len(rho)} random instances, nearest zeros; "
              f"{results['lattice']['re'].size} zeros of {len(results['lattice']['nearest_rel_diff'])} "
              f"integer-slope instances in a window); min rho*/rho_a = {rho.min():.6f}, "
              f"{int(binary.sum())} binary instances on the edge (max |Delta_a|Im t|/pi - 1| = "
              f"{edge_dev.max():.1e}); "
              f"max residual |F|/sum|V_k| = {max_res:.1e}; polynomial vs argument-principle rho* "
              f"rel. diff {max_diff:.1e}")
    return {"value": float(im.min()), "detail": detail,
            "evidence": {"n_zeros": int(n_zeros), "min_rho_star_over_rho_a": float(rho.min()),
                         "n_binary": int(binary.sum()),
                         "max_binary_edge_deviation": float(edge_dev.max()) if edge_dev.size else 0.0,
                         "max_residual": max_res, "max_finder_rel_diff": max_diff}}


@claim("ghosts.fig4_half_plane")
def _fig4_half_plane(results: dict) -> dict:
    br = results["strip"]["bound_ratio"]
    arc = results["zero_arc_over_pi"]
    detail = (f"min |F|/(cos(Delta_a|Im t|/2) sum|V_k|) over {br.size} points of the strip "
              f"(Lemma 4.5 bound, >= 1); smallest arc holding the arguments of V_k at the "
              f"{arc.size} nearest zeros: {arc.min():.9f} pi (must be >= pi); min |F|/sum|V_k| in "
              f"the strip {results['strip']['norm_abs_f'].min():.2e}, beyond it "
              f"{results['outside']['norm_abs_f'].min():.2e}")
    return {"value": float(br.min()), "detail": detail,
            "evidence": {"n_strip_points": int(br.size), "n_zeros": int(arc.size),
                         "min_zero_arc_over_pi": float(arc.min()),
                         "min_norm_abs_f_strip": float(results["strip"]["norm_abs_f"].min()),
                         "min_norm_abs_f_outside": float(results["outside"]["norm_abs_f"].min())}}


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------


def _chain(ax, v: np.ndarray, colors, *, lw: float = 1.6, alpha: float = 1.0) -> None:
    """Head-to-tail chain of the vectors ``v`` (the running sums of F)."""
    pts = np.concatenate([[0], np.cumsum(v)])
    for k in range(len(v)):
        ax.annotate("", xy=(pts[k + 1].real, pts[k + 1].imag), xytext=(pts[k].real, pts[k].imag),
                    arrowprops=dict(arrowstyle="-|>", color=colors[k], lw=lw, alpha=alpha,
                                    shrinkA=0, shrinkB=0, mutation_scale=11))


def _vector_panel(ax, v: np.ndarray, title: str, *, at_zero: bool) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Wedge

    scale = np.abs(v).max()
    v = v / scale
    n = len(v)
    colors = plt.get_cmap("viridis")(np.linspace(0.05, 0.85, n))
    ang = np.angle(v)
    # the smallest arc containing all arguments, and its bisector
    srt = np.sort(np.mod(ang, 2 * PI))
    gaps = np.diff(np.concatenate([srt, srt[:1] + 2 * PI]))
    g = int(np.argmax(gaps))
    start = srt[(g + 1) % n]
    arc = 2 * PI - gaps[g]
    phi = start + arc / 2
    lim = 1.2 * max(1.0, np.abs(np.cumsum(v)).max())
    if not at_zero:
        # the open half-plane {Re(e^{-i phi} w) > 0}, drawn as a big polygon
        d, nrm = np.exp(1j * phi), 1j * np.exp(1j * phi)
        big = 10 * lim
        corners = [big * nrm, big * nrm + big * d, -big * nrm + big * d, -big * nrm]
        ax.add_patch(Polygon([(c.real, c.imag) for c in corners], closed=True, color=ga.GREEN,
                             alpha=0.10, lw=0, zorder=0))
        ax.plot([-big * nrm.real, big * nrm.real], [-big * nrm.imag, big * nrm.imag], color=ga.GREEN,
                ls="--", lw=1.3, zorder=1)
    ax.add_patch(Wedge((0, 0), 0.3, np.degrees(start), np.degrees(start + arc),
                       color=ga.RED if at_zero else ga.GREEN, alpha=0.3, lw=0, zorder=1))
    for k in range(n):
        ax.annotate("", xy=(v[k].real, v[k].imag), xytext=(0, 0),
                    arrowprops=dict(arrowstyle="-|>", color=colors[k], lw=2.2, shrinkA=0, shrinkB=0,
                                    mutation_scale=14), zorder=3)
        ax.text(1.1 * v[k].real, 1.1 * v[k].imag, f"V{k + 1}", color=colors[k], fontsize=9,
                ha="center", va="center", zorder=5)
    _chain(ax, v, colors, lw=1.1, alpha=0.55)
    f = v.sum()
    if at_zero:
        ax.plot([0], [0], "o", ms=9, mfc="none", mec=ga.RED, mew=2, zorder=6)
        ax.text(0.03, 0.03, f"arguments span an arc of {arc / PI:.2f}π ≥ π (red wedge):\n"
                f"no half-plane holds them; the chain V1+…+V{n}\ncloses, F(t*) = 0  (|F|/Σ|Vk| = "
                f"{abs(f) / np.abs(v).sum():.0e})", transform=ax.transAxes, fontsize=8.5,
                va="bottom", bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.8"))
    else:
        ax.annotate("", xy=(f.real, f.imag), xytext=(0, 0),
                    arrowprops=dict(arrowstyle="-|>", color=ga.BLACK, lw=3.0, shrinkA=0, shrinkB=0,
                                    mutation_scale=18), zorder=4)
        ax.text(f.real, f.imag, "  F(t)", fontsize=10, fontweight="bold", va="bottom", zorder=6)
        ax.text(0.03, 0.03, f"arguments span an arc of {arc / PI:.2f}π < π (green wedge):\n"
                "all Vk lie in the open half-plane (shaded),\n"
                "here Re > 0 (common rotation removed);\n"
                f"|F| ≥ cos({arc / PI:.2f}π/2)·Σ|Vk| > 0", transform=ax.transAxes, fontsize=8.5, va="bottom",
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.8"))
    ax.plot([0], [0], "o", color=ga.BLACK, ms=3.5, zorder=6)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title,
           xlabel="Re  (units of max |Vₖ|)", ylabel="Im  (units of max |Vₖ|)")
    ax.axhline(0, color="0.75", lw=0.7, zorder=0)
    ax.axvline(0, color="0.75", lw=0.7, zorder=0)
    ax.grid(False)


def _plot_fig4(results: dict):
    import matplotlib.pyplot as plt

    f4 = results["fig4"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.9), layout="constrained")
    _vector_panel(axes[0], f4["v_in"],
                  f"(a) inside the strip: Δₐ|Im t| = {f4['s_in_im'] / PI:.2f}π < π,  F ≠ 0", at_zero=False)
    _vector_panel(axes[1], f4["v_star"],
                  f"(b) at its nearest ghost t*: Δₐ|Im t*| = {abs(f4['s_star_im']) / PI:.2f}π ≥ π", at_zero=True)

    ax = axes[2]
    st, out = results["strip"], results["outside"]
    ax.scatter(st["u"], st["norm_abs_f"], s=2, color=ga.GREEN, alpha=0.25, lw=0, rasterized=True,
               label="random t inside the strip")
    ax.scatter(out["u"], out["norm_abs_f"], s=2, color=ga.ORANGE, alpha=0.25, lw=0, rasterized=True,
               label="random t beyond it")
    u = np.linspace(0, 1, 200)
    ax.plot(u, np.cos(PI * u / 2), color=ga.BLACK, lw=2,
            label="Lemma 4.5 bound cos(Δₐ|Im t|/2)")
    arc_u = np.abs(results["nearest"]["im"]) / PI
    shown = arc_u <= 2
    ax.plot(arc_u[shown], np.zeros(int(shown.sum())), "x", color=ga.RED, ms=6, mew=1.5,
            clip_on=False, zorder=5,
            label=f"nearest zeros, F = 0 ({int((~shown).sum())} more beyond 2π)")
    ax.axvline(1.0, color="0.3", ls="--", lw=1.1)
    ax.axvspan(0, 1, color=ga.GREEN, alpha=0.06, lw=0)
    ax.set_box_aspect(1)
    ax.set(xlim=(0, 2), ylim=(0, 1.02), xlabel="Δₐ|Im t| / π   (spread of the arguments of the Vₖ)",
           ylabel="|F(t)| / Σₖ |Vₖ(t)|",
           title="(c) no point of the strip reaches F = 0")
    leg = ax.legend(loc="upper right", fontsize=8.5, frameon=True, framealpha=0.92)
    for h in leg.legend_handles[:2]:
        h.set_sizes([25])
        h.set_alpha(0.9)
    fig.suptitle(r"Figure 4 / Lemma 4.5: for $\Delta_a|\mathrm{Im}\,t| < \pi$ the vectors "
                 r"$V_k = w_k e^{a_k t}$ lie in an open half-plane, so $F(t) = \Sigma_k V_k \neq 0$",
                 fontsize=12.5)
    return fig


def _plot_fig5(results: dict):
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    fig, axes = plt.subplots(1, 2, figsize=(14.5, 6.4), layout="constrained",
                             gridspec_kw=dict(width_ratios=[1.45, 1]))
    ax = axes[0]
    w = 5.5 * PI
    hmax = 4.2 * PI
    ax.axhspan(-PI, PI, color=ga.RED, alpha=0.12, lw=0, zorder=0)
    ax.axhline(PI, color=ga.RED, lw=1.0, zorder=1)
    ax.axhline(-PI, color=ga.RED, lw=1.0, zorder=1)
    ax.add_patch(Circle((0, 0), PI, facecolor="none", edgecolor=ga.BLACK, lw=1.5, ls="--", zorder=2,
                        label="disk |t| < ρₐ = π/Δₐ"))
    lat = results["lattice"]
    ax.plot(lat["re"], lat["im"], "+", color="0.45", ms=6, mew=1.2, zorder=2,
            label=f"all zeros of {len(lat['nearest_rel_diff'])} integer-slope instances")
    near, ncls = results["nearest"], results["n_classes"]
    cls = ncls[near["instance"]]
    binary = cls == 2
    sc = ax.scatter(near["re"][~binary], near["im"][~binary], c=cls[~binary], cmap="viridis",
                    vmin=3, vmax=ncls.max(), s=16, zorder=3, edgecolors="none",
                    label="nearest zeros, n ≥ 3 classes")
    ax.scatter(near["re"][binary], near["im"][binary], marker="D", s=20, facecolors="none",
               edgecolors=ga.RED, lw=1.1, zorder=4, label="nearest zeros, binary (on the edge)")
    f4 = results["fig4"]
    s_star = complex(f4["s_star_re"], f4["s_star_im"])
    ax.add_patch(Circle((0, 0), abs(s_star), facecolor="none", edgecolor=ga.BLUE, lw=1.6, zorder=4,
                        label=f"|t| = ρ* of one instance (ρ*/ρₐ = {abs(s_star) / PI:.2f})"))
    ax.plot([s_star.real, s_star.real], [s_star.imag, -s_star.imag], "*", color=ga.BLUE, ms=13,
            mec="white", zorder=5)
    ax.plot([0], [0], "o", color=ga.BLACK, ms=4, zorder=5)
    n_off = int(np.sum((np.abs(near["re"]) > w) | (np.abs(near["im"]) > hmax)))
    ax.text(0.99, 0.5, "zero-free strip |Im t| < π/Δₐ\n(Theorem 4.6)", transform=ax.transAxes,
            ha="right", va="center", color=ga.RED, fontsize=9.5, fontweight="bold",
            bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.7), zorder=6)
    ax.set_yticks([-4 * PI, -3 * PI, -2 * PI, -PI, 0, PI, 2 * PI, 3 * PI, 4 * PI],
                  ["−4π", "−3π", "−2π", "−π", "0", "π", "2π", "3π", "4π"])
    ax.set_xticks(np.arange(-4, 5, 2) * PI, ["−4π", "−2π", "0", "2π", "4π"])
    ax.set(xlim=(-w, w), ylim=(-hmax, hmax), aspect="equal", xlabel="Re(Δₐ t)", ylabel="Im(Δₐ t)",
           title=f"(a) zeros of F in the scale-free plane s = Δₐ t ({n_off} nearest zeros beyond the frame)")
    ax.grid(False)
    ax.axhline(0, color="0.75", lw=0.6, zorder=0)
    ax.axvline(0, color="0.75", lw=0.6, zorder=0)
    cb = fig.colorbar(sc, ax=ax, shrink=0.7, pad=0.01)
    cb.set_label("number of classes n")
    ax.legend(loc="upper left", fontsize=8, frameon=True, framealpha=0.92, ncol=1)

    ax = axes[1]
    rho = np.sort(results["rho_star_over_rho_a"])
    im = np.sort(_all_im_over_pi(results))
    ax.step(rho, np.arange(1, rho.size + 1) / rho.size, where="post", color=ga.BLUE, lw=2,
            label=f"ρ*/ρₐ = |t*|Δₐ/π  ({rho.size} random instances)")
    ax.step(im, np.arange(1, im.size + 1) / im.size, where="post", color=ga.RED, lw=2,
            label=f"Δₐ|Im t|/π  (all {im.size} zeros found)")
    ax.axvspan(0.3, 1.0, color=ga.RED, alpha=0.12, lw=0)
    ax.axvline(1.0, color=ga.BLACK, ls="--", lw=1.2)
    ax.text(0.55, 0.5, "forbidden by\nTheorem 4.6:\nρ* < ρₐ, or a\nzero inside\nthe strip", ha="center",
            va="center", color=ga.RED, fontsize=9)
    ax.set(xscale="log", xlim=(0.3, max(20.0, rho.max() * 1.2)), ylim=(0, 1.02),
           xlabel="ratio to the bound (log scale; 1 = Theorem 4.6 tight)",
           ylabel="fraction of instances / zeros  (ECDF)",
           title=f"(b) none below 1: min ρ*/ρₐ = {rho.min():.4f}, min Δₐ|Im t|/π = {im.min():.6f}")
    ax.legend(loc="lower right", fontsize=8.5, frameon=True, framealpha=0.92)
    fig.suptitle(r"Figure 5 / Theorem 4.6: every ghost lies outside the strip "
                 r"$|\mathrm{Im}\,t| < \pi/\Delta_a$, so $\rho^* \geq \rho_a = \pi/\Delta_a$",
                 fontsize=12.5)
    return fig


def plot(results: dict):
    return {"fig4": _plot_fig4(results), "fig5": _plot_fig5(results)}


def table(results: dict) -> str:
    rho = results["rho_star_over_rho_a"]
    im = _all_im_over_pi(results)
    q = np.quantile(rho, [0.0, 0.25, 0.5, 0.75, 1.0])
    return "\n".join([
        "| quantity | value |", "|---|---|",
        f"| random instances (n = 2..11 classes) | {rho.size} |",
        f"| zeros checked (nearest of every instance + every zero of the integer-slope instances) | {im.size} |",
        f"| min Delta_a \\|Im t\\| / pi over all zeros (Theorem 4.6: >= 1) | {im.min():.9f} |",
        f"| rho*/rho_a: min, quartiles, max | {', '.join(f'{x:.4f}' for x in q)} |",
        f"| Lemma 4.5: min \\|F\\| / (cos(Delta_a\\|Im t\\|/2) sum \\|V_k\\|) in the strip (>= 1) | {results['strip']['bound_ratio'].min():.6f} |",
        f"| smallest arc holding the arguments of V_k at a zero (>= pi) | {results['zero_arc_over_pi'].min():.9f} pi |",
        f"| max residual \\|F\\|/sum\\|V_k\\| of the zeros | {max(results['zero_residual'].max(), results['lattice']['residual'].max()):.1e} |",
    ])
