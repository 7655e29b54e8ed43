"""ghosts_fig1_fig7 at ci scale: six architectures, one descent step of r * rho_a (JVP)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import repro.claims
from repro import registry
from repro.claims import claims_of, get_claim
from repro.experiments._ghosts_common import FAILURE_ACC_RETAINED, FAILURE_LOSS_RATIO, median_iqr
from tests.experiments.ci import run_at_ci

ID = "ghosts_fig1_fig7"


@pytest.fixture(scope="module")
def stored():
    return run_at_ci(ID)


@pytest.fixture(scope="module")
def measured(stored):
    return repro.claims.measure(ID, stored["results"])


def _median_acc(res: dict, arch: str) -> np.ndarray:
    return 100 * median_iqr(res["archs"][arch]["acc_retained"])[0]


def _median_loss_ratio(res: dict, arch: str) -> np.ndarray:
    return median_iqr(res["archs"][arch]["train_loss_ratio"])[0]


def test_all_six_architectures_swept_on_a_grid_through_r1(stored) -> None:
    res = stored["results"]
    assert set(res["archs"]) == {"linear", "mlp", "cnn", "mlp_ln", "cnn_bn", "transformer"}
    r = np.asarray(res["r"])
    assert np.all(np.diff(r) > 0) and np.any(r == 1.0) and r[0] == pytest.approx(1e-2) and r[-1] == pytest.approx(1e2)
    for arch in res["archs"].values():
        for run in arch["runs"]:
            assert 0 < run["rho_a"] < math.inf
            assert run["acc_retained"].shape == r.shape


def test_tiny_steps_change_nothing_and_descent_lowers_the_loss(stored) -> None:
    for name, arch in stored["results"]["archs"].items():
        for run in arch["runs"]:
            assert run["acc_retained"][0] == pytest.approx(1.0, abs=0.01), name
            assert run["train_loss_ratio"][0] == pytest.approx(1.0, abs=0.05), name
            # -g/||g|| is a descent direction: some step below the radius lowers the training loss
            assert run["train_loss_ratio"][run["r"] <= 1].min() < 1.0, name
            assert run["flip_fraction"][0] <= 0.01, name


def test_delta_a_batch_spread_is_bounded_by_the_full_set(stored) -> None:
    for arch in stored["results"]["archs"].values():
        for run in arch["runs"]:
            # a batch maximum can never exceed the maximum over the whole training split
            assert np.all(run["delta_a_batches_fixed_v"] <= run["delta_a_full"] * (1 + 1e-6))
            assert 0 <= run["cv_fixed_v"] < 1
            assert run["rho_a"] == pytest.approx(math.pi / run["delta_a_full"], rel=1e-5)


# ----------------------------------------------------------------------------------------------
# the contract: one measuring function per claim, rules that evaluate on what it gives


def test_every_claim_is_measured_and_its_rule_evaluates(stored, measured) -> None:
    module = registry.get(ID)
    assert not hasattr(module, "measure"), "measure() is replaced by the @claim functions"
    assert set(measured) == set(claims_of(ID)) == set(module.CLAIMS)  # all measurable at ci
    for cid, m in measured.items():
        assert "verdict" not in m
        assert repro.claims.verdict(get_claim(cid), m) in repro.claims.VERDICTS
        if get_claim(cid).scale != "ci":
            assert repro.claims.judge(get_claim(cid), m, "ci").verdict == repro.claims.INDICATIVE
    assert "|" in module.table(stored["results"])


def test_a_missing_linear_model_leaves_its_claim_unmeasured(stored) -> None:
    res = dict(stored["results"])
    res["archs"] = {a: v for a, v in res["archs"].items() if a != "linear"}
    m = repro.claims.measure(ID, res)
    assert "ghosts.fig7_linear_transition_r1" not in m
    assert set(m) == set(claims_of(ID)) - {"ghosts.fig7_linear_transition_r1"}


# ----------------------------------------------------------------------------------------------
# the measured properties at ci scale (recomputed from the raw curves, not from the module)


def test_no_failure_below_r1_but_every_net_collapses_by_r100(stored, measured) -> None:
    res = stored["results"]
    r = np.asarray(res["r"])
    ev = measured["ghosts.abstract_no_failure_below_r1"]["evidence"]
    assert ev["archs"] == [a for a in ev["archs"] if a in res["archs"]] and len(ev["archs"]) == 6
    for i, a in enumerate(ev["archs"]):
        acc, lr_ = _median_acc(res, a), _median_loss_ratio(res, a)
        assert ev["min_acc_below_r1"][i] == pytest.approx(acc[r < 1].min())
        assert ev["max_loss_ratio_below_r1"][i] == pytest.approx(lr_[r < 1].max())
        assert ev["min_acc_max_loss_all_r"][i] == pytest.approx([acc.min(), lr_.max()])
        # existence of the effect: a step of r = 100 radii destroys every model (accuracy or loss)
        assert acc.min() < 100 * FAILURE_ACC_RETAINED or lr_.max() >= FAILURE_LOSS_RATIO, a
        assert math.isfinite(ev["first_failure_r"][i]) and ev["first_failure_r"][i] > r[0], a
        # the collapse is a large-step effect: no architecture's loss ratio at r = 100 is below the one at r = 1
        assert lr_[-1] > np.interp(0.0, np.log(r), lr_), a


def test_collapse_point_is_the_first_accuracy_failure(stored, measured) -> None:
    res = stored["results"]
    r = np.asarray(res["r"])
    m = measured["ghosts.intro_collapse_twice_rho_a"]
    ev = m["evidence"]
    for a, rf in zip(ev["archs"], ev["r_fail_acc"]):
        acc = _median_acc(res, a)
        assert math.isfinite(rf), a  # every net loses 10% of its accuracy somewhere on the grid
        # before the crossing every grid point keeps >= 90%, after it the next one does not
        assert np.all(acc[r < rf * (1 - 1e-9)] >= 100 * FAILURE_ACC_RETAINED), a
        assert acc[np.searchsorted(r, rf * (1 - 1e-9))] < 100 * FAILURE_ACC_RETAINED, a
    assert m["value"] == pytest.approx(float(np.median(ev["r_fail_acc"])))
    # direction: the typical collapse lies beyond the radius, not inside it (at ci the under-trained
    # CNN+BN already crosses 90% between the grid points r = 0.46 and r = 1)
    assert m["value"] > 1.0
    # the 50% point comes after the 90% point
    assert all(h >= f for h, f in zip(ev["r_half"], ev["r_fail_acc"]) if math.isfinite(h))


def test_accuracy_retained_at_r1_is_the_worst_architecture(stored, measured) -> None:
    res = stored["results"]
    r = np.asarray(res["r"])
    m = measured["ghosts.fig1_accuracy_retained_below_r1"]
    ev = m["evidence"]
    at_r1 = [float(_median_acc(res, a)[r == 1.0][0]) for a in ev["archs"]]
    assert ev["acc_at_r1"] == pytest.approx(at_r1)
    assert m["value"] == pytest.approx(min(at_r1))
    assert 0 < m["value"] <= 100 + 1e-9
    # retained accuracy is (weakly) higher below the radius than far beyond it
    for a, below in zip(ev["archs"], ev["min_acc_below_r1"]):
        assert below >= _median_acc(res, a)[-1], a


def test_half_accuracy_points_lie_beyond_the_radius(stored, measured) -> None:
    res = stored["results"]
    r = np.asarray(res["r"])
    ev = measured["ghosts.fig1_half_accuracy_points"]["evidence"]
    paper = get_claim("ghosts.fig1_half_accuracy_points").extra["paper_half_points"]
    assert set(ev["archs"]) == set(paper)
    for a, h, q in zip(ev["archs"], ev["r_half"], ev["ratio_to_paper"]):
        acc = _median_acc(res, a)
        assert math.isfinite(h) and h > 1.0, a  # accuracy halves somewhere, and only beyond r = 1
        assert np.all(acc[r < h * (1 - 1e-9)] >= 50.0), a
        assert q == pytest.approx(h / paper[a])


def test_linear_transition_measures_the_linear_model(stored, measured) -> None:
    res = stored["results"]
    r = np.asarray(res["r"])
    m = measured["ghosts.fig7_linear_transition_r1"]
    ev = m["evidence"]
    assert m["value"] == pytest.approx(float(_median_acc(res, "linear")[r == 1.0][0]))
    assert "linear" not in ev["others"] and len(ev["others"]) == 5
    assert math.isfinite(ev["linear_r_half"]) and ev["linear_r_half"] > 1.0
    hold_r = get_claim("ghosts.fig7_linear_transition_r1").extra["others_hold_to_r"]
    for a, v in zip(ev["others"], ev["others_min_acc_up_to_hold_r"]):
        assert v == pytest.approx(_median_acc(res, a)[r <= hold_r].min()), a


def test_loss_inflation_rises_after_a_descent_dip(stored, measured) -> None:
    res = stored["results"]
    r = np.asarray(res["r"])
    rise = get_claim("ghosts.fig7_loss_inflation_onset").extra["rise_loss_ratio"]
    ev = measured["ghosts.fig7_loss_inflation_onset"]["evidence"]
    for a, rr, big, dip in zip(ev["archs"], ev["r_rise"], ev["loss_ratio_r100"], ev["min_loss_ratio"]):
        lr_ = _median_loss_ratio(res, a)
        assert math.isfinite(rr) and rr > r[0], a  # the loss does start rising on the grid
        assert np.all(lr_[r < rr * (1 - 1e-9)] < rise), a
        # sign: a descent step first lowers the loss (dip < 1), a step of 100 radii inflates it
        assert dip < 1.0 < rise <= big, a
        assert big == pytest.approx(lr_[-1])


def test_delta_a_cv_is_the_median_over_runs(stored, measured) -> None:
    res = stored["results"]
    m = measured["ghosts.app122_delta_a_batch_cv"]
    cvs = [u["cv_fixed_v"] for a in res["archs"].values() for u in a["runs"]]
    assert m["value"] == pytest.approx(float(np.median(cvs)))
    assert 0 < m["value"] < 1
    # Delta_a varies across mini-batches (a nonzero spread), and more when each batch takes its own
    # descent direction than along the one full-batch direction
    own = m["evidence"]["median_cv_own_v"]
    assert own > m["value"] > 0
