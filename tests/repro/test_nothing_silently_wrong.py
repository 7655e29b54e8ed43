"""Regression tests of the hostile tester's findings on the reproduction machinery: results keyed by
the code that made them, artefacts kept per scale, result files that prove their integrity, clear
storage errors, and the report/plot commands that mixed seeds and ids.

Each test reproduces one original failure (named in its docstring) on a small fake experiment, so
the suite stays fast; tests/repro/test_harness_mutation.py runs the real end-to-end mutation.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from repro import cli, fingerprint, registry, report, runner, storage
from repro.cells import Cell
from repro.runner import CorruptResultWarning
from tests.repro import _cell_toys

ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------- fixtures
@dataclass(frozen=True)
class _Cfg:
    n: int = 3


def _fake_experiment(calls: list, *, units: int = 2, fail_after: int | None = None):
    """A module shaped like an experiment: ``units`` cells, each deriving a seed."""

    log = f"fake-{id(calls)}"
    _cell_toys.CALL_LOGS[log] = calls

    def run(cfg, ctx):
        out = []
        for u in range(units):
            if fail_after is not None and u >= fail_after:
                raise KeyboardInterrupt  # an interruption after `fail_after` units
            out.append(ctx.map([Cell(f"u{u}", _cell_toys.fake_unit, (log, u, cfg.n))])[0]["x"])
        return {"x": np.stack(out), "acc": float(np.mean(out))}

    return types.SimpleNamespace(ID="fake", TITLE="fake", CLAIMS=(), CONFIGS={s: _Cfg() for s in
                                 ("ci", "cpu", "paper")}, run=run,
                                 measure=lambda res: {"fake.acc": {"value": res["acc"]}})


@pytest.fixture()
def fake(monkeypatch, tmp_path):
    """Install a fake experiment ``fake`` with private results/figures folders; returns a factory."""
    monkeypatch.setenv("POLYSTEP_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("POLYSTEP_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setattr(runner, "code_fingerprint", lambda eid: "code-A")
    state = {}

    def install(**kw):
        calls: list = []
        module = _fake_experiment(calls, **kw)
        monkeypatch.setattr(registry, "get", lambda eid: module)
        monkeypatch.setattr(registry, "config", lambda eid, scale: module.CONFIGS[scale])
        state["module"] = module
        return calls

    return install


def _run(**kw):
    return runner.run_experiment("fake", scale=kw.pop("scale", "ci"), device="cpu", seed=kw.pop("seed", 0),
                                 **kw)


# ------------------------------------------------------------- 1. results keyed by the code
def test_fingerprint_covers_what_the_experiment_runs_and_not_the_bookkeeping() -> None:
    files = {p.as_posix() for p in fingerprint.source_files("ablation_kronecker_basis")}
    assert {"polystep/functional.py", "polystep/optim.py", "polystep/transport.py",
            "repro/runner.py", "repro/context.py", "repro/storage.py",  # the run machinery
            "repro/tasks/training.py",  # imported by the quickstart it builds on
            "repro/experiments/ablation_kronecker_basis.py",
            "repro/experiments/quickstart_digits.py"} <= files  # imported by the ablation
    # the verdict machinery, report, CLI and plot style change no measured number
    assert not files & {"repro/claims.py", "repro/report.py", "repro/cli.py", "repro/figures.py"}
    assert "repro/experiments/bench_step.py" not in files  # another experiment: not its code
    theory = {p.as_posix() for p in fingerprint.source_files("ghosts_theory")}
    assert {"repro/experiments/_ghosts_theory_claims.py", "ghosts/softmax_radius.py"} <= theory  # imported, transitively
    assert not any(f.startswith("polystep/") for f in theory)  # not imported by the ghosts theory
    with pytest.raises(KeyError, match="unknown experiment"):
        fingerprint.source_files("no_such_experiment")


def test_fingerprint_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """An import inside a function, and a relative one, pull the module in."""
    exp = tmp_path / "repro" / "experiments"
    exp.mkdir(parents=True)
    for pkg in (tmp_path / "repro", exp, tmp_path / "theory"):
        pkg.mkdir(exist_ok=True)
        (pkg / "__init__.py").write_text("")
    (tmp_path / "theory" / "deep.py").write_text("X = 1\n")
    (exp / "_helper.py").write_text("def f():\n    from theory.deep import X\n    return X\n")
    (exp / "toy.py").write_text("from . import _helper\n")
    files = {p.as_posix() for p in fingerprint.source_files("toy", root=tmp_path)}
    assert {"repro/experiments/toy.py", "repro/experiments/_helper.py", "theory/deep.py",
            "theory/__init__.py"} <= files
    before = fingerprint.code_fingerprint("toy", root=tmp_path)
    (tmp_path / "theory" / "deep.py").write_text("X = 2\n")
    assert fingerprint.code_fingerprint("toy", root=tmp_path) != before


def test_fingerprint_ignores_comments_and_docstrings_but_not_code(tmp_path: Path) -> None:
    """Editing a docstring or a comment (or reformatting) changes no number and keeps the
    fingerprint; changing a constant, even one inside a string that is not a docstring, does not."""
    exp = tmp_path / "repro" / "experiments"
    exp.mkdir(parents=True)
    for pkg in (tmp_path / "repro", exp):
        (pkg / "__init__.py").write_text("")
    toy = exp / "toy.py"

    def fp(text: str) -> str:
        toy.write_text(text)
        return fingerprint.code_fingerprint("toy", root=tmp_path)

    base = fp('"""Module doc."""\n\ndef f(x):\n    """Doc of f."""\n    return x + 1  # one\n')
    assert fp('"""Other doc."""\n\n\ndef f( x ):\n    """Edited."""\n    return (x + 1)  # a comment\n') == base
    assert fp('"""Module doc."""\n\ndef f(x):\n    """Doc of f."""\n    return x + 2\n') != base
    assert fp('"""Module doc."""\n\ndef f(x):\n    """Doc of f."""\n    "a statement"\n    return x + 1\n') != base
    assert fp('def f(x):\n    return x + 1\n') == base  # no docstrings at all: the same code


def test_fingerprint_changes_with_the_optimizer_source(tmp_path: Path) -> None:
    """Original failure: results were keyed by config only, so `particles + 0 * move` in
    polystep/functional.py was served the old (good) result."""
    for folder in ("polystep", "theory", "repro"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    before = fingerprint.code_fingerprint("quickstart_digits", root=tmp_path)
    assert before == fingerprint.code_fingerprint("quickstart_digits", root=tmp_path)  # stable
    src = tmp_path / "polystep" / "functional.py"
    text = src.read_text()
    assert "new_particles = particles + move" in text
    src.write_text(text.replace("new_particles = particles + move", "new_particles = particles + 0 * move"))
    assert fingerprint.code_fingerprint("quickstart_digits", root=tmp_path) != before
    src.write_text(text)  # and back: the same fingerprint again
    assert fingerprint.code_fingerprint("quickstart_digits", root=tmp_path) == before


def test_a_result_made_by_other_code_is_recomputed(fake, monkeypatch) -> None:
    calls = fake()
    first = _run()
    assert calls == [0, 1] and first["meta"]["code_fingerprint"] == "code-A"
    assert _run()["meta"]["wall_time_s"] == first["meta"]["wall_time_s"]  # same code: cached
    assert calls == [0, 1]
    monkeypatch.setattr(runner, "code_fingerprint", lambda eid: "code-B")
    again = _run()
    assert calls == [0, 1, 0, 1] and again["meta"]["code_fingerprint"] == "code-B"


def test_checkpoints_of_other_code_are_not_resumed(fake, monkeypatch) -> None:
    calls = fake(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        _run()
    assert calls == [0]
    monkeypatch.setattr(runner, "code_fingerprint", lambda eid: "code-B")
    fake_calls = fake()
    _run()
    assert fake_calls == [0, 1]  # unit 0 recomputed: its checkpoint was made by other code


def test_test_suite_cache_is_private_to_this_run(tmp_path_factory) -> None:
    """Original failure: the cache lived in pytest's per-user temp root, shared by every run."""
    from tests.conftest import _run_root

    if os.environ.get("POLYSTEP_TEST_CACHE"):
        pytest.skip("a developer opted into a shared test cache")
    results = Path(os.environ["POLYSTEP_RESULTS_DIR"])
    assert results == Path(_run_root(tmp_path_factory)) / "polystep-results"
    base = tmp_path_factory.getbasetemp()
    assert base == results.parent or base.parent == results.parent  # this run's own folder
    assert not str(results).startswith(str(ROOT))


# ------------------------------------------------------ 2. artefacts keep their scale
def test_a_ci_run_never_touches_cpu_artefacts_or_the_report(fake, tmp_path) -> None:
    """Original failure: `run <id> --scale ci` rewrote the committed cpu figures/sidecars, and the
    next `report` put ci numbers into REPORT.md."""
    fake()
    cpu = _run(scale="cpu")
    cpu_files = {p: p.read_bytes() for p in (tmp_path / "figures" / "cpu").iterdir()}
    assert cpu_files and cpu["meta"]["scale"] == "cpu"
    _run(scale="ci")
    assert {p: p.read_bytes() for p in (tmp_path / "figures" / "cpu").iterdir()} == cpu_files
    ci_sidecar = json.loads((tmp_path / "figures" / "ci" / "fake.json").read_text())
    assert ci_sidecar["meta"]["scale"] == "ci"
    found = report.find_result("fake")
    assert found["meta"]["scale"] == "cpu"
    assert found["measurements"] == json.loads((tmp_path / "figures" / "cpu" / "fake.json").read_text())["measurements"]


def test_report_ignores_ci_only_results(fake) -> None:
    fake()
    _run(scale="ci")
    assert report.find_result("fake") is None  # a ci run is indicative, never the report's basis


def test_report_on_a_fresh_clone_reproduces_the_committed_report(monkeypatch, tmp_path) -> None:
    """Original failure: `report` read whatever the local results cache held (ci numbers after a
    test or notebook run), so it did not reproduce the committed REPORT.md."""
    monkeypatch.setenv("POLYSTEP_RESULTS_DIR", str(tmp_path / "empty-results"))
    monkeypatch.setenv("POLYSTEP_FIGURES_DIR", str(ROOT / "figures"))  # read only
    assert report.build_report() == (ROOT / "paper" / "REPORT.md").read_text()
    assert report.figures_index() == (ROOT / "figures" / "README.md").read_text()


def test_committed_sidecars_sit_in_their_scale_folder() -> None:
    """(``figures/ci/``, made by local ci runs, is not committed and not checked.)"""
    assert not list((ROOT / "figures").glob("*.json"))  # no sidecar outside a scale folder
    for scale in report.REPORT_SCALES:
        for path in (ROOT / "figures" / scale).rglob("*.json"):
            meta = json.loads(path.read_text())["meta"]
            assert path.parent.name == meta["scale"] == scale, path
            assert meta["seed"] == 0, path


def test_atomic_writes_keep_ordinary_permissions(tmp_path) -> None:
    """Original failure: mkstemp's 0600 stuck to every written file."""
    old = os.umask(0o022)
    try:
        storage.atomic_write_text(tmp_path / "a.txt", "x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
        os.chmod(tmp_path / "a.txt", 0o640)
        storage.atomic_write_text(tmp_path / "a.txt", "y")  # replacing keeps the file's mode
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
        storage.save(tmp_path / "r.json", {"a": np.ones(2)})
        assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
        assert (tmp_path / "r.npz").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


# ----------------------------------------------------- 3. the result cache proves its integrity
def _saved_pair(tmp_path: Path) -> Path:
    path = tmp_path / "r.json"
    storage.save(path, {"results": {"test_acc": np.array([0.91, 0.93])}, "meta": {"seed": 0}})
    return path


def test_an_edited_npz_is_detected(tmp_path) -> None:
    """Original failure: a changed test accuracy in the npz went silently into REPORT.md."""
    path = _saved_pair(tmp_path)
    data = storage.load(path)
    np.savez_compressed(tmp_path / "r.npz", a0=data["results"]["test_acc"] + 0.05)
    with pytest.raises(storage.CorruptResultError, match=r"r\.json.*r\.npz does not match"):
        storage.load(path)


def test_a_json_beside_arrays_of_another_save_is_detected(tmp_path) -> None:
    """Original failure: a crash between the npz and json renames served the old json with the new
    arrays."""
    path = _saved_pair(tmp_path)
    old_json = path.read_text()
    storage.save(path, {"results": {"test_acc": np.array([0.5, 0.6])}, "meta": {"seed": 0}})
    path.write_text(old_json)  # the state after a crash before the json's rename
    with pytest.raises(storage.CorruptResultError, match="does not match"):
        storage.load(path)


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_text(p.read_text()[:40]), "not valid json"),
    (lambda p: p.write_text(p.read_text().replace("0", "1", 1)), "json payload does not match"),
    (lambda p: p.with_suffix(".npz").unlink(), "are missing"),
    (lambda p: p.with_suffix(".npz").write_bytes(p.with_suffix(".npz").read_bytes()[:30]), "does not match"),
    (lambda p: p.write_text('{"results": 1}'), "no integrity record"),
])
def test_damaged_files_are_reported_with_their_path(tmp_path, damage, reason) -> None:
    path = _saved_pair(tmp_path)
    damage(path)
    with pytest.raises(storage.CorruptResultError, match=reason) as info:
        storage.load(path)
    assert str(path) in str(info.value)


def test_a_corrupt_cached_result_is_moved_aside_and_recomputed(fake) -> None:
    calls = fake()
    first = _run()
    path = runner.result_path("fake", "ci", 0, runner.resolve_device("cpu"))
    npz = path.with_suffix(".npz")
    np.savez_compressed(npz, a0=np.zeros((2, 3)))
    with pytest.warns(CorruptResultWarning, match=r"fake.*corrupt.*moved aside to .*corrupt-0"):
        again = _run()
    assert calls == [0, 1, 0, 1]
    np.testing.assert_array_equal(again["results"]["x"], first["results"]["x"])
    assert path.with_name(path.name + ".corrupt-0").exists() and npz.with_name(npz.name + ".corrupt-0").exists()
    assert storage.load(path)["meta"]["code_fingerprint"] == "code-A"


def test_a_corrupt_checkpoint_is_recomputed(fake) -> None:
    calls = fake(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        _run()
    (checkpoint,) = runner.results_dir().glob("fake/*.partial/u0.json")
    checkpoint.write_text(checkpoint.read_text()[:-20])
    calls2 = fake()
    with pytest.warns(CorruptResultWarning, match="u0.json"):
        _run()
    assert calls == [0] and calls2 == [0, 1]


def test_resumed_runs_keep_all_seeds_and_total_compute_time(fake) -> None:
    """Original failure: a resumed run's metadata lost the seeds derived inside the units computed
    before the interruption, and counted only the last fragment's time."""
    fake()
    whole = _run(seed=1)
    fake(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        _run(seed=2)
    fake()
    resumed = _run(seed=2)
    assert set(resumed["meta"]["seeds"]) == set(whole["meta"]["seeds"]) == {"unit/0", "unit/1"}
    assert resumed["meta"]["resumed_units"] == 1 and whole["meta"]["resumed_units"] == 0
    assert resumed["meta"]["compute_time_s"] > resumed["meta"]["wall_time_s"]
    assert resumed["meta"]["forward_evals"] == whole["meta"]["forward_evals"] == 20


def test_an_unwritable_results_folder_fails_before_any_compute(fake, tmp_path, monkeypatch, capsys) -> None:
    """Original failure: a traceback after the whole computation. A file where the folder should be
    blocks it even for root (who ignores permission bits)."""
    calls = fake()
    blocker = tmp_path / "blocked"
    blocker.write_text("not a folder")
    monkeypatch.setenv("POLYSTEP_RESULTS_DIR", str(blocker / "results"))
    with pytest.raises(storage.StorageError, match=r"cannot write to .*blocked/results/fake"):
        _run()
    assert calls == []
    assert cli.main(["run", "fake", "--scale", "ci", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot write to" in err and calls == []
    monkeypatch.setenv("POLYSTEP_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("POLYSTEP_FIGURES_DIR", str(blocker / "figures"))
    with pytest.raises(storage.StorageError, match="figures"):
        _run()
    assert calls == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_a_read_only_results_folder_fails_before_any_compute(fake, tmp_path, monkeypatch) -> None:
    calls = fake()
    ro = tmp_path / "ro"
    (ro / "fake").mkdir(parents=True)
    os.chmod(ro / "fake", 0o555)
    monkeypatch.setenv("POLYSTEP_RESULTS_DIR", str(ro))
    try:
        with pytest.raises(storage.StorageError, match="cannot write to"):
            _run()
    finally:
        os.chmod(ro / "fake", 0o755)
    assert calls == []


# ------------------------------------------------------------------ 6. report and plot commands
def test_report_for_another_seed_never_shows_seed_0_data(monkeypatch, tmp_path) -> None:
    """Original failure: `report --seed 7` without seed-7 results listed seed-7 commands beside
    seed-0 numbers, and overwrote paper/REPORT.md."""
    monkeypatch.setenv("POLYSTEP_FIGURES_DIR", str(ROOT / "figures"))
    text = report.build_report(seed=7)
    assert "root seed 7" in text
    assert "--seed 0" not in text and "| cpu |" not in text  # no seed-0 row at all
    counts = dict(re.findall(r"^\| ([a-z ]+) \| (\d+) \|$", text, flags=re.M))
    assert set(counts) == {"not implemented yet", "not run at this scale"}, counts
    monkeypatch.setattr(report, "REPORT_FILE", tmp_path / "REPORT.md")
    assert report.write_report(seed=7) == tmp_path / "REPORT-seed7.md"
    assert not (tmp_path / "REPORT.md").exists()


def test_seed_runs_have_their_own_figures(fake, tmp_path) -> None:
    fake()
    _run(scale="cpu", seed=0)
    before = (tmp_path / "figures" / "cpu" / "fake.json").read_bytes()
    _run(scale="cpu", seed=3)
    assert (tmp_path / "figures" / "cpu" / "fake.json").read_bytes() == before
    assert json.loads((tmp_path / "figures" / "cpu" / "seed3" / "fake.json").read_text())["meta"]["seed"] == 3
    assert report.find_result("fake", seed=3)["meta"]["seed"] == 3
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        _run(seed=-1)


def test_plot_of_an_unknown_id_says_so(capsys) -> None:
    """Original failure: `plot nope` answered 'no cached result at results/nope/...'."""
    assert cli.main(["plot", "no_such_experiment", "--scale", "ci", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'no_such_experiment'" in err and "no cached result" not in err


def test_report_flags_numbers_made_from_a_dirty_tree(fake, tmp_path, monkeypatch) -> None:
    """A sidecar whose git sha ends in -dirty was made by code that is not a commit: its rows say so."""
    fake()
    monkeypatch.setattr(runner, "git_sha", lambda: "abc123-dirty")
    _run(scale="cpu")
    found = report.find_result("fake")
    assert report.made_from_dirty_tree(found["meta"])
    claim = report.Claim(id="polystep.fake", paper="polystep", source="T", statement="s",
                         experiment="fake", scale="cpu", paper_value=0.0, tolerance=10.0, comparison="abs")
    monkeypatch.setitem(found["measurements"], "polystep.fake", {"value": 0.5})
    assert report.claim_row(claim, found, True)["scale"] == "cpu (dirty tree)"
    monkeypatch.setattr(runner, "git_sha", lambda: "abc123")
    _run(scale="cpu", force=True)
    clean = report.find_result("fake")
    clean["measurements"]["polystep.fake"] = {"value": 0.5}
    assert report.claim_row(claim, clean, True)["scale"] == "cpu"


def test_a_tree_is_dirty_when_code_changes_not_when_generated_outputs_do(tmp_path, monkeypatch) -> None:
    """Original failure: a clean checkout that ran two experiments one after the other marked the
    second result dirty, because the first had written its (tracked) figure sidecar."""
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "figures" / "cpu").mkdir(parents=True)
    (tmp_path / "paper").mkdir()
    (tmp_path / "code.py").write_text("X = 1\n")
    (tmp_path / "figures" / "cpu" / "a.json").write_text("{}\n")
    (tmp_path / "paper" / "REPORT.md").write_text("report\n")
    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    monkeypatch.setattr(runner, "REPO_ROOT", tmp_path)
    assert not runner.git_sha().endswith("-dirty")
    (tmp_path / "figures" / "cpu" / "a.json").write_text('{"new": 1}\n')
    (tmp_path / "paper" / "REPORT.md").write_text("new report\n")
    assert not runner.git_sha().endswith("-dirty")  # generated outputs only
    (tmp_path / "code.py").write_text("X = 2\n")
    assert runner.git_sha().endswith("-dirty")


def test_the_report_lists_the_run_behind_every_experiment() -> None:
    """Issue 11: wall time per experiment in the report, with where its cells ran."""
    meta = {"scale": "cpu", "wall_time_s": 160.26, "cells_compute_s": 310.64, "executor": "process-pool",
            "workers": 2, "torch_threads": 1, "git_sha": "fb02e5011fa1c0ffee"}
    assert report.run_row("toy", meta) == "| `toy` | cpu | 160.3 | 310.6 | process-pool (2) | 1 | `fb02e5011fa1` |"
    old = {"scale": "cpu", "wall_time_s": 3.0, "git_sha": "abc"}  # a sidecar from before cells
    assert report.run_row("old", old) == "| `old` | cpu | 3.0 | – | in-process | ? | `abc` |"
    committed = (ROOT / "paper" / "REPORT.md").read_text()  # rebuilt from the sidecars: see the fresh-clone test
    assert "## Runs" in committed and "| `bench_step` | cpu |" in committed
