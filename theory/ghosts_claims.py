"""Recompute every ``ghosts_theory`` claim of paper/claims.toml (a few seconds).

``measure_theory_claims()`` returns ``{claim_id: {"value": ..., "verdict": ..., "detail": str}}``
with verdict one of ``"reproduced"``, ``"not reproduced"``, ``"refuted"``, ``"corrected"``.
The numbers reuse :mod:`theory.softmax_radius`, :mod:`theory.radius_models` and
:mod:`theory.radius_controller`; each has a matching test in tests/theory (the claim's
``test`` key).  Randomness is seeded explicitly, so the values are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np

from theory import softmax_radius as sr

PI = math.pi
_MEASURES: dict[str, Callable[[], dict[str, Any]]] = {}


def _claim(cid: str):
    def deco(fn):
        _MEASURES[cid] = fn
        return fn

    return deco


def _ok(cond: bool) -> str:
    return "reproduced" if cond else "not reproduced"


def _random_instance(rng):
    n = int(rng.integers(2, 12))
    return rng.normal(size=n) * 10 ** rng.uniform(-1, 1), rng.normal(size=n) * 10 ** rng.uniform(-1, 1)


_REF_ROWS = [((0, 1, -1, 0.5), (0.3, -0.7, 1.2, 0)), ((2, 0, 0, 0, 0), (1, -1, 0.5, 0, -0.25)),
             ((5, -1, 0.3), (-0.5, 2, 0.1))]


@_claim("ghosts.thm21_binary_logpartition_radius")
def _thm21():
    c = sr.logpartition_taylor([0.0, 0.0], [1.0, 0.0], 200, dps=60)
    r = sr.radius_envelope_fit(c)
    return {"value": r, "verdict": _ok(abs(r - PI) < 1e-3),
            "detail": "Taylor radius of log(1+e^t) at 0 from 200 exact coefficients (envelope fit)"}


@_claim("ghosts.binary_radius_about_x0")
def _x0():
    err = max(abs(abs(sr.nearest_zeros([x0, 0.0], [1.0, 0.0])[0]) / math.hypot(x0, PI) - 1)
              for x0 in (0.0, 1.0, -3.0, 7.5))
    return {"value": err, "verdict": _ok(err < 1e-12),
            "detail": "max relative deviation of the nearest zero of 1+e^(x0+t) from sqrt(x0^2+pi^2)"}


@_claim("ghosts.sigmoid_at_pi")
def _sig():
    v = 1 / (1 + math.exp(-PI))
    return {"value": v, "verdict": _ok(abs(v - 0.96) < 0.005), "detail": "sigma(pi)"}


@_claim("ghosts.prop42_radius_from_partition_zeros")
def _prop42():
    dev = max(abs(sr.radius_envelope_fit(sr.logpartition_taylor(z, a, 200, dps=50)) / sr.exact_radius(z, a) - 1)
              for z, a in _REF_ROWS)
    return {"value": dev, "verdict": _ok(dev < 0.005),
            "detail": "max relative gap, Taylor-envelope radius vs min |zero of F|, 3 reference cases"}


@_claim("ghosts.thm43_binary_exact_radius")
def _thm43():
    err = 0.0
    for delta in np.linspace(-20, 20, 5):
        for d in (-30.0, -0.5, 1e-2, 1.0, 7.0):
            err = max(err, abs(sr.exact_radius([delta, 0.0], [d, 0.0]) / sr.binary_radius(delta, d) - 1))
    return {"value": err, "verdict": _ok(err < 1e-12),
            "detail": "max relative deviation, argument-principle zeros vs sqrt(delta^2+pi^2)/|D| (25 cases)"}


@_claim("ghosts.thm43_min_at_zero_margin")
def _thm43min():
    deltas = np.linspace(-5, 5, 1001)
    r = sr.binary_radius(deltas, 2.0)
    return {"value": float(deltas[np.argmin(r)]), "verdict": _ok(deltas[np.argmin(r)] == 0 and abs(r.min() - PI / 2) < 1e-15),
            "detail": "argmin over delta of rho*(delta, D=2); min = pi/D"}


@_claim("ghosts.lemma45_half_plane_obstruction")
def _lemma45():
    rng = np.random.default_rng(3)
    worst = math.inf
    for _ in range(2000):
        n = int(rng.integers(1, 8))
        phi0 = rng.uniform(-PI, PI)
        u = np.exp(1j * (phi0 + rng.uniform(0, PI * (1 - 1e-3), size=n))) * rng.uniform(0.1, 2, size=n)
        s = np.sum((rng.exponential(size=n) + 1e-3) * u)
        worst = min(worst, float((s * np.exp(-1j * (phi0 + PI * (1 - 1e-3) / 2))).real))
    return {"value": worst, "verdict": _ok(worst > 0),
            "detail": "min over 2000 random instances of Re(e^{-i phi} sum c_k u_k) (must be > 0)"}


def _stress():
    rng = np.random.default_rng(20260313)
    ratios, strip = [], []
    for _ in range(300):
        z, a = _random_instance(rng)
        zeros = sr.nearest_zeros(z, a)
        ratios.append(np.abs(zeros).min() / sr.rho_a(a))
        strip.append(np.abs(zeros.imag).min() / sr.rho_a(a))
    return float(min(ratios)), float(min(strip))


_STRESS_CACHE: dict[str, tuple[float, float]] = {}


def _stress_cached():
    if "v" not in _STRESS_CACHE:
        _STRESS_CACHE["v"] = _stress()
    return _STRESS_CACHE["v"]


@_claim("ghosts.thm46_multiclass_lower_bound")
def _thm46():
    ratio, _ = _stress_cached()
    return {"value": ratio, "verdict": _ok(ratio >= 1 - 1e-9),
            "detail": "min rho*/rho_a over 300 random instances, n in [2, 11] (digest: 1.00025)"}


@_claim("ghosts.thm46_zero_free_strip")
def _strip():
    _, s = _stress_cached()
    return {"value": s, "verdict": _ok(s >= 1 - 1e-9),
            "detail": "min |Im t| Delta_a / pi over the nearest zeros of 300 random instances"}


@_claim("ghosts.thm46_bound_tightness")
def _tight():
    r = sr.exact_radius([0.0, math.log(0.01), 0.0], [-1.0, 0.0, 1.0]) / (PI / 2)
    rb = sr.exact_radius([0.0, 0.0], [1.0, 0.0]) / PI
    return {"value": r, "verdict": _ok(abs(rb - 1) < 1e-14 and 1 < r < 1.01),
            "detail": "rho*/rho_a: 1 for binary at delta=0; 1.0032 for 2cosh(t)+0.01 (bound approached as w2->0)"}


def _linear_batch():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(8, 6))
    w, b = rng.normal(size=(4, 6)), rng.normal(size=4)
    vw, vb = rng.normal(size=(4, 6)), rng.normal(size=4)
    nrm = math.sqrt((vw**2).sum() + (vb**2).sum())
    z, a = x @ w.T + b, x @ (vw / nrm).T + vb / nrm
    y = rng.integers(0, 4, size=8)
    return z, a, y


@_claim("ghosts.eq15_batch_chain")
def _eq15():
    z, a, _ = _linear_batch()
    per = sr.exact_radius(z, a, per_sample=True)
    bound = sr.rho_a(a, per_sample=True)
    ok = sr.rho_a(a) <= sr.rho_a(a[:3]) <= bound[:3].min() and bool(np.all(bound <= per))
    return {"value": ok, "verdict": _ok(ok), "detail": "rho_a <= rho_B <= pi/Delta_a(x) <= rho*(x) on a linear model"}


@_claim("ghosts.batch_radius_min_over_samples")
def _batchmin():
    z, a, y = _linear_batch()
    per = sr.exact_radius(z, a, per_sample=True)
    est = sr.radius_envelope_fit(sr.line_loss_taylor(z, a, 200, y=y, dps=50))
    dev = est / per.min() - 1
    return {"value": dev, "verdict": _ok(abs(dev) < 0.01),
            "detail": "relative gap, Taylor radius of the mean CE along v vs min_x rho*(x) (linear model)"}


@_claim("ghosts.eq13_ghost_location")
def _eq13():
    z, a = (2.0, 0.0), (0.7, -0.5)
    true = sr.nearest_zeros(z, a)[1]
    paper = sr.top2_ghost(z, a, 0, paper_sign=True)
    fixed = sr.top2_ghost(z, a, 0)
    dist = abs(paper - true)
    wrong = dist > 1 and abs(fixed - true) < 1e-12 * abs(true) and abs(abs(paper) - abs(true)) < 1e-12
    return {"value": dist, "verdict": "corrected" if wrong else "reproduced",
            "detail": "|Eq.13 point - true zero| for delta=2, D=1.2 (true zero -1.667+2.618i, Eq.13 gives +1.667+2.618i)"}


@_claim("ghosts.eq13_confidence_factor")
def _conf():
    v = sr.binary_radius(10.0, 1.0) / PI
    return {"value": v, "verdict": _ok(abs(v - 3.34) < 0.005), "detail": "sqrt(1+(delta/pi)^2) at delta=10"}


@_claim("ghosts.eq13_top2_multiclass")
def _top2():
    z, a = _REF_ROWS[0]
    rho = sr.exact_radius(z, a)
    ratios = [sr.top2_radius(z, a, y) / rho for y in range(4)]
    refuted = min(ratios) < 1 < max(ratios)
    return {"value": [min(ratios), max(ratios)], "verdict": "refuted" if refuted else "reproduced",
            "detail": "top-2 value / exact rho* over labels y for z=(0,1,-1,0.5), a=(0.3,-0.7,1.2,0): below and above 1"}


@_claim("ghosts.prop52_radius_clip")
def _prop52():
    import torch
    from torch import nn

    from theory.radius_controller import RadiusController

    gen = torch.Generator().manual_seed(6)
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 5)).double()
    x = torch.randn(64, 16, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (64,), generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ctrl = RadiusController(opt, model, 1.0, rho_inputs=x)
    for t in range(20):
        opt.param_groups[0]["lr"] = 1e-3 * (1000 if t >= 5 else 1)

        def closure():
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        ctrl.step(closure)
    r = max(h["r"] for h in ctrl.history)
    return {"value": r, "verdict": _ok(r <= 1 + 1e-12),
            "detail": "max realized r = ||step||/rho_a(step) over 20 Adam steps with a 1000x spike (actual-step controller)"}


@_claim("ghosts.eq18_lr_constraint")
def _eq18():
    delta_a, g = 30.0, 10.0
    eta_max = PI / (delta_a * g)
    r = 0.01 * g * delta_a / PI
    return {"value": eta_max, "verdict": _ok((0.01 < eta_max) == (r < 1)),
            "detail": "eta_max = pi/(Delta_a ||g||) for Delta_a=30, ||g||=10; eta < eta_max <=> r < 1"}


@_claim("ghosts.sec84_worked_example")
def _sec84():
    rhos = [sr.rho_a([0.0, d]) for d in (1.0, 10.0, 30.0)]
    rs = [0.1 * d / PI for d in (1.0, 30.0)]
    ok = np.allclose(rhos, [3.14, 0.314, 0.105], atol=2e-3) and np.allclose(rs, [0.032, 0.955], atol=5e-4)
    return {"value": rhos + rs, "verdict": _ok(ok), "detail": "rho_a for Delta_a=1,10,30; r for tau=0.1 at Delta_a=1,30"}


@_claim("ghosts.temperature_rho_scaling")
def _temp():
    a = np.array([0.4, -1.1, 0.9])
    err = max(abs(sr.rho_a(a / t) / (PI * t / np.ptp(a)) - 1) for t in (0.25, 0.5, 2.0, 8.0))
    exact_vs_scaled = sr.exact_radius([3.0 / 8, 0.0], [1.5 / 8, 0.0]) / (8 * sr.binary_radius(3.0, 1.5))
    return {"value": err, "verdict": _ok(err < 1e-14),
            "detail": f"rho_a(T) = pi T/Delta_a (max rel err); note exact rho*_T != T rho* (ratio {exact_vs_scaled:.3f} at T=8)"}


_PROP_A11 = {}


def _propa11_numbers():
    if not _PROP_A11:
        with mpmath.workdps(30):
            roots = [(-1 + s * mpmath.sqrt(1 + 8j * mpmath.pi * (2 * k + 1))) / 4 for k in range(-3, 3) for s in (1, -1)]
            r_true = float(min(abs(r) for r in roots))
        eps = sr.linearization_epsilon([10.0, 10.0], [0.0, 1.0], 4.0)
        _PROP_A11.update(r_true=r_true, eps=eps, bound=PI * (1 - eps))
    return _PROP_A11


@_claim("ghosts.propA11_linearization_quality")
def _propa11():
    n = _propa11_numbers()
    return {"value": n["r_true"], "verdict": "refuted" if n["r_true"] < n["bound"] else "reproduced",
            "detail": f"z=(10,10), a=(0,1), b=(0,4): R_true={n['r_true']:.4f} but the claim gives >= {n['bound']:.4f} (eps={n['eps']:.1e})"}


@_claim("ghosts.rtrue_ge_rhostar")
def _rtrue():
    n = _propa11_numbers()
    rho_star = sr.exact_radius([10.0, 10.0], [0.0, 1.0])
    return {"value": n["r_true"] / rho_star, "verdict": "refuted" if n["r_true"] < rho_star * (1 - n["eps"]) else "reproduced",
            "detail": "R_true/rho* for the Prop A1.1 counterexample (eps=9e-4): 0.346"}


@_claim("ghosts.sec51_cauchy_estimate")
def _sec51():
    v = float(abs(mpmath.log(1 + mpmath.exp(mpmath.mpc(0, PI * (1 - 1e-12))))))
    return {"value": v, "verdict": "corrected" if v > 25 else "reproduced",
            "detail": "|l(t)| at t = i pi (1 - 1e-12) on |t| = rho_a for binary delta=0 (unbounded: M = inf)"}


@_claim("ghosts.lemmaA41_third_moment_bound")
def _lemmaa41():
    p = np.linspace(0, 1, 200001)
    m3 = p * (1 - p) * (1 - 2 * p)
    v = float(m3.max())
    return {"value": v, "verdict": _ok(abs(v - 0.0962250) < 5e-8 and abs(p[np.argmax(m3)] - 0.21132) < 1e-5),
            "detail": "max_p p(1-p)(1-2p) = 1/(6 sqrt 3) at p = (3 - sqrt 3)/6"}


@_claim("ghosts.eq26_kl_direction")
def _eq26():
    rng = np.random.default_rng(2)
    misses, to_fwd = 0, 0.0
    for _ in range(200):
        z, a = _random_instance(rng)
        tau = rng.uniform(-2, 2)
        b = sr.kl_bregman(z, a, tau)
        misses += abs(b - sr.kl_reverse(z, a, tau)) > 1e-9 * b + 1e-12  # float64 logsumexp rounding
        to_fwd = max(to_fwd, abs(b - sr.kl_forward(z, a, tau)) / max(sr.kl_forward(z, a, tau), 1e-300))
    return {"value": to_fwd, "verdict": "corrected" if (misses == 0 and to_fwd > 0.1) else "reproduced",
            "detail": f"Eq. 26 Bregman form equals the reverse KL in 200/200 random cases ({misses} misses); "
                      f"max relative gap to the stated forward KL {to_fwd:.2f}"}


@_claim("ghosts.thmA42_kl_constant")
def _thma42():
    c_rev, c_fwd = 1 / (36 * math.sqrt(3)), 1 / (18 * math.sqrt(3))
    rng = np.random.default_rng(4)
    m_rev = m_fwd = 0.0
    for _ in range(3000):
        n = int(rng.integers(2, 8))
        z = rng.normal(size=n) * rng.uniform(0, 4)
        a = rng.normal(size=n)
        tau = rng.choice([-1, 1]) * 10 ** rng.uniform(-2, 1.3) / np.ptp(a)
        p0 = sr._softmax(z)
        var0 = float(p0 @ (a - p0 @ a) ** 2)
        cube = abs(tau * np.ptp(a)) ** 3
        m_rev = max(m_rev, abs(sr.kl_reverse(z, a, tau) - tau**2 / 2 * var0) / cube / c_rev)
        m_fwd = max(m_fwd, abs(sr.kl_forward(z, a, tau) - tau**2 / 2 * var0) / cube / c_fwd)
    ok = m_rev <= 1 + 1e-9 and m_fwd <= 1 + 1e-9
    return {"value": m_fwd, "verdict": "corrected" if ok else "not reproduced",
            "detail": f"max remainder/bound: forward KL vs 1/(18 sqrt3) {m_fwd:.5f}; reverse KL vs 1/(36 sqrt3) {m_rev:.5f} "
                      "(the derivation proves the reverse-KL bound; the stated forward one holds numerically)"}


@_claim("ghosts.kl_crossover_12x")
def _kl12():
    return {"value": PI / 0.25, "verdict": _ok(abs(PI / 0.25 - 12) < 1), "detail": "pi / (1/4): gap between Var/Delta^3 scale and pi/Delta"}


@_claim("ghosts.app2_activation_singularities")
def _app2():
    vals = []
    for f, r, power in ((np.tanh, PI / 2, 0), (lambda t: 1 / (1 + np.exp(-t)), PI, 0), (lambda t: np.log1p(np.exp(t)), PI, 1)):
        vals.append(sr.radius_envelope_fit(sr.taylor_coefficients_fft(f, 0.8 * r, 80, n_points=1024), power=power))
    ok = np.allclose(vals, [PI / 2, PI, PI], rtol=1e-3)
    return {"value": vals, "verdict": _ok(ok), "detail": "Taylor radii at 0 of tanh, sigmoid, softplus (pi/2, pi, pi)"}


@_claim("ghosts.app5_logistic_curvature_bound")
def _curv():
    v = float((1 / sr.logistic_hessian_scale(np.linspace(-30, 30, 6001))).max())
    return {"value": v, "verdict": _ok(abs(v - 0.25) < 1e-12), "detail": "max f''(x) = sigma(1-sigma)"}


@_claim("ghosts.app5_hessian_scale_delta10")
def _h10():
    v = sr.logistic_hessian_scale(10.0)
    return {"value": v, "verdict": _ok(abs(v - 22000) < 100), "detail": "1/(sigma(1-sigma)) at delta = 10"}


@_claim("ghosts.app5_true_limit_delta10")
def _t10():
    v = math.hypot(10.0, PI)
    return {"value": v, "verdict": _ok(abs(v - 10) < 0.5), "detail": "sqrt(delta^2 + pi^2) at delta = 10"}


@_claim("ghosts.fig13_hessian_mismatch_factor")
def _fig13():
    inv = sr.logistic_hessian_scale(10.0)
    ratio = inv / math.hypot(10.0, PI)
    return {"value": ratio, "verdict": "corrected" if ratio < 4000 < 2 * ratio else "reproduced",
            "detail": f"annotated values imply {ratio:.0f}x; '> 4000x' needs tau_H = 2/kappa ({2 * ratio:.0f}x); vs pi: {inv / PI:.0f}x"}


@_claim("ghosts.eq47_hessian_ratio_asymptotic")
def _eq47():
    worst = 0.0
    for d in (1.0, 2.0, 5.0, 10.0):
        for delta in (3.0, 6.0, 12.0):
            exact = 2 * sr.logistic_hessian_scale(delta) / d**2 / (PI / d)
            worst = max(worst, abs(2 * math.exp(delta) / (PI * d) / exact - 1) / math.exp(-delta))
    return {"value": worst, "verdict": _ok(worst < 3), "detail": "max relative error of 2e^delta/(pi D) in units of e^-delta (delta >= 3)"}


@_claim("ghosts.eq48_crossover_margin")
def _eq48():
    v = [math.log(PI * d / 2) for d in (1, 2, 5, 10)]
    return {"value": v, "verdict": _ok(np.allclose(v, [0.45, 1.14, 2.06, 2.75], atol=5e-3)),
            "detail": "delta* = ln(pi |D| / 2) for |D| = 1, 2, 5, 10"}


@_claim("ghosts.sec86_fd_overhead_arithmetic")
def _fd_ovh():
    v = (20.9 / 12.6 - 1) * 100
    return {"value": v, "verdict": _ok(abs(v - 66) < 0.5), "detail": "(20.9/12.6 - 1) x 100"}


@_claim("ghosts.sec86_jvp_overhead_arithmetic")
def _jvp_ovh():
    v = (28.7 / 12.6 - 1) * 100
    return {"value": v, "verdict": "corrected" if abs(v - 129) > 0.5 else "reproduced",
            "detail": "(28.7/12.6 - 1) x 100 = 127.8, stated +129%"}


@_claim("ghosts.fig9_collapse_reduction_arithmetic")
def _six():
    v = 0.992 / 0.164
    return {"value": v, "verdict": _ok(abs(v - 6) < 0.1), "detail": "0.992 / 0.164"}


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    return v


def measure_theory_claims() -> dict[str, dict[str, Any]]:
    """Recompute every ``ghosts_theory`` claim; ``{id: {"value", "verdict", "detail"}}``.

    Values are plain Python floats / lists / bools (JSON-serializable).
    """
    out = {}
    for cid, fn in _MEASURES.items():
        res = fn()
        res["value"] = _plain(res["value"])
        out[cid] = res
    return out


if __name__ == "__main__":  # pragma: no cover
    for cid, res in measure_theory_claims().items():
        print(f"{cid:45s} {res['verdict']:15s} {res['value']!r}")
