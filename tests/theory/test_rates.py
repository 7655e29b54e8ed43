"""theory.rates: the batched PolyStep runner, rate fits, the linear-regime prediction, jitter/Haar checks.

Checked version (paper/polystep_reconstruction.md §3.2; the paper's statement is unknown [U]):
PolyStep with ``r_s = r_p = r0/sqrt(t+1)``, fixed ``eps``, jitter 0.05; ``g_T = min_{t<=T} ||grad L(x_t)||``.
What holds numerically, and is asserted here: in the linear regime PolyStep is gradient descent with
step ``r0^2/(2 d_p eps (t+1))``, so ``g_T ~ T^{-c}`` with ``c = lambda_min r0^2/(2 d_p eps)`` -- faster
than ``T^{-1/2}`` for ``c > 1/2`` and slower for ``c < 1/2``: the reconstructed O(log T/sqrt T) rate at
fixed ``eps`` is not universal (``xfail(strict=True)`` below carries the measured slope).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polystep import functional as psf
from theory import objectives as O
from polystep.schedules import InverseSqrt
from theory.rates import (
    RateProblem,
    envelope_stats,
    fit_grid,
    fit_rate,
    linear_regime_exponent,
    plateau_stats,
    probe_law_sample,
    record_grid,
    rotation_haar_stats,
    run_rates,
)


@pytest.fixture(scope="module")
def logcosh8():
    a = O.random_spd(8, 10.0, torch.Generator().manual_seed(11))
    return O.log_cosh_quadratic(a), float(torch.linalg.eigvalsh(a + torch.eye(8, dtype=torch.float64))[0])


def test_batched_rescaled_runner_equals_plain_steps(logcosh8) -> None:
    """One problem with r0 = 1, eps = 1 is the plain loop (same generator stream after the starts);
    a rescaled problem (r0 = 0.7, eps = 0.3) equals the plain loop with those radii up to rounding."""
    obj, _ = logcosh8
    for r0, eps, tol in ((1.0, 1.0, 0.0), (0.7, 0.3, 1e-10)):
        g = torch.Generator().manual_seed(5)
        res = run_rates([RateProblem("p", obj, 8, 8, r0, eps)], steps=30, seeds=3, generator=g, record=[30])
        g = torch.Generator().manual_seed(5)
        x0 = torch.randn(3, 8, generator=g, dtype=torch.float64)
        ref = torch.Generator().manual_seed(0)
        ref.set_state(g.get_state())
        x = x0.clone()
        cfg = psf.PolyStepConfig(eps=eps, step_radius=InverseSqrt(start=r0), probe_radius=InverseSqrt(start=r0),
                               radius_mode="absolute", probe_jitter=0.05)
        st = psf.init()
        for _ in range(30):
            x, st, _ = psf.step(x, obj, st, cfg, ref)
        # identical random stream; r0 = 1, eps = 1 is bitwise the same computation, the rescaled
        # problem differs by rounding only (relative 1e-10 after 30 steps)
        assert np.abs(res["p"]["x_final"] - x.numpy()).max() <= tol * max(1.0, float(x.abs().max()))


def test_block_particles_change_one_block_per_candidate() -> None:
    """Block problems (D = 16, d_p = 8): the cost of candidate (i, m) is f with block i replaced."""
    from theory.rates import _block_candidates

    x = torch.arange(16, dtype=torch.float64).reshape(2, 8)  # one run, two particles
    probes = -torch.ones(2, 3, 8, dtype=torch.float64)
    cand = _block_candidates(x, probes, 1, 2)
    assert cand.shape == (1, 2, 3, 16)
    assert torch.all(cand[0, 0, :, :8] == -1) and torch.all(cand[0, 0, :, 8:] == x[1])
    assert torch.all(cand[0, 1, :, 8:] == -1) and torch.all(cand[0, 1, :, :8] == x[0])


def test_run_rates_records_running_minimum_and_goldstein(logcosh8) -> None:
    obj, _ = logcosh8
    g = torch.Generator().manual_seed(0)
    l1 = O.l1_regression(torch.randn(8, 4, generator=g, dtype=torch.float64),
                         torch.randn(8, generator=g, dtype=torch.float64), 0.1)
    rec = record_grid(200, 20, [50, 100])
    res = run_rates([RateProblem("lc", obj, 8, 4, 1.0, 0.1), RateProblem("l1", l1, 4, 4, 1.0, 0.1, measure="goldstein")],
                    steps=200, seeds=4, generator=g, record=rec, keep_iterates=True)
    lc = res["lc"]
    assert lc["running_min"].shape == (len(rec), 4)
    assert np.all(np.diff(lc["running_min"], axis=0) <= 0)  # a running minimum
    assert np.all(lc["running_min"] <= lc["value"] + 1e-15)
    assert lc["x_record"].shape == (len(rec), 4, 8)
    assert lc["delta"] == pytest.approx(1.0 / np.sqrt(rec + 1.0))  # r_p(t) at x_t (x_t is after t steps)
    gl = res["l1"]
    assert np.all(gl["value"] >= 0) and np.all(np.diff(gl["running_min"], axis=0) <= 0)
    with pytest.raises(ValueError, match="particle_dim"):
        run_rates([RateProblem("a", obj, 8, 8, 1.0, 0.1), RateProblem("b", obj, 8, 4, 1.0, 0.1)],
                  steps=2, seeds=1, generator=g)


def test_fit_rate_recovers_power_law_and_envelope() -> None:
    T = fit_grid(100, 10_000, 4)
    assert T[0] == 100 and T[-1] == 10_000 and len(T) == 9
    rng = np.random.default_rng(0)
    noise = np.exp(rng.normal(0, 0.05, size=(len(T), 20)))
    g = 3.0 * T[:, None] ** -0.5 * noise
    f = fit_rate(T, g, np.random.default_rng(1))
    # multiplicative noise of 5 % per point: slope within 0.03 of -0.5, CI covers the truth
    assert f["slope"] == pytest.approx(-0.5, abs=0.03)
    assert f["ci"][0] <= -0.5 <= f["ci"][1]
    # log T/sqrt T itself has a constant envelope ratio
    env = envelope_stats(T, np.log(T) / np.sqrt(T))
    assert env["max_over_min"] == pytest.approx(1.0, abs=1e-12) and env["growth"] == pytest.approx(1.0)
    # a slower decay makes the ratio grow (T^-0.2: 100^0.3 * log(100)/log(1e4) = 1.99), a faster one
    # makes it fall (growth = 1: the maximum is at T_min)
    assert envelope_stats(T, T ** -0.2)["growth"] == pytest.approx(100 ** 0.3 / 2, rel=1e-12)
    assert envelope_stats(T, T ** -1.0)["growth"] == 1.0
    # values at the rounding floor are left out
    h = np.where(T[:, None] > 3000, 0.0, g)
    assert not fit_rate(T, h, np.random.default_rng(2))["used"][-1]


def test_plateau_stats() -> None:
    rec = record_grid(1000, 30)
    flat = np.full((len(rec), 5), 0.3)
    st = plateau_stats(rec, flat, np.full(5, 0.3))
    assert abs(st["tail_slope"]) < 1e-12 and st["plateau"] == pytest.approx(0.3)
    decay = (rec[:, None] ** -1.0) * np.ones((1, 5))
    assert plateau_stats(rec, decay, np.zeros(5))["tail_slope"] == pytest.approx(-1.0, abs=1e-9)


def test_linear_regime_exponent_predicts_the_measured_slope(logcosh8) -> None:
    """The derived GD picture: slope of g_T = -c within 0.15 for c in {0.5, 1.25} (T up to 2000,
    8 seeds; the measured slopes at cpu scale are within 0.1 of -c, the early transient adds ~0.05)."""
    obj, lam = logcosh8
    assert lam == pytest.approx(2.0, abs=1e-9)  # eigenvalues of A span [1, 10]; log cosh adds 1
    T = fit_grid(200, 2000, 4)
    probs = [RateProblem(f"eps{e}", obj, 8, 8, 1.0, e, hessian_min_eig=lam) for e in (0.1, 0.25)]
    res = run_rates(probs, steps=2000, seeds=8, generator=torch.Generator().manual_seed(3),
                    record=record_grid(2000, 20, T))
    for p in probs:
        r = res[p.name]
        f = fit_rate(T, r["running_min"][np.searchsorted(r["record"], T)], np.random.default_rng(0))
        assert f["slope"] == pytest.approx(-p.exponent, abs=0.15), (p.name, f["slope"], p.exponent)
    assert linear_regime_exponent(2.0, 1.0, 0.1, 8) == pytest.approx(1.25)


@pytest.mark.xfail(strict=True, reason="reconstructed Thm 4.2 at fixed eps: with c = lambda_min r0^2/(2 d_p eps) "
                   "= 0.125 (eps = 1) the measured slope of g_T is -0.21 [-0.23, -0.19] (8 seeds, T in [200, 2000]), "
                   "slower than the <= -0.35 a log T/sqrt T rate needs (thm42_rates cpu: -0.20 [-0.22, -0.18], "
                   "T in [1e2, 1e4])")
def test_fixed_eps_rate_is_log_t_over_sqrt_t_for_every_eps(logcosh8) -> None:
    obj, lam = logcosh8
    T = fit_grid(200, 2000, 4)
    res = run_rates([RateProblem("eps1", obj, 8, 8, 1.0, 1.0, hessian_min_eig=lam)], steps=2000, seeds=8,
                    generator=torch.Generator().manual_seed(4), record=record_grid(2000, 20, T))["eps1"]
    f = fit_rate(T, res["running_min"][np.searchsorted(res["record"], T)], np.random.default_rng(0))
    assert f["slope"] <= -0.35


def test_constant_radius_converges_in_the_gd_regime_and_plateaus_in_the_direct_search_regime(logcosh8) -> None:
    obj, _ = logcosh8
    probs = [RateProblem("gd", obj, 8, 8, 0.3, 0.1), RateProblem("ds", obj, 8, 8, 0.3, 1e-3)]
    res = run_rates(probs, steps=600, seeds=4, schedule="constant", generator=torch.Generator().manual_seed(5),
                    record=record_grid(600, 20))
    # GD regime: constant step r^2/(2 d_p eps) = 0.056 is stable (< 2/11) -> linear convergence; the loss
    # is even about its minimiser, so the orthoplex step vanishes there: ||grad|| reaches rounding
    assert res["gd"]["value"][-1].mean() < 1e-10
    # direct-search regime: every step moves ~r, ||grad|| stays O(r) (measured ~1.2 at r = 0.3)
    st = plateau_stats(res["ds"]["record"], res["ds"]["value"], res["ds"]["tail_mean"])
    assert 0.1 < st["plateau"] < 10 and abs(st["tail_slope"]) < 0.3


def test_jitter_is_uniform_and_rotations_are_haar() -> None:
    from scipy import stats

    s = probe_law_sample(3000, 8, 2.0, 0.05, torch.Generator().manual_seed(6))
    fac = s["factor"]
    assert fac.min() >= 0.95 and fac.max() <= 1.05
    assert stats.kstest(fac, stats.uniform(loc=0.95, scale=0.1).cdf).pvalue > 0.01
    # probes at s_1 r_p = r_p / 2 (K = 1)
    assert s["probe_norm"] == pytest.approx(0.5 * 2.0 * fac, rel=1e-12)
    h = rotation_haar_stats(s["rotations"])
    assert h["det_err"] < 1e-12 and h["orth_err"] < 1e-12
    # 3000 draws: SE of an entry mean is sqrt(1/8)/sqrt(3000) = 0.0065 -> max over 64 entries < 0.05;
    # SE of E R11^2 is 0.148/sqrt(3000) = 0.0027 -> within 10 % of 1/8 = 4.6 SE
    assert h["max_abs_mean"] < 0.05 and abs(h["r11_sq_mean"] - 1 / 8) < 0.0125 and h["ks_p"] > 0.01
    # without jitter the factor is exactly 1
    assert np.all(probe_law_sample(5, 8, 1.0, 0.0, torch.Generator().manual_seed(0))["factor"] == 1.0)


def test_rate_problem_validation(logcosh8) -> None:
    obj, _ = logcosh8
    with pytest.raises(ValueError):
        RateProblem("bad", obj, 8, 3, 1.0, 0.1)
    with pytest.raises(ValueError):
        RateProblem("bad", obj, 8, 8, 1.0, 0.1, measure="hessian")
    assert math.isnan(RateProblem("p", obj, 8, 8, 1.0, 0.1).exponent)
