"""Tests for polystep.baselines: the update formulas, that each baseline optimises, determinism,
and the population-closure driver on an nn.Module."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from polystep.baselines import CMAES, SPSA, OpenAIES, PopulationOptimizer, centered_ranks
from polystep.evaluation import population_closure


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _sphere(X: torch.Tensor) -> torch.Tensor:
    return ((X - 1.0) ** 2).sum(-1)


def test_centered_ranks() -> None:
    got = centered_ranks(torch.tensor([3.0, -1.0, 10.0, 0.5, 0.5]))
    assert got.tolist() == pytest.approx([0.25, -0.5, 0.5, -0.25, 0.0])
    with pytest.raises(ValueError, match="two"):
        centered_ranks(torch.tensor([1.0]))


def test_openai_es_gradient_is_unbiased_on_a_linear_loss() -> None:
    """Raw fitness, antithetic: g = (2/n) sum_pairs (c.eps) eps, E[g] = c."""
    c = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    es = OpenAIES(torch.zeros(4, dtype=torch.float64), generator=_gen(0), population=20_000,
                  sigma=0.1, lr=0.0, weight_decay=0.0, fitness_shaping="none")
    X = es.ask()
    assert X.shape == (20_000, 4)
    torch.testing.assert_close(X[:10_000] + X[10_000:], torch.zeros(10_000, 4, dtype=torch.float64))
    es.tell(X @ c + 3.0)
    assert float((es.last_gradient - c).norm() / c.norm()) < 0.03  # s.e. ~ sqrt(4/10000) ~ 0.02
    assert torch.equal(es.x, torch.zeros(4, dtype=torch.float64))  # lr 0: no move


def test_openai_es_step_weight_decay_and_lr_schedule() -> None:
    es = OpenAIES(torch.full((3,), 2.0, dtype=torch.float64), generator=_gen(1), population=4,
                  sigma=0.5, lr=0.1, lr_end=0.0, total_steps=10, weight_decay=0.01)
    assert [es.learning_rate(t) for t in (0, 5, 10, 20)] == pytest.approx([0.1, 0.05, 0.0, 0.0])
    X = es.ask()
    noise = (X - 2.0) / 0.5
    losses = _sphere(X)
    es.tell(losses)
    g = centered_ranks(losses) @ noise / (4 * 0.5)
    torch.testing.assert_close(es.x, 2.0 * (1 - 0.1 * 0.01) - 0.1 * g)


def test_spsa_gains_and_step() -> None:
    sp = SPSA(torch.zeros(5, dtype=torch.float64), generator=_gen(2), max_iters=1000)
    a1, c1 = sp.gains(1)
    assert a1 == pytest.approx(0.1 / 101 ** 0.602) and c1 == pytest.approx(0.1)
    X = sp.ask()
    delta = (X[0] - X[1]) / (2 * c1)
    assert set(delta.tolist()) <= {-1.0, 1.0}
    losses = _sphere(X)
    sp.tell(losses)
    want = -a1 * (losses[0] - losses[1]) / (2 * c1) * delta
    torch.testing.assert_close(sp.x, want)
    # on the sphere the SPSA estimate is unbiased: E[g] = grad = 2 (x - 1)


@pytest.mark.parametrize("make,budget,target", [
    (lambda x0: OpenAIES(x0, generator=_gen(0), sigma=0.1, lr=0.05, lr_end=0.05, weight_decay=0.0), 300, 1e-3),
    (lambda x0: SPSA(x0, generator=_gen(0), max_iters=300), 300, 0.1),
    (lambda x0: CMAES(x0, seed=1), 300, 1e-8),
])
def test_each_baseline_minimises_the_sphere(make, budget, target) -> None:
    x0 = torch.zeros(10, dtype=torch.float64)
    method = make(x0)
    for _ in range(budget):
        method.tell(_sphere(method.ask()))
    # measured: OpenAI-ES 2.0e-05, SPSA 0.030, CMA-ES 2.4e-25 (from 10.0)
    assert float(_sphere(method.x)) < target
    assert method.t == budget


@pytest.mark.parametrize("name", ["openai_es", "spsa", "cma_es"])
def test_deterministic_by_seed(name) -> None:
    def run(seed):
        torch.manual_seed(0)
        model = nn.Linear(3, 2).double()
        opt = PopulationOptimizer(model.parameters(), name, seed=seed)
        x = torch.randn(8, 3, generator=_gen(5), dtype=torch.float64)
        y = torch.randint(0, 2, (8,), generator=_gen(6))
        closure = population_closure(model, TF.cross_entropy, x, y, opt.params)
        for _ in range(3):
            opt.step(closure)
        return torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.equal(run(4), run(4))
    assert not torch.equal(run(4), run(5))


@pytest.mark.parametrize("name,options", [
    ("openai_es", {"sigma": 0.1, "lr": 0.05, "weight_decay": 0.0, "total_steps": 150}),
    ("spsa", {"max_iters": 150, "a": 0.5}),
    ("cma_es", {"sigma0": 0.3}),
])
def test_population_optimizer_trains_a_module(name, options) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double()
    g = _gen(1)
    x = torch.randn(64, 4, generator=g, dtype=torch.float64)
    y = (x[:, 0] + x[:, 1] > 0).long()
    opt = PopulationOptimizer(model.parameters(), name, seed=3, **options)
    closure = population_closure(model, TF.cross_entropy, x, y, opt.params)
    with torch.no_grad():
        before = float(TF.cross_entropy(model(x), y))
    for _ in range(150):
        opt.step(closure)
    with torch.no_grad():
        after = float(TF.cross_entropy(model(x), y))
    assert after < 0.7 * before, (before, after)
    assert opt.forward_evals == 150 * opt.evals_per_step
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.testing.assert_close(flat, opt.method.x)


def test_cma_es_is_separable_for_large_problems() -> None:
    assert CMAES(torch.zeros(1000), seed=1).diagonal
    assert not CMAES(torch.zeros(999), seed=1).diagonal


def test_errors() -> None:
    x0 = torch.zeros(3)
    with pytest.raises(ValueError, match="even integer"):
        OpenAIES(x0, generator=_gen(0), population=5)
    with pytest.raises(ValueError, match="sigma > 0"):
        OpenAIES(x0, generator=_gen(0), sigma=0.0)
    with pytest.raises(ValueError, match="1-D"):
        SPSA(torch.zeros(2, 2), generator=_gen(0))
    with pytest.raises(ValueError, match="seed must be an integer >= 1"):
        CMAES(x0, seed=0)
    sp = SPSA(x0, generator=_gen(0))
    with pytest.raises(RuntimeError, match="without a preceding ask"):
        sp.tell(torch.zeros(2))
    sp.ask()
    with pytest.raises(ValueError, match="needs 2 losses"):
        sp.tell(torch.zeros(3))
    sp.ask()
    with pytest.raises(ValueError, match="finite"):
        sp.tell(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="method must be one of"):
        PopulationOptimizer(nn.Linear(2, 2).parameters(), "adam")
    opt = PopulationOptimizer(nn.Linear(2, 2).parameters(), "spsa")
    with pytest.raises(ValueError, match="closure must return a tensor of 2 losses"):
        opt.step(lambda thetas: torch.zeros(5))
