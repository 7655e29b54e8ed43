"""bench_step at ci scale: the benchmark measures what it says."""

from __future__ import annotations

from repro import runner
from repro.experiments import bench_step


def test_bench_step_ci() -> None:
    stored = runner.run_experiment("bench_step", scale="ci", device="cpu", seed=0)
    row = stored["results"]["rows"][0]
    assert row["evals_per_step"] == 75 * 16  # 64-32-10 MLP, rank 4: D = 594, P = 75, V = 16
    assert 0 < row["forward_s"] <= row["step_s"]  # forward time is a part of the step's time
    assert row["evals_per_s"] == row["evals_per_step"] / row["step_s"]
    assert row["peak_mb"] > 0
    lines = bench_step.summary_lines(stored["results"])
    assert lines[0].strip().startswith("rank 4: evaluations/s: ")
    section = bench_step.report_section(stored["results"], stored["meta"])
    assert "| 4 | 594 | 75 | 1,200 |" in section


def test_reference_configuration_matches_digest_budget() -> None:
    cfg = bench_step.CONFIGS["cpu"]
    assert cfg.sizes == (784, 128, 10) and cfg.batch_size == 64 and cfg.ranks[0] == 4
