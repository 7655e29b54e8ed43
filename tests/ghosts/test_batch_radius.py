"""rho_a from slopes, and the batch-statistics radii of BatchNorm networks (ghosts.radius_models).

Checks: ``rho_from_slopes`` is ``pi / max_x Delta_a(x)`` (Theorem 4.6, Definition 4.7, Eq. 15) and
agrees with the numpy ``softmax_radius.rho_a``; ``batch_logit_slopes`` is the derivative of the
train-mode (batch-statistics) logits and leaves BatchNorm's running statistics alone; the released
code's one-sided difference radius ``batch_rho_a_fd`` agrees with the JVP radius ``batch_rho_a``;
both work as a ``RadiusController`` radius function.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from ghosts import softmax_radius as sr
from ghosts.radius_controller import RadiusController
from ghosts.radius_models import (
    batch_logit_slopes,
    batch_logit_slopes_fd,
    batch_rho_a,
    batch_rho_a_fd,
    batch_stats,
    directional_logit_derivatives,
    model_rho_a,
    rho_from_slopes,
)


def bn_net(seed=0, dtype=torch.float64):
    """A small conv net with BatchNorm (2d and 1d) on 1x6x6 inputs, 4 classes."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Linear(64, 8), nn.BatchNorm1d(8), nn.GELU(), nn.Linear(8, 4),
    ).to(dtype)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(12, 1, 6, 6, generator=gen, dtype=dtype)
    params = {k: p.detach() for k, p in model.named_parameters()}
    v = {k: torch.randn(p.shape, generator=gen, dtype=dtype) for k, p in params.items()}
    norm = math.sqrt(sum(float(t.square().sum()) for t in v.values()))
    return model, x, params, {k: t / norm for k, t in v.items()}


# ----------------------------------------------------------------------------------
# rho_from_slopes
# ----------------------------------------------------------------------------------


def test_rho_from_slopes_is_pi_over_the_largest_spread():
    a = torch.tensor([[0.3, -0.7, 1.2, 0.0], [1.0, -1.0, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4]],
                     dtype=torch.float64)
    spreads = [1.9, 2.0, 0.3]
    assert rho_from_slopes(a) == math.pi / 2.0
    np.testing.assert_allclose(rho_from_slopes(a, per_sample=True).numpy(), [math.pi / s for s in spreads],
                               rtol=1e-15)
    assert rho_from_slopes(a) == sr.rho_a(a.numpy())  # the numpy twin (Definition 4.7)
    # leading axes are rows: [layers, samples, heads, classes] -> the same batch minimum
    b = torch.randn(2, 3, 5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert rho_from_slopes(b) == sr.rho_a(b.reshape(-1, 7).numpy())


def test_rho_from_slopes_edge_cases():
    assert rho_from_slopes(torch.ones(3, 4)) == math.inf  # no logit moves: no limit
    with pytest.raises(ValueError, match=r"1 NaN/inf entries of 8 .* rho_a is undefined"):
        rho_from_slopes(torch.tensor([[0.0, 1.0, 2.0, math.nan], [0.0, 1.0, 2.0, 3.0]]))
    huge = torch.tensor([[3e38, -3e38]], dtype=torch.float32)  # max - min overflows float32
    assert rho_from_slopes(huge) == pytest.approx((math.pi / 2) / 3e38, rel=1e-7)
    with pytest.raises(ValueError, match="non-empty tensor"):
        rho_from_slopes(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="non-empty tensor"):
        rho_from_slopes([[0.0, 1.0]])


def test_model_rho_a_is_rho_from_slopes_of_the_jvp():
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    x = torch.randn(9, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    v = torch.randn(sum(p.numel() for p in model.parameters()), generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64)
    a = directional_logit_derivatives(model, x, v)
    assert model_rho_a(model, x, v) == rho_from_slopes(a)
    torch.testing.assert_close(model_rho_a(model, x, v, per_sample=True), rho_from_slopes(a, per_sample=True),
                               rtol=0, atol=0)


# ----------------------------------------------------------------------------------
# batch statistics
# ----------------------------------------------------------------------------------


def test_batch_stats_restores_flags_and_freezes_running_statistics():
    model, x, _, _ = bn_net()
    model.eval()
    model[5].train()  # a mixed state is restored as it was
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    with torch.no_grad(), batch_stats(model):
        assert all(m.training for m in model.modules())
        out = model(x)
    assert [m.training for m in model.modules()] == [m is model[5] for m in model.modules()]
    assert model[1].track_running_stats and model[5].track_running_stats
    for k, b in model.named_buffers():
        assert torch.equal(b, buffers[k]), k
    # batch statistics, not the running ones: the eval-mode output differs
    with torch.no_grad():
        assert not torch.allclose(out, model.eval()(x))


def test_batch_logit_slopes_are_the_derivative_of_the_batch_statistics_logits():
    model, x, params, v = bn_net(3)
    model.eval()
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    a = batch_logit_slopes(model, x, v)
    assert not model.training  # flags restored
    for k, b in model.named_buffers():
        assert torch.equal(b, buffers[k]), k  # running statistics untouched
    h = 1e-6
    with torch.no_grad(), batch_stats(model):
        fd = (functional_call(model, {k: p + h * v[k] for k, p in params.items()}, (x,))
              - functional_call(model, {k: p - h * v[k] for k, p in params.items()}, (x,))) / (2 * h)
    torch.testing.assert_close(a, fd, rtol=1e-6, atol=1e-8)
    # the batch statistics move with theta: eval-mode slopes are a different quantity
    assert not torch.allclose(a, directional_logit_derivatives(model, x, v), rtol=1e-3)


def test_batch_slopes_at_a_given_base_point():
    model, x, params, v = bn_net(4)
    moved = {k: p + 0.1 * v[k] for k, p in params.items()}
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        for k, p in shifted.named_parameters():
            p.copy_(moved[k])
    torch.testing.assert_close(batch_logit_slopes(model, x, v, params=moved), batch_logit_slopes(shifted, x, v),
                               rtol=0, atol=0)
    assert batch_rho_a(model, x, v, params=moved) == batch_rho_a(shifted, x, v)


@pytest.mark.parametrize("dtype, eps, rel", [(torch.float64, 1e-7, 1e-5), (torch.float64, 1e-4, 1e-2),
                                             (torch.float32, 1e-4, 5e-2)])
def test_fd_radius_agrees_with_the_jvp_radius(dtype, eps, rel):
    """The released code's one-sided difference (eps = 1e-4) against the exact JVP radius: the error
    is O(eps) (plus rounding / eps in float32)."""
    model, x, params, v = bn_net(5, dtype)
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    jvp_rho = batch_rho_a(model, x, v)
    fd_rho = batch_rho_a_fd(model, x, v, eps=eps)
    assert 0 < jvp_rho < math.inf
    assert fd_rho == pytest.approx(jvp_rho, rel=rel)
    assert jvp_rho == rho_from_slopes(batch_logit_slopes(model, x, v))
    assert fd_rho == rho_from_slopes(batch_logit_slopes_fd(model, x, v, eps=eps))
    for k, b in model.named_buffers():
        assert torch.equal(b, buffers[k]), k
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        batch_rho_a_fd(model, x, v, eps=0.0)


@pytest.mark.parametrize("radius_fn", [batch_rho_a, batch_rho_a_fd], ids=["jvp", "fd"])
def test_batch_radius_functions_drive_the_controller(radius_fn):
    """rho-set SGD on a BatchNorm net with the batch radius: ||step|| = r_target * rho_a(batch)
    along the proposal, and the running statistics change only through the training forward."""
    model, x, _, _ = bn_net(6)
    y = torch.arange(12) % 4
    ctrl = RadiusController(torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9), model, 2.0,
                            mode="rho_set", radius_fn=radius_fn)
    for _ in range(3):
        theta0 = {k: p.detach().clone() for k, p in model.named_parameters()}
        reference = copy.deepcopy(model)  # gets the training forward only
        with torch.no_grad():
            reference(x)
        ctrl.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        ctrl.step(x=x)
        for (k, b), (_, b2) in zip(model.named_buffers(), reference.named_buffers()):
            torch.testing.assert_close(b, b2, rtol=0, atol=0, msg=k)  # rho_a touched no running statistic
        step = {k: p.detach() - theta0[k] for k, p in model.named_parameters()}
        tau = math.sqrt(sum(float(d.square().sum()) for d in step.values()))
        rho = radius_fn(model, x, {k: d / tau for k, d in step.items()}, params=theta0)
        assert tau == pytest.approx(2.0 * rho, rel=1e-6) and ctrl.history[-1]["rho_a"] == pytest.approx(rho, rel=1e-6)
    assert int(model[1].num_batches_tracked) == 3
