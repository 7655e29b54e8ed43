r"""Figure 3 of "Ghosts of softmax": the sigmoid's Taylor series at 0 stops at x = pi.

``sigma(x) = 1/(1 + e^{-x})`` is smooth and bounded on the whole real line, but ``1 + e^{-x}``
vanishes at ``x = i pi (2k+1)``: the sigmoid has poles at ``+-i pi, +-3 i pi, ...`` and its Taylor
series at 0 has radius ``pi`` (Cauchy-Hadamard, Theorem 2.1 of arXiv 2603.13552).  The paper
plots ``sigma`` on a log-x axis over ``[1e-2, 1e2]``, marks ``x = pi`` where ``sigma(pi) = 0.96``
("96% confident"), and colours ``|x| < pi`` green (the series converges) and beyond red.  This is
the binary-logit picture behind the whole paper: a two-class softmax is a sigmoid of the margin,
and the margin's ghosts sit at distance ``pi`` when the logits are tied.

What is computed (pure mathematics; **the ci, cpu and paper configurations are identical**, the
run takes well under a second):

* ``sigma`` on the paper's grid and ``sigma(pi) = 0.958576`` (the claim's value);
* the Taylor coefficients ``c_0..c_61`` at 0 with :func:`ghosts.softmax_radius.taylor_coefficients`
  (mpmath; the even ones beyond ``c_0`` vanish, ``sigma - 1/2`` is odd) and the Taylor polynomials
  of orders 5, 15, 45 on the grid (an added overlay: the paper draws ``sigma`` only);
* the radius measured from the coefficients alone: envelope fit of ``log|c_n|`` (``power=0``: the
  singularities are simple poles), plain root test, last nonzero coefficient ratio;
* the truncation error ``|T_n(x) - sigma(x)|`` for ``n <= 45`` at ``x/pi = 0.5, 0.9, 1.1, 1.5``.

Figure: (a) the paper's panel with the Taylor polynomials overlaid; (b) the complex plane with the
poles, the disk ``|t| < pi`` and the pole-free strip ``|Im t| < pi`` (Theorem 4.6 for
``1 + e^{-t}``); (c) truncation error vs
order (odd orders); (d) the root test converging to ``pi``.

Claim ``ghosts.fig3_sigmoid_radius``: the value is ``sigma(pi)``; the evidence holds the relative
error of the radius measured from the coefficients against ``pi`` and the error rate per order at
the probes inside and outside the disk. Its registered rule in ``paper/claims.toml`` (``sigma(pi)``
within the tolerance of the paper value, the radius within the registered relative accuracy of
``pi`` -- check C3 of paper/ghosts_notes.md §2.3 -- and every rate below 1 inside, above 1 outside) decides the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from repro.claims import claim, claims_of, get_claim
from repro.context import RunContext

from . import _ghosts_analytic as ga

ID = "ghosts_fig3"
TITLE = "The sigmoid's Taylor series at 0 converges only for |x| < pi (poles at +-i pi)"
CLAIMS = claims_of(ID)

#: mpmath.taylor at 50 digits leaves ~1e-50 noise where the even coefficients vanish; the true
#: nonzero ones are >= 2/pi^62 ~ 1e-31 for n <= 61, so anything below 1e-40 is set to 0
COEFF_NOISE = 1e-40


@dataclass(frozen=True)
class Config:
    """The paper's figure (x in [1e-2, 1e2], x = pi marked); identical at every scale."""

    x_range: tuple[float, float] = (1e-2, 1e2)
    n_x: int = 801
    orders: tuple[int, ...] = (5, 15, 45)   # Taylor overlays (odd: even terms vanish)
    n_coeffs: int = 61
    err_order_max: int = 45
    n_poles: int = 2                        # pole pairs drawn: +-i pi, +-3 i pi


CONFIGS = {"ci": Config(), "cpu": Config(), "paper": Config()}


def _sigmoid_np(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x)))  # stable for complex and large |x|


def run(cfg: Config, ctx: RunContext) -> dict:
    import mpmath

    x = np.logspace(np.log10(cfg.x_range[0]), np.log10(cfg.x_range[1]), cfg.n_x)
    data = ga.taylor_data(lambda t: 1 / (1 + mpmath.exp(-t)), _sigmoid_np, math.pi, cfg.n_coeffs,
                          orders=cfg.orders, x=x, err_order_max=cfg.err_order_max, power=0.0,
                          zero_below=COEFF_NOISE)
    data["sigma_pi"] = float(_sigmoid_np(math.pi))
    data["poles"] = np.array([s * 1j * math.pi * (2 * k + 1) for k in range(cfg.n_poles)
                              for s in (1, -1)])
    data["trend"] = ga.error_trend(data["errors"], data["probes"])
    return data


@claim("ghosts.fig3_sigmoid_radius")
def _fig3_sigmoid_radius(results: dict) -> dict:
    r_env = float(results["radius_envelope"])
    probes = np.asarray(results["probes"], dtype=np.float64)
    rates = np.asarray(results["trend"]["rates"], dtype=np.float64)
    inside = probes < 1
    rate_text = ", ".join(f"x/pi={p:g}: {r:.3f}" for p, r in zip(probes, rates))
    rel = abs(r_env / math.pi - 1)
    detail = (f"sigma(pi) = {results['sigma_pi']:.6f}; radius from c_0..c_{len(results['coeffs']) - 1}: "
              f"envelope fit {r_env:.6f} (pi = {math.pi:.6f}, rel. error {rel:.1e}), root test "
              f"{results['radius_root_test']:.4f}; error rate per order {rate_text}")
    return {"value": float(results["sigma_pi"]), "detail": detail,
            "evidence": {"radius_envelope": r_env, "radius_rel_error": rel,
                         "radius_root_test": float(results["radius_root_test"]),
                         "probes_inside": [float(p) for p in probes[inside]],
                         "probes_outside": [float(p) for p in probes[~inside]],
                         "rates_inside": [float(r) for r in rates[inside]],
                         "rates_outside": [float(r) for r in rates[~inside]]}}


def plot(results: dict):
    import matplotlib.pyplot as plt

    x, f = results["x"], results["f"]
    pi, s_pi = math.pi, results["sigma_pi"]
    fig, axes = plt.subplots(2, 2, figsize=(11.5, 8.8), layout="constrained")
    ax = axes[0, 0]
    ga.shade_convergence(ax, pi, x[0], x[-1], label_y=(0.97, 0.16))
    for n, T, col in zip(results["orders"], results["T"], ga.ORDER_COLORS):
        ax.semilogx(x, T, color=col, lw=1.5, label=f"Taylor order {n}")
    ax.semilogx(x, f, color=ga.BLACK, lw=2.4, label="σ(x) = 1/(1 + e⁻ˣ)", zorder=5)
    ax.plot([pi], [s_pi], "o", color=ga.RED, ms=8, mec="white", mew=1.2, zorder=6)
    ax.annotate(f"x = π:  σ(π) = {s_pi:.4f}\n({s_pi:.0%} confident, yet the\nseries stops here)",
                xy=(pi, s_pi), xytext=(9.0, 0.70), fontsize=9, ha="left",
                arrowprops=dict(arrowstyle="->", color="0.25", lw=1.1),
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.8"))
    ax.set(ylim=(0.45, 1.05), xlim=(x[0], x[-1]), xlabel="x (logit margin)", ylabel="σ(x)",
           title="(a) sigmoid and its Taylor polynomials at 0")
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 0.12), fontsize=8.5, frameon=True,
              framealpha=0.9)

    ax = axes[0, 1]
    ax.axhspan(-pi, pi, color=ga.BLUE, alpha=0.07, lw=0, zorder=0)
    ax.text(8.7, -0.5 * pi, "pole-free strip\n|Im t| < π", ha="right",
            va="center", fontsize=8.5, color=ga.BLUE)
    ga.complex_plane_panel(
        ax, pi, list(results["poles"]), xlim=(-9, 9), ylim=(-11, 11), unit="t",
        sing_label="poles ±iπ, ±3iπ (e⁻ᵗ = −1)",
        note="σ is smooth on the real line;\nits complex poles set R = π.\n\nblue band: the strip\n"
             "|Im t| < π is pole-free\n(Theorem 4.6 for 1 + e⁻ᵗ).", outside=True)
    ax.set_yticks([-3 * pi, -pi, 0, pi, 3 * pi], ["−3π", "−π", "0", "π", "3π"])
    ax.set_title("(b) complex plane: the ghosts at ±iπ")

    ga.error_panel(axes[1, 0], results, "π", odd_only=True)
    axes[1, 0].set_title("(c) truncation error: geometric decay inside, blow-up outside")

    ga.root_test_panel(axes[1, 1], results, pi, "π")
    axes[1, 1].set_title("(d) radius read off the coefficients (odd n)")
    fig.suptitle("Figure 3: the sigmoid's Taylor series at 0 converges only for |x| < π",
                 fontsize=12.5)
    return fig


def table(results: dict) -> str:
    paper = get_claim("ghosts.fig3_sigmoid_radius").paper_value
    lines = [f"sigma(pi) = {results['sigma_pi']:.6f} (paper: {paper:g})", "",
             "| estimator (from c_0..c_N) | radius | exact |", "|---|---|---|"]
    for name, key in (("envelope fit of log|c_n|", "radius_envelope"),
                      ("root test min |c_n|^(-1/n), n in [N/2, N]", "radius_root_test"),
                      ("last nonzero coefficient ratio", "radius_ratio")):
        lines.append(f"| {name} | {results[key]:.6f} | {math.pi:.6f} |")
    lines += ["", "| x / pi | error rate per Taylor order | expected |", "|---|---|---|"]
    for p, r in zip(results["probes"], results["trend"]["rates"]):
        lines.append(f"| {p:g} | {r:.4f} | {p:g} |")
    return "\n".join(lines)
