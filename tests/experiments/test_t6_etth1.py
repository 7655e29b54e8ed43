"""t6_etth1 at ci scale (a synthetic ETTh1-shaped series, a small LSTM, a few steps): every (method,
seed) cell runs, the budgets are the ones declared, the four protocols are what they say, every claim
is measured and its registered rule evaluates, and the cpu and paper configurations build."""

from __future__ import annotations

import numpy as np
import pytest

from repro import claims
from repro.claims import get_claim
from repro.experiments import t6_etth1 as exp
from repro.tasks.t6_train import (BASELINES, adam_steps, baseline_generations, ot_steps,
                                  polystep_evals_per_step)
from tests.experiments._cells import first_cells
from tests.experiments.ci import measured_at_ci, run_at_ci

CI = exp.CONFIGS["ci"]


@pytest.fixture(scope="module")
def stored():
    return run_at_ci(exp.ID)


def test_one_cell_per_method_and_seed_and_the_benchmark() -> None:
    keys = [c.key for c in first_cells(exp, CI)]
    assert len(keys) == len(set(keys)) == 5 * len(CI.seeds) + 1 and keys[-1] == "bench-population"
    assert {"PolyStep-seed0", "Adam-seed1", "OpenAI-ES-seed0", "SPSA-seed1", "CMA-ES-seed0"} <= set(keys)
    paper = exp.CONFIGS["paper"]
    assert paper.seeds == (42, 123, 456, 789, 1337) and len(first_cells(exp, paper)) == 26
    assert CI.dataset == "synthetic"  # ci downloads nothing


def test_budgets_are_spent_as_declared(stored) -> None:
    res = stored["results"]
    e = polystep_evals_per_step(CI) * ot_steps(CI)
    assert res["ot_steps"] == ot_steps(CI) == 3 and CI.amortize == 3
    assert all(r["evals"] == e and r["ot_steps"] == 3 for r in res["runs"]["PolyStep"])
    assert all(r["evals"] == adam_steps(CI) == round(CI.steps * 50 / 30) for r in res["runs"]["Adam"])
    for m, (_, opts) in BASELINES.items():
        pop = opts.get("population", 2)
        assert all(r["evals"] == baseline_generations(m, CI) * pop for r in res["runs"][m]), m


def test_the_four_protocols(stored) -> None:
    for m, runs in stored["results"]["runs"].items():
        for r in runs:
            c = r["curve"]
            sel = int(np.argmin(c["val_mse"]))
            assert r["test_mse"] == c["test_mse"][sel] and r["selected_step"] == c["step"][sel], m
            assert r["best_test_mse"] == c["test_mse"].min() <= r["test_mse"], m
            assert r["last_test_mse"] == c["test_mse"][-1], m
            # final: the selected state reloaded and evaluated again -- the same number
            assert r["final_test_mse"] == pytest.approx(r["test_mse"], rel=1e-9), m
            assert len(c["step"]) == (CI.adam_checkpoints if m == "Adam" else CI.checkpoints)
            assert np.all(np.isfinite(c["test_mse"])) and np.all(c["test_mae"] > 0)


def test_every_claim_is_measured_and_its_rule_evaluates(stored) -> None:
    res = stored["results"]
    m = measured_at_ci(exp.ID, res)
    assert len(m) == 6 + 5
    v = m["polystep.t6_etth1_polystep"]
    assert v["value"] == pytest.approx(exp.mse(res, "PolyStep", "best_test").mean())
    assert m["polystep.t6_etth1_polystep_final"]["value"] == pytest.approx(exp.mse(res, "PolyStep", "final").mean())
    gap = m["polystep.t6_cpu_protocol_gap"]["evidence"]
    assert gap["final_over_best"] >= 1.0  # best <= final by construction
    base = m["polystep.t6_cpu_polystep_beats_gradient_free"]["evidence"]
    assert 0 <= base["baselines_beaten"] <= 3 and len(base["baselines"]) == 3


def test_cpu_rules_can_fail() -> None:
    def verdict(cid, **evidence):
        return claims.verdict(get_claim(cid), {"value": 0, "evidence": evidence})

    assert verdict("polystep.t6_cpu_protocol_gap", final_over_best=2.17) == "reproduced"
    assert verdict("polystep.t6_cpu_protocol_gap", final_over_best=1.05) == "not reproduced"
    assert verdict("polystep.t6_cpu_last_epoch_above_final", last_minus_final=0.2) == "reproduced"
    assert verdict("polystep.t6_cpu_last_epoch_above_final", last_minus_final=-0.01) == "not reproduced"
    assert verdict("polystep.t6_cpu_best_protocol_polystep_below_adam", polystep_minus_adam_best=-0.07) == "reproduced"
    assert verdict("polystep.t6_cpu_best_protocol_polystep_below_adam", polystep_minus_adam_best=0.01) \
        == "not reproduced"
    assert verdict("polystep.t6_cpu_final_polystep_not_below_adam", polystep_minus_adam_final=0.012) == "reproduced"
    assert verdict("polystep.t6_cpu_final_polystep_not_below_adam", polystep_minus_adam_final=-0.1) \
        == "not reproduced"
    assert verdict("polystep.t6_cpu_polystep_beats_gradient_free", baselines_beaten=3) == "reproduced"
    assert verdict("polystep.t6_cpu_polystep_beats_gradient_free", baselines_beaten=2) == "not reproduced"
    # the paper's headline, at its registered tolerance
    c = get_claim("polystep.t6_etth1_polystep")
    assert claims.verdict(c, {"value": 0.125, "evidence": {}}) == "reproduced"
    assert claims.verdict(c, {"value": 0.3, "evidence": {}}) == "not reproduced"


def test_table_and_plot(stored) -> None:
    res = stored["results"]
    text = exp.table(res)
    for m in exp.METHODS:
        assert f"| {m} |" in text
    for cid in ("polystep.t6_etth1_polystep", "polystep.t6_etth1_polystep_final", "polystep.t6_etth1_cmaes"):
        assert f"| {get_claim(cid).paper_value:g} |" in text  # the paper's values, from the registry
    fig = exp.plot(res)
    assert len(fig.axes) == 2
    # the benchmark rows: PolyStep's candidates per OT step (ci: 400), each way checked on the losses
    for b in exp.BENCH_BLOCKS:
        row = res["bench"][b]
        assert row["population"] == polystep_evals_per_step(CI) == 400 and row["batch"] == CI.batch_size
        assert row["loop_max_abs_diff"] < 1e-5 and row["batched_max_abs_diff"] < 1e-5  # float32 rounding
        assert f"| {b} | {row['naive_s']:.3f} s |" in text


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_every_scales_configuration_builds(scale) -> None:
    """Never run here: building PolyStep (the hybrid subspace on the Kronecker basis) and the budgets
    catches a bad configuration before a long run does.  The paper scale reproduces the paper's
    counts (paper/polystep_reconstruction.md §2.13): 9,424 evaluations per OT step, 1,330 OT steps."""
    cfg = exp.CONFIGS[scale]
    per_step = polystep_evals_per_step(cfg)
    if scale == "paper":
        assert per_step == 9424 and ot_steps(cfg) == 1330 and adam_steps(cfg) == 6650
        assert [baseline_generations(m, cfg) for m in ("CMA-ES", "OpenAI-ES", "SPSA")] == [2000, 2000, 10000]
        assert cfg.dataset == "etth1" and cfg.batch_size == 64
        assert (cfg.seq_len, cfg.pred_len, cfg.hidden) == (96, 96, 64)
    else:
        assert per_step == 128 and cfg.dataset == "etth1" and cfg.momentum == (0.5, 0.95)


def test_population_benchmark_rows_agree_on_the_losses() -> None:
    row = exp.bench_population(6, batch=4, seq_len=10, pred_len=5, hidden=4, block="all")
    assert row["loop_max_abs_diff"] < 1e-5 and row["batched_max_abs_diff"] < 1e-5  # float32 rounding
    assert all(row[f"{k}_s"] > 0 for k in ("naive", "loop", "batched"))
