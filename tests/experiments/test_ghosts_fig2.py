"""ghosts_fig2 at ci scale: the Taylor series of 1/(x+2) has radius 2, read off its coefficients."""

from __future__ import annotations

import numpy as np
import pytest

import repro.claims
from repro.claims import get_claim, verdict
from repro.experiments import ghosts_fig2
from tests.experiments.ci import measured_at_ci, run_at_ci

CID = "ghosts.fig2_pole_radius"


@pytest.fixture(scope="module")
def res():
    return run_at_ci("ghosts_fig2")["results"]


def test_coefficients_are_the_geometric_series(res) -> None:
    # mpmath at 50 digits, rounded to float64: exact to the last bit
    assert res["coeff_max_rel_error"] < 1e-15
    np.testing.assert_allclose(res["coeffs"][:4], [0.5, -0.25, 0.125, -0.0625], rtol=0, atol=0)


def test_radius_estimates_from_the_coefficients(res) -> None:
    a = res["a"]  # the pole at -a sets the radius
    assert res["radius_envelope"] == pytest.approx(a, rel=1e-12)  # |c_n| = a^-(n+1) exactly
    assert res["radius_ratio"] == pytest.approx(a, rel=1e-12)
    # the plain root test is biased high by a^(1/n) at n = N = 60
    assert res["radius_root_test"] == pytest.approx(a * a ** (1 / 60), rel=1e-12)


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


def test_measurement(res) -> None:
    ms = measured_at_ci(ghosts_fig2.ID, res, expect={CID})
    m = ms[CID]
    assert m["value"] == res["radius_envelope"] == pytest.approx(res["a"], rel=1e-12)
    ev = m["evidence"]
    # the probes split at the radius and the measured rates sit on the right side of 1
    assert ev["probes_inside"] + ev["probes_outside"] == list(res["probes"])
    assert max(ev["probes_inside"]) < 1 < min(ev["probes_outside"])
    np.testing.assert_allclose(ev["rates_inside"] + ev["rates_outside"], res["probes"], rtol=1e-4)
    assert max(ev["rates_inside"]) < 1 < min(ev["rates_outside"])
    assert verdict(get_claim(CID), m) == "reproduced"


def test_rule_fails_when_the_error_trend_is_wrong(res) -> None:
    # a correct radius with an error that does not blow up outside the disk is not the paper's figure
    m = repro.claims.measure(ghosts_fig2.ID, res)[CID]
    bad = {**m, "evidence": {**m["evidence"], "rates_outside": [0.99, 1.5]}}
    assert verdict(get_claim(CID), bad) == "not reproduced"


def test_figure(res) -> None:
    fig = ghosts_fig2.plot(res)
    assert len(fig.axes) == 4
