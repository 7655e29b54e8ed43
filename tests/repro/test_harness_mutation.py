"""The test harness sees a broken optimizer (a test of the tests).

Original failure: the experiment tests cached results in pytest's per-user temp root, keyed by the
configuration only, so after breaking the barycentric step (``particles + 0 * move`` in
polystep/functional.py) the quickstart experiment tests still passed, served the stale result.

Here a copy of the package runs the quickstart experiment tests in a subprocess with a *shared,
warm* result cache (the developer's opt-in ``$POLYSTEP_TEST_CACHE``, the most forgiving setting),
warmed with this run's own quickstart result (the same code, so the same fingerprint): unchanged,
the tests pass from that cache without recomputing; with the mutation they must fail. Results are
keyed by the code's fingerprint, so the mutated code is never served the good result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from repro import fingerprint, runner
from tests.experiments.ci import run_at_ci

ROOT = Path(__file__).resolve().parents[2]
TEST = "tests/experiments/test_quickstart_digits.py"
ORIGINAL = "new_particles = particles + move"
MUTANT = "new_particles = particles + 0 * move"


def _copy_package(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("polystep", "ghosts", "theory", "repro", "tests", "paper"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


def _pytest(cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "POLYSTEP_")) and k != "PYTHONPATH"}
    env.update(POLYSTEP_TEST_CACHE=str(cache), OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
                           TEST], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_experiment_tests_fail_on_a_broken_optimizer_despite_a_warm_cache(tmp_path: Path) -> None:
    repo, cache = tmp_path / "repo", tmp_path / "shared-cache"
    _copy_package(repo)
    # the subprocess must import the copy, not the installed package
    where = subprocess.run([sys.executable, "-c", "import polystep.functional as f; print(f.__file__)"],
                           cwd=repo, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(repo)), where

    # warm the shared cache with the good result (computed once per test run, shared with the
    # quickstart experiment test and notebook)
    good_result = runner.result_path("quickstart_digits", "ci", 0, runner.resolve_device("cpu"))
    run_at_ci("quickstart_digits")
    (cache / "quickstart_digits").mkdir(parents=True)
    for suffix in (".json", ".npz"):
        shutil.copy2(good_result.with_suffix(suffix), cache / "quickstart_digits" / good_result.with_suffix(suffix).name)
    cached = json.loads(good_result.read_text())["meta"]
    assert cached["code_fingerprint"] == fingerprint.code_fingerprint("quickstart_digits", root=repo)

    good = _pytest(repo, cache)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-3000:]
    served = json.loads((cache / "quickstart_digits" / good_result.name).read_text())["meta"]
    assert served["wall_time_s"] == cached["wall_time_s"]  # the unchanged code was served the cache

    functional = repo / "polystep" / "functional.py"
    source = functional.read_text()
    assert source.count(ORIGINAL) == 1
    functional.write_text(source.replace(ORIGINAL, MUTANT))

    broken = _pytest(repo, cache)
    assert broken.returncode == 1, broken.stdout[-3000:] + broken.stderr[-3000:]
    assert "FAILED" in broken.stdout and "test_polystep_reaches_90_percent_test_accuracy" in broken.stdout, \
        broken.stdout[-3000:]
