"""The population LSTM of Table T6 (repro.tasks.lstm_population): a population of candidates in one
pass equals the same candidates run one by one through torch.nn.LSTM, in both modes and every sharing
pattern; it plugs into PolyStep and the baselines through the population-closure protocol; and the
parameter-space momentum / coasting of repro.tasks.t6_train.PaperPolyStep does what §2.9 says."""

from __future__ import annotations

import pytest
import torch

from polystep.baselines import PopulationOptimizer
from polystep.optim import PolyStep
from repro.tasks.lstm_population import (LSTM_PARAMETER_NAMES, MODES, build_forecaster, lstm_population_closure,
                                         naive_population_losses, population_lstm, population_mse)
from repro.tasks.t6_train import PaperPolyStep

#: which tensors the candidates move: none (all shared), each one alone, the LSTM's, the head's, all
PATTERNS = {"shared": set(), "w_ih": {0}, "w_hh": {1}, "b_ih": {2}, "b_hh": {3}, "head_w": {4}, "head_b": {5},
            "lstm": {0, 1, 2, 3}, "head": {4, 5}, "all": set(range(6))}


def _population(model, moved: set[int], B: int, gen: torch.Generator, scale: float = 0.1) -> list[torch.Tensor]:
    params = list(model.parameters())
    return [p.detach()[None] + scale * torch.randn(B, *p.shape, dtype=p.dtype, generator=gen) if i in moved
            else p.detach()[None].expand(B, *p.shape) for i, p in enumerate(params)]


def _one_by_one(model, thetas, x) -> torch.Tensor:
    """Candidate b loaded into a copy of the model (torch.nn.LSTM + nn.Linear) and run: [B, N, P]."""
    outs = []
    ref = build_forecaster(torch.Generator().manual_seed(0), hidden=model.hidden, pred_len=model.pred_len,
                           dtype=thetas[0].dtype)
    for b in range(thetas[0].shape[0]):
        with torch.no_grad():
            for p, t in zip(ref.parameters(), thetas):
                p.copy_(t[b])
            outs.append(ref(x))
    return torch.stack(outs)


def test_the_paper_model_has_23392_parameters_in_the_documented_order() -> None:
    m = build_forecaster(torch.Generator().manual_seed(0))
    assert sum(p.numel() for p in m.parameters()) == 23_392
    assert tuple(n for n, _ in m.named_parameters()) == LSTM_PARAMETER_NAMES
    bound = 1 / 64 ** 0.5
    assert all(float(p.detach().abs().max()) <= bound for p in m.parameters())
    again = build_forecaster(torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), again.parameters()))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_population_equals_separate_nn_lstm_runs_float64(mode, pattern) -> None:
    gen = torch.Generator().manual_seed(1)
    model = build_forecaster(gen, hidden=16, pred_len=12, dtype=torch.float64)
    x = torch.randn(7, 20, dtype=torch.float64, generator=gen)
    y = torch.randn(7, 12, dtype=torch.float64, generator=gen)
    thetas = _population(model, PATTERNS[pattern], 5, gen)
    out = population_lstm(thetas, x, mode=mode)
    expected = _one_by_one(model, thetas, x)
    # float64: different summation orders and tanh = 2 sigmoid(2a) - 1 leave ~1e-15; 1e-12 is rounding only
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    losses = lstm_population_closure(model, x, y, mode=mode)(thetas)
    torch.testing.assert_close(losses, naive_population_losses(model, thetas, x, y), rtol=0, atol=1e-12)
    if PATTERNS[pattern]:  # the candidates really differ (the test would pass on a constant output otherwise)
        assert float((expected[0] - expected[1]).abs().max()) > 1e-3


@pytest.mark.parametrize("mode", MODES)
def test_float32_paper_sizes_match_to_float_rounding(mode) -> None:
    gen = torch.Generator().manual_seed(2)
    model = build_forecaster(gen)
    x, y = torch.randn(8, 96, generator=gen), torch.randn(8, 96, generator=gen)
    thetas = _population(model, PATTERNS["all"], 3, gen, scale=0.02)
    got = lstm_population_closure(model, x, y, mode=mode)(thetas)
    # float32 over a 96-step recurrence: ~1e-6 relative on losses of order 1
    torch.testing.assert_close(got, naive_population_losses(model, thetas, x, y), rtol=1e-5, atol=1e-6)


def test_chunks_of_the_population_give_the_same_losses() -> None:
    gen = torch.Generator().manual_seed(3)
    model = build_forecaster(gen, hidden=8, pred_len=6, dtype=torch.float64)
    x, y = torch.randn(5, 10, dtype=torch.float64, generator=gen), torch.randn(5, 6, dtype=torch.float64, generator=gen)
    thetas = [t for t in _population(model, PATTERNS["w_hh"], 9, gen)]
    model_order = thetas  # parameters() order == LSTM_PARAMETER_NAMES
    whole = population_mse(model_order, x, y, max_rows=10 ** 6)
    pieces = population_mse(model_order, x, y, max_rows=10)  # 2 candidates per chunk
    torch.testing.assert_close(pieces, whole, rtol=0, atol=1e-14)


def test_bad_inputs_are_refused() -> None:
    gen = torch.Generator().manual_seed(4)
    model = build_forecaster(gen, hidden=4, pred_len=3)
    x, y = torch.randn(2, 5), torch.randn(2, 3)
    thetas = _population(model, set(), 3, gen)
    with pytest.raises(ValueError, match="mode"):
        lstm_population_closure(model, x, y, mode="vmap")
    with pytest.raises(ValueError, match="6 parameter tensors"):
        lstm_population_closure(model, x, y)(thetas[:5])
    with pytest.raises(ValueError, match="population sizes differ"):
        population_lstm(thetas[:5] + [thetas[5][:2]], x)
    other = torch.nn.Linear(3, 3)
    with pytest.raises(ValueError, match="not a parameter of the model"):
        lstm_population_closure(model, x, y, params=list(other.parameters()))
    with pytest.raises(ValueError, match=r"windows \[N, seq_len\]"):
        model(torch.randn(2, 5, 1))


@pytest.mark.parametrize("subspace", ["hybrid", "random"])
def test_polystep_steps_the_same_with_the_batched_closure_as_with_the_naive_loop(subspace) -> None:
    """PolyStep sends its chunks through the closure protocol; the batched closure and the reference
    (one functional_call of nn.LSTM per candidate) give the same step in float64."""
    gen = torch.Generator().manual_seed(5)
    x, y = torch.randn(6, 12, dtype=torch.float64, generator=gen), torch.randn(6, 4, dtype=torch.float64, generator=gen)
    results = []
    for how in ("batched", "loop", "naive"):
        model = build_forecaster(torch.Generator().manual_seed(6), hidden=4, pred_len=4, dtype=torch.float64)
        kw = {"rank": 1} if subspace == "hybrid" else {"subspace_dim": 24}
        opt = PolyStep(model.parameters(), subspace=subspace, **kw, eps=0.5, step_radius=0.3, probe_radius=0.5,
                       radius_mode="absolute", chunk_size=40, seed=0)
        for _ in range(3):
            if how == "naive":
                def closure(thetas, model=model):
                    return naive_population_losses(model, thetas, x, y, opt.params)
            else:
                closure = lstm_population_closure(model, x, y, opt.params, mode=how)
            opt.step(closure)
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    start = torch.cat([p.detach().flatten() for p in build_forecaster(torch.Generator().manual_seed(6), hidden=4, pred_len=4,
                                                              dtype=torch.float64).parameters()])
    assert float((results[0] - start).abs().max()) > 1e-3  # it moved
    torch.testing.assert_close(results[0], results[2], rtol=0, atol=1e-10)  # float64 rounding of the losses
    torch.testing.assert_close(results[1], results[2], rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", ["openai_es", "sep_cma_es", "spsa"])
def test_baselines_evaluate_their_population_through_the_closure(method) -> None:
    model = build_forecaster(torch.Generator().manual_seed(7), hidden=4, pred_len=3)
    x, y = torch.randn(5, 8), torch.randn(5, 3)
    opt = PopulationOptimizer(model.parameters(), method, seed=0, **({"max_iters": 10} if method == "spsa" else {}))
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    loss = opt.step(lstm_population_closure(model, x, y, opt.params))
    assert torch.isfinite(loss) and opt.forward_evals == opt.evals_per_step
    assert not torch.equal(before, torch.cat([p.detach().flatten() for p in model.parameters()]))


def _flat(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _paper_polystep(momentum, amortize, seed=8):
    model = build_forecaster(torch.Generator().manual_seed(seed), hidden=4, pred_len=3, dtype=torch.float64)
    opt = PolyStep(model.parameters(), subspace="random", subspace_dim=16, eps=0.5, step_radius=0.3,
                   probe_radius=0.5, radius_mode="absolute", seed=0)
    return model, opt, PaperPolyStep(opt, amortize=amortize, ema=0.7, momentum=momentum, momentum_steps=3)


def test_paper_polystep_without_extras_is_plain_polystep() -> None:
    gen = torch.Generator().manual_seed(9)
    x, y = torch.randn(5, 8, dtype=torch.float64, generator=gen), torch.randn(5, 3, dtype=torch.float64, generator=gen)
    model, opt, loop = _paper_polystep(None, 1)
    ref_model, ref_opt, _ = _paper_polystep(None, 1)
    for _ in range(3):
        loop.step(lambda: lstm_population_closure(model, x, y, opt.params))
        ref_opt.step(lstm_population_closure(ref_model, x, y, ref_opt.params))
    assert torch.equal(_flat(model), _flat(ref_model)) and loop.ot_steps == 3


def test_coasting_and_momentum_follow_the_recorded_displacements() -> None:
    """Amortize 3: calls 1, 2 evaluate nothing and move by (2/3, 1/3) d_EMA; an OT step moves by
    v = beta_t v + d, where d is PolyStep's own (barycentric) move from the same point; beta ramps
    from 0.5 to 0.95 over momentum_steps = 3 OT steps."""
    gen = torch.Generator().manual_seed(10)
    x, y = torch.randn(5, 8, dtype=torch.float64, generator=gen), torch.randn(5, 3, dtype=torch.float64, generator=gen)
    model, opt, loop = _paper_polystep((0.5, 0.95), 3)
    assert [loop.beta(t) for t in range(4)] == pytest.approx([0.5, 0.725, 0.95, 0.95])
    calls = []

    def closure_fn():
        calls.append(loop.calls)
        return lstm_population_closure(model, x, y, opt.params)

    v = None
    ema = None
    for c in range(7):
        before = _flat(model)
        if c % 3 == 0:
            # PolyStep's own move from this point: a twin optimizer in the same state
            twin_model = build_forecaster(torch.Generator().manual_seed(0), hidden=4, pred_len=3, dtype=torch.float64)
            with torch.no_grad():
                for p, q in zip(twin_model.parameters(), model.parameters()):
                    p.copy_(q)
            twin = PolyStep(twin_model.parameters(), subspace="random", subspace_dim=16, eps=0.5, step_radius=0.3,
                            probe_radius=0.5, radius_mode="absolute", seed=0)
            twin.load_state_dict(opt.state_dict())  # same subspace, step, generator state; theta_0 + P z
            with torch.no_grad():                  # ... at the current parameters (rebase, as opt will do)
                for p, q in zip(twin_model.parameters(), model.parameters()):
                    p.copy_(q)
            twin.step(lstm_population_closure(twin_model, x, y, twin.params))
            d = _flat(twin_model) - before
            beta = loop.beta(loop.ot_steps)
            loss = loop.step(closure_fn)
            assert loss is not None and loop.last_evals == opt.evals_per_step
            v = d if v is None else beta * v + d
            ema = d if ema is None else 0.7 * ema + 0.3 * d
            torch.testing.assert_close(_flat(model) - before, v, rtol=0, atol=1e-12)
        else:
            assert loop.step(closure_fn) is None and loop.last_evals == 0
            torch.testing.assert_close(_flat(model) - before, (1 - (c % 3) / 3) * ema, rtol=0, atol=1e-12)
    assert calls == [1, 4, 7] and loop.ot_steps == 3  # closures built on OT calls 0, 3, 6 only
    assert float(v.abs().max()) > 1e-4


def test_paper_polystep_needs_a_fixed_subspace() -> None:
    model = build_forecaster(torch.Generator().manual_seed(0), hidden=4, pred_len=3)
    opt = PolyStep(model.parameters(), subspace="random", subspace_dim=8, absorb_every=5)
    with pytest.raises(ValueError, match="fixed subspace"):
        PaperPolyStep(opt)
    with pytest.raises(ValueError, match="amortize"):
        PaperPolyStep(PolyStep(model.parameters(), subspace="random", subspace_dim=8), amortize=0)
