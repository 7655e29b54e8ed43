"""Tests for polystep.nondiff: each block computes the documented formula, its hard operation gives
backpropagation no signal, and layer stacks made of them keep exact losses on the fast path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from polystep.evaluation import population_closure
from polystep.fast_eval import fast_population_closure
from polystep.nondiff import (LIF, DiscreteAttention, HardMoE, QuantizedLinear, Sign, Staircase,
                              quantize, spiking_mlp)
from polystep.optim import PolyStep


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------ formulas
def test_staircase_levels_and_smooth_twin() -> None:
    s = torch.tensor([0.01, 0.19, 0.21, 0.39, 0.41, 0.79, 0.81, 0.999], dtype=torch.float64)
    x = torch.log(s / (1 - s))  # sigmoid(x) = s
    want = torch.tensor([0.0, 0.0, 0.2, 0.2, 0.4, 0.6, 0.8, 0.8], dtype=torch.float64)
    torch.testing.assert_close(Staircase(5)(x), want, rtol=0, atol=1e-15)
    torch.testing.assert_close(Staircase(5, hard=False)(x), s, rtol=0, atol=1e-15)
    # levels 0, 1/L, ..., (L-1)/L; 1 only where sigmoid rounds to 1
    assert set(Staircase(2)(torch.linspace(-9, 9, 101)).unique().tolist()) == {0.0, 0.5}
    with pytest.raises(ValueError, match="levels"):
        Staircase(0)


def test_sign_of_zero_is_plus_one() -> None:
    x = torch.tensor([-2.0, -0.0, 0.0, 3.0])
    assert Sign()(x).tolist() == [-1.0, 1.0, 1.0, 1.0]
    torch.testing.assert_close(Sign(hard=False)(x), torch.tanh(x))


def test_quantize_rounds_half_to_even_and_clamps() -> None:
    w = torch.tensor([0.004, 0.005, 0.015, -0.0151, 1.2, 2.0, -5.0], dtype=torch.float64)
    got = quantize(w, 0.01, 8) / 0.01
    assert got.tolist() == pytest.approx([0.0, 0.0, 2.0, -2.0, 120.0, 127.0, -128.0])


def test_quantized_linear_uses_quantised_parameters() -> None:
    layer = QuantizedLinear(6, 4, generator=_gen(0), dtype=torch.float64)
    x = torch.randn(5, 6, generator=_gen(1), dtype=torch.float64)
    want = x @ quantize(layer.weight, 0.01, 8).T + quantize(layer.bias, 0.01, 8)
    torch.testing.assert_close(layer(x), want, rtol=0, atol=1e-14)
    layer.hard = False
    torch.testing.assert_close(layer(x), TF.linear(x, layer.weight, layer.bias))
    big = QuantizedLinear(200, 200, generator=_gen(2))
    assert float(big.weight.detach().std()) == pytest.approx(0.1, rel=0.02)  # the authors' init N(0, 0.1^2)
    with pytest.raises(ValueError, match="scale must be a finite number > 0, got 0.0"):
        QuantizedLinear(2, 2, scale=0.0)
    with pytest.raises(ValueError, match="bits must be an integer >= 2, got 1"):
        QuantizedLinear(2, 2, bits=1)


def test_discrete_attention_picks_the_argmax_slot() -> None:
    att = DiscreteAttention(5, slots=3, generator=_gen(0)).double()
    x = torch.randn(7, 5, generator=_gen(1), dtype=torch.float64)
    out = att(x)
    for row, y in zip(x, out):
        j = int(torch.argmax(att.keys @ row))
        torch.testing.assert_close(y, att.values(row) * torch.sigmoid(att.keys[j]))
    att.hard = False
    w = torch.softmax(x @ att.keys.T, dim=-1)
    torch.testing.assert_close(att(x), att.values(x) * torch.sigmoid(w @ att.keys))


def test_hard_moe_routes_each_row_to_one_expert() -> None:
    torch.manual_seed(0)
    moe = HardMoE(4, experts=3, hidden=6).double()
    x = torch.randn(9, 4, generator=_gen(1), dtype=torch.float64)
    out = moe(x)
    chosen = moe.gate(x).argmax(-1)
    assert len(chosen.unique()) > 1  # the rows do not all go to one expert
    for row, e, y in zip(x, chosen, out):
        torch.testing.assert_close(y, moe.experts[int(e)](row))
    moe.hard = False
    w = torch.softmax(moe.gate(x), -1)
    torch.testing.assert_close(moe(x), sum(w[:, [e]] * moe.experts[e](x) for e in range(3)))


def test_lif_dynamics_by_hand() -> None:
    # I = 0.6, beta = 0.95: m = 0.6, 0.57 + 0.6 = 1.17 -> spike, reset to 0; period 2
    current = torch.full((1, 1), 0.6, dtype=torch.float64)
    train = LIF(0.95, 1.0, steps=15)(current)
    assert train.shape == (1, 15, 1)
    assert train.flatten().tolist() == [0.0, 1.0] * 7 + [0.0]
    assert LIF(0.95, 1.0, steps=15, count=True)(current).item() == 7.0
    # sequence input: a spike only where the accumulated current crosses the threshold
    seq = torch.tensor([[[0.5], [0.5], [1.0], [0.0]]], dtype=torch.float64)
    assert LIF(1.0, 1.0)(seq).flatten().tolist() == [0.0, 1.0, 1.0, 0.0]
    smooth = LIF(0.95, 1.0, steps=3, hard=False, slope=10.0)(current).flatten()
    m1 = 0.6
    s1 = 1 / (1 + math.exp(-10 * (m1 - 1)))
    assert float(smooth[0]) == pytest.approx(s1)
    with pytest.raises(ValueError, match="sequence"):
        LIF()(current)
    with pytest.raises(ValueError, match="beta"):
        LIF(beta=1.5)


def test_spiking_mlp_matches_the_authors_model() -> None:
    net = spiking_mlp(generator=_gen(0))
    assert sum(p.numel() for p in net.parameters()) == 101_770  # SpikingMNISTNet
    x = torch.rand(8, 784, generator=_gen(1))
    counts = net(x)
    assert counts.shape == (8, 10)
    assert torch.equal(counts, counts.round()) and counts.min() >= 0 and counts.max() <= 15


@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.Linear(6, 5), Staircase(), nn.Linear(5, 3)),
    lambda: spiking_mlp((6, 5, 3), steps=4, generator=_gen(0)),
    lambda: nn.Sequential(nn.Linear(6, 5), Sign(), nn.Linear(5, 3)),
])
def test_hard_blocks_give_backpropagation_no_signal(make) -> None:
    torch.manual_seed(0)
    net = make()
    x = torch.randn(16, 6, generator=_gen(1))
    y = torch.randint(0, 3, (16,), generator=_gen(2))

    def first_layer_grad():
        net.zero_grad(set_to_none=True)
        loss = TF.cross_entropy(net(x), y)
        if loss.requires_grad:  # a hard spike (a comparison) may cut the graph altogether
            loss.backward()
        g = net[0].weight.grad
        return 0.0 if g is None else float(g.abs().max())

    assert first_layer_grad() == 0.0  # (*) zero derivative almost everywhere, or no graph
    for m in net.modules():  # the smooth twins do pass a signal
        if hasattr(m, "hard"):
            m.hard = False
    assert first_layer_grad() > 1e-6


# --------------------------------------------------------------------- fast path on these stacks
def _stack(kind: str) -> nn.Sequential:
    g = _gen(0)
    torch.manual_seed(0)
    if kind == "staircase":
        return nn.Sequential(nn.Linear(6, 8), Staircase(), nn.Linear(8, 8), Staircase(), nn.Linear(8, 3))
    if kind == "int8":
        return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), QuantizedLinear(8, 8, generator=g),
                             nn.ReLU(), nn.Linear(8, 3))
    if kind == "argmax_attention":
        return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), DiscreteAttention(8, slots=4, generator=g),
                             nn.Linear(8, 3))
    if kind == "hard_moe":
        return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), HardMoE(8, experts=3, hidden=5), nn.Linear(8, 3))
    if kind == "snn":
        return spiking_mlp((6, 8, 3), steps=6, generator=g)
    raise KeyError(kind)


STACKS = ("staircase", "int8", "argmax_attention", "hard_moe", "snn")


def _costs(model, make_closure, x, y, dtype):
    opt = PolyStep(model.parameters(), rank=2, particle_dim=4, eps=0.5, step_radius=1.0,
                   probe_radius=1.0, chunk_size=48, seed=3)
    X = opt.particles()
    probes = X[:, None, :] + 0.5 * torch.randn(X.shape[0], 8, X.shape[1], generator=_gen(7),
                                               dtype=torch.float64).to(dtype)
    closure = make_closure(model, TF.cross_entropy, x, y, opt.params)
    return opt._cost_oracle(closure, X)(probes), closure


@pytest.mark.parametrize("kind", STACKS)
def test_fast_path_on_non_differentiable_stacks_is_exact(kind) -> None:
    model = _stack(kind).double()
    x = torch.randn(12, 6, generator=_gen(1), dtype=torch.float64) * (3.0 if kind == "snn" else 1.0)
    y = torch.randint(0, 3, (12,), generator=_gen(2))
    fast, closure = _costs(model, fast_population_closure, x, y, torch.float64)
    naive, _ = _costs(model, population_closure, x, y, torch.float64)
    torch.testing.assert_close(fast, naive, rtol=1e-10, atol=1e-12)
    assert closure.unsupported is None and closure.stats["fast_calls"] > 0
    # the Linear layers' blocks are fast; those of parameterised hard blocks are declined (exact)
    owners = [type(m).__name__ for m in model]
    has_own_params = [i for i, m in enumerate(model) if type(m) is not nn.Linear
                      and any(True for _ in m.parameters())]
    if has_own_params:
        assert closure.declined and all("has no linear response" in r for r in closure.declined.values())
        assert all(any(owners[i] in r for i in has_own_params) for r in closure.declined.values())
    else:
        assert not closure.declined
    assert len(naive.unique()) > 1  # the probes see different losses (not a flat region)


@pytest.mark.parametrize("kind", STACKS)
def test_fast_path_on_non_differentiable_stacks_float32(kind) -> None:
    """float32: the fast path sums base + sum_k delta_k U_k, the naive path forms W + Delta W; a
    pre-activation within rounding of a jump may flip in either.  Nearly all candidates agree to
    1e-5 relative."""
    model = _stack(kind)
    x = torch.randn(12, 6, generator=_gen(1)) * (3.0 if kind == "snn" else 1.0)
    y = torch.randint(0, 3, (12,), generator=_gen(2))
    fast, _ = _costs(model, fast_population_closure, x, y, torch.float32)
    naive, _ = _costs(model, population_closure, x, y, torch.float32)
    rel = (fast - naive).abs() / naive.abs().clamp_min(1e-6)
    assert float((rel <= 1e-5).float().mean()) >= 0.99, float((rel <= 1e-5).float().mean())
