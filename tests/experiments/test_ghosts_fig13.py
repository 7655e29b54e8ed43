"""ghosts_fig13 at ci scale: the Hessian-vs-radius numbers of Figure 13, shown consistently."""

from __future__ import annotations

import math

import numpy as np
import pytest

import repro.claims
from repro.claims import get_claim, verdict
from repro.experiments import ghosts_fig13
from ghosts import softmax_radius as sr
from tests.experiments.ci import measured_at_ci, run_at_ci

CID = "ghosts.fig13_hessian_vs_radius_curves"


@pytest.fixture(scope="module")
def res():
    return run_at_ci("ghosts_fig13")["results"]


def test_numbers_at_delta_10(res) -> None:
    a = res["annotated"]
    d = a["delta"]
    assert d == ghosts_fig13.CONFIGS["ci"].annotate_delta
    h10, r10 = 2 + 2 * math.cosh(d), math.hypot(d, math.pi)   # closed forms of 1/f'' and R
    assert a["hessian_scale"] == pytest.approx(h10, rel=1e-14)
    assert a["radius"] == pytest.approx(r10, rel=1e-15)
    assert a["ratio"] == pytest.approx(h10 / r10, rel=1e-14)                # the figure's own numbers
    assert a["ratio_2_over_kappa"] == pytest.approx(2 * h10 / r10, rel=1e-14)  # tau_H = 2/kappa
    assert a["ratio_vs_pi"] == pytest.approx(h10 / math.pi, rel=1e-14)
    # the figure's own ratio, from the library's logistic Hessian scale (half the tau_H = 2/kappa one)
    assert a["ratio"] == pytest.approx(sr.logistic_hessian_scale(d) / math.hypot(d, math.pi))


def test_curves_never_cross_and_the_regimes(res) -> None:
    h, ratio = res["hessian_scale"], res["ratio"]
    np.testing.assert_allclose(h, 1 / (1 / (1 + np.exp(-res["delta"])) * (1 / (1 + np.exp(res["delta"])))),
                               rtol=1e-9)
    assert res["min_gap"] > 0 and np.all(ratio > res["ratio_inf"]) and res["ratio_inf"] == pytest.approx(4 / math.pi)
    assert res["at_pi"]["ratio"] == pytest.approx((2 + 2 * math.cosh(math.pi)) / (math.sqrt(2) * math.pi),
                                                  rel=1e-14)
    assert res["max_ratio_mild"] == pytest.approx(res["at_pi"]["ratio"])   # ratio increases with delta
    assert np.all(np.diff(ratio) > 0)
    top = res["delta_top"]
    assert res["slope_log_hessian_top"] == pytest.approx(math.tanh(top / 2), rel=1e-14)  # -> 1: e^delta
    assert res["slope_loglog_radius_top"] == pytest.approx(top**2 / (top**2 + math.pi**2), rel=1e-14)  # -> 1
    assert res["slope_loglog_radius_top"] < res["slope_log_hessian_top"] < 1


def test_measurement(res) -> None:
    ms = measured_at_ci(ghosts_fig13.ID, res, expect={CID})
    m = ms[CID]
    ev = m["evidence"]
    assert m["value"] == res["at_pi"]["ratio"]
    assert ev["max_ratio_mild"] == pytest.approx(m["value"])  # the ratio grows with delta
    assert ev["annotated_delta"] > math.pi
    assert ev["ratio_annotated"] == res["annotated"]["ratio"] > m["value"]  # grows beyond pi
    assert ev["ratio_annotated_2_over_kappa"] == pytest.approx(2 * ev["ratio_annotated"])
    assert ev["never_cross"] and ev["min_gap"] == res["min_gap"] > 0
    assert "never cross" in m["detail"] and f"{ev['ratio_annotated']:.0f}" in m["detail"]
    assert verdict(get_claim(CID), m) == "reproduced"


def test_rule_fails_without_the_exponential_regime(res) -> None:
    m = repro.claims.measure(ghosts_fig13.ID, res)[CID]
    ev = m["evidence"]
    # a Hessian scale growing like the radius (no catastrophe at the annotated margin) fails
    flat = {**m, "evidence": {**ev, "ratio_annotated": m["value"], "slope_log_hessian_top": 0.1}}
    assert verdict(get_claim(CID), flat) == "not reproduced"


def test_figure_and_table(res) -> None:
    assert len(ghosts_fig13.plot(res).axes) == 2
    a = res["annotated"]
    table = ghosts_fig13.table(res)
    assert f"{a['ratio']:,.1f}" in table and f"{a['ratio_2_over_kappa']:,.1f}" in table
