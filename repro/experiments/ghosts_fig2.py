r"""Figure 2 of "Ghosts of softmax": a pole off the real axis caps the Taylor series on it.

The paper's worked example of Cauchy-Hadamard (Theorem 2.1, §2 of arXiv 2603.13552): ``f(x) = 1/(x+a)``
with ``a = 2`` is smooth and positive for every ``x > 0``, yet its Taylor polynomials at 0,

    T_n(x) = sum_{k<=n} (-1)^k x^k / a^{k+1}   =   (1 - (-x/a)^{n+1}) / (x + a),

converge only for ``|x| < 2``: the pole at ``x = -a`` is at distance 2 from the expansion point.
The paper plots ``f`` and ``T_1, T_5, T_15`` on log-log axes over ``x in [1e-2, 1e2]``.

What is computed (pure mathematics; **the ci, cpu and paper configurations are identical**, the
run takes well under a second):

* the coefficients ``c_0..c_60`` of ``f`` at 0 with :func:`ghosts.softmax_radius.taylor_coefficients`
  (mpmath, 50 digits; they equal ``(-1)^k/a^{k+1}`` to the last digit);
* the radius *measured from the coefficients alone* with the estimators of
  :mod:`ghosts.softmax_radius`: the envelope fit of ``log|c_n|`` (``power=0``, the right prefactor
  for a simple pole; this is the claim's value), the plain root test ``min |c_n|^{-1/n}`` over the
  last half (biased high by ``a^{1/n}``) and the last coefficient ratio;
* the truncation error ``|T_n(x) - f(x)|`` for ``n <= 40`` at ``x/R = 0.5, 0.9, 1.1, 1.5``: its
  geometric rate per order is ``x/R``, below 1 inside the disk and above 1 outside.

Figure: (a) the paper's panel; ``|T_n|`` is drawn because every odd-order polynomial changes sign
exactly at ``x = a`` (``T_n = (1 - (x/a)^{n+1})/(x+a)`` for odd ``n``), dashed where ``T_n < 0``;
(b) the complex plane: the pole, the disk of convergence, the real axis green inside / red outside;
(c) truncation error vs order; (d) the root test converging to ``R = 2``.

Claim ``ghosts.fig2_pole_radius``: the value is the envelope-fit radius; the evidence holds the
error rate per order at the probes inside and outside the disk. Its registered rule in
``paper/claims.toml`` (the paper value within the tolerance, and every rate below 1 inside the disk
and above 1 outside it) decides the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repro.claims import claim, claims_of
from repro.context import RunContext

from . import _ghosts_analytic as ga

ID = "ghosts_fig2"
TITLE = "Taylor polynomials of 1/(x+2) converge only inside the radius set by the pole at x = -2"
CLAIMS = claims_of(ID)


@dataclass(frozen=True)
class Config:
    """The paper's figure (a = 2, orders 1, 5, 15, x in [1e-2, 1e2]); identical at every scale."""

    a: float = 2.0
    orders: tuple[int, ...] = (1, 5, 15)
    x_range: tuple[float, float] = (1e-2, 1e2)
    n_x: int = 801
    n_coeffs: int = 60          # Taylor coefficients c_0..c_60 for the radius estimate
    err_order_max: int = 40     # orders of the error-vs-order panel


CONFIGS = {"ci": Config(), "cpu": Config(), "paper": Config()}


def run(cfg: Config, ctx: RunContext) -> dict:
    a = float(cfg.a)
    x = np.logspace(np.log10(cfg.x_range[0]), np.log10(cfg.x_range[1]), cfg.n_x)
    data = ga.taylor_data(lambda t: 1 / (t + a), lambda t: 1 / (t + a), a, cfg.n_coeffs,
                          orders=cfg.orders, x=x, err_order_max=cfg.err_order_max, power=0.0)
    k = np.arange(cfg.n_coeffs + 1)
    exact = (-1.0) ** k / a ** (k + 1)
    data["coeff_max_rel_error"] = float(np.max(np.abs(data["coeffs"] - exact) / np.abs(exact)))
    data["a"] = a
    data["pole"] = -a
    # odd orders vanish exactly at x = a (T_n(a) = 0): evaluate there
    data["T_at_a"] = np.array([np.sum(data["coeffs"][: n + 1] * a ** np.arange(n + 1))
                               for n in cfg.orders])
    data["trend"] = ga.error_trend(data["errors"], data["probes"])
    return data


@claim("ghosts.fig2_pole_radius")
def _fig2_pole_radius(results: dict) -> dict:
    probes = np.asarray(results["probes"], dtype=np.float64)
    rates = np.asarray(results["trend"]["rates"], dtype=np.float64)
    inside = probes < 1
    rate_text = ", ".join(f"x/R={p:g}: {r:.3f}" for p, r in zip(probes, rates))
    detail = (f"envelope fit of log|c_n| (n <= {len(results['coeffs']) - 1}); root test "
              f"{results['radius_root_test']:.4f}, coefficient ratio {results['radius_ratio']:.6f}; "
              f"error rate per order {rate_text}")
    return {"value": float(results["radius_envelope"]), "detail": detail,
            "evidence": {"radius_root_test": float(results["radius_root_test"]),
                         "radius_ratio": float(results["radius_ratio"]),
                         "probes_inside": [float(p) for p in probes[inside]],
                         "probes_outside": [float(p) for p in probes[~inside]],
                         "rates_inside": [float(r) for r in rates[inside]],
                         "rates_outside": [float(r) for r in rates[~inside]]}}


def plot(results: dict):
    import matplotlib.pyplot as plt

    a = results["a"]
    x, f = results["x"], results["f"]
    fig, axes = plt.subplots(2, 2, figsize=(11.5, 8.6), layout="constrained")
    ax = axes[0, 0]
    ga.shade_convergence(ax, a, x[0], x[-1], label_y=0.97)
    ax.loglog(x, f, color=ga.BLACK, lw=2.4, label=f"f(x) = 1/(x + {a:g})", zorder=5)
    for n, T, col in zip(results["orders"], results["T"], ga.ORDER_COLORS):
        ga.plot_signed_abs(ax, x, T, col, f"Taylor order {n}", lw=1.7)
    ax.plot([], [], color="0.4", ls=(0, (3, 1.6)), label="dashed: Tₙ(x) < 0")
    ax.set(ylim=(3e-3, 3e2), xlim=(x[0], x[-1]), xlabel="x", ylabel="f(x)  and  |Tₙ(x)|",
           title="(a) the series stops at x = 2, though f is smooth there")
    ax.text(a * 1.08, 4.5e-3, f"R = {a:g}", fontsize=9.5, color="0.2")
    ax.text(a * 1.12, 1.3e-2, "every odd Tₙ\nvanishes at x = 2", fontsize=8, color="0.3")
    ax.legend(loc="lower left", fontsize=8.5, frameon=True, framealpha=0.9)

    ga.complex_plane_panel(
        axes[0, 1], a, [complex(results["pole"])], xlim=(-3.2, 4.8), ylim=(-2.9, 2.9),
        sing_label=f"pole at x = −{a:g}",
        note="f is analytic on the whole positive axis;\nthe series at 0 still dies at x = 2,\n"
             "the distance to the pole at −2.", legend_loc="upper right")
    axes[0, 1].set_title("(b) complex plane: the disk of convergence")

    ga.error_panel(axes[1, 0], results, "R")
    axes[1, 0].set_title("(c) truncation error: geometric decay inside, blow-up outside")

    ga.root_test_panel(axes[1, 1], results, a, f"{a:g}")
    axes[1, 1].set_title("(d) radius read off the coefficients (Cauchy–Hadamard)")
    fig.suptitle("Figure 2: Taylor polynomials of 1/(x + 2) at 0 converge only for |x| < 2",
                 fontsize=12.5)
    return fig


def table(results: dict) -> str:
    lines = ["| estimator (from c_0..c_N) | radius | exact |", "|---|---|---|"]
    for name, key in (("envelope fit of log|c_n|", "radius_envelope"),
                      ("root test min |c_n|^(-1/n), n in [N/2, N]", "radius_root_test"),
                      ("last coefficient ratio |c_{N-1}/c_N|", "radius_ratio")):
        lines.append(f"| {name} | {results[key]:.6f} | {results['a']:g} |")
    lines += ["", "| x / R | error rate per Taylor order | expected |", "|---|---|---|"]
    for p, r in zip(results["probes"], results["trend"]["rates"]):
        lines.append(f"| {p:g} | {r:.4f} | {p:g} |")
    return "\n".join(lines)
