"""ablation_kronecker_basis at ci scale: both bases train, on the same seeds, and the verdict follows
the fixed threshold."""

from __future__ import annotations

import numpy as np
import pytest

from repro.experiments import ablation_kronecker_basis as exp
from tests.experiments.ci import run_at_ci


@pytest.fixture(scope="module")
def stored():
    return run_at_ci(exp.ID)


def test_both_bases_train_the_digits_mlp(stored) -> None:
    variants = stored["results"]["variants"]
    assert set(variants) == {"qr", "kronecker", "qr, redraw every 25", "kronecker, redraw every 25"}
    for name, v in variants.items():
        assert np.all(v["test_acc"] >= 0.85), (name, v["test_acc"])
        run = v["runs"][0]
        assert run["forward_evals"] == 150 * 75 * 16  # same D, same P V K as the dense basis
        assert v["setup_s"][0] > 0 and v["step_s"][0] > 0


def _gap(results, reference, candidate) -> float:
    v = results["variants"]
    return float(np.mean(v[reference]["test_acc"]) - np.mean(v[candidate]["test_acc"]))


@pytest.mark.xfail(strict=True, reason=(
    "a fixed Kronecker subspace moves only p of d_out output and q of d_in input directions of each "
    "layer: measured ci (1 seed, 150 steps) kronecker 91.11 % vs qr 95.28 % (gap 4.2 pp); cpu "
    "(5 seeds, 400 steps) 93.72 % vs 96.00 % (gap 2.28 pp); allowed 1.5 pp"))
def test_fixed_kronecker_subspace_matches_the_dense_basis(stored) -> None:
    assert _gap(stored["results"], exp.REFERENCE, exp.CANDIDATE) <= exp.MAX_ACCURACY_GAP


def test_redrawn_kronecker_subspace_matches_the_redrawn_dense_basis(stored) -> None:
    # measured ci: 95.56 % both; cpu (5 seeds): kronecker 97.06 % vs qr 96.67 %
    assert _gap(stored["results"], exp.REDRAWN_REFERENCE, exp.REDRAWN_CANDIDATE) <= exp.MAX_ACCURACY_GAP


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
