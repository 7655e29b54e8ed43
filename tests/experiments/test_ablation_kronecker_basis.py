"""ablation_kronecker_basis at ci scale: both bases train, on the same seeds, and the verdict follows
the fixed threshold."""

from __future__ import annotations

import numpy as np
import pytest

from repro import runner
from repro.experiments import ablation_kronecker_basis as exp


@pytest.fixture(scope="module")
def stored():
    return runner.run_experiment(exp.ID, scale="ci", device="cpu", seed=0)


def test_both_bases_train_the_digits_mlp(stored) -> None:
    variants = stored["results"]["variants"]
    assert set(variants) == {"qr", "kronecker"}
    for name, v in variants.items():
        assert np.all(v["test_acc"] >= 0.85), (name, v["test_acc"])
        run = v["runs"][0]
        assert run["forward_evals"] == 150 * 75 * 16  # same D, same P V K as the dense basis
        assert v["setup_s"][0] > 0 and v["step_s"][0] > 0


def test_verdict_follows_the_threshold(stored) -> None:
    results = stored["results"]
    m = exp.measure(results)["polystep.ablation_kronecker_basis_accuracy"]
    gap = np.mean(results["variants"]["qr"]["test_acc"]) - np.mean(results["variants"]["kronecker"]["test_acc"])
    assert m["verdict"] == ("reproduced" if gap <= exp.MAX_ACCURACY_GAP else "not reproduced")
    assert m["value"] == pytest.approx(100 * np.mean(results["variants"]["kronecker"]["test_acc"]))
    # a made-up 5 pp deficit is not called the same
    worse = {**results, "variants": {**results["variants"], "kronecker": {
        **results["variants"]["kronecker"], "test_acc": results["variants"]["qr"]["test_acc"] - 0.05}}}
    assert exp.measure(worse)["polystep.ablation_kronecker_basis_accuracy"]["verdict"] == "not reproduced"
    section = exp.report_section(results, stored["meta"])
    assert "| qr | qr | never |" in section and "| kronecker | kronecker | never |" in section
