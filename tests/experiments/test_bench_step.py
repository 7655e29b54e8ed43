"""bench_step at ci scale: the benchmark measures what it says, for both evaluators."""

from __future__ import annotations

from repro import runner
from repro.experiments import bench_step


def test_bench_step_ci() -> None:
    stored = runner.run_experiment("bench_step", scale="ci", device="cpu", seed=0)
    row = stored["results"]["rows"][0]
    assert row["evals_per_step"] == 75 * 16  # 64-32-10 MLP, rank 4: D = 594, P = 75, V = 16
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
    assert row["setup_peak_mb"] > 0
    lines = bench_step.summary_lines(stored["results"])
    assert lines[0].strip().startswith("rank 4: evaluations/s: ")
    assert "speed-up over naive: " in lines[0]
    assert lines[1].strip().startswith("rank 4 naive: evaluations/s: ")
    section = bench_step.report_section(stored["results"], stored["meta"])
    assert "| 4 | 594 | 75 | 1,200 |" in section
    assert "| naive |" in section and "| fast |" in section


def test_reference_configuration_matches_digest_budget() -> None:
    cfg = bench_step.CONFIGS["cpu"]
    assert cfg.sizes == (784, 128, 10) and cfg.batch_size == 64 and cfg.ranks[0] == 4
