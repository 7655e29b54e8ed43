"""thm42_rates at ci scale: the runs have the properties the claims' measurements report, and the
registered rules' verdicts follow the data.

The rate claims are registered at ``cpu`` scale: a ci run measures them all the same (the report shows
such a number as indicative, :func:`repro.claims.judge`); thresholds are read from the registry.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from repro import claims as C
from repro.claims import claims_of, get_claim
from repro.experiments import thm42_rates as exp
from tests.experiments.ci import registry_claim_ids, run_at_ci

CLAIM_IDS = ("polystep.thm42_rate_smooth", "polystep.thm42_rate_envelope", "polystep.thm42_rate_nonsmooth",
             "polystep.thm42_jitter_condition", "polystep.thm42_constant_radius_plateau")


@pytest.fixture(scope="module")
def stored():
    return run_at_ci("thm42_rates", force=True)


@pytest.fixture(scope="module")
def res(stored):
    return stored["results"]


@pytest.fixture(scope="module")
def measured(res):
    return C.measure(exp.ID, res)


def test_claims_are_the_registry_entries() -> None:
    assert set(exp.CLAIMS) == registry_claim_ids(exp.ID) == set(CLAIM_IDS)
    assert not hasattr(exp, "measure") and not hasattr(exp, "_measure_all")
    for cid in CLAIM_IDS:  # exactly one @claim function each, in this module
        assert C.measuring_function(cid).__module__ == exp.__name__


def test_ci_run_counts_evaluations(stored) -> None:
    cfg = exp.CONFIGS["ci"]
    assert stored["meta"]["forward_evals"] >= cfg.steps * cfg.seeds * 2 * cfg.particle_dim


def test_series_shapes_and_running_minimum(res) -> None:
    cfg = exp.CONFIGS["ci"]
    T = np.asarray(res["T"])
    assert T[0] == cfg.t_min and T[-1] == cfg.steps
    probs = res["problems"]
    assert {p["group"] for p in probs.values()} == {"smooth", "nonsmooth", "sweep"}
    assert len(probs) == len(cfg.smooth) + len(cfg.nonsmooth) + len(cfg.eps_sweep)
    for name, p in probs.items():
        assert p["g_T"].shape == (len(T), cfg.seeds)
        assert np.all(np.diff(p["g_T"], axis=0) <= 0), name  # min over t <= T is non-increasing in T
        assert np.all(p["g_T"] >= 0)
        if p["measure"] == "grad":
            assert p["exponent"] == pytest.approx(p["lambda_min"] * p["r0"] ** 2 / (2 * p["particle_dim"] * p["eps"]))


def test_logcosh_decays_at_the_predicted_linear_regime_rate(res) -> None:
    """The log-cosh quadratic (lambda_min = 2 exactly: A has eigenvalues 1..10, log cosh adds 1): the
    fitted slope is -c within 0.15 for every eps of the sweep (measured: within 0.1 at ci and cpu)."""
    fs = exp.fits(res)
    for name, p in res["problems"].items():
        if p["kind"] == "logcosh" and p["dim"] == 8:
            assert p["lambda_min"] == pytest.approx(2.0, abs=1e-9)
            assert fs[name]["slope"] == pytest.approx(-p["exponent"], abs=0.15), name
            assert fs[name]["ci"][0] <= fs[name]["slope"] <= fs[name]["ci"][1]


def test_nonsmooth_runs_approach_the_minimiser(res) -> None:
    for name, p in res["problems"].items():
        if p["group"] == "nonsmooth":
            assert np.mean(p["dist_final"]) < 0.1  # measured ~0.03 after 1000 steps
            assert np.all(p["f_final"] >= p["f_min"] - 1e-9)


def test_constant_radius_regimes(res, measured) -> None:
    """Direct-search regime (eps = 1e-3): flat tail with a level growing with r (measured r^1.17: the
    registered O(r) condition, the fail rule's direct-search part, holds); main eps: decreasing tail
    for r = 0.1."""
    ps = exp.plateau_summary(res)
    small, main = ps[min(ps)], ps[max(ps)]
    assert small["plateau_all"] and small["exponent"] > 0
    assert np.all(np.diff([c["plateau"] for c in small["cells"]]) > 0)
    cl = get_claim("polystep.thm42_constant_radius_plateau")
    assert C.evaluate_rule(cl.fail_rule, measured[cl.id], cl)
    r01 = [c for c in main["cells"] if c["r"] == 0.1][0]
    assert r01["tail_slope"] < -1  # GD regime: still converging (to rounding at cpu scale)


def test_jitter_and_haar(res) -> None:
    eta = res["settings"]["eta_max"]
    fac = np.asarray(res["jitter"]["factor"])
    assert fac.min() >= 1 - eta and fac.max() <= 1 + eta
    h = res["jitter"]["haar"]
    assert h["det_err"] < 1e-12 and h["orth_err"] < 1e-12


def test_every_claim_is_measured_and_its_rule_evaluates(measured) -> None:
    """All five claims are measured at ci (four of them registered at cpu: indicative there)."""
    assert set(measured) == set(claims_of(exp.ID)) == set(CLAIM_IDS)
    for cid, m in measured.items():
        assert set(m) == {"value", "detail", "evidence"} and m["detail"]
        assert C.verdict(get_claim(cid), m) in C.VERDICTS  # the rule finds the evidence it needs
        j = C.judge(get_claim(cid), m, "ci")
        assert (j.verdict == C.INDICATIVE) == (get_claim(cid).scale != "ci")


def test_measured_properties(res, measured) -> None:
    """What the measurements say at ci: slopes are the fitted ones, the log-cosh series follow -c,
    the L1 instances decay (or reach exact stationarity), the jitter law is uniform and the rotations
    Haar, and constant radii plateau in the direct-search regime only."""
    fs = exp.fits(res)
    sm = measured["polystep.thm42_rate_smooth"]
    assert sm["value"] == max(sm["evidence"]["slopes"]) < 0
    assert sm["evidence"]["slopes"] == [fs[n]["slope"] for n in sm["evidence"]["problems"]]
    env = measured["polystep.thm42_rate_envelope"]
    assert env["value"] == max(env["evidence"]["max_over_min"]) >= 1
    ns = measured["polystep.thm42_rate_nonsmooth"]
    assert ns["value"] == max(ns["evidence"]["slopes"]) < 0 and ns["evidence"]["pooled_slope"] < 0
    jit = measured["polystep.thm42_jitter_condition"]
    assert jit["evidence"]["factor_in_range"] and jit["evidence"]["det_err"] < 1e-12
    assert jit["evidence"]["r11_sq_mean"] == pytest.approx(1 / jit["evidence"]["dim"], rel=0.1)
    assert C.holds(get_claim("polystep.thm42_jitter_condition"), jit)  # the ci-scale claim's rule holds
    pl = measured["polystep.thm42_constant_radius_plateau"]
    assert pl["evidence"]["direct_search_plateaus"] == pl["evidence"]["direct_search_cells"] > 0
    assert pl["evidence"]["direct_search_eps"] < pl["evidence"]["main_eps"]


def test_verdicts_follow_the_data(res) -> None:
    def verdicts_after(edit):
        r = copy.deepcopy(res)
        edit(r)
        return {cid: C.verdict(get_claim(cid), m) for cid, m in C.measure(exp.ID, r).items()}

    def measure_after(edit):
        r = copy.deepcopy(res)
        edit(r)
        return C.measure(exp.ID, r)

    def slow_smooth(r):  # make a smooth series decay like T^-0.1
        T = np.asarray(r["T"], dtype=float)
        p = next(p for p in r["problems"].values() if p["group"] == "smooth")
        p["g_T"] = np.outer(T ** -0.1, np.ones(p["g_T"].shape[1]))

    def fast_everything(r):
        T = np.asarray(r["T"], dtype=float)
        for p in r["problems"].values():
            p["g_T"] = np.outer(np.log(T) / np.sqrt(T), np.ones(p["g_T"].shape[1]))

    def bad_jitter(r):
        r["jitter"]["factor"] = np.full_like(np.asarray(r["jitter"]["factor"]), 1.0)

    def no_plateau(r):
        for c in r["constant"].values():
            c["value"] = c["value"] * (np.asarray(c["record"], dtype=float)[:, None] ** -1.0)

    def main_converges(r):  # the main-eps cells drop to rounding: the plateau is then a correction
        for c in r["constant"].values():
            if c["eps"] == max(cc["eps"] for cc in r["constant"].values()):
                c["value"] = c["value"].copy()
                c["value"][-1] = 0.0

    assert verdicts_after(slow_smooth)["polystep.thm42_rate_smooth"] == "not reproduced"
    m = measure_after(fast_everything)
    assert C.verdict(get_claim("polystep.thm42_rate_envelope"), m["polystep.thm42_rate_envelope"]) == "reproduced"
    assert m["polystep.thm42_rate_envelope"]["value"] == pytest.approx(1.0)  # exactly log T/sqrt T
    assert m["polystep.thm42_rate_smooth"]["value"] == pytest.approx(
        np.polyfit(np.log(res["T"]), np.log(np.log(res["T"]) / np.sqrt(res["T"])), 1)[0])
    assert verdicts_after(bad_jitter)["polystep.thm42_jitter_condition"] == "not reproduced"
    assert verdicts_after(no_plateau)["polystep.thm42_constant_radius_plateau"] == "not reproduced"
    assert verdicts_after(main_converges)["polystep.thm42_constant_radius_plateau"] == "corrected"
    base = verdicts_after(lambda r: None)
    assert base["polystep.thm42_constant_radius_plateau"] == "reproduced qualitatively"  # ci: 500 steps, no convergence yet


def test_exact_stationarity_counts_as_faster_than_any_power(res) -> None:
    r = copy.deepcopy(res)
    p = next(p for p in r["problems"].values() if p["group"] == "nonsmooth")
    p["g_T"][2:] = 0.0  # exactly stationary from the third horizon on
    name = next(n for n, q in r["problems"].items() if q is p)
    assert exp.fits(r)[name]["slope"] == -math.inf


def test_figures_and_table(res) -> None:
    import matplotlib.pyplot as plt

    from repro.figures import style

    with style():
        figs = exp.plot(res)
    assert set(figs) == {"rates", "ablation", "jitter"}
    for fig in figs.values():
        assert all(ax.get_title() or ax.get_xlabel() for ax in fig.axes)
        plt.close(fig)
    table = exp.table(res)
    assert table.count("`polystep.thm42") == len(CLAIM_IDS)
    assert "predicted −c" in table
