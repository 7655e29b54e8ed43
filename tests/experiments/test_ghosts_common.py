"""The shared helpers of the ghosts one-step experiments (thresholds, sweeps, HVP, crossings)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as Fn
from torch import nn

from repro.experiments import _ghosts_common as gc


def test_failure_thresholds_are_the_agreed_ones() -> None:
    assert (gc.FAILURE_ACC_RETAINED, gc.FAILURE_LOSS_RATIO, gc.DIVERGED_LOSS) == (0.90, 2.0, 10.0)


def test_first_crossing_interpolates_in_log_x() -> None:
    x = np.array([0.1, 1.0, 10.0])
    y = np.array([1.0, 1.5, 3.0])
    # crossing of 2 between x=1 (1.5) and x=10 (3.0): a third of the way in log10 x
    assert gc.first_crossing(x, y, 2.0) == pytest.approx(10 ** (1 / 3))
    assert math.isnan(gc.first_crossing(x, y, 5.0))
    assert gc.first_crossing(x, 1 - y / 10, 0.8, below=True) == pytest.approx(10 ** (1 / 3))
    assert gc.first_crossing(x, y, 0.5) == 0.1


def test_median_iqr() -> None:
    a = np.arange(12.0).reshape(4, 3)
    med, q25, q75 = gc.median_iqr(a)
    np.testing.assert_allclose(med, [4.5, 5.5, 6.5])
    np.testing.assert_allclose(q75 - q25, [4.5, 4.5, 4.5])


def _linear_problem():
    g = torch.Generator().manual_seed(0)
    model = nn.Linear(5, 3).double()
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    return model, x, y, g


def test_one_step_sweep_matches_direct_evaluation() -> None:
    model, x, y, g = _linear_problem()
    v = gc.random_direction(model, g)
    assert float(v.norm()) == pytest.approx(1.0)
    out = gc.one_step_sweep(model, v, [0.0, 0.7], x, y)
    assert out["loss_ratio"][0] == pytest.approx(1.0) and out["flip_fraction"][0] == 0.0
    w, b = model.weight.detach(), model.bias.detach()
    w2, b2 = w + 0.7 * v[:15].reshape(3, 5), b + 0.7 * v[15:]
    z = x @ w2.T + b2
    assert out["loss"][1] == pytest.approx(float(Fn.cross_entropy(z, y)), rel=1e-12)
    flips = float(((x @ w.T + b).argmax(1) != z.argmax(1)).double().mean())
    assert out["flip_fraction"][1] == pytest.approx(flips)


def test_curvature_along_matches_second_difference() -> None:
    model, x, y, g = _linear_problem()
    v = gc.random_direction(model, g)
    kappa = gc.curvature_along(model, v, x, y)
    h = 1e-4
    losses = gc.one_step_sweep(model, v, [-h, 0.0, h], x, y)["loss"]
    assert kappa == pytest.approx((losses[0] - 2 * losses[1] + losses[2]) / h ** 2, rel=1e-5)
    grad = gc.loss_gradient(model, x, y)
    d = gc.gradient_direction(model, x, y, sign=-1)
    assert torch.allclose(d, -grad / grad.norm())

