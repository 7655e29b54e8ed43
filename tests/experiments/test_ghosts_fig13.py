"""ghosts_fig13 at ci scale: the Hessian-vs-radius numbers of Figure 13, shown consistently."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repro.experiments import ghosts_fig13
from theory import softmax_radius as sr
from tests.experiments.ci import run_at_ci


@pytest.fixture(scope="module")
def res():
    return run_at_ci("ghosts_fig13")["results"]


def test_numbers_at_delta_10(res) -> None:
    a = res["annotated"]
    assert a["delta"] == 10
    assert a["hessian_scale"] == pytest.approx(2 + 2 * math.cosh(10), rel=1e-14)
    assert round(a["hessian_scale"]) == 22028
    assert a["radius"] == pytest.approx(10.4819, abs=1e-4)
    assert round(a["ratio"]) == 2102                 # the figure's own numbers
    assert round(a["ratio_2_over_kappa"]) == 4203    # tau_H = 2/kappa: the caption's "> 4000x"
    assert round(a["ratio_vs_pi"]) == 7012
    # the same number as the ghosts_theory erratum claim computes
    assert a["ratio"] == pytest.approx(sr.logistic_hessian_scale(10.0) / math.hypot(10.0, math.pi))


def test_curves_never_cross_and_the_regimes(res) -> None:
    h, ratio = res["hessian_scale"], res["ratio"]
    np.testing.assert_allclose(h, 1 / (1 / (1 + np.exp(-res["delta"])) * (1 / (1 + np.exp(res["delta"])))),
                               rtol=1e-9)
    assert res["min_gap"] > 0 and np.all(ratio > res["ratio_inf"]) and res["ratio_inf"] == pytest.approx(4 / math.pi)
    assert res["at_pi"]["ratio"] == pytest.approx(5.668, abs=1e-3)
    assert res["max_ratio_mild"] == pytest.approx(res["at_pi"]["ratio"])   # ratio increases with delta
    assert np.all(np.diff(ratio) > 0)
    assert res["slope_log_hessian_top"] == pytest.approx(1.0, abs=1e-6)    # e^delta growth
    assert res["slope_loglog_radius_top"] == pytest.approx(0.9892, abs=1e-4)  # ~ linear


def test_claim_verdict_and_figure(res) -> None:
    m = ghosts_fig13.measure(res)["ghosts.fig13_hessian_vs_radius_curves"]
    assert m["verdict"] == "reproduced"
    assert "never cross" in m["detail"] and "2102" in m["detail"] and "4203" in m["detail"]
    assert len(ghosts_fig13.plot(res).axes) == 2
    assert "2,101.6" in ghosts_fig13.table(res) and "4,203.2" in ghosts_fig13.table(res)
