"""thm41_one_sided_limit at ci scale: the measured continuum has the properties the claims state; the
verdicts come from the rules in paper/claims.toml (thresholds read from the registry here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repro import claims as C
from repro.claims import claims_of, get_claim
from repro.experiments import thm41_one_sided_limit as exp
from tests.experiments.ci import run_at_ci, registry_claim_ids

CLAIM_IDS = (
    "polystep.thm41_softmax_is_lambda0", "polystep.thm41_rows_equal_a", "polystep.thm41_kl_monotone",
    "polystep.thm41_sinkhorn_limit", "polystep.thm41_small_lambda_linear", "polystep.thm41_figure_kl_bound",
    "polystep.thm41_osc_bound", "polystep.thm41_softmax_ot_gap_small_pv",
)


@pytest.fixture(scope="module")
def stored():
    return run_at_ci("thm41_one_sided_limit", force=True)


@pytest.fixture(scope="module")
def measured(stored):
    return C.measure(exp.ID, stored["results"])


def test_claims_are_the_registry_entries() -> None:
    assert set(exp.CLAIMS) == registry_claim_ids(exp.ID) == set(CLAIM_IDS)
    assert not hasattr(exp, "measure")
    for cid in CLAIM_IDS:  # exactly one @claim function each, in this module
        assert C.measuring_function(cid).__module__ == exp.__name__
    assert exp.CONFIGS["paper"] == exp.CONFIGS["cpu"]  # pure math: no larger paper scale



def test_every_problem_converged_and_grid_is_complete(stored) -> None:
    res = stored["results"]
    lams = res["lams"]
    assert lams[0] == 0.0 and math.isinf(lams[-1]) and 1e6 in lams and 1.0 in lams
    cfg = exp.CONFIGS["ci"]
    n = len(cfg.P_values) * len(cfg.V_values) * len(cfg.eps_values) * cfg.draws + len(cfg.nonuniform)
    assert len(res["problems"]) == n
    assert all(p["converged"] for p in res["problems"])
    assert sum(not p["uniform"] for p in res["problems"]) == len(cfg.nonuniform)


def test_softmax_end_and_rows(stored) -> None:
    for p in stored["results"]["problems"]:
        path = p["path"]
        assert path["softmax_closed_form_err"][0] < 1e-12  # lam = 0 is the closed-form row softmax
        assert path["dist_softmax"][0] == 0.0
        assert path["row_err"].max() < 1e-12  # rows equal a for every lam, a random for some problems
    assert stored["results"]["counterexample"]["path"]["row_err"].max() < 1e-12


def test_kl_monotone_to_zero_and_sinkhorn_end(stored) -> None:
    lams = stored["results"]["lams"]
    i6 = int(np.flatnonzero(lams == 1e6)[0])
    sinkhorn = get_claim("polystep.thm41_sinkhorn_limit")
    linear = get_claim("polystep.thm41_small_lambda_linear")
    for p in stored["results"]["problems"]:
        kl = p["path"]["kl"]
        assert np.all(np.diff(kl) <= 1e-12 * max(kl[0], 1.0))  # non-increasing up to rounding
        assert kl[0] > 0 and abs(kl[-1]) < 1e-12 < kl[0]
        assert p["path"]["dist_sinkhorn"][i6] <= sinkhorn.paper_value + sinkhorn.tolerance
        assert p["path"]["dist_sinkhorn"][-1] < 1e-12  # lam = inf is the Sinkhorn solver itself
        assert abs(p["slope"] - linear.paper_value) <= linear.tolerance  # linear departure, lam/eps <= 1e-2


def test_counterexample_violates_figure_bound_and_satisfies_osc_bound(stored) -> None:
    ce = stored["results"]["counterexample"]
    assert ce["C"].shape == (6, 8) and ce["eps"] == 0.01 and ce["lam"] == 1.0
    assert ce["bound"] == pytest.approx(0.01 * math.log(48))
    assert ce["kl"] > 10 * ce["bound"]  # 1.156 vs 0.0387: far beyond rounding
    assert ce["kl"] <= ce["osc_bound"]
    lams = ce["path"]["lam"]
    fin = (lams > 0) & np.isfinite(lams)
    assert np.any(ce["path"]["kl"][fin] > ce["path_figure_bound"][fin])  # fails on part of the path ...
    assert np.all(ce["path"]["kl"][fin] <= ce["path_osc_bound"][fin] + 1e-9)  # ... the osc bound never
    assert np.all(ce["grid_kl"] <= ce["grid_osc_bound"] + 1e-9)
    assert (ce["grid_kl"] > ce["grid_bound"]).sum() >= 1


def test_osc_bound_holds_on_every_random_instance(stored) -> None:
    lams = stored["results"]["lams"]
    fin = (lams > 0) & np.isfinite(lams)
    for p in stored["results"]["problems"]:
        assert np.all(p["path"]["kl"][fin] <= p["osc_bound"][fin] + 1e-9)


def test_gap_decreases_with_P(stored) -> None:
    gap = stored["results"]["gap"]
    trials = gap["trials"][str(gap["claim_V"])]
    assert trials.shape == (exp.CONFIGS["ci"].gap_trials, len(gap["P"]))
    mean = trials.mean(axis=0)
    assert np.all(mean > 0) and mean[-1] < 0.25 * mean[0]


def test_every_claim_is_measured_and_its_rule_evaluates(measured) -> None:
    assert set(measured) == set(claims_of(exp.ID)) == set(CLAIM_IDS)
    for cid, m in measured.items():
        assert set(m) == {"value", "detail", "evidence"} and m["detail"]
        assert isinstance(m["value"], (int, float))
        assert C.verdict(get_claim(cid), m) in C.VERDICTS  # the rule finds the evidence it needs


def test_measured_properties(stored, measured) -> None:
    """What each measurement says at ci: the exact identities hold to rounding, the figure's bound is
    violated (by the counterexample and elsewhere) while the osc bound never is, and the gap falls
    with P."""
    ce = stored["results"]["counterexample"]
    assert measured["polystep.thm41_softmax_is_lambda0"]["value"] < 1e-12
    assert measured["polystep.thm41_softmax_is_lambda0"]["evidence"]["exact_at_zero"] is True
    assert measured["polystep.thm41_rows_equal_a"]["value"] < 1e-12
    mono = measured["polystep.thm41_kl_monotone"]
    assert mono["value"] < 1e-12 and mono["evidence"]["kl_at_inf"] < 1e-12 < mono["evidence"]["min_kl_at_zero"]
    assert measured["polystep.thm41_sinkhorn_limit"]["evidence"]["dist_at_inf"] < 1e-12
    assert measured["polystep.thm41_sinkhorn_limit"]["evidence"]["median_tail_rate"] == pytest.approx(-1, abs=0.05)
    lin = measured["polystep.thm41_small_lambda_linear"]
    assert lin["evidence"]["nonfinite_slopes"] == 0
    assert lin["value"] in (lin["evidence"]["min_slope"], lin["evidence"]["max_slope"])  # the one farthest from 1
    fig = measured["polystep.thm41_figure_kl_bound"]
    assert fig["value"] == ce["kl"] and fig["evidence"]["counterexample_violated"]
    assert fig["evidence"]["violations_grid"] >= 1 and fig["evidence"]["violations_path"] >= 1
    assert f"{ce['bound']:.4g}" in fig["detail"]
    osc = measured["polystep.thm41_osc_bound"]
    assert 0 < osc["value"] <= 1 and osc["evidence"]["max_osc_excess"] < 0
    assert osc["evidence"]["figure_bound_violations"] >= fig["evidence"]["violations"]
    assert measured["polystep.thm41_softmax_ot_gap_small_pv"]["value"] < 0  # the trend goes the other way
    # the registered rules on these numbers: the checks of the reconstruction hold, the figure's bound
    # is refuted, the osc bound is its correction, and the figure note's trend is not reproduced
    for cid in CLAIM_IDS:
        expected = get_claim(cid).expected_verdict or "reproduced"
        assert C.verdict(get_claim(cid), measured[cid]) == expected, cid


def test_verdicts_follow_the_data(stored) -> None:
    """Perturbing the measured data flips the registered rules' verdicts."""
    import copy

    def verdicts_after(edit) -> dict:
        res = copy.deepcopy(stored["results"])
        edit(res)
        return {cid: C.verdict(get_claim(cid), m) for cid, m in C.measure(exp.ID, res).items()}

    def bad_row(res):
        res["problems"][0]["path"]["row_err"][3] = 1e-3

    def kl_rises(res):
        kl = res["problems"][0]["path"]["kl"]
        kl[5] = kl[4] + 1e-3

    def not_exact_at_zero(res):
        res["problems"][0]["path"]["dist_softmax"][0] = 1e-14

    def sinkhorn_far(res):
        res["problems"][0]["path"]["dist_sinkhorn"][-1] = 1e-6

    def figure_bound_holds(res):
        ce = res["counterexample"]
        ce["kl"] = 0.5 * ce["bound"]
        ce["path"]["kl"] = np.minimum(ce["path"]["kl"], 0.5 * ce["path_figure_bound"])
        ce["grid_kl"] = np.minimum(ce["grid_kl"], 0.5 * ce["grid_bound"])
        for p in res["problems"]:
            p["path"]["kl"] = np.minimum(p["path"]["kl"], 0.5 * p["figure_bound"])

    def osc_broken(res):
        p = res["problems"][1]
        p["path"]["kl"][6] = 2 * p["osc_bound"][6]

    def gap_increasing(res):
        V = str(res["gap"]["claim_V"])
        res["gap"]["trials"][V] = res["gap"]["trials"][V][:, ::-1].copy()

    assert verdicts_after(bad_row)["polystep.thm41_rows_equal_a"] == "not reproduced"
    assert verdicts_after(kl_rises)["polystep.thm41_kl_monotone"] == "not reproduced"
    assert verdicts_after(not_exact_at_zero)["polystep.thm41_softmax_is_lambda0"] == "not reproduced"
    assert verdicts_after(sinkhorn_far)["polystep.thm41_sinkhorn_limit"] == "not reproduced"
    holds = verdicts_after(figure_bound_holds)
    assert holds["polystep.thm41_figure_kl_bound"] == "reproduced"
    assert holds["polystep.thm41_osc_bound"] == "reproduced"  # nothing left to correct
    assert verdicts_after(osc_broken)["polystep.thm41_osc_bound"] == "not reproduced"
    assert verdicts_after(gap_increasing)["polystep.thm41_softmax_ot_gap_small_pv"] == "reproduced"


def test_figures_and_table(stored) -> None:
    import matplotlib.pyplot as plt

    from repro.figures import style

    with style():
        figs = exp.plot(stored["results"])
    assert set(figs) == {"continuum", "gap"}
    for fig in figs.values():
        assert all(ax.get_title() for ax in fig.axes)
        plt.close(fig)
    table = exp.table(stored["results"])
    assert table.count("\n") == 1 + len(CLAIM_IDS)
    assert table.count("`polystep.thm41") == len(CLAIM_IDS)
