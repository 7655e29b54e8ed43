"""ghosts_fig3 at ci scale: sigma(pi) = 0.9586 and the sigmoid's Taylor radius is pi."""

from __future__ import annotations

import math

import numpy as np
import pytest

import repro.claims
from repro.claims import get_claim, verdict
from repro.experiments import ghosts_fig3
from tests.experiments.ci import measured_at_ci, run_at_ci

CID = "ghosts.fig3_sigmoid_radius"


@pytest.fixture(scope="module")
def res():
    return run_at_ci("ghosts_fig3")["results"]


def test_sigma_at_pi(res) -> None:
    assert res["sigma_pi"] == pytest.approx(1 / (1 + math.exp(-math.pi)), rel=1e-15)


def test_coefficients_of_the_sigmoid(res) -> None:
    c = res["coeffs"]
    # sigma(x) = 1/2 + x/4 - x^3/48 + x^5/480 - 17 x^7/80640 + ...
    np.testing.assert_allclose(c[[0, 1, 3, 5, 7]], [0.5, 0.25, -1 / 48, 1 / 480, -17 / 80640], rtol=1e-14)
    assert np.all(c[2::2] == 0)  # sigma - 1/2 is odd (noise below 1e-40 zeroed)


def test_radius_is_pi(res) -> None:
    # poles at +-i pi: c_n ~ 2 pi^-(n+1) for odd n
    assert res["radius_envelope"] == pytest.approx(math.pi, rel=1e-6)
    assert res["radius_ratio"] == pytest.approx(math.pi, rel=1e-6)
    assert math.pi < res["radius_root_test"] < 1.02 * math.pi  # biased high by ~ln(n)/n
    np.testing.assert_allclose(np.abs(res["poles"]), [math.pi, math.pi, 3 * math.pi, 3 * math.pi])


def test_taylor_polynomials_track_sigma_only_inside(res) -> None:
    for probe, err, rate in zip(res["probes"], res["errors"], res["trend"]["rates"]):
        assert rate == pytest.approx(probe, rel=2e-2)
        odd = err[1::2]
        assert (odd[-1] < 0.1 * odd[0]) if probe < 1 else (odd[-1] > 10 * odd[0])
    x, T, f = res["x"], res["T"], res["f"]
    inside, outside = x < 0.8 * math.pi, x > 1.2 * math.pi
    assert np.max(np.abs(T[-1, inside] - f[inside])) < 1e-3   # order 45
    assert np.min(np.abs(T[-1, outside] - f[outside])) > 1.0


def test_measurement(res) -> None:
    ms = measured_at_ci(ghosts_fig3.ID, res, expect={CID})
    m = ms[CID]
    assert m["value"] == res["sigma_pi"]
    ev = m["evidence"]
    assert ev["radius_envelope"] == res["radius_envelope"]
    assert ev["radius_rel_error"] == pytest.approx(abs(res["radius_envelope"] / math.pi - 1), abs=1e-18)
    assert ev["radius_rel_error"] < 1e-9  # exact poles at +-i pi: the envelope fit finds pi
    assert ev["probes_inside"] + ev["probes_outside"] == list(res["probes"])
    assert max(ev["probes_inside"]) < 1 < min(ev["probes_outside"])
    assert max(ev["rates_inside"]) < 1 < min(ev["rates_outside"])
    assert verdict(get_claim(CID), m) == "reproduced"


def test_rule_needs_the_radius_not_only_sigma_at_pi(res) -> None:
    # sigma(pi) alone is not the figure: a radius measured far from pi fails the rule
    m = repro.claims.measure(ghosts_fig3.ID, res)[CID]
    bad = {**m, "evidence": {**m["evidence"], "radius_rel_error": 0.1}}
    assert verdict(get_claim(CID), bad) == "not reproduced"


def test_figure_and_table(res) -> None:
    assert len(ghosts_fig3.plot(res).axes) == 4
    assert f"(paper: {get_claim(CID).paper_value:g})" in ghosts_fig3.table(res)
