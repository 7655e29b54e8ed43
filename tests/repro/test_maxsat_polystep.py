"""Full-space PolyStep on MAX-SAT (repro.tasks.maxsat_polystep): the incremental cost oracle
through polystep.functional.step gives bit for bit the iterates of the dense ask/tell path (every
candidate materialised and recounted); the driver's amortization/momentum bookkeeping; the
paper's schedules as intended and as run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polystep import functional
from polystep.ask_tell import AskTellPolyStep
from polystep.functional import PolyStepConfig
from polystep.schedules import Cosine, positional_bug_demo
from repro.tasks.maxsat_eval import assignment, unsat_count, unsat_fraction
from repro.tasks.maxsat_instances import paper_instance
from repro.tasks.maxsat_polystep import MaxSATCost, MaxSATPolyStep, paper_config, polystep_step


def _dense_run(cnf, config, s0, seed, steps, unit="fraction"):
    at = AskTellPolyStep(s0.clone(), config, torch.Generator().manual_seed(seed), particle_dim=2, mode="block")
    out = []
    for _ in range(steps):
        cand = at.ask()  # [P V K, n]: every candidate materialised
        loss = unsat_fraction(cnf, assignment(cand)) if unit == "fraction" else unsat_count(cnf, assignment(cand))
        info = at.tell(torch.as_tensor(np.asarray(loss, dtype=np.float64)))
        out.append((at.particles.clone(), info.costs.clone()))
    return out


@pytest.mark.parametrize("n, solver, schedule, unit, dtype", [
    (9, "softmax", "as_run", "fraction", torch.float64),      # odd n: a padded particle
    (40, "softmax", "intended", "count", torch.float64),
    (40, "sinkhorn", "as_run", "fraction", torch.float64),
    (41, "softmax", "intended", "fraction", torch.float32),
])
def test_incremental_step_equals_dense_ask_tell_bit_for_bit(n, solver, schedule, unit, dtype):
    cnf = paper_instance(n)
    config, _ = paper_config(n, schedule=schedule, solver=solver, steps=6)
    s0 = 0.1 * torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=dtype)
    dense = _dense_run(cnf, config, s0, seed=3, steps=6, unit=unit)
    cost = MaxSATCost(cnf, unit=unit)
    X, state, gen = cost.particles(s0.clone()), functional.init(), torch.Generator().manual_seed(3)
    for t, (X_ref, C_ref) in enumerate(dense):
        X, state, info = polystep_step(X, cost, state, config, gen)
        assert torch.equal(info.costs, C_ref), f"step {t}: costs differ"
        assert torch.equal(X, X_ref), f"step {t}: particles differ"
    assert cost.forward_evals == 6 * cost.num_particles * 4
    moved = unsat_count(cnf, assignment(cost.scores(X))) != unsat_count(cnf, assignment(s0))
    assert moved  # the check above compared real moves, not a frozen start


def test_driver_without_extras_is_the_pure_step():
    n = 30
    cnf = paper_instance(n)
    config, _ = paper_config(n, steps=5)
    run = MaxSATPolyStep(cnf, config, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    s0 = 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)
    assert torch.equal(run.scores, s0)  # N(0, 0.1^2) from the generator, as the paper's init
    cost = MaxSATCost(cnf)
    X, state = cost.particles(s0), functional.init()
    for _ in range(5):
        rec = run.step()
        X, state, _ = polystep_step(X, cost, state, config, gen)
        assert rec.ot and rec.forward_evals == cost.num_particles * 4
        assert torch.equal(run.particles, X)
        assert rec.unsat == unsat_count(cnf, assignment(run.scores))


def test_amortized_coasting_and_momentum_bookkeeping():
    n = 60
    cnf = paper_instance(n)
    config, kw = paper_config(n, steps=9)
    run = MaxSATPolyStep(cnf, config, torch.Generator().manual_seed(0), amortize=3,
                         amortize_ema=kw["amortize_ema"], momentum=kw["momentum"])
    P = run.cost.num_particles
    records = []
    for c in range(9):
        before = run.particles.clone()
        d_ema = None if run._d_ema is None else run._d_ema.clone()
        rec = run.step()
        records.append(rec)
        if c % 3 == 0:
            assert rec.ot and rec.forward_evals == 4 * P and rec.info is not None
            assert rec.info.t == c  # schedules read the call counter
        else:  # coasting: no evaluation, move (1 - phase / A) d_EMA
            assert not rec.ot and rec.forward_evals == 0 and rec.info is None
            torch.testing.assert_close(run.particles, before + (1 - (c % 3) / 3) * d_ema, rtol=0, atol=0)
    assert run.forward_evals == 3 * 4 * P == sum(r.forward_evals for r in records)
    assert run.step(report=False).unsat is None and run.calls == 10
    assert [r.call for r in records] == list(range(9))


def test_paper_schedules_as_run_and_intended():
    n, steps = 5000, 1000
    c = math.sqrt(n / 1e5)
    run_cfg, kw = paper_config(n, schedule="as_run")
    demo = positional_bug_demo(intended_start=5.0, intended_end=0.5, num_steps=10)
    assert [run_cfg.eps(t) for t in range(11)] == demo["buggy"]  # 0.5 at t = 0, then 5.0
    demo_sr = positional_bug_demo(intended_start=3000 * c, intended_end=600 * c, num_steps=3)
    assert [run_cfg.step_radius(t) for t in range(4)] == demo_sr["buggy"]
    assert run_cfg.probe_radius(0) == 20 * c and run_cfg.probe_radius(999) == 100 * c
    cos_cfg, _ = paper_config(n, schedule="intended")
    assert cos_cfg.eps == Cosine(start=5.0, end=0.5, steps=steps)
    assert cos_cfg.step_radius(0) == 3000 * c and cos_cfg.step_radius(steps) == 600 * c
    assert (run_cfg.radius_mode, run_cfg.polytope, run_cfg.num_probes) == ("absolute", "orthoplex", 1)
    assert kw == {"amortize": 3, "amortize_ema": 0.7, "momentum": (0.5, 0.95), "unit": "fraction", "steps": 1000}
    big, kw_big = paper_config(1_000_000, schedule="as_run")
    assert (big.step_radius(0), big.step_radius(1), big.probe_radius(0), big.probe_radius(1)) == (1000, 5000, 100, 500)
    assert kw_big["steps"] == 500 and kw_big["unit"] == "count"
    with pytest.raises(ValueError, match="schedule"):
        paper_config(100, schedule="cosine")


def test_polystep_lowers_the_unsatisfied_count_from_a_random_start():
    n = 1000
    cnf = paper_instance(n)
    config, kw = paper_config(n, schedule="as_run", steps=30)
    run = MaxSATPolyStep(cnf, config, torch.Generator().manual_seed(0), amortize=kw["amortize"],
                         momentum=kw["momentum"])
    start = run.unsat()
    last = [run.step().unsat for _ in range(30)][-1]
    assert last < start


def test_cost_oracle_checks_shapes():
    cnf = paper_instance(10)
    cost = MaxSATCost(cnf)
    with pytest.raises(ValueError, match="unit"):
        MaxSATCost(cnf, unit="percent")
    with pytest.raises(ValueError, match=r"scores must have shape \(10,\)"):
        cost.particles(torch.zeros(11))
    fn = cost.oracle(cost.particles(torch.zeros(10, dtype=torch.float64)))
    with pytest.raises(ValueError, match=r"probes must have shape \[5, M, 2\]"):
        fn(torch.zeros(4, 4, 2))
    with pytest.raises(ValueError, match="amortize"):
        MaxSATPolyStep(cnf, PolyStepConfig(), torch.Generator(), amortize=0)
