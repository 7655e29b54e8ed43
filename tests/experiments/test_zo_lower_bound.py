"""zo_lower_bound at ci scale: the grid, the query accounting, the fitted exponents on the tiny grid
against the linear-regime prediction, and the claims' measurements.

The three claims are registered at cpu scale: a ci run measures them (indicative, without verdict).
"""

from __future__ import annotations

import numpy as np
import pytest

from repro import claims as C
from repro.claims import get_claim
from repro.experiments import zo_lower_bound as exp
from tests.experiments._cells import first_cells
from tests.experiments.ci import measured_at_ci, registry_claim_ids, run_at_ci

CLAIM_IDS = ("polystep.zo_rates_match_lower_bound", "polystep.zo_dimension_dependence",
             "polystep.zo_baselines_dimension_dependence")


@pytest.fixture(scope="module")
def stored():
    return run_at_ci("zo_lower_bound", force=True)


@pytest.fixture(scope="module")
def res(stored):
    return stored["results"]


def test_claims_are_the_registry_entries() -> None:
    assert set(exp.CLAIMS) == registry_claim_ids(exp.ID) == set(CLAIM_IDS)
    for cid in CLAIM_IDS:
        assert C.measuring_function(cid).__module__ == exp.__name__


@pytest.mark.parametrize("scale", ["ci", "cpu"])
def test_cells_are_method_by_dimension(scale) -> None:
    cfg = exp.CONFIGS[scale]
    cells = first_cells(exp, cfg)
    assert [c.key for c in cells] == [f"{m}-D{d}" for m in cfg.methods for d in cfg.dims]
    assert cfg.reference_budget in cfg.budgets


def test_query_accounting(res, stored) -> None:
    cfg = exp.CONFIGS["ci"]
    dims, budgets = np.asarray(res["dims"]), np.asarray(res["budgets"])
    per_step = {"polystep": 2 * dims, "openai_es": np.full(len(dims), cfg.es_population),
                "spsa": np.full(len(dims), 2)}
    for name, s in res["series"].items():
        qps = np.asarray(s["queries_per_step"])
        np.testing.assert_array_equal(qps, per_step[s["method"]])  # P V K = (D/d_p)(2 d_p)(1) for PolyStep
        q = np.asarray(s["queries"])
        assert q.shape == (len(dims), len(budgets))
        assert np.all(q <= budgets[None, :]) and np.all(q > budgets[None, :] - qps[:, None])  # whole steps
        for o, g in s["g"].items():
            assert g.shape == (len(dims), len(budgets), cfg.seeds) and np.all(np.isfinite(g)) and np.all(g > 0)
    assert stored["meta"]["forward_evals"] >= sum(int(np.asarray(s["queries"]).max(axis=1).sum())
                                                  for s in res["series"].values())


def test_polystep_exponents_follow_the_linear_regime_on_the_tiny_grid(res) -> None:
    """PolyStep with r = 1/sqrt(t+1) and fixed eps is GD with a 1/t step once r_p ||grad|| << eps, so
    ||grad|| ~ T^-c with c = 1/(2 d_p eps) (Hessian I) and T = Q/(2D): b = -c, a = c. On the ci grid
    (T >= 15 steps) the Q-exponent is -c within 0.1 at both temperatures and the D-exponent within
    0.4 (measured: within 0.01 and 0.1; fewer steps at D = 64 leave some of the start-up transient)."""
    fs = exp.fits(res)
    s = res["settings"]
    for name, eps in (("polystep", s["eps"]), (f"polystep_eps{s['eps_theorem']:g}", s["eps_theorem"])):
        c = s["linear_regime_c"][f"{eps:g}"]
        assert c == pytest.approx(1.0 / (2 * s["particle_dim"] * eps))
        for o in res["series"][name]["g"]:
            f = fs[(name, o)]
            assert abs(f["b"] + c) < 0.1, (name, o, f["b"])
            assert abs(f["a"] - c) < 0.4, (name, o, f["a"])
            assert f["a_ci"][0] <= f["a"] <= f["a_ci"][1]


def test_baselines_are_slower_in_q_or_dimension_bound(res) -> None:
    """What the baselines do at ci: ES with a constant lr stalls at a noise floor (|b| small) that
    grows with D; SPSA (gains that do not depend on D) converges with a Q-exponent steeper than -1."""
    fs = exp.fits(res)
    es = fs[("openai_es", "quadratic")]
    assert abs(es["b"]) < 0.3 and es["a"] > 0.3
    assert fs[("spsa", "quadratic")]["b"] < -1.0


def test_every_claim_measured_and_indicative_at_ci(res) -> None:
    measured = measured_at_ci(exp.ID, res)
    assert set(measured) == set(CLAIM_IDS)
    m = measured["polystep.zo_rates_match_lower_bound"]
    fs = exp.fits(res)
    assert m["value"] == pytest.approx(max(abs(fs[("polystep", o)]["a"] + fs[("polystep", o)]["b"])
                                           for o in ("quadratic", "logcosh")))
    assert m["evidence"]["worst_q_exponent"] == pytest.approx(max(fs[("polystep", o)]["b"]
                                                                  for o in ("quadratic", "logcosh")))
    assert measured["polystep.zo_dimension_dependence"]["value"] == pytest.approx(fs[("polystep", "quadratic")]["d_slope"])
    for cid in CLAIM_IDS:
        assert get_claim(cid).scale == "cpu"
        assert C.judge(get_claim(cid), measured[cid], "ci").verdict == C.INDICATIVE


def test_table_and_plot(res) -> None:
    import matplotlib.pyplot as plt

    text = exp.table(res)
    assert "reference order sqrt(D/Q)" in text and "OpenAI-ES" in text and "SPSA" in text
    fig = exp.plot(res)
    assert len(fig.axes) == 4
    plt.close(fig)


@pytest.mark.parametrize("method", ["polystep", "openai_es", "spsa"])
def test_a_cell_is_bitwise_reproducible(method) -> None:
    """Same root seed, same cell: identical arrays (a cell's streams depend only on its arguments)."""
    import dataclasses

    from repro.context import RunContext

    cfg = dataclasses.replace(exp.CONFIGS["ci"], dims=(8,), budgets=(400, 800), reference_budget=400, seeds=2)
    a = exp._cell(method, 8, cfg, RunContext(seed=3, scale="ci"))
    b = exp._cell(method, 8, cfg, RunContext(seed=3, scale="ci"))
    c = exp._cell(method, 8, cfg, RunContext(seed=4, scale="ci"))
    assert a["g"].keys() == b["g"].keys()
    for k in a["g"]:
        assert np.array_equal(a["g"][k], b["g"][k]) and not np.array_equal(a["g"][k], c["g"][k])
