"""t5_mnist_baselines at ci scale (the digits stand-in, a 16-unit MLP, a few steps): every (method,
budget, seed) cell runs, the budgets are the ones declared, the protocol numbers are consistent, the
reduction decides known cases correctly, every claim's rule evaluates on the measurements, and bad
input is refused."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

from repro import claims
from repro.claims import get_claim
from repro.context import RunContext
from repro.experiments import t5_mnist_baselines as exp
from repro.tasks import t5_train
from repro.tasks.t5_train import (BASELINES, PAPER_GENERATIONS, PAPER_POLYSTEP_STEPS, baseline_generations,
                                  polystep_evals_per_step)
from tests.experiments._cells import first_cells
from tests.experiments.ci import measured_at_ci, registry_claim_ids, run_at_ci

CI = exp.CONFIGS["ci"]
PAPER = exp.CONFIGS["paper"]
CPU = exp.CONFIGS["cpu"]


@pytest.fixture(scope="module")
def stored():
    return run_at_ci(exp.ID)


def _population(method: str) -> int:
    return BASELINES[method][1].get("population", 2)


# ------------------------------------------------------------------------------------------ cells, budgets

def test_every_method_budget_and_seed_is_one_picklable_cell() -> None:
    for cfg in (CI, CPU, PAPER):
        cells = first_cells(exp, cfg)
        keys = [c.key for c in cells]
        per_seed = 2 + len(cfg.baselines) * len(cfg.budgets)  # PolyStep, Adam, baselines x budgets
        assert len(keys) == len(set(keys)) == len(cfg.seeds) * per_seed
        assert {"PolyStep-seed%d" % s for s in cfg.seeds} <= set(keys)
        assert {f"{m}-{b}-seed{cfg.seeds[-1]}" for m in BASELINES for b in ("paper", "matched")} <= set(keys)
        for c in cells:
            pickle.loads(pickle.dumps(c))  # a process pool or a Dask worker receives it pickled
    # the paper's configuration (paper/polystep_reconstruction.md §4 T5, §5.1, §5.3)
    assert PAPER.seeds == (42, 123, 456, 789, 1337) and PAPER.batch_size == 512 and PAPER.train_subset is None
    assert PAPER.steps == PAPER_POLYSTEP_STEPS and PAPER.max_subspace_dim is None and PAPER.basis == "qr"
    for cfg in (CI, CPU, PAPER):  # Adam: three steps per PolyStep OT step, as in the paper
        assert cfg.adam_steps == 3 * cfg.steps
    assert PAPER.hidden == 128 and PAPER.dataset == "mnist" and CPU.dataset == "mnist" and len(CPU.seeds) == 3


def test_paper_budgets_are_the_papers() -> None:
    # rank-8 hybrid subspace of 784-128-10: D = 8(784 + 128) + 128 + 8(128 + 10) + 10 = 8,538 coordinates,
    # P = ceil(D / 8) = 1,068 particles, x V = 16 vertices x K = 1 (paper/polystep_reconstruction.md §2.13)
    d = 8 * (784 + 128) + 128 + 8 * (128 + 10) + 10
    assert polystep_evals_per_step(PAPER) == -(-d // 8) * 16
    # the paper's 3,540 calls with amortization 3 are 1,180 OT steps: 2.02e7 forward passes (§2.13)
    assert PAPER_POLYSTEP_STEPS * 3 == PAPER.adam_steps and PAPER.steps // PAPER.eval_every == 30
    assert PAPER.steps * polystep_evals_per_step(PAPER) == 20_163_840
    for m, g in PAPER_GENERATIONS.items():
        assert baseline_generations(m, "paper", PAPER) == g  # at the paper's steps: the paper's numbers
        e = PAPER.steps * polystep_evals_per_step(PAPER)
        assert baseline_generations(m, "matched", PAPER) == e // _population(m)
    # the ratio is kept at other step counts (rounded)
    for cfg in (CPU, replace(CI, steps=1, eval_every=1)):
        for m, g in PAPER_GENERATIONS.items():
            assert baseline_generations(m, "paper", cfg) == round(cfg.steps * g / PAPER_POLYSTEP_STEPS) >= 1


def test_budgets_are_spent_as_declared(stored) -> None:
    res = stored["results"]
    e = res["evals_per_step"] * CI.steps
    assert res["evals_per_step"] == polystep_evals_per_step(CI)
    assert all(r["evals"] == e and r["steps"] == CI.steps for r in res["runs"]["PolyStep"])
    assert all(r["evals"] == r["steps"] == CI.adam_steps for r in res["runs"]["Adam"])  # one forward per step
    for m in BASELINES:
        pop = _population(m)
        for b in ("paper", "matched"):
            g = baseline_generations(m, b, CI)
            assert res["generations"][m][b] == g
            assert all(r["generations"] == g and r["evals"] == g * pop for r in res["runs"][f"{m}-{b}"]), (m, b)
        # matched: as many evaluations as PolyStep, to within one generation
        assert all(e - pop < r["evals"] <= e for r in res["runs"][f"{m}-matched"]), m
        # paper ratio: generations per PolyStep step as in the paper
        assert res["generations"][m]["paper"] == max(1, round(CI.steps * PAPER_GENERATIONS[m] / PAPER_POLYSTEP_STEPS))


def test_protocol_numbers_are_the_validation_selected_and_the_best_checkpoint(stored) -> None:
    n_checks = CI.steps // CI.eval_every
    for key, runs in stored["results"]["runs"].items():
        for r in runs:
            c = r["curve"]
            assert len(c["step"]) == n_checks, key  # the same number of checkpoints for every method
            sel = int(np.argmax(c["mlp_val_acc"]))
            assert r["test_acc"] == pytest.approx(c["mlp_test_acc"][sel]), key
            assert r["val_acc"] == pytest.approx(c["mlp_val_acc"].max()), key
            assert r["best_test_acc"] == pytest.approx(c["mlp_test_acc"].max()), key
            assert np.all(np.diff(c["evals"]) > 0) and c["evals"][-1] == r["evals"], key
            assert 0 <= r["test_acc"] <= r["best_test_acc"] <= 1


def test_every_method_of_a_seed_starts_from_the_same_parameters_and_batches() -> None:
    a = t5_train._setup(CI, 0, RunContext(seed=0))
    b = t5_train._setup(CI, 0, RunContext(seed=0))
    c = t5_train._setup(CI, 1, RunContext(seed=0))
    for pa, pb, pc in zip(a[1].parameters(), b[1].parameters(), c[1].parameters()):
        assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    xa, xb = next(a[2]), next(b[2])
    assert torch.equal(xa[0], xb[0]) and torch.equal(xa[1], xb[1])
    assert [type(m).__name__ for m in a[1]] == ["Linear", "ReLU", "Linear"]  # the paper's ReLU MLP


def test_polystep_with_the_papers_settings_learns() -> None:
    """Forty steps on the digits stand-in: the validation accuracy rises by at least 5 points from
    its first checkpoint (measured: +10; a step radius of 1e-6 leaves it flat).  The mean probe
    loss is no test of learning: it falls with the probe radius's schedule even without a move."""
    r = t5_train.train_polystep(replace(CI, steps=40, eval_every=10), 0, RunContext(seed=0))
    acc = r["curve"]["mlp_val_acc"]
    assert acc[-1] >= acc[0] + 0.05 and acc.max() > 0.15, acc  # 10 classes: chance is 0.1


# ------------------------------------------------------------------------------------------ claims

def test_every_claim_is_measured_and_its_rule_evaluates(stored) -> None:
    res = stored["results"]
    m = measured_at_ci(exp.ID, res)
    assert set(m) == registry_claim_ids(exp.ID) == set(exp.T5_CLAIMS) | {
        exp.LEADS_PAPER_CLAIM, exp.LEADS_MATCHED_CLAIM, exp.ADAM_CLAIM, exp.CMAES_WEAKEST_CLAIM}
    for cid, method in exp.T5_CLAIMS.items():  # the paper's protocol: mean best test accuracy (%)
        budget = "paper" if method in BASELINES else None
        v = m[cid]
        assert v["value"] == pytest.approx(exp.accuracies(res, method, budget, protocol="best_test").mean())
        assert v["evidence"]["val_selected_test_acc_mean"] <= v["value"] + 1e-9
        assert v["evidence"]["dataset"] == "digits" and v["evidence"]["seeds"] == len(CI.seeds)
    for cid in (exp.LEADS_PAPER_CLAIM, exp.LEADS_MATCHED_CLAIM):
        ev = m[cid]["evidence"]
        assert ev["comparisons"] == 3 and 0 <= ev["significant_wins"] <= ev["mean_wins"] <= 3
        assert m[cid]["value"] == ev["significant_wins"]
    ev = m[exp.LEADS_MATCHED_CLAIM]["evidence"]
    assert all(ev["polystep_evals"] - _population(b) < e <= ev["polystep_evals"]
               for b, e in zip(ev["baselines"], ev["baseline_evals"]))
    adam = m[exp.ADAM_CLAIM]
    assert adam["value"] == pytest.approx(exp.accuracies(res, "Adam").mean() - exp.accuracies(res, "PolyStep").mean())
    assert 0 <= adam["evidence"]["p_value"] <= 1
    assert m[exp.CMAES_WEAKEST_CLAIM]["evidence"]["others"] == 2


def _fake_results(acc: dict[str, list[float]]) -> dict:
    """Results with the given per-seed validation-selected accuracies (fractions) per run key."""
    def run(a: float) -> dict:
        return {"test_acc": a, "best_test_acc": min(1.0, a + 0.01), "evals": 100, "step_s": 0.0,
                "curve": {"step": np.array([1]), "evals": np.array([100]), "mlp_val_acc": np.array([a]),
                          "mlp_test_acc": np.array([a])}}
    n = len(next(iter(acc.values())))
    return {"seeds": list(range(n)), "runs": {k: [run(a) for a in v] for k, v in acc.items()},
            "dataset": "mnist", "baselines": list(BASELINES), "budgets": ["paper", "matched"],
            "train_subset": None, "batch_size": 128, "steps": 1, "evals_per_step": 100}


def test_the_reduction_decides_known_cases() -> None:
    """Synthetic per-seed accuracies with a known answer, through the measuring functions and the
    registered rules."""
    hi, mid, lo = [0.90, 0.91, 0.92], [0.80, 0.81, 0.79], [0.50, 0.52, 0.51]
    good = _fake_results({"PolyStep": hi, "Adam": [0.97, 0.975, 0.98],
                          **{f"{m}-{b}": (lo if m == "CMA-ES" else mid)
                             for m in BASELINES for b in ("paper", "matched")}})
    m = claims.measure(exp.ID, good)
    for cid in (exp.LEADS_PAPER_CLAIM, exp.LEADS_MATCHED_CLAIM, exp.ADAM_CLAIM, exp.CMAES_WEAKEST_CLAIM):
        assert claims.verdict(get_claim(cid), m[cid]) == "reproduced", (cid, m[cid]["detail"])
    assert m[exp.LEADS_PAPER_CLAIM]["value"] == 3
    assert m["polystep.t5_mnist_cmaes"]["value"] == pytest.approx(100 * (np.mean(lo) + 0.01))
    # PolyStep below one baseline at matched budgets; Adam below PolyStep; CMA-ES not the weakest
    bad = _fake_results({"PolyStep": hi, "Adam": lo, "CMA-ES-paper": mid, "CMA-ES-matched": mid,
                         "OpenAI-ES-paper": lo, "OpenAI-ES-matched": [0.95, 0.96, 0.97],
                         "SPSA-paper": mid, "SPSA-matched": mid})
    m = claims.measure(exp.ID, bad)
    assert m[exp.LEADS_PAPER_CLAIM]["value"] == 3
    assert m[exp.LEADS_MATCHED_CLAIM]["value"] == 2
    for cid in (exp.LEADS_MATCHED_CLAIM, exp.ADAM_CLAIM, exp.CMAES_WEAKEST_CLAIM):
        assert claims.verdict(get_claim(cid), m[cid]) == "not reproduced", (cid, m[cid]["detail"])


def test_rules_need_every_baseline_and_significance() -> None:
    for cid in (exp.LEADS_PAPER_CLAIM, exp.LEADS_MATCHED_CLAIM):
        c = get_claim(cid)
        assert c.scale == "cpu" and c.extra["alpha"] == 0.05
        assert claims.verdict(c, {"value": 3, "evidence": {"comparisons": 3, "significant_wins": 3}}) == "reproduced"
        assert claims.verdict(c, {"value": 2, "evidence": {"comparisons": 3, "significant_wins": 2}}) \
            == "not reproduced"
        assert claims.verdict(c, {"value": 2, "evidence": {"comparisons": 2, "significant_wins": 2}}) \
            == "not reproduced"  # a missing baseline cannot pass
    c = get_claim(exp.ADAM_CLAIM)
    assert claims.verdict(c, {"value": 2.0, "evidence": {"adam_minus_polystep_pp": 2.0, "p_value": 0.01}}) \
        == "reproduced"
    assert claims.verdict(c, {"value": 2.0, "evidence": {"adam_minus_polystep_pp": 2.0, "p_value": 0.2}}) \
        == "not reproduced"
    c = get_claim(exp.CMAES_WEAKEST_CLAIM)
    ok = {"cmaes_measured": True, "others": 2, "cmaes_below_count": 2}
    assert claims.verdict(c, {"value": 2, "evidence": ok}) == "reproduced"
    assert claims.verdict(c, {"value": 1, "evidence": ok | {"cmaes_below_count": 1}}) == "not reproduced"
    assert claims.verdict(c, {"value": 0, "evidence": ok | {"cmaes_measured": False, "cmaes_below_count": 0,
                                                             "others": 0}}) == "not reproduced"
    for cid in exp.T5_CLAIMS:  # the paper's cells: the paper value within the registered tolerance
        p = get_claim(cid)
        assert p.scale == "paper" and p.experiment == exp.ID
        assert claims.verdict(p, {"value": p.paper_value - p.tolerance / 2}) == "reproduced"
        assert claims.verdict(p, {"value": p.paper_value + 2 * p.tolerance}) == "not reproduced"


# ------------------------------------------------------------------------------------------ bad input

def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        baseline_generations("Nelder-Mead", "paper", CI)
    with pytest.raises(ValueError, match="budget must be one of"):
        baseline_generations("SPSA", "double", CI)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        baseline_generations("SPSA", "paper", replace(CI, steps=0))
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        polystep_evals_per_step(replace(CI, steps=0))
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        first_cells(exp, replace(CI, steps=0))
    with pytest.raises(ValueError, match="method must be one of"):
        first_cells(exp, replace(CI, baselines=("Nelder-Mead",)))
    with pytest.raises(ValueError, match="method must be one of"):
        t5_train.train_baseline("Nelder-Mead", "paper", CI, 0, RunContext(seed=0))
    with pytest.raises(ValueError, match="dataset must be one of"):
        t5_train.train_polystep(replace(CI, dataset="cifar10"), 0, RunContext(seed=0))
    with pytest.raises(ValueError, match="eval_every"):
        first_cells(exp, replace(CI, eval_every=0))
    with pytest.raises(ValueError, match="train_subset"):
        t5_train.load_t5_data("digits", train_subset=0, subset_seed=0)
    res = _fake_results({"PolyStep": [0.5, 0.6]})
    with pytest.raises(ValueError, match="needs a budget"):
        exp.accuracies(res, "SPSA")
    with pytest.raises(KeyError, match="no runs of 'SPSA-paper'"):
        exp.accuracies(res, "SPSA", "paper")


# ------------------------------------------------------------------------------------------ outputs

def test_table_and_plot_show_every_method(stored) -> None:
    import matplotlib.pyplot as plt

    res = stored["results"]
    text = exp.table(res)
    for cid in exp.T5_CLAIMS:
        assert f"| {get_claim(cid).paper_value} |" in text  # the paper's values, from the registry
    assert text.count("matched evals") == len(BASELINES)
    fig = exp.plot(res)
    try:
        left, right = fig.axes
        assert right.get_xscale() == "log"
        assert {ln.get_label() for ln in right.get_lines()} == {lbl for lbl, _, _ in exp._rows(res)}
        assert len(right.get_lines()) == 2 + 2 * len(BASELINES)
        stars = [ln for ln in left.get_lines() if ln.get_marker() == "*"]
        assert sorted(float(ln.get_ydata()[0]) for ln in stars) == \
            sorted(get_claim(c).paper_value for c in exp.T5_CLAIMS)
    finally:
        plt.close(fig)
