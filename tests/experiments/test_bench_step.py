"""bench_step at ci scale: the benchmark measures what it says, for both evaluators."""

from __future__ import annotations

from repro.experiments import bench_step
from tests.experiments.ci import run_at_ci


def test_bench_step_ci() -> None:
    stored = run_at_ci("bench_step")
    rows = stored["results"]["rows"]
    assert [(r["model"], r["rank"], r["basis"]) for r in rows] == [
        ("mlp", 4, "qr"), ("mlp", 4, "kronecker"), ("snn", 4, "kronecker"), ("cnn", 2, "kronecker")]
    for row in rows:
        if row["model"] != "cnn":
            assert row["evals_per_step"] == 75 * 16  # 64-32-10 MLP, rank 4: D = 594, P = 75, V = 16
            assert row["subspace_dim"] == 594  # the structured basis keeps the paper's D
        assert set(row["evaluators"]) == {"naive", "fast"}
        for name, e in row["evaluators"].items():
            assert 0 < e["forward_s"] <= e["step_s"], name  # forward time is a part of the step's time
            assert e["evals_per_s"] == row["evals_per_step"] / e["step_s"]
            assert e["overhead_ratio"] == e["step_s"] / e["forward_s"]
            assert e["peak_mb"] > 0 and e["rss_before_mb"] > 0 and e["cpu_s"] > 0
        # the fast closure really took its structured path (all but the straddling/padding particles)
        assert row["evaluators"]["fast"]["fast_path_share"] > 0.9
        assert row["speedup"] == row["evaluators"]["naive"]["step_s"] / row["evaluators"]["fast"]["step_s"]
        assert row["max_abs_dz"] < 1e-5  # both evaluators take the same step from the same state
        assert row["loss_candidates"] == row["evals_per_step"] and row["loss_agreement"] >= 0.99
        if row["model"] != "snn":  # continuous: every candidate's loss agrees
            assert row["loss_agreement"] == 1.0 and row["loss_max_rel_diff"] <= 1e-5
        assert row["setup_peak_mb"] > 0 and row["setup_s"] > 0
    lines = bench_step.summary_lines(stored["results"])
    assert lines[0].strip().startswith("rank 4: evaluations/s: ")
    assert "speed-up over naive: " in lines[0] and "(basis qr, set-up " in lines[0]
    assert lines[1].strip().startswith("rank 4 (qr) naive: evaluations/s: ")
    assert lines[3].strip().startswith("rank 4: evaluations/s: ") and "(basis kronecker" in lines[3]
    assert lines[6].strip().startswith("rank 4: evaluations/s: ") and "model snn)" in lines[6]
    assert lines[7].strip().startswith("rank 4 (kronecker, snn) naive: ")
    section = bench_step.report_section(stored["results"], stored["meta"])
    assert "| mlp | 4 | qr | 594 | 75 | 1,200 |" in section
    assert "| mlp | 4 | kronecker | 594 | 75 | 1,200 |" in section
    assert "| snn | 4 | kronecker | 594 | 75 | 1,200 |" in section
    assert "| naive |" in section and "| fast |" in section


def test_reference_configuration_matches_digest_budget() -> None:
    cfg = bench_step.CONFIGS["cpu"]
    assert cfg.sizes == (784, 128, 10) and cfg.batch_size == 64 and cfg.rows[0] == ("mlp", 4, "qr")
    # both ranks of the issue, each with the paper's dense projection and the structured basis
    assert {(r, b) for m, r, b in cfg.rows if m == "mlp"} == {(4, "qr"), (4, "kronecker"),
                                                             (8, "qr"), (8, "kronecker")}
