"""Tests for the hard-LIF and hard-MoE paths of polystep.fast_eval: the periodic first-spike LIF
kernel, the in-place sequence LIF, the routed MoE and the expert-block path equal the modules and the
naive per-candidate evaluation (:func:`polystep.evaluation.population_closure`) -- float64 to 1e-12,
float32 up to candidates whose hard thresholds lie within rounding -- and ``closure.stats`` shows the
paths were taken."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from polystep.evaluation import population_closure
from polystep.fast_eval import (_lif_constant, _lif_first_spike_thresholds, _lif_sequence, _moe_routed,
                                fast_population_closure)
from polystep.nondiff import LIF, HardMoE, spiking_mlp
from polystep.optim import PolyStep


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _init_(model: nn.Module, gen: torch.Generator, scale: float = 1.0) -> nn.Module:
    """Every parameter ``U(-scale / sqrt(fan_in), scale / sqrt(fan_in))`` from ``gen``."""
    with torch.no_grad():
        for q in model.parameters():
            bound = scale / math.sqrt(q.shape[-1] if q.ndim > 1 else q.shape[0])
            q.copy_(torch.rand(q.shape, generator=gen, dtype=q.dtype) * 2 * bound - bound)
    return model


# ------------------------------------------------------------------------------- LIF kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("beta,threshold,steps", [(0.95, 1.0, 15), (0.5, 0.3, 7), (1.0, 1.0, 9),
                                                  (0.0, 0.25, 4)])
def test_periodic_lif_equals_the_module_bit_for_bit(dtype, beta, threshold, steps) -> None:
    """The first-spike thresholds c_t are exact: currents at c_t and one ulp below it give the
    module's spike train and count exactly (the train is periodic in floating point)."""
    c = torch.tensor(_lif_first_spike_thresholds(beta, threshold, steps, dtype), dtype=dtype)
    finite = c[torch.isfinite(c)]
    below = torch.nextafter(finite, torch.tensor(-math.inf, dtype=dtype))
    current = torch.cat([finite, below, torch.randn(400, generator=_gen(0), dtype=dtype) * 0.7,
                         torch.tensor([0.0, -0.0, 1e-30, -5.0], dtype=dtype)]).reshape(-1, 1)
    lif = LIF(beta, threshold, steps=steps)
    assert torch.equal(_lif_constant(lif, current, None), lif(current))
    lif_count = LIF(beta, threshold, steps=steps, count=True)
    assert torch.equal(_lif_constant(lif_count, current, None), lif_count(current))
    # the thresholds are tight: at c_t the membrane reaches the threshold at step t, one ulp below not
    spikes_at, spikes_below = lif(finite[:, None]), lif(below[:, None])
    for t in range(finite.numel()):
        assert spikes_at[t, t, 0] == 1 and spikes_below[t, t, 0] == 0
    assert len(lif(current).sum(dim=1).unique()) >= 2  # spiking and silent neurons (not a flat case)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_periodic_lif_fused_with_the_next_linear(dtype) -> None:
    lif = LIF(0.95, 1.0, steps=6)
    linear = _init_(nn.Linear(5, 3, dtype=dtype), _gen(1))
    current = torch.randn(40, 5, generator=_gen(2), dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(_lif_constant(lif, current, linear), linear(lif(current)), rtol=tol, atol=tol)


def test_periodic_lif_declines_non_finite_and_huge_currents() -> None:
    """inf * 0 is NaN, not a reset (and a huge current may overflow the membrane): the module runs."""
    lif = LIF(0.95, 1.0, steps=5)
    for bad in (math.inf, math.nan, 1e38):
        current = torch.tensor([[0.5, bad]])
        assert _lif_constant(lif, current, None) is None
    assert _lif_constant(lif, torch.tensor([[0.5, 1e30]]), None) is not None


@pytest.mark.parametrize("count", [False, True])
def test_sequence_lif_kernel_equals_the_module_with_non_finite_inputs(count) -> None:
    lif = LIF(0.9, 1.0, count=count)
    seq = torch.randn(30, 8, 4, generator=_gen(3)) * 0.8
    seq[0, 2, 1], seq[1, 0, 0], seq[2, 3, 2] = math.inf, math.nan, -math.inf
    assert torch.equal(_lif_sequence(lif, seq).isnan(), lif(seq).isnan())
    torch.testing.assert_close(_lif_sequence(lif, seq), lif(seq), rtol=0, atol=0, equal_nan=True)


# ---------------------------------------------------------------------------------- MoE kernel
def _moe(dtype=torch.float64, dim: int = 8, experts: int = 3) -> HardMoE:
    return _init_(HardMoE(dim, experts=experts, hidden=6, dtype=dtype), _gen(4))


def test_routed_moe_equals_the_module_and_declines_unsafe_inputs() -> None:
    moe = _moe()
    x = torch.randn(50, 8, generator=_gen(5), dtype=torch.float64)
    routed = _moe_routed(moe, x)
    torch.testing.assert_close(routed, moe(x), rtol=1e-13, atol=1e-13)
    assert len(moe.gate(x).argmax(-1).unique()) == 3  # every expert gets rows
    # an input so large that an expert may overflow: the module's 0 * inf = NaN must be kept
    assert _moe_routed(moe, x * 1e300) is None
    assert _moe_routed(_init_(HardMoE(8, 2, hard=False, dtype=torch.float64), _gen(6)), x) is None


# ------------------------------------------------------------------------- closure vs naive
def _snn(dtype) -> nn.Sequential:
    return spiking_mlp((12, 64, 3), steps=6, generator=_gen(7), dtype=dtype)


def _moe_stack(dtype) -> nn.Sequential:
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), HardMoE(8, experts=3, hidden=6), nn.Linear(8, 3))
    return _init_(model.to(dtype), _gen(8))


def _losses(model, make_closure, x, y, dtype, basis: str = "kronecker", radius: float = 0.5,
            rank: int = 2):
    """Losses of P x V random candidates around the particles (every block, straddling particles
    included), as ``PolyStep`` evaluates them with the given closure."""
    opt = PolyStep(model.parameters(), rank=rank, particle_dim=8, eps=0.5, chunk_size=64, basis=basis,
                   seed=3)
    X = opt.particles()
    probes = X[:, None, :] + radius * torch.randn(X.shape[0], 16, X.shape[1], generator=_gen(9),
                                                  dtype=torch.float64).to(dtype)
    closure = make_closure(model, TF.cross_entropy, x, y, opt.params)
    return opt._cost_oracle(closure, X)(probes), closure, opt, X, probes


def _data(kind: str, dtype, n: int = 16):
    x = torch.randn(n, 12, generator=_gen(10), dtype=dtype) * (2.0 if kind == "snn" else 1.0)
    return x, torch.randint(0, 3, (n,), generator=_gen(11))


@pytest.mark.parametrize("basis", ["kronecker", "qr"])
def test_snn_fast_path_is_exact_in_float64(basis) -> None:
    model = _snn(torch.float64)
    x, y = _data("snn", torch.float64)
    fast, closure, *_ = _losses(model, fast_population_closure, x, y, torch.float64, basis)
    naive, *_ = _losses(model, population_closure, x, y, torch.float64, basis)
    assert float((fast - naive).abs().max()) <= 1e-12
    assert len(naive.unique()) > naive.numel() // 2  # the candidates see different losses
    s = closure.stats
    assert s["declined_calls"] == 0 and s["fast_calls"] > 0
    # fc1 blocks: periodic LIF fused with fc2 (dense, and sparse for the bias); fc2 blocks and all
    # of them: the in-place LIF over the output sequence; straddling particles: shared prefix
    assert s["lif_constant_calls"] > 0 and s["lif_sparse_calls"] > 0 and s["lif_sequence_calls"] > 0
    assert s["population_calls"] > 0 and s["population_suffix_calls"] == s["population_calls"]


def test_moe_fast_path_is_exact_in_float64() -> None:
    model = _moe_stack(torch.float64)
    x, y = _data("moe", torch.float64, 24)
    fast, closure, *_ = _losses(model, fast_population_closure, x, y, torch.float64)
    naive, *_ = _losses(model, population_closure, x, y, torch.float64)
    assert float((fast - naive).abs().max()) <= 1e-12
    assert len(naive.unique()) > naive.numel() // 2
    s = closure.stats
    # expert blocks on their routed rows; fc1 blocks through the routed MoE; the gate is declined
    # and, like the straddling particles, shares the prefix
    assert s["moe_expert_calls"] > 0 and s["moe_routed_calls"] > 0 and s["moe_guard_fallbacks"] == 0
    assert closure.declined and all("gate" in r and "HardMoE" in r for r in closure.declined.values())
    assert s["population_suffix_calls"] == s["population_calls"] + s["declined_calls"] > 0


def _lif_margin(lif: LIF, inputs: list[torch.Tensor]) -> torch.Tensor:
    """``min_t |m_t - threshold|`` per row of a hard LIF run on ``inputs`` (one tensor per step)."""
    mem, margin = torch.zeros_like(inputs[0]), None
    for i_t in inputs:
        mem = lif.beta * mem + i_t
        gap = (mem - lif.threshold).abs().flatten(1).amin(dim=1)
        margin = gap if margin is None else torch.minimum(margin, gap)
        mem = mem * (mem < lif.threshold)
    return margin


def test_snn_fast_path_float32_differs_only_within_rounding_of_a_spike_threshold() -> None:
    """float32: the fast path sums ``base + sum_k delta_k U_k`` (the naive path ``W + Delta W``),
    so a membrane within rounding of the threshold can spike in one and not in the other.  >= 99 %
    of the candidates agree to 1e-5; for each other one (1 of 6,960 here on the reference machine)
    the naive evaluation has a membrane within 1e-4 of the threshold (first or output LIF)."""
    model = spiking_mlp((784, 32, 10), steps=15, generator=_gen(7))
    x, y = torch.randn(32, 784, generator=_gen(10)), torch.randint(0, 10, (32,), generator=_gen(11))
    fast, closure, opt, X, probes = _losses(model, fast_population_closure, x, y, torch.float32,
                                            radius=0.3, rank=4)
    naive, *_ = _losses(model, population_closure, x, y, torch.float32, radius=0.3, rank=4)
    differ = ((fast - naive).abs() > 1e-5 * naive.abs().clamp_min(1e-6)).flatten()
    assert float(differ.float().mean()) <= 0.01 and closure.stats["lif_constant_calls"] > 0
    fc1, lif1, fc2, lif2 = model
    for flat in differ.nonzero().flatten().tolist():
        i, j = divmod(flat, probes.shape[1])
        theta = opt._population(torch.tensor([i]), (probes[i, j] - X[i])[None, None],
                                dict(zip(opt._names, opt.params)))
        w1, b1, w2, b2 = (t[0] for t in theta)
        current = TF.linear(x, w1, b1)
        out = TF.linear(lif1(current), w2, b2)
        margin = torch.minimum(_lif_margin(lif1, [current] * lif1.steps).amin(),
                               _lif_margin(lif2, list(out.unbind(1))).amin())
        assert float(margin) <= 1e-4, (i, j, float(margin))


def test_moe_fast_path_float32_differs_only_at_near_ties_of_the_gate() -> None:
    model = _moe_stack(torch.float32)
    x, y = _data("moe", torch.float32, 24)
    fast, closure, *_ = _losses(model, fast_population_closure, x, y, torch.float32)
    naive, *_ = _losses(model, population_closure, x, y, torch.float32)
    rel = (fast - naive).abs() / naive.abs().clamp_min(1e-6)
    assert float((rel <= 1e-5).float().mean()) >= 0.99 and closure.stats["moe_expert_calls"] > 0


def test_moe_expert_path_falls_back_where_an_expert_could_overflow() -> None:
    """A huge move of an expert can make its output infinite on rows routed to other experts, where
    the module computes 0 * inf = NaN: the bound check sends such chunks to the generic path."""
    model = _moe_stack(torch.float32)
    x, y = _data("moe", torch.float32, 24)
    opt = PolyStep(model.parameters(), rank=2, particle_dim=8, seed=3)
    fast = fast_population_closure(model, TF.cross_entropy, x, y, opt.params)
    naive = population_closure(model, TF.cross_entropy, x, y, opt.params)
    expert = next(b for b in opt.subspace.blocks if b.targets[0].name == "4")  # experts.0.0.weight
    assert "experts.0.0.weight" in fast.parameter_names[4]
    delta = torch.randn(2, 3, 8, generator=_gen(12))
    for scale, fallback in ((1.0, False), (1e37, True)):
        before = fast.stats["moe_guard_fallbacks"]
        got = fast.block_losses(expert, 0, delta * scale)
        want = naive(fast._block_population(expert, 0, delta * scale))
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)
        assert (fast.stats["moe_guard_fallbacks"] > before) == fallback


@pytest.mark.parametrize("kind", ["snn", "moe"])
def test_polystep_trajectory_is_unchanged_by_the_kernels(kind) -> None:
    """Three float64 steps with the fast closure land where the naive closure's steps land."""
    make = _snn if kind == "snn" else _moe_stack
    x, y = _data(kind, torch.float64, 24)
    finals = []
    for closure_of in (fast_population_closure, population_closure):
        model = make(torch.float64)
        opt = PolyStep(model.parameters(), rank=2, particle_dim=8, eps=0.5, step_radius=1.0,
                       probe_radius=1.0, basis="kronecker", seed=5)
        closure = closure_of(model, TF.cross_entropy, x, y, opt.params)
        for _ in range(3):
            opt.step(closure)
        finals.append(torch.cat([q.detach().flatten() for q in model.parameters()]))
    start = torch.cat([q.detach().flatten() for q in make(torch.float64).parameters()])
    assert float((finals[0] - start).abs().max()) > 1e-3  # the steps moved the parameters
    torch.testing.assert_close(finals[0], finals[1], rtol=0, atol=1e-10)
