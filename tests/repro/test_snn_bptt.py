"""Tests for repro.tasks.snn_bptt: the BPTT surrogate-gradient SNN baseline at tiny scale (300 real
MNIST training images, 30 Adam steps): deterministic, learning, and reporting what it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repro.context import RunContext
from repro.data import DATASETS, data_path
from repro.tasks.digits import DataSplit
from repro.tasks.snn_bptt import BPTTConfig, _CosineAdam, train_snn_bptt, training_subset

TINY = BPTTConfig(steps=30, batch_size=64, eval_every=10, train_subset=300)

needs_mnist = pytest.mark.skipif(not data_path(DATASETS["mnist"]).exists(),
                                 reason="mnist is not in the data cache; run `polystep-repro data fetch mnist`")


@pytest.fixture(scope="module")
def two_runs() -> tuple[dict, dict]:
    """The same tiny run twice (seed 0, fresh contexts)."""
    return tuple(train_snn_bptt(TINY, 0, RunContext(seed=0, progress=False)) for _ in range(2))


def _flat(result: dict) -> dict:
    """The result without wall-clock fields, curves as plain lists (for equality)."""
    out = {k: v for k, v in result.items() if k not in ("wall_s", "step_s", "curve", "train_loss")}
    out["train_loss"] = result["train_loss"].tolist()
    out.update({f"curve.{k}": np.asarray(v).tolist() for k, v in result["curve"].items()})
    return out


@pytest.mark.real_data
@needs_mnist
def test_two_runs_of_one_seed_are_bitwise_equal(two_runs) -> None:
    first, second = two_runs
    assert _flat(first) == _flat(second)


@pytest.mark.real_data
@needs_mnist
def test_the_training_loss_decreases_and_accuracy_beats_chance(two_runs) -> None:
    result = two_runs[0]
    loss = result["train_loss"]
    assert len(loss) == 30 and np.isfinite(loss).all()
    assert loss[-5:].mean() < 0.8 * loss[:5].mean()
    assert result["test_acc"] > 0.3 and result["best_val_acc"] > 0.3  # chance: 0.1


@pytest.mark.real_data
@needs_mnist
def test_the_report_is_consistent(two_runs) -> None:
    """Validation every 10 steps, forward evaluations = steps, the selected step the (first) best
    validation accuracy, ``test_acc`` the test accuracy recorded at that step, ``best_test_acc``
    the maximum over the evaluations."""
    r = two_runs[0]
    curve = r["curve"]
    assert curve["step"].tolist() == [10, 20, 30] and curve["forward_evals"].tolist() == [10, 20, 30]
    i = int(np.argmax(curve["val_acc"]))
    assert r["selected_step"] == curve["step"][i] and r["best_val_acc"] == curve["val_acc"][i]
    assert r["test_acc"] == curve["test_acc"][i]
    assert r["best_test_acc"] == curve["test_acc"].max() >= r["test_acc"]
    assert r["best_test_step"] == curve["step"][int(np.argmax(curve["test_acc"]))]
    assert r["forward_evals"] == 30 and r["wall_s"] > 0


def test_training_subset_is_fixed_and_checked() -> None:
    """Without MNIST: the training subset is a fixed function of the data (not of the run seed),
    and rejects sizes outside ``[1, n]``."""
    x = torch.arange(20.0)[:, None]
    data = DataSplit(x, torch.arange(20), x[:2], torch.arange(2), x[:2], torch.arange(2), 1, 20, "toy")
    a, ya = training_subset(data, 5)
    b, _ = training_subset(data, 5)
    assert torch.equal(a, b) and len(torch.unique(ya)) == 5 and not torch.equal(ya, torch.arange(5))
    assert training_subset(data, None)[0] is data.x_train
    for bad in (0, 21, 2.5, True):
        with pytest.raises(ValueError, match="train_subset must be None or an integer"):
            training_subset(data, bad)


def test_cosine_adam_schedule() -> None:
    """``lr_t = lr (1 + cos(pi t / steps)) / 2`` after ``t`` steps: lr/2 half-way, 0 at the end."""
    w = torch.nn.Parameter(torch.ones(3))
    opt = _CosineAdam([w], lr=1e-3, steps=10)
    lrs = []
    for _ in range(10):
        opt.zero_grad()
        (w ** 2).sum().backward()
        opt.step()
        lrs.append(opt.adam.param_groups[0]["lr"])
    assert lrs[4] == pytest.approx(5e-4, rel=1e-12) and lrs[-1] == pytest.approx(0.0, abs=1e-15)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
