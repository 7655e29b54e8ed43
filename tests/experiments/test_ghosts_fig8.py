"""ghosts_fig8 at ci scale: linear classifier, gradient (ascent) vs random directions."""

from __future__ import annotations

import numpy as np
import pytest

from repro import registry
from repro.claims import VERDICTS
from tests.experiments.ci import run_at_ci


@pytest.fixture(scope="module")
def stored():
    return run_at_ci("ghosts_fig8")


def test_stages_get_more_accurate(stored) -> None:
    stages = stored["results"]["runs"][0]["stages"]
    accs = [stages[n]["train_acc"] for n in ("early", "mid", "late")]
    assert accs[0] < accs[1] <= accs[2] + 0.01
    assert accs[2] > 0.9


def test_sweeps_start_at_the_checkpoint_and_ascent_raises_the_loss(stored) -> None:
    r = np.asarray(stored["results"]["r"])
    i1 = int(np.flatnonzero(r == 1.0)[0])
    for stage in stored["results"]["runs"][0]["stages"].values():
        grad, rand = stage["gradient"], stage["random"]
        assert grad["loss_ratio"][0] == pytest.approx(1.0, abs=0.02)
        assert np.all(np.abs(rand["loss_ratio"][:, 0] - 1) < 0.02)
        assert np.all(rand["flip_fraction"][:, 0] <= 0.05)
        assert grad["loss_ratio"][i1] > 1.0  # +g/||g|| is the ascent direction
        assert grad["kappa"] > 0 and np.all(rand["kappa"] > 0)  # CE of a linear model is convex
        np.testing.assert_allclose(rand["tau_h"], 2 / rand["kappa"])


def test_measurements_cover_exactly_the_claims(stored) -> None:
    module = registry.get("ghosts_fig8")
    m = module.measure(stored["results"])
    assert set(m) == set(module.CLAIMS)
    assert all(v["verdict"] in VERDICTS for v in m.values())
    assert len(m["ghosts.fig8_stage_accuracies"]["value"]) == 3
