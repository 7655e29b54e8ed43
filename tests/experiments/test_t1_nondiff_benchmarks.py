"""t1_nondiff_benchmarks at ci scale (the digits stand-in, a few steps): every (task, method, budget,
seed) cell runs, the budgets are the ones declared, the protocol numbers are consistent, and every
claim's rule evaluates on the measurements."""

from __future__ import annotations

import numpy as np
import pytest

from repro import claims
from repro.claims import get_claim
from repro.experiments import t1_nondiff_benchmarks as exp
from repro.tasks.t1_train import BASELINES, baseline_generations, polystep_evals_per_step
from tests.experiments._cells import first_cells
from tests.experiments.ci import measured_at_ci, run_at_ci

CI = exp.CONFIGS["ci"]


@pytest.fixture(scope="module")
def stored():
    return run_at_ci(exp.ID)


def test_every_task_method_budget_and_seed_is_one_cell() -> None:
    keys = [c.key for c in first_cells(exp, CI)]
    per_task = 2 + len(BASELINES) * len(CI.budgets)  # PolyStep, Adam-smooth, baselines x budgets
    assert len(keys) == len(set(keys)) == len(CI.seeds) * (len(CI.tasks) * per_task + 1)  # + BPTT on the SNN
    assert "snn-BPTT-seed0" in keys and "int8-BPTT-seed0" not in keys
    assert "moe-OpenAI-ES-matched-seed1" in keys and "staircase-CMA-ES-paper-seed0" in keys
    paper = exp.CONFIGS["paper"]
    assert paper.seeds == (42, 123, 456, 789, 1337) and paper.batch_size == 512 and paper.train_subset is None
    assert len(first_cells(exp, paper)) == 5 * 5 * 8 + 5


def test_budgets_are_spent_as_declared(stored) -> None:
    res = stored["results"]
    for t in res["tasks"]:
        runs = res["runs"][t]
        e = polystep_evals_per_step(t, CI) * CI.steps[t]
        assert all(r["evals"] == e for r in runs["PolyStep"])
        for m, (_, opts, _, _) in BASELINES.items():
            pop = opts.get("population", 2)
            for b in ("paper", "matched"):
                g = baseline_generations(t, m, b, CI)
                assert all(r["evals"] == g * pop for r in runs[f"{m}-{b}"]), (t, m, b)
            # matched: the baseline evaluates as many losses as PolyStep, to within one generation
            assert all(e - pop < r["evals"] <= e for r in runs[f"{m}-matched"]), (t, m)


def test_protocol_numbers_are_the_validation_selected_and_the_best_checkpoint(stored) -> None:
    for t, runs in stored["results"]["runs"].items():
        for key, rs in runs.items():
            for r in rs:
                name = "smooth" if key == "Adam-smooth" else "hard"
                c = r["curve"]
                sel = int(np.argmax(c[f"{name}_val_acc"]))
                assert r["test_acc"] == pytest.approx(c[f"{name}_test_acc"][sel]), (t, key)
                assert r["best_test_acc"] == pytest.approx(c[f"{name}_test_acc"].max()), (t, key)


def test_every_claim_is_measured_and_its_rule_evaluates(stored) -> None:
    m = measured_at_ci(exp.ID, stored["results"])
    assert len(m) == 24 + 5 + 4
    res = stored["results"]
    # the paper's cells: value = mean best test accuracy (%), validation-selected beside it
    v = m["polystep.t1_int8_polystep"]
    assert v["value"] == pytest.approx(np.mean(exp.accuracies(res, "int8", "PolyStep", protocol="best_test")))
    assert v["evidence"]["val_selected_test_acc_mean"] <= v["value"] + 1e-9
    cmp = m[exp.STEP_MATCHED_CLAIM]["evidence"]
    assert cmp["comparisons"] == 15 and 0 <= cmp["significant_wins"] <= cmp["mean_wins"] <= 15
    gap = m["polystep.abstract_snn_gap_to_adam"]
    assert gap["value"] == pytest.approx(gap["evidence"]["bptt_best_test"] - gap["evidence"]["polystep_best_test"])


def test_leads_rules_need_all_fifteen_pairs_significant() -> None:
    for cid in (exp.STEP_MATCHED_CLAIM, exp.MATCHED_EVALS_CLAIM):
        c = get_claim(cid)
        ok = {"value": 15, "evidence": {"comparisons": 15, "significant_wins": 15}}
        assert claims.verdict(c, ok) == "reproduced"
        assert claims.verdict(c, {"value": 14, "evidence": {"comparisons": 15, "significant_wins": 14}}) \
            == "not reproduced"
        assert claims.verdict(c, {"value": 10, "evidence": {"comparisons": 10, "significant_wins": 10}}) \
            == "not reproduced"  # a missing baseline cannot pass
    c = get_claim(exp.BPTT_CLAIM)
    assert claims.verdict(c, {"value": 3.0, "evidence": {"bptt_minus_polystep_pp": 3.0, "p_value": 0.01}}) \
        == "reproduced"
    assert claims.verdict(c, {"value": 3.0, "evidence": {"bptt_minus_polystep_pp": 3.0, "p_value": 0.2}}) \
        == "not reproduced"


def test_table_and_plot_show_every_task(stored) -> None:
    text = exp.table(stored["results"])
    for t in exp.TASK_NAMES:
        assert exp.TASKS[t].pretty in text
    assert "93.36" in text  # the paper's SNN PolyStep value, from the registry
    fig = exp.plot(stored["results"])
    assert len(fig.axes) == len(exp.TASK_NAMES)


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_every_scales_polystep_configuration_can_be_built(scale) -> None:
    """The cpu and paper configurations are never run here; building PolyStep for each of their
    tasks (Kronecker basis, no evaluation) catches a subspace cap below the bias floor or a bad
    schedule before a long run does.  The matched budgets must exceed the paper-ratio ones."""
    cfg = exp.CONFIGS[scale]
    for task in cfg.tasks:
        per_step = polystep_evals_per_step(task, cfg)
        assert per_step > 0
        for m in BASELINES:
            assert baseline_generations(task, m, "matched", cfg) >= 1
            if scale == "cpu":
                assert baseline_generations(task, m, "matched", cfg) > baseline_generations(task, m, "paper", cfg)
