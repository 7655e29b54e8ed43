"""hitting_time at ci scale: hitting-time data, cap bounds, trends and the ES/SPSA stall behind the
measurements. Every claim is measured at ci (the cpu-scale ones as indicative numbers); the verdicts
come from the rules in paper/claims.toml, whose thresholds the tests read from the registry.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from repro import claims as C
from repro.claims import claims_of, get_claim
from repro.experiments import hitting_time as exp
from tests.experiments.ci import registry_claim_ids, run_at_ci

CLAIM_IDS = ("polystep.hitting_time_geometric", "polystep.hitting_time_geometric_radial",
             "polystep.hitting_time_trends", "polystep.hitting_time_es_stall")


@pytest.fixture(scope="module")
def stored():
    return run_at_ci("hitting_time", force=True)


@pytest.fixture(scope="module")
def res(stored):
    return stored["results"]


def test_claims_are_the_registry_entries() -> None:
    assert set(exp.CLAIMS) == registry_claim_ids(exp.ID) == set(CLAIM_IDS)
    assert not hasattr(exp, "measure") and not hasattr(exp, "_measure_all")
    for cid in CLAIM_IDS:  # exactly one @claim function each, in this module
        assert C.measuring_function(cid).__module__ == exp.__name__
    radial = get_claim("polystep.hitting_time_geometric_radial")
    assert radial.registered == "post-hoc" and radial.corrects == "polystep.hitting_time_geometric"


@pytest.fixture(scope="module")
def measured(res):
    return C.measure(exp.ID, res)


def test_cells_grid_and_censoring(res) -> None:
    cfg = exp.CONFIGS["ci"]
    n = len(cfg.radial_dims) * len(cfg.radial_kinds) * len(cfg.radii) + len(cfg.separable_dims) * len(cfg.separable_radii)
    assert len(res["cells"]) == n
    for c in res["cells"]:
        assert len(c["tau"]) == cfg.n_runs and c["censored"] == 0
        assert np.all(np.asarray(c["tau"]) >= 1)
        assert 0 <= c["p_hat"] <= 1


def test_cap_bound_holds_and_radial_cells_are_geometric(res) -> None:
    """Radial cells: p_hat >= p_lower (4 SE) and E[tau] p_hat within the registered band of 1
    (ci: 500 chains, SE <= 0.04)."""
    band = get_claim("polystep.hitting_time_geometric_radial")
    for s in exp.summaries(res):
        if s["stair"] != "radial":
            continue
        assert s["p_hat"] >= s["p_lower"] - 4 * s["p_se"]
        assert s["p_hat"] >= s["p_vertex"] - 1e-12
        assert s["bound_ok"]
        assert s["product"] == pytest.approx(band.paper_value, abs=band.tolerance)


def test_separable_cell_drifts_below_the_geometric_law(res) -> None:
    """The separable staircase: the iterate moves within a level and E[tau] p_hat(x0) falls below the
    registered band (measured 0.59 at ci, 0.62 at cpu)."""
    band = get_claim("polystep.hitting_time_geometric")
    sep = [s for s in exp.summaries(res) if s["stair"] == "separable"]
    assert sep and all(s["moved"] > 0.5 and s["product"] < band.paper_value - band.tolerance for s in sep)


def test_stall_cell(res) -> None:
    st = res["stall"]
    assert st["p_hat"] == 0.0 and st["censored"] == len(st["tau"])


def test_trajectories_descend_or_park(res) -> None:
    lv = {tr["r"]: np.asarray(tr["levels"]) for tr in res["trajectories"]}
    assert lv[1.0][-1].mean() < lv[1.0][0].mean() - 5   # r_s = w keeps descending
    assert lv[0.5][-1].mean() >= lv[1.0][-1].mean()    # r_s = w/2 parks mid-shell


def test_es_spsa_zero_estimates(res) -> None:
    rows = [b for b in res["baselines"] if b["origin"] == "polystep_start"]
    assert rows and all(b["zero_fraction"] == 1.0 and b["level_changes"] == 0 for b in rows)


def test_every_claim_is_measured_and_its_rule_evaluates(measured) -> None:
    assert set(measured) == set(claims_of(exp.ID)) == set(CLAIM_IDS)
    for cid, m in measured.items():
        assert set(m) == {"value", "detail", "evidence"} and m["detail"] and m["evidence"]
        assert C.verdict(get_claim(cid), m) in C.VERDICTS  # the rule finds the evidence it needs
        assert C.judge(get_claim(cid), m, "ci").verdict in C.VERDICTS


def test_geometric_measurement(res, measured) -> None:
    """The original claim's numbers: the worst cell is the separable one, outside the band; the cells
    split into p_hat = 1, never moving, and informative ones."""
    summ = [s for s in exp.summaries(res) if s["p_hat"] > 0 and not s["censored"]]
    m = measured["polystep.hitting_time_geometric"]
    ev = m["evidence"]
    assert ev["n_cells"] == len(summ) == len(ev["cell_errors"]) == len(ev["cells"])
    assert ev["cell_errors"] == pytest.approx([abs(s["product"] - 1) for s in summ])
    worst = int(np.argmax(ev["cell_errors"]))
    assert ev["cells"][worst].startswith("separable") and abs(m["value"] - 1) == pytest.approx(max(ev["cell_errors"]))
    assert max(ev["cell_errors"]) > get_claim("polystep.hitting_time_geometric").tolerance  # the law fails there
    assert ev["cells_p_hat_one"] + ev["cells_never_move"] + ev["cells_informative"] == ev["n_cells"]
    assert ev["radial_p_hat_one"] + ev["radial_never_move"] + ev["radial_informative"] == ev["radial_cells"]
    assert ev["cells_p_hat_one"] == sum(s["p_hat"] == 1 for s in summ) > 0
    assert ev["radial_never_move"] > 0 and ev["radial_informative"] >= 1  # ci: d_p = 4 simplex r_s = w moves
    assert len(ev["informative_errors"]) == ev["cells_informative"]


def test_radial_measurement(res, measured) -> None:
    m = measured["polystep.hitting_time_geometric_radial"]
    ev = m["evidence"]
    rad = [s for s in exp.summaries(res) if s["stair"] == "radial"]
    assert len(ev["radial_cell_errors"]) == len(rad)
    assert max(ev["radial_cell_errors"]) <= get_claim("polystep.hitting_time_geometric_radial").tolerance
    assert ev["cap_bound_violations"] == 0 and ev["radial_informative"] >= 1
    assert ev["max_product_all_cells"] == pytest.approx(max(s["product"] for s in exp.summaries(res) if s["p_hat"] > 0))


def test_trends_and_stall_measurements(measured) -> None:
    t = measured["polystep.hitting_time_trends"]
    assert t["value"] == 0 and sum(t["evidence"]["reversals"]) == 0
    assert all(n > 0 for n in t["evidence"]["strict_pairs"])  # every trend seen beyond Monte-Carlo error
    assert t["evidence"]["reversal_se"] == get_claim("polystep.hitting_time_trends").extra["reversal_se"]
    e = measured["polystep.hitting_time_es_stall"]
    assert e["value"] == 1.0 and e["evidence"]["level_changes"] == 0


def test_verdicts_follow_the_data(res) -> None:
    def after(edit):
        r = copy.deepcopy(res)
        edit(r)
        return {cid: C.verdict(get_claim(cid), m) for cid, m in C.measure(exp.ID, r).items()}

    def only_radial(r):
        r["cells"] = [c for c in r["cells"] if c["stair"] == "radial"]

    def reversed_d(r):  # make E[tau] fall with d_p
        for c in r["cells"]:
            if c["stair"] == "radial" and c["d"] == max(cc["d"] for cc in r["cells"]):
                c["tau"] = np.ones_like(np.asarray(c["tau"]))

    def es_moves(r):
        r["baselines"][0]["zero_fraction"] = 0.5

    def es_changes_level(r):
        r["baselines"][0]["level_changes"] = 1

    def nothing_moves(r):  # every radial cell uninformative: the radial claim cannot pass
        for c in r["cells"]:
            c["moved"] = 0.0

    def cap_bound_broken(r):
        c = next(c for c in r["cells"] if c["stair"] == "radial" and c["p_lower"] > 0)
        c["p_lower"] = 2.0 / np.mean(c["tau"])  # 1/p_lower = E[tau]/2 < E[tau]

    base = after(lambda r: None)
    assert base["polystep.hitting_time_geometric"] == "not reproduced"  # the separable cell
    assert base["polystep.hitting_time_geometric_radial"] == "reproduced"
    assert after(only_radial)["polystep.hitting_time_geometric"] == "reproduced"
    assert after(reversed_d)["polystep.hitting_time_trends"] == "not reproduced"
    assert after(es_moves)["polystep.hitting_time_es_stall"] == "not reproduced"
    assert after(es_changes_level)["polystep.hitting_time_es_stall"] == "not reproduced"
    assert after(nothing_moves)["polystep.hitting_time_geometric_radial"] == "not reproduced"
    assert after(cap_bound_broken)["polystep.hitting_time_geometric_radial"] == "not reproduced"


def test_figures_and_table(res) -> None:
    import matplotlib.pyplot as plt

    from repro.figures import style

    with style():
        figs = exp.plot(res)
    assert set(figs) == {"hitting", "baselines"}
    for fig in figs.values():
        assert all(ax.get_title() or ax.get_ylabel() or ax.get_xlabel() for ax in fig.axes)
        plt.close(fig)
    table = exp.table(res)
    assert table.count("`polystep.hitting_time") == len(CLAIM_IDS) and "E[tau] p_hat" in table
