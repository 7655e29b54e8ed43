"""quickstart_digits at ci scale: PolyStep trains the digits MLP to >= 90% held-out accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from tests.experiments.ci import run_at_ci


@pytest.fixture(scope="module")
def stored():
    return run_at_ci("quickstart_digits")


def test_polystep_reaches_90_percent_test_accuracy(stored) -> None:
    res = stored["results"]["methods"]
    # the acceptance bar: >= 90% on the untouched test split, model chosen on validation
    assert np.all(res["PolyStep"]["test_acc"] >= 0.90), res["PolyStep"]["test_acc"]
    assert np.all(res["Adam"]["test_acc"] >= 0.90), res["Adam"]["test_acc"]


def test_selection_uses_validation_and_budget_is_counted(stored) -> None:
    run = stored["results"]["methods"]["PolyStep"]["runs"][0]
    curve = run["curve"]
    assert run["best_val_acc"] == pytest.approx(curve["val_acc"].max())
    assert run["selected_step"] == curve["step"][int(np.argmax(curve["val_acc"]))]
    # P*V*K = 75 particles * 16 vertices * 1 probe per step for the 64-32-10 MLP at rank 4
    assert run["forward_evals"] == 150 * 75 * 16
    assert stored["meta"]["forward_evals"] >= run["forward_evals"]


def test_rerun_is_served_from_cache(stored) -> None:
    again = run_at_ci("quickstart_digits")
    assert again["meta"]["wall_time_s"] == stored["meta"]["wall_time_s"]  # loaded, not recomputed
