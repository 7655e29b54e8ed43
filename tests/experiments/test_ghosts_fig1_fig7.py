"""ghosts_fig1_fig7 at ci scale: six architectures, one descent step of r * rho_a (JVP)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repro import registry
from repro.claims import VERDICTS
from tests.experiments.ci import run_at_ci


@pytest.fixture(scope="module")
def stored():
    return run_at_ci("ghosts_fig1_fig7")


def test_all_six_architectures_swept_on_a_grid_through_r1(stored) -> None:
    res = stored["results"]
    assert set(res["archs"]) == {"linear", "mlp", "cnn", "mlp_ln", "cnn_bn", "transformer"}
    r = np.asarray(res["r"])
    assert np.all(np.diff(r) > 0) and np.any(r == 1.0) and r[0] == pytest.approx(1e-2) and r[-1] == pytest.approx(1e2)
    for arch in res["archs"].values():
        for run in arch["runs"]:
            assert 0 < run["rho_a"] < math.inf
            assert run["acc_retained"].shape == r.shape


def test_tiny_steps_change_nothing_and_descent_lowers_the_loss(stored) -> None:
    for name, arch in stored["results"]["archs"].items():
        for run in arch["runs"]:
            assert run["acc_retained"][0] == pytest.approx(1.0, abs=0.01), name
            assert run["train_loss_ratio"][0] == pytest.approx(1.0, abs=0.05), name
            # -g/||g|| is a descent direction: some step below the radius lowers the training loss
            assert run["train_loss_ratio"][run["r"] <= 1].min() < 1.0, name
            assert run["flip_fraction"][0] <= 0.01, name


def test_delta_a_batch_spread_is_bounded_by_the_full_set(stored) -> None:
    for arch in stored["results"]["archs"].values():
        for run in arch["runs"]:
            # a batch maximum can never exceed the maximum over the whole training split
            assert np.all(run["delta_a_batches_fixed_v"] <= run["delta_a_full"] * (1 + 1e-6))
            assert 0 <= run["cv_fixed_v"] < 1
            assert run["rho_a"] == pytest.approx(math.pi / run["delta_a_full"], rel=1e-5)


def test_measurements_cover_exactly_the_claims(stored) -> None:
    module = registry.get("ghosts_fig1_fig7")
    m = module.measure(stored["results"])
    assert set(m) == set(module.CLAIMS)
    assert all(v["verdict"] in VERDICTS for v in m.values())
    assert "|" in module.table(stored["results"])
