"""bench_t5_budget: the T5 budget's arithmetic, the ci run's fields, the claims' rules on the
evidence their measuring functions give, and clear errors for bad configurations."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import torch

from repro import claims, registry
from repro.claims import claims_of, get_claim
from repro.context import RunContext
from repro.experiments import bench_t5_budget as exp
from repro.experiments import quickstart_digits
from repro.tasks.models import mlp
from tests.experiments.ci import measured_at_ci, run_at_ci

ALL_CLAIMS = {exp.KRONECKER_CLAIM, exp.QR_CLAIM, exp.BUDGET_CLAIM}


@pytest.fixture(scope="module")
def stored():
    return run_at_ci(exp.ID)


# ------------------------------------------------------------------------------------------ ci run
def test_ci_run_times_both_bases(stored) -> None:
    res, cfg = stored["results"], exp.CONFIGS["ci"]
    assert res["dataset"] == "digits" and res["sizes"] == [784, cfg.hidden, 10]
    assert res["n_params"] == 785 * cfg.hidden + (cfg.hidden + 1) * 10
    assert [r["basis"] for r in res["timing"]] == list(cfg.bases) == ["qr", "kronecker"]
    # the ci MLP 784-16-10 at rank 2: D = 2 (784 + 16) + 2 (16 + 10) + 16 + 10, P = ceil(D / 8), V = 16
    d = 2 * (784 + 16) + 2 * (16 + 10) + 16 + 10
    assert res["evals_per_step"] == -(-d // 8) * 16
    assert res["budget_evals"] == res["evals_per_step"] * cfg.budget_steps
    for r in res["timing"]:
        assert r["subspace_dim"] == d and r["evals_per_step"] == res["evals_per_step"]  # same D, both bases
        assert len(r["warmup_s"]) == cfg.warmup_steps and len(r["step_s_each"]) == cfg.timed_steps
        assert all(s > 0 for s in r["step_s_each"]) and r["setup_s"] > 0 and r["cpu_s"] > 0
        assert r["step_s"] == pytest.approx(np.mean(r["step_s_each"]), rel=1e-12)
        assert r["step_s_min"] <= r["step_s"]
        assert r["steps_per_s"] == pytest.approx(1 / r["step_s"], rel=1e-12)
        assert r["evals_per_s"] == pytest.approx(r["evals_per_step"] / r["step_s"], rel=1e-12)
        assert r["extrapolated_wall_s"] == pytest.approx(r["setup_s"] + cfg.budget_steps * r["step_s"], rel=1e-12)
        assert r["device"] == "cpu" and r["threads"] == exp.THREADS["ci"]
        # the fast closure took its structured path (all but the particles straddling two blocks)
        assert r["fast_path_share"] > 0.9
    # the structured basis builds far faster than the dense QR one (milliseconds vs a QR)
    setup = {r["basis"]: r["setup_s"] for r in res["timing"]}
    assert setup["kronecker"] < setup["qr"]


def test_ci_budget_runs_have_the_budget_and_the_accuracy(stored) -> None:
    res, cfg = stored["results"], exp.CONFIGS["ci"]
    assert [b["basis"] for b in res["budget"]] == list(cfg.budget_bases)
    for b in res["budget"]:
        assert b["steps"] == cfg.budget_steps and b["forward_evals"] == cfg.budget_steps * res["evals_per_step"]
        assert len(b["train_loss"]) == cfg.budget_steps and np.all(np.isfinite(b["train_loss"]))
        # the wall time holds its parts (loading, set-up, steps, checkpoints)
        assert b["wall_s"] >= b["load_s"] + b["setup_s"] + b["steps_s"] + b["checkpoint_s"] - 1e-9
        assert b["step_s"] == pytest.approx(b["steps_s"] / cfg.budget_steps)
        curve = b["curve"]
        assert list(curve["step"]) == sorted(exp._checkpoint_steps(cfg.budget_steps, cfg.checkpoints))
        assert curve["step"][-1] == cfg.budget_steps and curve["evals"][-1] == b["forward_evals"]
        val, test = np.asarray(curve["val_acc"]), np.asarray(curve["test_acc"])
        sel = int(np.argmax(val))  # the first checkpoint of best validation accuracy
        assert b["test_acc"] == test[sel] and b["val_acc"] == val[sel] and b["selected_step"] == curve["step"][sel]
        assert b["best_test_acc"] == test.max() and b["final_test_acc"] == test[-1]
        assert b["test_acc"] > 0.2  # learns something: ten classes, chance 0.1
        assert b["device"] == "cpu" and b["train_size"] > 0


def test_ci_measurements_give_the_evidence_of_the_rules(stored) -> None:
    res = stored["results"]
    m = measured_at_ci(exp.ID, res)  # every claim measured, rules evaluate, ci is indicative
    assert set(m) == ALL_CLAIMS == set(claims_of(exp.ID))
    rows = {r["basis"]: r for r in res["timing"]}
    assert m[exp.KRONECKER_CLAIM]["value"] == rows["kronecker"]["extrapolated_wall_s"]
    assert m[exp.QR_CLAIM]["value"] == rows["qr"]["extrapolated_wall_s"]
    run = next(b for b in res["budget"] if b["basis"] == "kronecker")
    ev = m[exp.BUDGET_CLAIM]["evidence"]
    assert m[exp.BUDGET_CLAIM]["value"] == run["wall_s"]
    assert ev["test_acc"] == 100 * run["test_acc"] and ev["best_test_acc"] == 100 * run["best_test_acc"]
    # a tiny digits model is not the T5 configuration: every rule says no, whatever the times
    for cid, x in m.items():
        assert x["evidence"]["dataset"] == "digits"
        assert claims.verdict(get_claim(cid), x) == "not reproduced"


def test_outputs(stored) -> None:
    import matplotlib.pyplot as plt

    res = stored["results"]
    lines = exp.summary_lines(res)
    assert lines[0].strip().startswith("qr: ") and "evals/s" in lines[0] and "extrapolated to" in lines[0]
    assert lines[2].strip().startswith("budget run (qr): ")
    section = exp.report_section(res, stored["meta"])
    assert "| qr | 1,678 |" in section and "| kronecker | 1,678 |" in section
    assert f"{res['budget_evals']:,} evaluations" in section
    fig = exp.plot(res)
    try:
        assert len(fig.axes) == 3  # rates, extrapolated wall, accuracy of the budget runs
    finally:
        plt.close(fig)
    no_budget = dict(res, budget=[])
    fig = exp.plot(no_budget)
    try:
        assert len(fig.axes) == 2
    finally:
        plt.close(fig)
    assert exp._budget_kronecker(no_budget) is None  # no budget run: the paper claim is not measured


# ------------------------------------------------------------------------------------- arithmetic
def test_extrapolation_arithmetic() -> None:
    assert exp.extrapolated_wall_s(0.0, 2.0, 1180) == 2360.0
    assert exp.extrapolated_wall_s(273.0, 2.5, 1180) == 273.0 + 2950.0
    assert exp.extrapolated_wall_s(1.5, 0.25, 1) == 1.75


def test_t5_budget_is_the_registered_one() -> None:
    """P V K of the paper configuration (counted on the Kronecker basis, same D as the dense one),
    times the budget steps, is the paper's 2.02e7 (polystep.audit_t5_budget) and the claims' params."""
    cfg = exp.CONFIGS["paper"]
    model = mlp((784, cfg.hidden, 10), torch.Generator().manual_seed(0))
    assert sum(p.numel() for p in model.parameters()) == 101_770
    ctx = RunContext(seed=0, device=torch.device("cpu"), scale="paper", progress=False)
    opt = exp._optimizer(model, replace(cfg, bases=("kronecker",)), "kronecker", ctx)
    assert opt.subspace.dim == 8 * (784 + 128) + 8 * (128 + 10) + 128 + 10 == 8538
    assert opt.num_particles == 1068 and opt.evals_per_step == 1068 * 16 == 17_088
    total = cfg.budget_steps * opt.evals_per_step
    assert total == 20_163_840
    audit = get_claim("polystep.audit_t5_budget")
    assert abs(total - audit.paper_value) <= audit.tolerance * audit.paper_value
    for cid in ALL_CLAIMS:
        p = get_claim(cid).extra
        assert p["evals_per_step"] == opt.evals_per_step and p["budget_steps"] == cfg.budget_steps
        assert p["batch_size"] == cfg.batch_size and p["rank"] == cfg.rank and p["max_wall_s"] == 3600.0


def test_configs_follow_the_paper() -> None:
    """T5's settings (paper/polystep_reconstruction.md §5.3, row MNIST), the same as quickstart_digits'
    paper configuration; cpu times both bases with at least the registered number of steps; paper
    runs the budget with the Kronecker basis; the benchmark runs alone after the pool."""
    q = quickstart_digits.CONFIGS["paper"]
    for scale in ("cpu", "paper"):
        c = exp.CONFIGS[scale]
        assert (c.dataset, c.hidden, c.batch_size, c.rank, c.particle_dim) == ("mnist", 128, 512, 8, 8)
        assert (c.eps, c.step_radius, c.probe_radius) == (q.eps, q.step_radius, q.probe_radius)
        assert (c.eps, c.step_radius, c.probe_radius) == ((10.0, 0.1), (5.0, 1.0), (10.0, 2.0))
        assert c.bases == ("qr", "kronecker") and c.budget_steps == 1180 and c.chunk_size == 1024
        assert c.timed_steps >= get_claim(exp.KRONECKER_CLAIM).extra["min_timed_steps"]
        assert exp.THREADS[scale] <= get_claim(exp.KRONECKER_CLAIM).extra["max_threads"]
    assert exp.CONFIGS["cpu"].budget_bases == () and exp.CONFIGS["paper"].budget_bases == ("kronecker",)
    assert getattr(registry.get(exp.ID), "NEEDS_QUIET_MACHINE", False) is True
    for cid in ALL_CLAIMS:
        c = get_claim(cid)
        assert c.experiment == exp.ID and c.rule and "evidence.device == 'cpu'" in c.rule
    assert get_claim(exp.BUDGET_CLAIM).scale == "paper"
    assert get_claim(exp.KRONECKER_CLAIM).scale == get_claim(exp.QR_CLAIM).scale == "cpu"


# ---------------------------------------------------------------------------------- claims' rules
def _timing_results(basis_walls: dict[str, tuple[float, float]], **over) -> dict:
    """Results of a T5 timing run (the paper configuration's shape) with the given (set-up s,
    step s) per basis: the input of the measuring functions, not a measured result."""
    cfg = exp.CONFIGS["cpu"]
    rows = []
    for basis, (setup, step) in basis_walls.items():
        rows.append({"basis": basis, "setup_s": setup, "warmup_s": [step], "step_s_each": [step] * cfg.timed_steps,
                     "step_s": step, "step_s_min": step, "cpu_s": 2 * step, "fast_path_share": 1.0,
                     "steps_per_s": 1 / step,
                     "evals_per_s": 17_088 / step, "evals_per_step": 17_088, "subspace_dim": 8538,
                     "particles": 1068, "timed_steps": over.get("timed_steps", cfg.timed_steps),
                     "budget_steps": 1180, "extrapolated_steps_s": 1180 * step,
                     "extrapolated_wall_s": exp.extrapolated_wall_s(setup, step, 1180),
                     "device": over.get("device", "cpu"), "threads": over.get("threads", 2)})
    return {"dataset": over.get("dataset", "mnist"), "sizes": [784, 128, 10], "n_params": 101_770,
            "batch_size": over.get("batch_size", 512), "rank": 8, "evals_per_step": 17_088,
            "budget_steps": 1180, "budget_evals": 20_163_840, "timing": rows, "budget": []}


@pytest.mark.parametrize("cid,basis", [(exp.KRONECKER_CLAIM, "kronecker"), (exp.QR_CLAIM, "qr")])
def test_cpu_claims_judge_the_extrapolation(cid: str, basis: str) -> None:
    c = get_claim(cid)

    def said(setup: float, step: float, **over) -> str:
        m = claims.measure(exp.ID, _timing_results({"qr": (setup, step), "kronecker": (setup, step)}, **over))[cid]
        return claims.judge(c, m, "cpu").verdict

    # 10 + 1180 x 2.5 = 2,960 s: under the hour; 10 + 1180 x 3.1 = 3,668 s: over it
    assert said(10.0, 2.5) == "reproduced"
    assert said(10.0, 3.1) == "not reproduced"
    assert said(700.0, 2.5) == "not reproduced"  # the set-up counts
    for over in ({"device": "cuda:0"}, {"batch_size": 256}, {"timed_steps": 2}, {"threads": 8},
                 {"dataset": "digits"}):
        assert said(10.0, 2.5, **over) == "not reproduced", over
    m = claims.measure(exp.ID, _timing_results({basis: (10.0, 2.5)}))[cid]
    assert m["value"] == 10.0 + 1180 * 2.5 and m["evidence"]["basis"] == basis
    assert claims.judge(c, m, "ci").verdict == claims.INDICATIVE  # below the registered scale
    # a run that did not time this basis does not measure the claim
    other = "qr" if basis == "kronecker" else "kronecker"
    assert cid not in claims.measure(exp.ID, _timing_results({other: (10.0, 2.5)}))


def _budget_results(wall: float, **over) -> dict:
    res = _timing_results({"kronecker": (0.01, 2.0)})
    steps = over.get("steps", 1180)
    res["budget"] = [{"basis": over.get("basis", "kronecker"), "wall_s": wall, "load_s": 2.0, "setup_s": 0.01,
                      "steps_s": wall - 10, "checkpoint_s": 5.0, "steps": steps,
                      "forward_evals": over.get("forward_evals", steps * 17_088), "evals_per_step": 17_088,
                      "step_s": (wall - 10) / steps, "test_acc": 0.9501, "val_acc": 0.9512, "best_test_acc": 0.9563,
                      "final_test_acc": 0.9487, "selected_step": 1100,
                      "curve": {"step": [steps], "evals": [steps * 17_088], "val_acc": [0.9512], "test_acc": [0.9501]},
                      "device": over.get("device", "cpu"), "threads": 2}]
    return res


def test_paper_claim_needs_the_full_budget_on_cpu() -> None:
    c = get_claim(exp.BUDGET_CLAIM)

    def judged(wall: float, **over):
        m = claims.measure(exp.ID, _budget_results(wall, **over))[exp.BUDGET_CLAIM]
        return m, claims.judge(c, m, "paper").verdict

    m, verdict = judged(3000.0)
    assert verdict == "reproduced" and m["value"] == 3000.0
    ev = m["evidence"]
    assert ev["device"] == "cpu" and ev["forward_evals"] == 20_163_840
    assert (ev["test_acc"], ev["best_test_acc"], ev["final_test_acc"]) == pytest.approx((95.01, 95.63, 94.87))
    assert judged(3700.0)[1] == "not reproduced"
    assert judged(3000.0, device="cuda:0")[1] == "not reproduced"  # says nothing about the CPU
    assert "not a CPU device" in judged(3000.0, device="cuda:0")[0]["detail"]
    assert judged(3000.0, steps=1000)[1] == "not reproduced"  # not the budget
    assert judged(3000.0, forward_evals=1180 * 17_000)[1] == "not reproduced"  # not P V K of T5
    assert claims.judge(c, judged(3000.0)[0], "cpu").verdict == claims.INDICATIVE
    # no Kronecker budget run (cpu scale, or a QR-only budget): the claim is not measured
    assert exp.BUDGET_CLAIM not in claims.measure(exp.ID, _budget_results(3000.0, basis="qr"))
    assert exp.BUDGET_CLAIM not in claims.measure(exp.ID, _timing_results({"kronecker": (0.01, 2.0)}))


# ------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("change,message", [
    ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ({"batch_size": 2.5}, "batch_size must be an integer >= 1"),
    ({"bases": ("qr", "dense")}, "unknown basis 'dense' in bases: must be one of ('qr', 'kronecker')"),
    ({"budget_bases": ("gaussian",)}, "unknown basis 'gaussian' in budget_bases"),
    ({"bases": ()}, "bases must name at least one of"),
    ({"bases": ("qr", "qr")}, "bases repeats a basis"),
    ({"timed_steps": 0}, "timed_steps must be an integer >= 1, got 0"),
    ({"budget_steps": -5}, "budget_steps must be an integer >= 1, got -5"),
    ({"dataset": "cifar10"}, "dataset must be one of ('mnist', 'digits'), got 'cifar10'"),
])
def test_bad_configuration_is_refused_before_any_work(change: dict, message: str, monkeypatch) -> None:
    def no_data(*_):
        raise AssertionError("data loaded before the configuration was checked")

    monkeypatch.setattr(exp, "_load", no_data)
    cfg = replace(exp.CONFIGS["ci"], **change)
    ctx = RunContext(seed=0, device=torch.device("cpu"), scale="ci", progress=False)
    with pytest.raises(ValueError, match=re.escape(message)):
        exp.run(cfg, ctx)
    assert ctx.forward_evals == 0
