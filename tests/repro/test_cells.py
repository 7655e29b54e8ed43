"""Cells and executors (repro.cells, RunContext.map): a cell's result is bitwise the same whether it
is computed in this process, in a local process pool or on a real Dask ``distributed`` cluster;
failures are reported with their tracebacks while the other cells land; a killed worker's cell is
rescheduled; bad executor settings fail fast with a clear message."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from repro import cli, runner, storage
from repro.cells import (Cell, CellsFailedError, DaskExecutor, ExecutorUnavailable, InProcess, ProcessPool,
                         make_executor)
from repro.context import RunContext
from tests.repro import _cell_toys as toys

ROOT = Path(__file__).resolve().parents[2]


def _same(a, b, where: str = "") -> None:
    """Bitwise equality of nested results (dicts, lists, tensors, arrays, floats)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}/{i}")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), where
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    else:
        assert a == b and type(a) is type(b), f"{where}: {a!r} != {b!r}"


def _tiny_cells() -> list[Cell]:
    return [Cell(f"w{w}-seed{s}", toys.train_tiny, (w, s)) for w in (16, 48) for s in (0, 1, 2)]


@pytest.fixture(scope="module")
def dask_cluster():
    """A real two-process LocalCluster on the loopback interface; workers import this repository
    (PYTHONPATH) so that test cell functions reach them by reference."""
    distributed = pytest.importorskip("distributed")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([old] if old else []))
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=50)
    try:
        yield cluster
    finally:
        cluster.close()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def test_a_cell_is_a_module_level_function_with_a_file_safe_key() -> None:
    with pytest.raises(ValueError, match="module-level function"):
        Cell("a", lambda ctx: 1)
    with pytest.raises(ValueError, match="file-name-safe"):
        Cell("a/b", toys.train_tiny, (8, 0))
    with pytest.raises(ValueError, match="args must be a tuple"):
        Cell("a", toys.train_tiny, [8, 0])
    with pytest.raises(ValueError, match="unique"):
        RunContext().map([Cell("a", toys.fail_if, ("a", False)), Cell("a", toys.fail_if, ("a", False))])


def test_map_stores_each_cell_and_a_rerun_loads_them(tmp_path: Path) -> None:
    ctx = RunContext(seed=3, checkpoint_dir=tmp_path)
    values = ctx.map(_tiny_cells())
    assert [v["weight"].shape[0] for v in values] == [16, 16, 16, 48, 48, 48]  # in order
    assert ctx.forward_evals == 6 * 30 and len(ctx.seeds_used) == 6 and ctx.cells_compute_s > 0
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(f"{c.key}.json" for c in _tiny_cells())
    again = RunContext(seed=3, checkpoint_dir=tmp_path)
    reloaded = again.map(_tiny_cells())
    assert again.resumed_units == 6 and again.forward_evals == ctx.forward_evals
    assert again.seeds_used == ctx.seeds_used
    for a, b in zip(values, reloaded):
        assert a["loss"] == b["loss"] and np.array_equal(np.asarray(a["weight"]), np.asarray(b["weight"]))


def test_a_cell_runs_at_its_own_thread_count_whatever_the_process_uses() -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = RunContext(seed=0, threads=1).map(_tiny_cells()[:1])[0]
        assert one["threads"] == 1 and torch.get_num_threads() == 2  # restored afterwards
    finally:
        torch.set_num_threads(previous)


def test_in_process_pool_and_dask_cells_are_bitwise_identical(dask_cluster) -> None:
    serial = RunContext(seed=11).map(_tiny_cells())
    pool = ProcessPool(2)
    try:
        pooled = RunContext(seed=11, executor=pool).map(_tiny_cells())
    finally:
        pool.close()
    dask = DaskExecutor(dask_cluster.scheduler_address)
    try:
        ctx = RunContext(seed=11, executor=dask)
        remote = ctx.map(_tiny_cells())
        assert ctx.forward_evals == 6 * 30
    finally:
        dask.close()
    _same(serial, pooled, "pool")
    _same(serial, remote, "dask")
    # and the seed matters: another root seed gives other numbers
    assert RunContext(seed=12).map(_tiny_cells()[:1])[0]["loss"] != serial[0]["loss"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_failed_cells_are_reported_with_tracebacks_and_the_others_land(tmp_path: Path, jobs: int) -> None:
    cells = [Cell(k, toys.fail_if, (k, k in ("b", "d"))) for k in "abcde"]
    executor = make_executor(jobs=jobs)
    try:
        with pytest.raises(CellsFailedError) as info:
            RunContext(checkpoint_dir=tmp_path, executor=executor).map(cells)
    finally:
        executor.close()
    assert list(info.value.failures) == ["b", "d"]
    assert "failed on purpose" in str(info.value) and "ArithmeticError" in info.value.failures["b"].traceback
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == ["a", "c", "e"]
    fixed = [Cell(k, toys.fail_if, (k, False)) for k in "abcde"]
    ctx = RunContext(checkpoint_dir=tmp_path)
    values = ctx.map(fixed)
    assert ctx.resumed_units == 3 and [v["key"] for v in values] == list("abcde")  # only b, d computed


def test_a_cell_whose_dask_worker_dies_is_rescheduled(dask_cluster, tmp_path: Path) -> None:
    marker = tmp_path / "died"
    dask = DaskExecutor(dask_cluster.scheduler_address)
    try:
        values = RunContext(executor=dask).map([Cell("dies-once", toys.die_once, (str(marker), 5)),
                                                Cell("fine", toys.fail_if, ("fine", False))])
    finally:
        dask.close()
    assert marker.exists() and values[0] == {"value": 5} and values[1]["key"] == "fine"


def test_an_unreachable_scheduler_fails_within_seconds_naming_the_address() -> None:
    started = time.perf_counter()
    with pytest.raises(ExecutorUnavailable, match="127.0.0.1:9"):
        DaskExecutor("127.0.0.1:9", timeout_s=2)
    assert time.perf_counter() - started < 15


def test_bad_executor_options_are_usage_errors(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "ghosts_fig9", "--scale", "ci", "--jobs", "0"])
    assert info.value.code == 2 and "--jobs must be an integer >= 1" in capsys.readouterr().err
    assert cli.main(["run", "ghosts_fig9", "--scale", "ci", "--executor", "slurm"]) == 2
    assert "'local' or 'dask:HOST:PORT'" in capsys.readouterr().err
    assert isinstance(make_executor(), InProcess) and isinstance(make_executor(jobs=3), ProcessPool)


def test_an_experiment_gives_the_same_results_serially_in_a_pool_and_on_dask(tmp_path: Path, monkeypatch,
                                                                             dask_cluster) -> None:
    """The issue's acceptance test: a ci-scale experiment through each executor, results bitwise equal."""
    monkeypatch.setenv("POLYSTEP_FIGURES_DIR", str(tmp_path / "figures"))
    stored = {}
    for name, make in [("serial", lambda: InProcess()), ("pool", lambda: ProcessPool(2)),
                       ("dask", lambda: DaskExecutor(dask_cluster.scheduler_address))]:
        monkeypatch.setenv("POLYSTEP_RESULTS_DIR", str(tmp_path / name))
        executor = make()
        try:
            runner.run_experiment("hitting_time", scale="ci", device="cpu", force=True, make_figures=False,
                                  executor=executor)
        finally:
            executor.close()
        path = runner.result_path("hitting_time", "ci", 0, torch.device("cpu"))
        stored[name] = storage.load(path)
        assert stored[name]["meta"]["torch_threads"] == 1
    _same(stored["serial"]["results"], stored["pool"]["results"], "pool")
    _same(stored["serial"]["results"], stored["dask"]["results"], "dask")
    assert stored["pool"]["meta"]["executor"] == "process-pool" and stored["dask"]["meta"]["executor"] == "dask"
    for key in ("forward_evals", "seeds"):
        assert stored["serial"]["meta"][key] == stored["pool"]["meta"][key] == stored["dask"]["meta"][key]
