"""Test-suite wide settings: results and figures of experiments run by tests go to a temporary
folder (never into the repository), with the ``ci`` scale and no progress bars."""

from __future__ import annotations

import os

import matplotlib
import pytest
import torch
from hypothesis import HealthCheck, settings

# Property-based tests (hypothesis): derandomized so a run is reproducible and CI never flakes on a
# newly found example; no deadline (2 shared cores time badly). A developer hunting for new
# counterexamples runs `pytest --hypothesis-profile=explore`.
settings.register_profile("default", derandomize=True, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=2000,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile("default")

matplotlib.use("Agg")
# One intra-op thread per test process: the suite runs under pytest-xdist with one worker per core,
# and torch's threaded kernels are far slower than serial ones on the tiny tensors of most tests.
torch.set_num_threads(1)
os.environ["OMP_NUM_THREADS"] = "1"  # and in the notebook kernels the notebook tests start


#: set this to a folder to reuse experiment results across test runs (a developer's opt-in; results
#: are keyed by the code's fingerprint, so a changed optimizer is never served a stale result)
TEST_CACHE_ENV = "POLYSTEP_TEST_CACHE"


def _run_root(tmp_path_factory) -> "os.PathLike":
    """A folder private to this test run, shared by its xdist workers (each worker's base temp is
    ``<run>/popen-gwN``; a serial run's base temp is the run's own folder)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def _isolated_outputs(tmp_path_factory):
    """Results and figures of experiments run by tests go to a folder private to this run (never
    into the repository, never shared with other runs or checkouts), unless ``$POLYSTEP_TEST_CACHE``
    names a results folder to reuse."""
    root = _run_root(tmp_path_factory)
    shared = os.environ.get(TEST_CACHE_ENV)
    os.environ["POLYSTEP_RESULTS_DIR"] = shared or str(root / "polystep-results")
    os.environ["POLYSTEP_FIGURES_DIR"] = str(root / "polystep-figures")
    os.environ["POLYSTEP_SCALE"] = "ci"
    os.environ["POLYSTEP_NO_PROGRESS"] = "1"
    yield

