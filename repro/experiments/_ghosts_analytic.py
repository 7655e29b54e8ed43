"""Shared pieces of the analytic "ghosts of softmax" figures (Figs 2, 3, 4/5, 13).

Not an experiment (the leading underscore keeps it out of the registry).  It holds the few
computations and drawing helpers that :mod:`ghosts_fig2` and :mod:`ghosts_fig3` share, so the two
Taylor-convergence figures teach with one visual language:

* green = inside the radius of convergence (the Taylor series converges),
  red = outside (it diverges), a cross = a complex singularity (a "ghost"), a dashed circle = the
  disk of convergence ``|x| < R`` in the complex plane;
* panel (c) of both figures shows the truncation error ``|T_n(x) - f(x)|`` against the order ``n``
  at ``x/R = 0.5, 0.9, 1.1, 1.5``; panel (d) the Cauchy-Hadamard root test ``|c_n|^{-1/n}``.

The Taylor coefficients come from :func:`ghosts.softmax_radius.taylor_coefficients` (mpmath) and
the radius estimates from the estimators of :mod:`ghosts.softmax_radius`; nothing is re-derived.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

#: Okabe-Ito colours: converge / diverge regions, singularities, the exact function
GREEN, RED, BLUE, ORANGE, PURPLE, SKY, BLACK = ("#009E73", "#D55E00", "#0072B2", "#E69F00",
                                                "#CC79A7", "#56B4E9", "#000000")
ORDER_COLORS = (BLUE, ORANGE, PURPLE, SKY)
#: probes x/R of the error-vs-order panel: two inside the disk, two outside
PROBES = (0.5, 0.9, 1.1, 1.5)
PROBE_COLORS = ("#1b7837", "#7fbf7b", "#f4a582", "#b2182b")


def taylor_data(f_mp: Callable, f_np: Callable, radius: float, order_max: int, *,
                orders: Sequence[int], x: np.ndarray, err_order_max: int,
                probes: Sequence[float] = PROBES, power: float = 0.0,
                zero_below: float = 0.0) -> dict:
    """Everything a Taylor-convergence figure shows, for ``f`` analytic at 0 with radius ``radius``.

    Args:
        f_mp: ``f`` for mpmath (:func:`ghosts.softmax_radius.taylor_coefficients`).
        f_np: ``f`` for float64 numpy arrays (the exact curve and the truncation errors).
        radius: the exact radius (from the singularities), used only to place the probes.
        order_max: number of Taylor coefficients ``c_0..c_order_max`` computed.
        orders: the polynomial orders drawn over ``x``.
        x: the plotting grid (positive).
        err_order_max: largest order in the error-vs-order table.
        probes: the points ``x = probe * radius`` of that table.
        power: algebraic prefactor of the coefficients for the envelope fit (0: poles).
        zero_below: coefficients with ``|c_n|`` below this are set to exactly 0 (the rounding
            noise of coefficients that vanish by symmetry, e.g. the sigmoid's even terms).

    Returns a dict of plain data: coefficients, the partial sums ``T_n(x)`` on the grid, the
    truncation-error table, the root-test sequence and three radius estimates (envelope fit,
    plain root test on the last half, the last coefficient ratio).
    """
    from ghosts import softmax_radius as sr

    c_mp = [v if abs(v) >= zero_below else 0 * v for v in sr.taylor_coefficients(f_mp, order_max)]
    c = np.array([float(v) for v in c_mp])
    partial = np.cumsum(c[:, None] * x[None, :] ** np.arange(order_max + 1)[:, None], axis=0)
    probes_x = np.asarray(probes, dtype=np.float64) * radius
    n_err = np.arange(err_order_max + 1)
    powers = probes_x[None, :] ** n_err[:, None]
    err = np.abs(np.cumsum(c[: err_order_max + 1, None] * powers, axis=0) - f_np(probes_x)[None, :])
    n = np.arange(1, order_max + 1)
    with np.errstate(divide="ignore"):
        root_seq = np.where(c[1:] != 0, np.abs(c[1:]) ** (-1.0 / n), np.nan)
    nz = np.flatnonzero(c)
    last, prev = nz[-1], nz[-2]
    ratio = abs(c[prev] / c[last]) ** (1.0 / (last - prev))
    return {
        "x": x, "f": f_np(x), "orders": np.asarray(orders), "T": partial[list(orders)],
        "coeffs": c, "n": n, "root_sequence": root_seq,
        "probes": np.asarray(probes, dtype=np.float64), "probe_x": probes_x,
        "err_orders": n_err, "errors": err.T,
        "radius_envelope": sr.radius_envelope_fit(c_mp, power=power),
        "radius_root_test": sr.radius_root_test(c_mp),
        "radius_ratio": float(ratio),
    }


def error_trend(errors: np.ndarray, probes: np.ndarray, tail: int = 10) -> dict:
    """Does the truncation error shrink inside the disk and grow outside?

    Uses the last ``tail`` nonzero-step orders: geometric rate ``(e_N/e_{N-tail})^{1/tail}``
    per order, which tends to ``x/R`` for a simple pole (and to ``(x/R)`` per order for the
    sigmoid's odd terms).  Returns the per-probe rates and whether they sit on the right side of 1.
    """
    rates = []
    for e in errors:
        e = e[e > 0]
        rates.append(float((e[-1] / e[-1 - tail]) ** (1.0 / tail)))
    rates = np.asarray(rates)
    inside = probes < 1
    ok = bool(np.all(rates[inside] < 1) and np.all(rates[~inside] > 1))
    return {"rates": rates, "ok": ok}


# --------------------------------------------------------------------------------------------
# drawing helpers
# --------------------------------------------------------------------------------------------


def shade_convergence(ax, radius: float, xmin: float, xmax: float, *,
                      label_y: float | tuple[float, float] | None = None) -> None:
    """Green band ``x < R`` ("converges"), red band ``x > R`` ("diverges"), dashed line at ``R``.

    ``label_y``: height (axes fraction, top of the text) of the two labels, or one per label.
    """
    ax.axvspan(xmin, radius, color=GREEN, alpha=0.09, lw=0)
    ax.axvspan(radius, xmax, color=RED, alpha=0.09, lw=0)
    ax.axvline(radius, color="0.25", ls="--", lw=1.1)
    if label_y is not None:
        y_left, y_right = (label_y, label_y) if np.isscalar(label_y) else label_y
        tr = ax.get_xaxis_transform()
        ax.text(math.sqrt(xmin * radius), y_left, "Taylor series\nconverges", color=GREEN,
                ha="center", va="top", fontsize=9, fontweight="bold", transform=tr)
        ax.text(math.sqrt(radius * xmax), y_right, "Taylor series\ndiverges", color=RED,
                ha="center", va="top", fontsize=9, fontweight="bold", transform=tr)


def plot_signed_abs(ax, x: np.ndarray, y: np.ndarray, color: str, label: str, **kw) -> None:
    """``|y|`` on a log axis: solid where ``y > 0``, dashed where ``y < 0``."""
    pos = np.where(y > 0, np.abs(y), np.nan)
    neg = np.where(y < 0, np.abs(y), np.nan)
    ax.plot(x, pos, color=color, label=label, **kw)
    ax.plot(x, neg, color=color, ls=(0, (3, 1.6)), **kw)


def complex_plane_panel(ax, radius: float, singularities: Sequence[complex], *, xlim, ylim,
                        sing_label: str, note: str | None = None, unit: str = "x",
                        note_loc: str = "lower right", legend_loc: str = "upper left",
                        outside: bool = False) -> None:
    """The disk of convergence about 0, the singularities (crosses) and the real axis coloured
    green inside the disk and red outside."""
    from matplotlib.patches import Circle

    ax.add_patch(Circle((0, 0), radius, facecolor=GREEN, alpha=0.12, lw=0, zorder=1))
    ax.add_patch(Circle((0, 0), radius, facecolor="none", edgecolor=GREEN, lw=1.6, ls="--", zorder=1,
                        label=f"disk of convergence |{unit}| < R"))
    ax.axhline(0, color="0.6", lw=0.8, zorder=0)
    ax.axvline(0, color="0.6", lw=0.8, zorder=0)
    ax.plot([0, radius], [0, 0], color=GREEN, lw=4, solid_capstyle="butt", zorder=2)
    ax.plot([radius, xlim[1]], [0, 0], color=RED, lw=4, solid_capstyle="butt", zorder=2)
    s = np.asarray(singularities)
    ax.plot(s.real, s.imag, "x", color=RED, ms=11, mew=2.6, zorder=4, label=sing_label)
    ax.plot([0], [0], "o", color=BLACK, ms=5, zorder=5, label="expansion point 0")
    mod = np.abs(s)
    near = s[mod <= mod.min() * (1 + 1e-9)]
    nearest = near[np.argmax(near.imag)]
    ax.annotate("", xy=(nearest.real, nearest.imag), xytext=(0, 0),
                arrowprops=dict(arrowstyle="<->", color="0.2", lw=1.2, shrinkA=3, shrinkB=7), zorder=3)
    vertical = abs(nearest.imag) > abs(nearest.real)
    ax.text(nearest.real / 2 - (0.1 * radius if vertical else 0),
            nearest.imag / 2 + (0 if vertical else 0.08 * radius), f"R = {radius:.4g}",
            ha="right" if vertical else "center", va="center" if vertical else "bottom",
            fontsize=9.5, zorder=6)
    ax.set(xlim=xlim, ylim=ylim, aspect="equal", xlabel=f"Re {unit}", ylabel=f"Im {unit}")
    ax.grid(False)
    if outside:  # legend and note to the right of a tall, narrow (equal-aspect) panel
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8.5, frameon=True,
                  framealpha=0.9)
        if note:
            ax.text(1.04, 0.0, note, transform=ax.transAxes, fontsize=8.5, va="bottom", ha="left")
        return
    if note:
        right = note_loc.endswith("right")
        ax.text(0.98 if right else 0.02, 0.02, note, transform=ax.transAxes, fontsize=8.5,
                va="bottom", ha="right" if right else "left", multialignment="left",
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.8", alpha=0.9))
    ax.legend(loc=legend_loc, fontsize=8.5, frameon=True, framealpha=0.9)


def error_panel(ax, data: dict, radius_label: str, *, odd_only: bool = False) -> None:
    """Truncation error ``|T_n(x) - f(x)|`` vs order ``n`` at ``x = probe * R``."""
    n = data["err_orders"]
    keep = (n % 2 == 1) if odd_only else np.ones_like(n, dtype=bool)
    for probe, e, col in zip(data["probes"], data["errors"], PROBE_COLORS):
        where = "inside" if probe < 1 else "outside"
        ax.semilogy(n[keep], e[keep], "o-", ms=2.8, lw=1.4, color=col,
                    label=f"x = {probe:g}{radius_label} ({where})")
    ax.set(xlabel="Taylor order n" + (" (odd n; even terms vanish)" if odd_only else ""),
           ylabel="truncation error |Tₙ(x) − f(x)|")
    ax.legend(loc="lower left", fontsize=8.5, frameon=True, framealpha=0.9)


def root_test_panel(ax, data: dict, radius: float, radius_label: str) -> None:
    """Cauchy-Hadamard: ``|c_n|^{-1/n}`` tends to ``R``; the envelope-fit estimate beside it."""
    n, seq = data["n"], data["root_sequence"]
    ok = np.isfinite(seq)
    ax.plot(n[ok], seq[ok], "o", ms=3, color=BLUE, label=r"root test $|c_n|^{-1/n}$")
    ax.axhline(radius, color=GREEN, lw=1.6, ls="--", label=f"exact R = {radius_label}")
    ax.axhline(data["radius_envelope"], color=BLACK, lw=0.9, ls=":",
               label=f"envelope fit of log|cₙ|: {data['radius_envelope']:.6f}")
    ax.set(xlabel="coefficient index n", ylabel=r"$|c_n|^{-1/n}$")
    lo, hi = np.nanmin(seq[ok]), np.nanmax(seq[ok])
    pad = 0.08 * (hi - lo + 1e-9)
    ax.set_ylim(min(lo, radius) - pad, max(hi, radius) + pad)
    ax.legend(loc="best", fontsize=8.5)
