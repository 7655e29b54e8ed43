"""Recompute every ``ghosts_theory`` claim of paper/claims.toml (a few seconds).

Each ``@_claim("<id>")`` function below *measures* one claim and returns
``{"value": ..., "detail": str, "evidence": {name: number | bool | list}}`` -- never a verdict:
the claim's rule in paper/claims.toml (``rule`` / ``fail_rule``, or ``paper_value`` + ``tolerance``)
decides, in :mod:`repro.claims`, from the value and the named evidence.  No threshold and no claimed
value lives here; the inputs of a check (the paper's margins, timings, worked-example numbers) do.
``measure_theory_claims()`` runs them all; the ``ghosts_theory`` experiment registers one
``repro.claims.claim`` reader per id with this module's function as its origin, so
``polystep-repro claim <id>`` and a grep for the id both land on the function below.

The numbers reuse :mod:`ghosts.softmax_radius`, :mod:`ghosts.radius_models` and
:mod:`ghosts.radius_controller`; each has a matching test in tests/theory (the claim's
``test`` key).  Randomness is seeded explicitly, so the values are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np

from ghosts import softmax_radius as sr

PI = math.pi
#: claim id -> the function that measures it (filled by :func:`_claim`, in registry order)
THEORY_MEASURES: dict[str, Callable[[], dict[str, Any]]] = {}


def _claim(cid: str):
    def deco(fn):
        if cid in THEORY_MEASURES:
            raise ValueError(f"claim {cid} is measured twice")
        THEORY_MEASURES[cid] = fn
        return fn

    return deco


def _random_instance(rng):
    n = int(rng.integers(2, 12))
    return rng.normal(size=n) * 10 ** rng.uniform(-1, 1), rng.normal(size=n) * 10 ** rng.uniform(-1, 1)


_REF_ROWS = [((0, 1, -1, 0.5), (0.3, -0.7, 1.2, 0)), ((2, 0, 0, 0, 0), (1, -1, 0.5, 0, -0.25)),
             ((5, -1, 0.3), (-0.5, 2, 0.1))]


@_claim("ghosts.thm21_binary_logpartition_radius")
def _thm21():
    c = sr.logpartition_taylor([0.0, 0.0], [1.0, 0.0], 200, dps=60)
    r = sr.radius_envelope_fit(c)
    return {"value": r, "evidence": {"n_coefficients": 200},
            "detail": "Taylor radius of log(1+e^t) at 0 from 200 exact coefficients (envelope fit)"}


@_claim("ghosts.binary_radius_about_x0")
def _x0():
    x0s = (0.0, 1.0, -3.0, 7.5)
    errs = [abs(abs(sr.nearest_zeros([x0, 0.0], [1.0, 0.0])[0]) / math.hypot(x0, PI) - 1) for x0 in x0s]
    return {"value": max(errs), "evidence": {"x0": list(x0s), "rel_err": errs},
            "detail": "max relative deviation of the nearest zero of 1+e^(x0+t) from sqrt(x0^2+pi^2)"}


@_claim("ghosts.sigmoid_at_pi")
def _sig():
    v = 1 / (1 + math.exp(-PI))
    return {"value": v, "evidence": {}, "detail": "sigma(pi)"}


@_claim("ghosts.prop42_radius_from_partition_zeros")
def _prop42():
    gaps = [abs(sr.radius_envelope_fit(sr.logpartition_taylor(z, a, 200, dps=50)) / sr.exact_radius(z, a) - 1)
            for z, a in _REF_ROWS]
    return {"value": max(gaps), "evidence": {"rel_gap_per_case": gaps},
            "detail": "max relative gap, Taylor-envelope radius vs min |zero of F|, 3 reference cases"}


@_claim("ghosts.thm43_binary_exact_radius")
def _thm43():
    errs = [abs(sr.exact_radius([delta, 0.0], [d, 0.0]) / sr.binary_radius(delta, d) - 1)
            for delta in np.linspace(-20, 20, 5) for d in (-30.0, -0.5, 1e-2, 1.0, 7.0)]
    return {"value": max(errs), "evidence": {"n_cases": len(errs)},
            "detail": "max relative deviation, argument-principle zeros vs sqrt(delta^2+pi^2)/|D| (25 cases)"}


@_claim("ghosts.thm43_min_at_zero_margin")
def _thm43min():
    d = 2.0
    deltas = np.linspace(-5, 5, 1001)
    r = sr.binary_radius(deltas, d)
    return {"value": float(deltas[np.argmin(r)]),
            "evidence": {"min_radius": float(r.min()), "pi_over_D": PI / d, "D": d},
            "detail": "argmin over delta in [-5, 5] of rho*(delta, D=2); min = pi/D"}


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
    return {"value": worst, "evidence": {"n_instances": 2000},
            "detail": "min over 2000 random instances of Re(e^{-i phi} sum c_k u_k) (the lemma: > 0)"}


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
    return {"value": ratio, "evidence": {"n_instances": 300},
            "detail": "min rho*/rho_a over 300 random instances, n in [2, 11] (ghosts notes §2.5: 1.00025)"}


@_claim("ghosts.thm46_zero_free_strip")
def _strip():
    _, s = _stress_cached()
    return {"value": s, "evidence": {"n_instances": 300},
            "detail": "min |Im t| Delta_a / pi over the nearest zeros of 300 random instances"}


@_claim("ghosts.thm46_bound_tightness")
def _tight():
    r = sr.exact_radius([0.0, math.log(0.01), 0.0], [-1.0, 0.0, 1.0]) / (PI / 2)
    rb = sr.exact_radius([0.0, 0.0], [1.0, 0.0]) / PI
    return {"value": r, "evidence": {"binary_ratio": rb, "three_class_ratio": r},
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
    return {"value": float((per / bound).min()),
            "evidence": {"rho_a_full": sr.rho_a(a), "rho_b_batch": sr.rho_a(a[:3]),
                         "min_bound_in_batch": float(bound[:3].min()),
                         "exact_minus_bound": (per - bound).tolist()},
            "detail": "rho_a (8 samples) <= rho_B (first 3) <= pi/Delta_a(x) <= rho*(x) on a linear model; "
                      "value = min_x rho*(x) Delta_a(x)/pi"}


@_claim("ghosts.batch_radius_min_over_samples")
def _batchmin():
    z, a, y = _linear_batch()
    per = sr.exact_radius(z, a, per_sample=True)
    est = sr.radius_envelope_fit(sr.line_loss_taylor(z, a, 200, y=y, dps=50))
    return {"value": est / per.min() - 1, "evidence": {"taylor_radius": est, "min_sample_radius": float(per.min())},
            "detail": "relative gap, Taylor radius of the mean CE along v vs min_x rho*(x) (linear model)"}


@_claim("ghosts.eq13_ghost_location")
def _eq13():
    z, a = (2.0, 0.0), (0.7, -0.5)
    true = sr.nearest_zeros(z, a)[1]
    paper = sr.top2_ghost(z, a, 0, paper_sign=True)
    fixed = sr.top2_ghost(z, a, 0)
    return {"value": abs(paper - true),
            "evidence": {"true_zero_modulus": abs(true),
                         "eq13_rel_err": abs(paper - true) / abs(true),
                         "corrected_rel_err": abs(fixed - true) / abs(true),
                         "modulus_abs_err": abs(abs(paper) - abs(true))},
            "detail": "|Eq.13 point - true zero| for delta=2, D=1.2 (true zero -1.667+2.618i, Eq.13 gives "
                      "+1.667+2.618i; the corrected (-delta + i pi)/D is the zero)"}


@_claim("ghosts.eq13_confidence_factor")
def _conf():
    v = sr.binary_radius(10.0, 1.0) / PI
    return {"value": v, "evidence": {}, "detail": "sqrt(1+(delta/pi)^2) at delta=10"}


@_claim("ghosts.eq13_top2_multiclass")
def _top2():
    z, a = _REF_ROWS[0]
    rho = sr.exact_radius(z, a)
    ratios = [sr.top2_radius(z, a, y) / rho for y in range(4)]
    return {"value": [min(ratios), max(ratios)], "evidence": {"top2_over_exact": ratios, "exact_radius": rho},
            "detail": "top-2 value / exact rho* over labels y for z=(0,1,-1,0.5), a=(0.3,-0.7,1.2,0) (min, max)"}


@_claim("ghosts.prop52_radius_clip")
def _prop52():
    import torch
    from torch import nn

    from ghosts.radius_controller import RadiusController

    gen = torch.Generator().manual_seed(6)
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 5)).double()
    x = torch.randn(64, 16, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (64,), generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ctrl = RadiusController(opt, model, 1.0, rho_inputs=x)
    steps, spike_from, spike = 20, 5, 1000
    for t in range(steps):
        opt.param_groups[0]["lr"] = 1e-3 * (spike if t >= spike_from else 1)

        def closure():
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        ctrl.step(closure)
    rs = [float(h["r"]) for h in ctrl.history]
    return {"value": max(rs), "evidence": {"n_steps": steps, "spike_factor": spike,
                                           "max_r_after_spike": max(rs[spike_from:])},
            "detail": "max realized r = ||step||/rho_a(step) over 20 Adam steps with a 1000x spike (actual-step controller)"}


@_claim("ghosts.eq18_lr_constraint")
def _eq18():
    delta_a, g = 30.0, 10.0
    eta_max = PI / (delta_a * g)
    cases = [[eta, eta_max, eta * g * delta_a / PI] for eta in (0.005, 0.01, 0.0105, 0.02)]
    return {"value": eta_max, "evidence": {"cases": cases},
            "detail": "eta_max = pi/(Delta_a ||g||) for Delta_a=30, ||g||=10; cases [eta, eta_max, r] with "
                      "r = eta ||g|| Delta_a / pi for eta = 0.005, 0.01, 0.0105, 0.02"}


@_claim("ghosts.sec84_worked_example")
def _sec84():
    rhos = [sr.rho_a([0.0, d]) for d in (1.0, 10.0, 30.0)]
    rs = [0.1 * d / PI for d in (1.0, 30.0)]
    return {"value": rhos + rs, "evidence": {},
            "detail": "rho_a for Delta_a=1,10,30; r for tau=0.1 at Delta_a=1,30"}


@_claim("ghosts.temperature_rho_scaling")
def _temp():
    a = np.array([0.4, -1.1, 0.9])
    err = max(abs(sr.rho_a(a / t) / (PI * t / np.ptp(a)) - 1) for t in (0.25, 0.5, 2.0, 8.0))
    exact_vs_scaled = sr.exact_radius([3.0 / 8, 0.0], [1.5 / 8, 0.0]) / (8 * sr.binary_radius(3.0, 1.5))
    return {"value": err, "evidence": {"exact_rho_T_over_T_rho_at_T8": exact_vs_scaled},
            "detail": f"rho_a(T) = pi T/Delta_a (max rel err, T = 0.25..8); note exact rho*_T != T rho* "
                      f"(ratio {exact_vs_scaled:.3f} at T=8)"}


_PROP_A11 = {}


def _propa11_numbers():
    if not _PROP_A11:
        with mpmath.workdps(30):
            roots = [(-1 + s * mpmath.sqrt(1 + 8j * mpmath.pi * (2 * k + 1))) / 4 for k in range(-3, 3) for s in (1, -1)]
            r_true = float(min(abs(r) for r in roots))
        eps = sr.linearization_epsilon([10.0, 10.0], [0.0, 1.0], 4.0)
        rho_a = sr.rho_a([0.0, 1.0])
        _PROP_A11.update(r_true=r_true, eps=eps, rho_a=rho_a, bound=rho_a * (1 - eps))
    return _PROP_A11


@_claim("ghosts.propA11_linearization_quality")
def _propa11():
    n = _propa11_numbers()
    return {"value": n["r_true"], "evidence": {"claimed_bound": n["bound"], "eps": n["eps"], "rho_a": n["rho_a"]},
            "detail": f"z=(10,10), a=(0,1), b=(0,4): R_true={n['r_true']:.4f} but the claim gives >= "
                      f"rho_a (1 - eps) = {n['bound']:.4f} (eps={n['eps']:.1e})"}


@_claim("ghosts.rtrue_ge_rhostar")
def _rtrue():
    n = _propa11_numbers()
    rho_star = sr.exact_radius([10.0, 10.0], [0.0, 1.0])
    return {"value": n["r_true"] / rho_star, "evidence": {"r_true": n["r_true"], "rho_star": rho_star, "eps": n["eps"]},
            "detail": f"R_true/rho* for the Prop A1.1 counterexample (eps={n['eps']:.1e}): "
                      f"{n['r_true'] / rho_star:.3f}"}


@_claim("ghosts.sec51_cauchy_estimate")
def _sec51():
    def abs_l(dist):
        return float(abs(mpmath.log(1 + mpmath.exp(mpmath.mpc(0, PI * (1 - dist))))))

    dists = [1e-3, 1e-6, 1e-9, 1e-12]
    return {"value": abs_l(1e-12),
            "evidence": {"relative_distance": dists, "abs_l": [abs_l(d) for d in dists],
                         "rho_star_over_rho_a": sr.exact_radius([0.0, 0.0], [1.0, 0.0]) / sr.rho_a([1.0, 0.0])},
            "detail": "|l(t)| at t = i pi (1 - 1e-12) on |t| = rho_a for binary delta=0; it grows like "
                      "ln(1/distance) toward the zero at i pi = i rho* (M = inf)"}


@_claim("ghosts.lemmaA41_third_moment_bound")
def _lemmaa41():
    p = np.linspace(0, 1, 200001)
    m3 = p * (1 - p) * (1 - 2 * p)
    return {"value": float(m3.max()), "evidence": {"argmax_p": float(p[np.argmax(m3)]), "grid_step": 1 / 200000},
            "detail": "max_p p(1-p)(1-2p) on a grid of step 5e-6 (1/(6 sqrt 3) at p = (3 - sqrt 3)/6)"}


def _gap(x: float, y: float) -> float:
    """``|x - y|`` relative above 1, absolute below (float64 cancellation in tiny KL values)."""
    return abs(x - y) / (1 + abs(x))


@_claim("ghosts.eq26_kl_direction")
def _eq26():
    rng = np.random.default_rng(2)
    to_fwd = fwd_gap = rev_gap = 0.0
    for _ in range(200):
        z, a = _random_instance(rng)
        tau = rng.uniform(-2, 2)
        b, rev, fwd = sr.kl_bregman(z, a, tau), sr.kl_reverse(z, a, tau), sr.kl_forward(z, a, tau)
        rev_gap, fwd_gap = max(rev_gap, _gap(b, rev)), max(fwd_gap, _gap(b, fwd))
        to_fwd = max(to_fwd, abs(b - fwd) / max(fwd, 1e-300))
    return {"value": to_fwd, "evidence": {"n_cases": 200, "forward_gap": fwd_gap, "reverse_gap": rev_gap},
            "detail": f"200 random cases: max |Bregman - KL|/(1 + Bregman) is {rev_gap:.1e} for the reverse KL, "
                      f"{fwd_gap:.2f} for the stated forward KL; value = max relative gap to the forward KL "
                      f"{to_fwd:.2f}"}


@_claim("ghosts.thmA42_kl_constant")
def _thma42():
    c_rev, c_fwd = 1 / (36 * math.sqrt(3)), 1 / (18 * math.sqrt(3))
    rng = np.random.default_rng(4)
    m_rev = m_fwd = breg_fwd = 0.0
    for _ in range(3000):
        n = int(rng.integers(2, 8))
        z = rng.normal(size=n) * rng.uniform(0, 4)
        a = rng.normal(size=n)
        tau = rng.choice([-1, 1]) * 10 ** rng.uniform(-2, 1.3) / np.ptp(a)
        p0 = sr._softmax(z)
        var0 = float(p0 @ (a - p0 @ a) ** 2)
        cube = abs(tau * np.ptp(a)) ** 3
        fwd = sr.kl_forward(z, a, tau)
        m_rev = max(m_rev, abs(sr.kl_reverse(z, a, tau) - tau**2 / 2 * var0) / cube / c_rev)
        m_fwd = max(m_fwd, abs(fwd - tau**2 / 2 * var0) / cube / c_fwd)
        breg_fwd = max(breg_fwd, _gap(sr.kl_bregman(z, a, tau), fwd))
    return {"value": m_fwd, "evidence": {"forward_ratio_max": m_fwd, "reverse_ratio_max": m_rev,
                                         "bregman_forward_gap": breg_fwd, "n_cases": 3000},
            "detail": f"max remainder/bound over 3000 cases: forward KL vs 1/(18 sqrt3) {m_fwd:.5f}; reverse KL vs "
                      f"1/(36 sqrt3) {m_rev:.5f}; the derivation bounds the Eq. 26 Bregman form, whose gap to "
                      f"the forward KL is up to {breg_fwd:.2f} (it is the reverse KL)"}


@_claim("ghosts.kl_crossover_12x")
def _kl12():
    return {"value": PI / 0.25, "evidence": {},
            "detail": "pi / (1/4): gap between Var/Delta^3 scale and pi/Delta (Popoviciu: Var <= Delta^2/4)"}


@_claim("ghosts.app2_activation_singularities")
def _app2():
    vals = []
    for f, r, power in ((np.tanh, PI / 2, 0), (lambda t: 1 / (1 + np.exp(-t)), PI, 0), (lambda t: np.log1p(np.exp(t)), PI, 1)):
        vals.append(sr.radius_envelope_fit(sr.taylor_coefficients_fft(f, 0.8 * r, 80, n_points=1024), power=power))
    return {"value": vals, "evidence": {}, "detail": "Taylor radii at 0 of tanh, sigmoid, softplus (pi/2, pi, pi)"}


@_claim("ghosts.app5_logistic_curvature_bound")
def _curv():
    v = float((1 / sr.logistic_hessian_scale(np.linspace(-30, 30, 6001))).max())
    return {"value": v, "evidence": {}, "detail": "max f''(x) = sigma(1-sigma) over x in [-30, 30]"}


@_claim("ghosts.app5_hessian_scale_delta10")
def _h10():
    v = sr.logistic_hessian_scale(10.0)
    return {"value": v, "evidence": {}, "detail": "1/(sigma(1-sigma)) at delta = 10"}


@_claim("ghosts.app5_true_limit_delta10")
def _t10():
    v = math.hypot(10.0, PI)
    return {"value": v, "evidence": {}, "detail": "sqrt(delta^2 + pi^2) at delta = 10"}


@_claim("ghosts.fig13_hessian_mismatch_factor")
def _fig13():
    inv = sr.logistic_hessian_scale(10.0)  # 1/kappa, kappa = f''(10) = sigma(1 - sigma)
    radius = math.hypot(10.0, PI)
    tau_h = 2 * inv  # the paper's Hessian step scale tau_H = 2/kappa (Appendix 5)
    return {"value": tau_h / radius,
            "evidence": {"tau_h": tau_h, "radius": radius, "ratio_annotation": inv / radius,
                         "ratio_annotation_vs_pi": inv / PI},
            "detail": f"tau_H/R at delta = 10 with the paper's tau_H = 2/kappa: {tau_h / radius:.0f}x; the "
                      f"figure's annotation (1/kappa = 22,028 vs R = 10.48) implies {inv / radius:.0f}x; "
                      f"1/kappa vs pi: {inv / PI:.0f}x"}


@_claim("ghosts.eq47_hessian_ratio_asymptotic")
def _eq47():
    worst = 0.0
    for d in (1.0, 2.0, 5.0, 10.0):
        for delta in (3.0, 6.0, 12.0):
            exact = 2 * sr.logistic_hessian_scale(delta) / d**2 / (PI / d)
            worst = max(worst, abs(2 * math.exp(delta) / (PI * d) / exact - 1) / math.exp(-delta))
    return {"value": worst, "evidence": {},
            "detail": "max relative error of 2e^delta/(pi D) in units of e^-delta (delta = 3, 6, 12; D = 1, 2, 5, 10)"}


@_claim("ghosts.eq48_crossover_margin")
def _eq48():
    v = [math.log(PI * d / 2) for d in (1, 2, 5, 10)]
    return {"value": v, "evidence": {}, "detail": "delta* = ln(pi |D| / 2) for |D| = 1, 2, 5, 10"}


@_claim("ghosts.sec86_fd_overhead_arithmetic")
def _fd_ovh():
    base, fd = 12.6, 20.9  # the paper's step times (ms), Section 8.6
    return {"value": (fd / base - 1) * 100, "evidence": {"base_ms": base, "fd_ms": fd},
            "detail": "(20.9/12.6 - 1) x 100"}


@_claim("ghosts.sec86_jvp_overhead_arithmetic")
def _jvp_ovh():
    base, jvp = 12.6, 28.7  # the paper's step times (ms), Section 8.6
    v = (jvp / base - 1) * 100
    lo, hi = ((jvp - 0.05) / (base + 0.05) - 1) * 100, ((jvp + 0.05) / (base - 0.05) - 1) * 100
    return {"value": v, "evidence": {"base_ms": base, "jvp_ms": jvp, "rounding_range_pct": [lo, hi]},
            "detail": f"(28.7/12.6 - 1) x 100 = {v:.1f}, stated +129% (timings rounded to 0.1 ms allow "
                      f"{lo:.1f}..{hi:.1f})"}


@_claim("ghosts.fig9_collapse_reduction_arithmetic")
def _six():
    from repro.claims import get_claim  # the paper's collapse spreads (Section 6.4), from the registry

    raw = float(get_claim("ghosts.fig9_collapse_std_raw").paper_value)
    normalized = float(get_claim("ghosts.fig9_collapse_std_normalized").paper_value)
    return {"value": raw / normalized, "evidence": {"raw": raw, "normalized": normalized},
            "detail": f"{raw} / {normalized}"}


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    return v


def measure_claim(cid: str) -> dict[str, Any]:
    """One claim's measurement ``{"value", "detail", "evidence"}`` in plain Python types."""
    res = THEORY_MEASURES[cid]()
    return {"value": _plain(res["value"]), "detail": res["detail"], "evidence": _plain(res.get("evidence", {}))}


def measure_theory_claims() -> dict[str, dict[str, Any]]:
    """Recompute every ``ghosts_theory`` claim: ``{id: {"value", "detail", "evidence"}}``.

    Values and evidence are plain Python floats / lists / bools (JSON-serializable); no verdicts.
    """
    return {cid: measure_claim(cid) for cid in THEORY_MEASURES}


if __name__ == "__main__":  # pragma: no cover
    for cid, res in measure_theory_claims().items():
        print(f"{cid:45s} {res['value']!r}")
