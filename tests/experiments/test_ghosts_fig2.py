"""ghosts_fig2 at ci scale: the Taylor series of 1/(x+2) has radius 2, read off its coefficients."""

from __future__ import annotations

import numpy as np
import pytest

from repro.claims import load_claims
from repro.experiments import ghosts_fig2
from tests.experiments.ci import run_at_ci


@pytest.fixture(scope="module")
def res():
    return run_at_ci("ghosts_fig2")["results"]


def test_coefficients_are_the_geometric_series(res) -> None:
    # mpmath at 50 digits, rounded to float64: exact to the last bit
    assert res["coeff_max_rel_error"] < 1e-15
    np.testing.assert_allclose(res["coeffs"][:4], [0.5, -0.25, 0.125, -0.0625], rtol=0, atol=0)


def test_radius_estimates_from_the_coefficients(res) -> None:
    assert res["radius_envelope"] == pytest.approx(2.0, rel=1e-12)  # |c_n| = 2^-(n+1) exactly
    assert res["radius_ratio"] == pytest.approx(2.0, rel=1e-12)
    # the plain root test is biased high by 2^(1/n) at n = N = 60
    assert res["radius_root_test"] == pytest.approx(2.0 * 2.0 ** (1 / 60), rel=1e-12)


def test_error_shrinks_inside_and_grows_outside(res) -> None:
    for probe, err, rate in zip(res["probes"], res["errors"], res["trend"]["rates"]):
        # |T_n(x) - f(x)| = (x/a)^(n+1)/(x+a): geometric with rate x/R exactly
        assert rate == pytest.approx(probe, rel=1e-4)  # float64 rounding of ~1e-13 errors at x = R/2
        steps = np.diff(np.log(err))
        assert np.all(steps < 0) if probe < 1 else np.all(steps > 0)
    assert res["trend"]["ok"]


def test_odd_polynomials_vanish_at_the_radius(res) -> None:
    # T_n(x) = (1 - (x/a)^(n+1))/(x+a) for odd n: zero at x = a = 2 for orders 1, 5, 15
    assert list(res["orders"]) == [1, 5, 15]
    np.testing.assert_allclose(res["T_at_a"], 0.0, atol=1e-15)
    x, T = res["x"], res["T"]
    assert np.all(T[:, x > 2.0] < 0)  # dashed in panel (a)


def test_claim_value_and_figure(res) -> None:
    claim = load_claims()["ghosts.fig2_pole_radius"]
    m = ghosts_fig2.measure(res)["ghosts.fig2_pole_radius"]
    assert "verdict" not in m  # numeric claim: the report compares value and tolerance
    assert abs(m["value"] - claim.paper_value) <= claim.tolerance
    fig = ghosts_fig2.plot(res)
    assert len(fig.axes) == 4
