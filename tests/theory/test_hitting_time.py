"""theory.hitting_time: cap measures, the cap lower bound, hitting times vs the geometric law, ES/SPSA.

Checked version (paper/polystep_reconstruction.md §3.4; the paper's bound is unknown [U]): on a
staircase, the steps ``tau`` to the first lower level satisfy ``E[tau] p = 1`` (geometric law) with ``p`` the one-step hit
probability at the start, ``p >= p_lower`` (spherical-cap bound), and two-point ES/SPSA estimates with
perturbation ``0.02 w`` vanish. What is asserted below is what holds numerically: the geometric law
holds where the iterate cannot move within a level (radial staircase, ``r_s < distance to the next
level up``), while on the separable staircase (non-convex sub-level sets) the iterate drifts and
``E[tau] p_hat(x0) < 1`` (``xfail(strict=True)`` carries the measured value).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from theory import objectives as O
from theory.hitting_time import (
    cap_measure,
    es_gradient,
    geometric_summary,
    hitting_config,
    hitting_times,
    level_trajectories,
    one_step_hit_probability,
    radial_cap_cos,
    radial_start,
    run_two_point_baseline,
    separable_start,
    spsa_gradient,
    vertex_hit_bounds,
)


def test_cap_measure_closed_forms_and_monte_carlo() -> None:
    for k in (-0.9, -0.3, 0.0, 0.4, 0.95):
        assert cap_measure(2, k) == pytest.approx(math.acos(k) / math.pi, abs=1e-14)  # circle
        assert cap_measure(3, k) == pytest.approx((1 - k) / 2, abs=1e-14)  # Archimedes
    assert cap_measure(5, 1.0) == 0.0 and cap_measure(5, -1.0) == 1.0 and cap_measure(7, 0.0) == 0.5
    g = torch.Generator().manual_seed(0)
    for d, k in ((4, 0.3), (8, 0.5), (8, -0.2)):
        u = torch.randn(200_000, d, generator=g, dtype=torch.float64)
        frac = float(((u[:, 0] / u.norm(dim=1)) > k).double().mean())
        # binomial SE <= sqrt(0.25 / 2e5) = 0.0011: 5 SE
        assert frac == pytest.approx(cap_measure(d, k), abs=0.0056)


def test_radial_cap_cos_is_the_lower_ball_condition() -> None:
    rho, radius, r = 20.4, 20.0, 0.5
    k = radial_cap_cos(rho, radius, r)
    x = torch.tensor([rho, 0.0], dtype=torch.float64)
    for ang in np.linspace(0, np.pi, 50):
        u = torch.tensor([-math.cos(ang), math.sin(ang)], dtype=torch.float64)  # <u, -x/|x|> = cos(ang)
        assert (float((x + r * u).norm()) < radius) == (math.cos(ang) > k)


def test_vertex_bounds_bracket_the_vertex_hit_probability() -> None:
    """p_lower <= P(some vertex lower) <= V mu, and the hit probability p_hat >= P(some vertex lower)
    (convex lower ball): Monte Carlo with 20,000 draws (SE <= 0.0035; tolerance 4 SE)."""
    stair = O.staircase_radial(1.0)
    g = torch.Generator().manual_seed(1)
    for kind, d, r in (("orthoplex", 4, 0.5), ("simplex", 4, 0.5), ("cube", 4, 0.5), ("orthoplex", 8, 1.0)):
        x0 = radial_start(d, 20, 1.0, 0.4)
        b = vertex_hit_bounds(kind, d, float(x0.norm()), 1.0, 20, r)
        ph = one_step_hit_probability(stair, x0, hitting_config(kind, r), 20_000, g)
        assert b["p_lower"] - 0.014 <= ph["p_vertex"] <= b["p_vertex_upper"] + 0.014, (kind, d, b, ph)
        assert ph["p_hat"] >= ph["p_vertex"]  # barycentre of lower vertices is lower (same draws)


def test_geometric_law_where_the_state_cannot_move() -> None:
    """Radial staircase, orthoplex d = 8, r_s = 0.5 w from 0.4 w above the lower boundary: no vertex
    can reach the next level up (0.6 w away), so a non-hitting step leaves x unchanged and tau is
    exactly Geometric(p). 3000 chains: SE of E[tau] p_hat ~ 0.02; tolerance 0.1 (claim) > 4 SE."""
    stair = O.staircase_radial(1.0)
    g = torch.Generator().manual_seed(2)
    x0 = radial_start(8, 20, 1.0, 0.4)
    conf = hitting_config("orthoplex", 0.5)
    ph = one_step_hit_probability(stair, x0, conf, 20_000, g)
    ht = hitting_times(stair, x0, conf, 3000, 2000, g)
    assert ht["moved"] == 0.0 and not ht["censored"].any()
    s = geometric_summary(ht["tau"], ph["p_hat"], ph["se"])
    assert s["product"] == pytest.approx(1.0, abs=0.1)
    assert s["gof_p"] > 1e-3  # chi-square fit to Geometric(p_hat) not rejected
    b = vertex_hit_bounds("orthoplex", 8, float(x0.norm()), 1.0, 20, 0.5)
    assert s["mean_tau"] <= 1.0 / b["p_lower"]  # cap bound: 1/p_lower = 112 vs E[tau] ~ 14


@pytest.mark.xfail(strict=True, reason="geometric law fails on the separable staircase: the sub-level sets are "
                   "not convex and the iterate moves within the level, so p grows along the path; measured "
                   "E[tau] p_hat(x0) = 0.62 (d = 4, r_s = 0.5 w; cpu scale 0.624 +- 0.009)")
def test_geometric_law_on_the_separable_staircase() -> None:
    stair = O.staircase_separable(1.0)
    g = torch.Generator().manual_seed(3)
    x0 = separable_start(4, 20, 1.0, 0.4)
    conf = hitting_config("orthoplex", 0.5)
    ph = one_step_hit_probability(stair, x0, conf, 20_000, g)
    ht = hitting_times(stair, x0, conf, 2000, 2000, g)
    assert geometric_summary(ht["tau"], ph["p_hat"], ph["se"])["product"] == pytest.approx(1.0, abs=0.1)


def test_separable_drift_dominates_the_geometric_law() -> None:
    """What holds instead: E[tau] <= 1/p_hat(x0) (p only grows while the iterate drifts)."""
    stair = O.staircase_separable(1.0)
    g = torch.Generator().manual_seed(3)
    x0 = separable_start(4, 20, 1.0, 0.4)
    assert float(stair(x0)) == 20.0
    conf = hitting_config("orthoplex", 0.5)
    ph = one_step_hit_probability(stair, x0, conf, 20_000, g)
    ht = hitting_times(stair, x0, conf, 2000, 2000, g)
    s = geometric_summary(ht["tau"], ph["p_hat"], ph["se"])
    assert ht["moved"] > 0.5
    assert s["product"] < 0.8  # measured 0.62 +- 0.01


def test_trends_in_dimension_vertices_and_radius() -> None:
    """E[tau] up in d_p, down in V and in r_s/w (radial staircase, 1500 chains; the gaps are > 10 SE)."""
    stair = O.staircase_radial(1.0)
    g = torch.Generator().manual_seed(4)

    def mean_tau(kind, d, r):
        return float(hitting_times(stair, radial_start(d, 20, 1.0, 0.4), hitting_config(kind, r), 1500, 3000,
                                   g)["tau"].mean())

    t_o4, t_o8 = mean_tau("orthoplex", 4, 0.5), mean_tau("orthoplex", 8, 0.5)
    t_s8, t_c8 = mean_tau("simplex", 8, 0.5), mean_tau("cube", 8, 0.5)
    t_o8_r1 = mean_tau("orthoplex", 8, 1.0)
    assert t_o4 < t_o8            # ~2.4 vs ~14
    assert t_s8 > t_o8 > t_c8     # V = 9, 16, 256: ~25, ~14, ~1.6
    assert t_o8_r1 < t_o8         # ~1.0 vs ~14


def test_mid_shell_stall_for_small_radius() -> None:
    """r_s = w/2 from the middle of a shell: every vertex stays on the level (a.s.), weights are
    uniform, the centred template gives a zero move: PolyStep never descends."""
    stair = O.staircase_radial(1.0)
    g = torch.Generator().manual_seed(5)
    x0 = radial_start(4, 20, 1.0, 0.5)
    ht = hitting_times(stair, x0, hitting_config("orthoplex", 0.5), 200, 100, g)
    assert ht["censored"].all() and ht["moved"] == 0.0
    lv = level_trajectories(stair, radial_start(4, 20, 1.0, 0.4), hitting_config("orthoplex", 1.0), 10, 200, g)
    assert lv[-1].mean() < 5  # with r_s = w the chains keep descending (from 20)


def test_two_point_estimates_vanish_on_a_flat_step() -> None:
    stair = O.staircase_radial(1.0)
    g = torch.Generator().manual_seed(6)
    x0 = radial_start(8, 20, 1.0, 0.4)
    assert torch.all(es_gradient(stair, x0, 0.02, 8, g) == 0)
    assert torch.all(spsa_gradient(stair, x0, 0.02, g) == 0)
    for method in ("es", "spsa"):
        r = run_two_point_baseline(method, stair, x0, 300, 0.02, 0.01, g)
        assert r["zero_fraction"] == 1.0 and r["level_changes"] == 0 and r["final_level"] == 20.0
        assert r["levels"].shape == (301,)
    # next to a jump (0.005 w above it) the perturbations straddle it: the estimates are not zero
    near = radial_start(8, 20, 1.0, 0.005)
    assert not torch.all(es_gradient(stair, near, 0.02, 8, g) == 0)
    # on a smooth function they are the usual unbiased estimates (quadratic: exact along the probes)
    q = O.quadratic(torch.eye(3, dtype=torch.float64))
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    est = torch.stack([es_gradient(q, x, 0.01, 8, g) for _ in range(300)]).mean(0)
    assert est == pytest.approx(x, abs=0.15)  # SE of the ES mean ~ ||x|| / sqrt(8 * 300) = 0.05
    assert spsa_gradient(q, x, 0.01, g).abs().max() > 0
    with pytest.raises(ValueError):
        run_two_point_baseline("cma", stair, x0, 1, 0.02, 0.01, g)
