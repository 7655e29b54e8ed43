"""Tests for polystep.baselines: the update formulas, that each baseline optimises, determinism,
the ask/tell protocol shared with AskTellPolyStep, and the one harness (PopulationOptimizer) that
runs every method, PolyStep included, on an nn.Module."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from polystep.ask_tell import AskTellOptimizer, AskTellPolyStep, TellInfo
from polystep.baselines import CMAES, METHODS, SPSA, OpenAIES, PopulationOptimizer, SepCMAES, centered_ranks
from polystep.evaluation import population_closure
from polystep.functional import PolyStepConfig, StepInfo
from polystep.optim import PolyStep


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
    (lambda x0: SepCMAES(x0, generator=_gen(0)), 300, 1e-8),
])
def test_each_baseline_minimises_the_sphere(make, budget, target) -> None:
    x0 = torch.zeros(10, dtype=torch.float64)
    method = make(x0)
    for _ in range(budget):
        method.tell(_sphere(method.ask()))
    # measured: OpenAI-ES 2.0e-05, SPSA 0.030, CMA-ES 2.4e-25, sep-CMA-ES 1.2e-32 (from 10.0)
    assert float(_sphere(method.x)) < target
    assert method.t == budget


@pytest.mark.parametrize("name", ["openai_es", "spsa", "cma_es", "sep_cma_es"])
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


#: the harness test's settings for every method of METHODS (a new method must add its own)
HARNESS_OPTIONS = {
    "polystep": {"subspace": "identity", "particle_dim": 4, "eps": 0.05, "step_radius": 0.2,
                 "probe_radius": 0.2, "radius_mode": "absolute"},
    "openai_es": {"sigma": 0.1, "lr": 0.05, "weight_decay": 0.0, "total_steps": 150},
    "spsa": {"max_iters": 150, "a": 0.5},
    "cma_es": {"sigma0": 0.3},
    "sep_cma_es": {"sigma0": 0.3},
}


def test_every_method_has_harness_settings() -> None:
    assert set(HARNESS_OPTIONS) == set(METHODS) and "polystep" in METHODS


@pytest.mark.parametrize("name", METHODS)
def test_population_optimizer_trains_a_module(name) -> None:
    """One harness, every method: 150 steps on a 4-6-2 tanh network lower the loss by 30 %."""
    options = HARNESS_OPTIONS[name]
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
    assert opt.last_info.t == 149 and opt.last_info.forward_evals == opt.evals_per_step
    if name == "polystep":
        assert isinstance(opt.method, PolyStep) and isinstance(opt.last_info, StepInfo)
        assert opt.evals_per_step == 11 * 8  # D = 44 coordinates: P = 11 particles, V = 8 vertices
    else:
        assert isinstance(opt.last_info, TellInfo)
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        torch.testing.assert_close(flat, opt.method.x)


def test_harness_polystep_is_the_optimizer_step() -> None:
    """PopulationOptimizer("polystep") makes exactly PolyStep's steps (bitwise)."""
    def run(use_harness: bool) -> torch.Tensor:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).double()
        kw = dict(rank=2, particle_dim=4, eps=0.1, seed=3)
        opt = PopulationOptimizer(model.parameters(), "polystep", **kw) if use_harness else \
            PolyStep(model.parameters(), **kw)
        x = torch.randn(16, 4, generator=_gen(1), dtype=torch.float64)
        closure = population_closure(model, TF.cross_entropy, x, (x[:, 0] > 0).long(), opt.params)
        for _ in range(3):
            opt.step(closure)
        return torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.equal(run(True), run(False))


def _protocol_methods(x0: torch.Tensor) -> dict:
    cfg = PolyStepConfig(eps=0.1, step_radius=0.3, probe_radius=0.3, radius_mode="absolute")
    return {"polystep": AskTellPolyStep(x0, cfg, _gen(0), particle_dim=2),
            "openai_es": OpenAIES(x0, generator=_gen(0), population=6),
            "spsa": SPSA(x0, generator=_gen(0)),
            "cma_es": CMAES(x0, seed=1, population=4),
            "sep_cma_es": SepCMAES(x0, generator=_gen(0), population=6)}


@pytest.mark.parametrize("name", METHODS)
def test_ask_tell_protocol(name) -> None:
    """The protocol of polystep.ask_tell: shapes, info, and clear errors for misuse."""
    method = _protocol_methods(torch.zeros(5, dtype=torch.float64))[name]
    assert isinstance(method, AskTellOptimizer) and method.t == 0
    with pytest.raises(RuntimeError, match=r"tell\(\) called before ask\(\)"):
        method.tell(torch.zeros(method.population, dtype=torch.float64))
    X = method.ask()
    assert X.shape == (method.population, 5)
    with pytest.raises(RuntimeError, match=r"ask\(\) called twice without tell\(\)"):
        method.ask()
    n = method.population
    with pytest.raises(ValueError, match=rf"losses must have shape \({n},\), got \({n + 1},\)"):
        method.tell(torch.zeros(n + 1, dtype=torch.float64))
    info = method.tell(_sphere(X))  # the pending ask survived the error
    assert info.t == 0 and info.forward_evals == n and method.t == 1
    with pytest.raises(RuntimeError, match=r"tell\(\) called before ask\(\)"):
        method.tell(_sphere(X))
    method.ask()
    method.discard()
    assert method.ask().shape == (n, 5) and method.t == 1


def test_cma_es_is_separable_for_large_problems() -> None:
    assert CMAES(torch.zeros(1000), seed=1).diagonal
    assert not CMAES(torch.zeros(999), seed=1).diagonal


def test_errors() -> None:
    x0 = torch.zeros(3)
    with pytest.raises(ValueError, match=r"population must be an integer >= 2 and even \(antithetic pairs\), got 5"):
        OpenAIES(x0, generator=_gen(0), population=5)
    with pytest.raises(ValueError, match="sigma must be a finite number > 0, got 0.0"):
        OpenAIES(x0, generator=_gen(0), sigma=0.0)
    with pytest.raises(ValueError, match="lr must be a finite number >= 0, got -0.1"):
        OpenAIES(x0, generator=_gen(0), lr=-0.1)
    with pytest.raises(ValueError, match="1-D"):
        SPSA(torch.zeros(2, 2), generator=_gen(0))
    with pytest.raises(ValueError, match="seed must be an integer >= 1"):
        CMAES(x0, seed=0)
    sp = SPSA(x0, generator=_gen(0))
    sp.ask()
    with pytest.raises(ValueError, match="losses must be finite"):
        sp.tell(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match=r"method must be one of \('polystep', 'openai_es', 'spsa', 'cma_es', "
                                         r"'sep_cma_es'\)"):
        PopulationOptimizer(nn.Linear(2, 2).parameters(), "adam")
    opt = PopulationOptimizer(nn.Linear(2, 2).parameters(), "spsa")
    with pytest.raises(ValueError, match="closure must return a tensor of 2 losses"):
        opt.step(lambda thetas: torch.zeros(5))
    opt.step(lambda thetas: thetas[0].sum((1, 2)))  # a failed evaluation does not block the next step
    assert opt.forward_evals == 2 and opt.method.t == 1
