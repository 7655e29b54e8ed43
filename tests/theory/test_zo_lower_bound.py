"""theory.zo_lower_bound: objectives, batched baselines equal to polystep.baselines, the block
decomposition of PolyStep equal to the full-vector ask/tell loop, and the power-law fits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polystep.ask_tell import AskTellPolyStep
from polystep.baselines import SPSA, OpenAIES, centered_ranks
from polystep.functional import PolyStepConfig
from polystep.schedules import InverseSqrt
from theory import objectives as O
from theory import zo_lower_bound as Z


def test_objectives_match_theory_objectives_and_autograd() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 6, generator=gen, dtype=torch.float64) * 2
    q, lc = Z.HalfSquaredNorm(), Z.LogCoshSum()
    torch.testing.assert_close(q(x), O.quadratic(torch.eye(6, dtype=torch.float64))(x))
    torch.testing.assert_close(lc(x), O.log_cosh_quadratic(torch.zeros(6, 6, dtype=torch.float64))(x))
    for f in (q, lc):
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(f(xr).sum(), xr)
        torch.testing.assert_close(f.grad(x), g)
        assert float(f(torch.zeros(3, dtype=torch.float64))) == f.minimum == 0.0


def test_batched_centered_ranks_match_the_baselines_ranks() -> None:
    gen = torch.Generator().manual_seed(1)
    losses = torch.randint(0, 5, (4, 10), generator=gen).double()  # ties: stable order
    batched = Z.batched_centered_ranks(losses)
    for i in range(4):
        assert torch.equal(batched[i], centered_ranks(losses[i]))


def test_budget_steps_and_starts() -> None:
    assert list(Z.budget_steps([100, 250], 16)) == [6, 15]
    with pytest.raises(ValueError):
        Z.budget_steps([10], 16)
    x0 = Z.normalised_starts(512, 200, torch.Generator().manual_seed(2))
    assert abs(float((x0 ** 2).sum(1).mean()) - 1.0) < 0.02  # E||x0||^2 = 1; sd of the mean ~ 0.004
    np.testing.assert_allclose(Z.reference_order([4, 16], [100, 100]), [0.2, 0.4])


def test_batched_openai_es_is_the_baseline_class_for_one_seed() -> None:
    """Same generator stream, one row: the class's iterates (constant lr, no decay), up to the order
    of a 25-term sum (1e-13 relative)."""
    d, steps, pop = 6, 30, 10
    obj = Z.HalfSquaredNorm()
    x0 = torch.randn(1, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out = Z.run_openai_es(obj, x0, [steps * pop], torch.Generator().manual_seed(4), population=pop, sigma=0.1,
                          lr=0.05, weight_decay=0.0)
    es = OpenAIES(x0[0], generator=torch.Generator().manual_seed(4), population=pop, sigma=0.1, lr=0.05,
                  lr_end=0.05, weight_decay=0.0)
    for _ in range(steps):
        es.tell(obj(es.ask()))
    assert out["steps"][0] == steps and out["queries"][0] == steps * pop
    np.testing.assert_allclose(out["g"][-1, 0], float(obj.grad(es.x).norm()), rtol=1e-12)


def test_batched_spsa_is_the_baseline_class_for_one_seed() -> None:
    d, steps = 5, 200
    obj = Z.LogCoshSum()
    x0 = torch.randn(1, d, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    out = Z.run_spsa(obj, x0, [2 * steps], torch.Generator().manual_seed(6), A=20.0)
    sp = SPSA(x0[0], generator=torch.Generator().manual_seed(6), A=20.0)
    for _ in range(steps):
        sp.tell(obj(sp.ask()))
    np.testing.assert_allclose(out["g"][-1, 0], float(obj.grad(sp.x).norm()), rtol=1e-12)


@pytest.mark.parametrize("name", ["quadratic", "logcosh"])
def test_block_decomposition_equals_full_vector_polystep(name) -> None:
    """run_polystep simulates the P blocks of a separable objective as independent particles; the
    ask/tell loop in block mode evaluates full D-vectors (2D queries a step). Same generator stream,
    same iterates up to rounding: the per-particle constant f(x) - f_i(x_i) cancels in the softmax
    (tolerance 1e-9 relative over 40 steps)."""
    dim, dp, steps, eps = 12, 4, 40, 0.1
    obj = Z.OBJECTIVES[name]()
    budgets = [10 * 2 * dim, steps * 2 * dim]
    out = Z.run_polystep({name: obj}, dim, 1, budgets, torch.Generator().manual_seed(7), particle_dim=dp,
                         eps=(eps,))
    assert out["queries_per_step"] == 2 * dim and list(out["steps"]) == [10, steps]
    gen = torch.Generator().manual_seed(7)
    x0 = torch.randn(dim // dp, dp, generator=gen, dtype=torch.float64) / math.sqrt(dim)
    cfg = PolyStepConfig(polytope="orthoplex", eps=eps, step_radius=InverseSqrt(start=1.0),
                         probe_radius=InverseSqrt(start=1.0), radius_mode="absolute", probe_jitter=0.05)
    at = AskTellPolyStep(x0.flatten(), cfg, gen, particle_dim=dp)
    norms = {}
    for t in range(1, steps + 1):
        cand = at.ask()
        assert cand.shape == (2 * dim, dim)  # P V K = 2D full vectors
        at.tell(obj(cand))
        norms[t] = float(obj.grad(at.x).norm())
    np.testing.assert_allclose(out["g"][(name, eps)][:, 0], [norms[10], norms[steps]], rtol=1e-9)
    assert norms[steps] < norms[1]


def test_power_law_fit_recovers_known_exponents() -> None:
    """g = 0.3 D^0.7 Q^-1.1 with lognormal seed noise (sd 0.1): the fit recovers a and b within 0.05
    (grid of 2.4 and 0.9 decades, 8 seeds), the CIs cover them, and exact data fit exactly."""
    dims = np.array([4, 16, 64, 256, 1024])
    queries = np.tile([5e4, 1e5, 2e5, 4e5], (5, 1)) - dims[:, None]  # whole steps: Q differs by D
    truth = 0.3 * dims[:, None] ** 0.7 * queries ** -1.1
    rng = np.random.default_rng(0)
    g = truth[:, :, None] * np.exp(0.1 * rng.standard_normal((5, 4, 8)))
    fit = Z.fit_power_law(dims, queries, g, np.random.default_rng(1), n_boot=300)
    assert abs(fit["a"] - 0.7) < 0.05 and abs(fit["b"] + 1.1) < 0.05
    assert fit["a_ci"][0] < 0.7 < fit["a_ci"][1] and fit["b_ci"][0] < -1.1 < fit["b_ci"][1]
    exact = Z.fit_power_law(dims, queries, np.repeat(truth[:, :, None], 3, 2), np.random.default_rng(1), n_boot=10)
    assert exact["a"] == pytest.approx(0.7, abs=1e-9) and exact["b"] == pytest.approx(-1.1, abs=1e-9)
    assert exact["residual_rms"] < 1e-9
    s = Z.fit_slope(dims, np.repeat((0.2 * dims ** 0.5)[:, None], 4, 1), np.random.default_rng(2), n_boot=50)
    assert s["slope"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        Z.fit_power_law(dims, queries, np.zeros((5, 4, 2)), np.random.default_rng(0))


def test_row_stack_applies_each_objective_to_its_rows() -> None:
    q, lc = Z.HalfSquaredNorm(), Z.LogCoshSum()
    st = Z.RowStack([q, lc], [2, 3])
    x = torch.randn(5, 4, 7, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    torch.testing.assert_close(st(x), torch.cat([q(x[:2]), lc(x[2:])]))
    torch.testing.assert_close(st.grad(x[:, 0]), torch.cat([q.grad(x[:2, 0]), lc.grad(x[2:, 0])]))
    with pytest.raises(ValueError, match="rows"):
        st(x[:4])
