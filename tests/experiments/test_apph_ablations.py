"""apph_ablations (App H ablations H1, H3-H6 and Table 10) at ci scale, and the pieces it adds:
the hard update rules plugged into PolyStep through the closure, the Theorem 4.1 barycentre gap,
the subspace types, the grids and the figure's paper values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polystep import functional, polytopes
from polystep.evaluation import population_closure
from repro.claims import claims_of, get_claim
from repro.experiments import apph_ablations as exp
from repro.tasks import apph_train
from repro.tasks.apph_train import SupportUniformClosure, TrainConfig, Variant, barycentre_gap, build_optimizer
from repro.tasks.t1_train import _loss
from tests.experiments._cells import Capture, Declared
from tests.experiments.ci import measured_at_ci, run_at_ci


# ------------------------------------------------------------------------------------------ hard rules

def test_support_uniform_weights_put_equal_mass_on_the_k_cheapest() -> None:
    C = torch.tensor([[3.0, 1.0, 2.0, 0.5], [0.0, 0.0, 5.0, 1.0]])
    w1 = apph_train.support_uniform_weights(C, 1)
    w3 = apph_train.support_uniform_weights(C, 3)
    torch.testing.assert_close(w1, torch.tensor([[0, 0, 0, 1.0], [1.0, 0, 0, 0]], dtype=torch.float64))
    third = 1 / 3
    torch.testing.assert_close(w3, torch.tensor([[0, third, third, third], [third, third, 0, third]],
                                                dtype=torch.float64))
    with pytest.raises(ValueError, match="k must be in"):
        apph_train.support_uniform_weights(C, 5)


def _quadratic_cost(target: torch.Tensor):
    """Probes [P, M, d] -> losses [P * M]: a separable quadratic (each particle's own cost)."""
    return lambda probes: ((probes - target) ** 2).sum(-1).reshape(-1) + 0.1 * probes[..., 0].reshape(-1).sin()


@pytest.mark.parametrize("k", [1, 3])
def test_encoded_costs_make_the_softmax_step_the_hard_rule(k: int) -> None:
    # the library's softmax step on the encoded costs equals the hard rule's barycentric move
    # computed directly from the real costs: x' = x + r_s R_i sum_v w_iv u_v with w uniform on the k cheapest
    P, d, K = 5, 4, 3
    V = polytopes.num_vertices("orthoplex", d)
    x = torch.randn(P, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    target = torch.randn(d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    inner = _quadratic_cost(target)
    wrapped = SupportUniformClosure(inner, num_vertices=V, num_probes=K, k=k, gap=1e4 * 2.0)
    cfg = functional.PolyStepConfig(eps=2.0, step_radius=0.7, probe_radius=0.3, num_probes=K, solver="softmax")
    state = functional.init()
    gen = torch.Generator().manual_seed(3)
    proposal = functional.propose(x, state, cfg, gen)
    real = inner(proposal.probes).reshape(P, V, K).mean(-1)
    new, _, info = functional.update(x, proposal, wrapped(proposal.probes).reshape(P, V * K), state, cfg)
    w = apph_train.support_uniform_weights(real, k)
    torch.testing.assert_close(info.weights, w)  # exactly 1/k on the support, 0 elsewhere
    expected = x + proposal.step_radius * torch.einsum("pv,pvd->pd", w, proposal.directions)  # r_s = 0.7 eps
    torch.testing.assert_close(new, expected)  # float64 arithmetic of the same sums: default tolerances
    # the real losses are accumulated beside the encoded ones
    assert wrapped.raw_loss_count == P * V * K
    assert wrapped.raw_loss_sum == pytest.approx(float(inner(proposal.probes).sum()))


def test_greedy_encoding_is_the_argmin_solver() -> None:
    # k = 1 through the closure and the library's "argmin" solver: the same step, bit for bit
    P, d, K = 6, 2, 1
    x = torch.randn(P, d, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    inner = _quadratic_cost(torch.zeros(d, dtype=torch.float64))
    V = polytopes.num_vertices("orthoplex", d)
    wrapped = SupportUniformClosure(inner, num_vertices=V, num_probes=K, k=1, gap=1e4)
    out = {}
    for name, solver, fn in (("argmin", "argmin", lambda p: inner(p).reshape(P, -1)),
                             ("encoded", "softmax", lambda p: wrapped(p).reshape(P, -1))):
        cfg = functional.PolyStepConfig(eps=1.0, step_radius=0.5, probe_radius=0.2, num_probes=K, solver=solver)
        out[name] = functional.step(x, fn, functional.init(), cfg, torch.Generator().manual_seed(9))[0]
    assert torch.equal(out["argmin"], out["encoded"])


def _tiny_setup():
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    x = torch.randn(16, 6, generator=gen)
    y = torch.randint(0, 3, (16,), generator=gen)
    return model, x, y


@pytest.mark.parametrize("rule,k", [("top3", 3), ("argmin", 1)])
def test_hard_rules_inside_polystep_use_the_real_costs(rule: str, k: int) -> None:
    # one optimizer step with the hard rule (top-3 through the wrapped fast closure, greedy as the
    # library's argmin) against a softmax twin with the same seed: the same probes, so the twin's
    # cost matrix is the real one, and the hard rule's weights are uniform on its k cheapest vertices
    from polystep.fast_eval import fast_population_closure

    cfg = TrainConfig(steps=10, max_subspace_dim=None)
    infos = {}
    for name in (rule, "softmax"):
        model, x, y = _tiny_setup()
        v = Variant(name, rule=name, rank=2, particle_dim=4, eps=(0.5, 0.5), step_radius=1.0, probe_radius=0.5,
                    absorb_every=0)
        opt = build_optimizer(model, v, cfg, seed=4)
        closure = fast_population_closure(model, _loss, x, y, opt.params)
        if apph_train.RULES[name][1] is not None:
            closure = SupportUniformClosure(closure, num_vertices=8, num_probes=3, k=k, gap=1e4)
            assert hasattr(closure, "block_losses")  # the fast path is kept
        opt.step(closure)
        infos[name] = opt.last_info
    # float32 weights against float64 1/k: tolerance of float32 rounding
    expected = apph_train.support_uniform_weights(infos["softmax"].costs, k)
    torch.testing.assert_close(infos[rule].weights.double(), expected, rtol=0, atol=1e-7)


def test_support_uniform_closure_without_fast_path_has_no_block_losses() -> None:
    model, x, y = _tiny_setup()
    plain = population_closure(model, _loss, x, y, list(model.parameters()))
    assert not hasattr(SupportUniformClosure(plain, num_vertices=4, num_probes=1, k=1, gap=1.0), "block_losses")


# ------------------------------------------------------------------------------------------ Thm 4.1 gap

def test_barycentre_gap_limits() -> None:
    U = polytopes.vertices("orthoplex", 2)
    # equal costs: both plans uniform, no gap
    assert barycentre_gap(torch.zeros(7, 4), 0.3, "orthoplex", 2) == pytest.approx(0.0, abs=1e-9)
    # one particle: the two-sided plan's row is the column marginal (uniform), whose barycentre is
    # the template's centre 0, so the gap is the softmax barycentre's norm
    C = torch.tensor([[0.1, 0.7, 0.3, 0.9]], dtype=torch.float64)
    w = torch.softmax(-C / 0.2, dim=1)
    assert barycentre_gap(C, 0.2, "orthoplex", 2) == pytest.approx(float((w @ U).norm()), rel=1e-6)
    with pytest.raises(ValueError, match="vertices"):
        barycentre_gap(torch.zeros(3, 5), 0.1, "orthoplex", 2)


# ------------------------------------------------------------------------------------------ optimizer set-up

def test_variants_build_the_intended_optimizers() -> None:
    cfg = TrainConfig(steps=10, max_subspace_dim=None)
    model, _, _ = _tiny_setup()
    n = sum(p.numel() for p in model.parameters())
    ot = build_optimizer(model, Variant("s", rule="sinkhorn"), cfg, seed=0)
    assert ot.config.solver == "sinkhorn" and ot.config.sinkhorn_max_iter == 50  # H1's 50 iterations
    assert ot.config.radius_mode == "times_eps" and ot.config.num_probes == 3
    full = build_optimizer(model, Variant("f", subspace="full", particle_dim=2), cfg, seed=0)
    assert full.subspace.dim == n and full.num_particles == math.ceil(n / 2)
    g = build_optimizer(model, Variant("l", subspace="linear"), cfg, seed=0).param_groups[0]
    assert (g["basis"], g["absorb_every"]) == ("gaussian", 0)
    g = build_optimizer(model, Variant("a", subspace="adaptive"), cfg, seed=0).param_groups[0]
    assert (g["absorb_every"], g["redraw_on_absorb"]) == (1, True)
    g = build_optimizer(model, Variant("h"), cfg, seed=0).param_groups[0]
    assert (g["subspace"], g["basis"], g["absorb_every"]) == ("hybrid", "qr", 20)
    with pytest.raises(ValueError, match="rule must be one of"):
        build_optimizer(model, Variant("x", rule="nope"), cfg, seed=0)


# ------------------------------------------------------------------------------------------ grids and cells

def test_grids_are_the_papers_at_paper_scale() -> None:
    abl = {a.name: a for a in exp.CONFIGS["paper"].ablations}
    assert set(abl) == set(exp.ABLATIONS)
    h3 = {tuple(v.eps) for v in abl["h3"].variants}
    assert h3 == {(e0, e1) for e0, e1, _ in get_claim("polystep.h3_epsilon_trend").extra["paper_grid"]}
    assert {(v.particle_dim, v.polytope) for v in abl["h4"].variants} == set(exp.paper_values("h4"))
    h5 = {(v.step_radius, v.probe_radius) for v in abl["h5"].variants}
    assert len(h5) == 15  # 7 + 7 sharing (4.5, 1) + 2 corners
    assert all(a.seeds == exp.PAPER_SEEDS for a in abl.values())
    h1 = abl["h1"].variants[0]
    assert (h1.rank, h1.particle_dim, h1.eps, h1.step_radius, h1.probe_radius, h1.num_probes) == (8, 8, (3.0, 0.1),
                                                                                                 8.0, 1.0, 3)
    t10 = abl["table10"]
    assert t10.train.hidden == 128 and t10.train.steps == 354  # P = 50,885 particles, 3 epochs of 118 batches
    assert {v.rule for v in t10.variants} == {"sinkhorn", "softmax"}


def test_cpu_cells_fan_out_and_table10_has_p_much_larger_than_v() -> None:
    cfg = exp.CONFIGS["cpu"]
    ctx = Capture()
    with pytest.raises(Declared):
        exp.run(cfg, ctx)
    keys = [c.key for c in ctx.cells]
    assert len(keys) == len(set(keys)) == sum(len(a.variants) * len(a.seeds) for a in cfg.ablations) == 62
    t10 = next(a for a in cfg.ablations if a.name == "table10")
    n = 784 * t10.train.hidden + t10.train.hidden + t10.train.hidden * 10 + 10
    assert math.ceil(n / 2) / 4 >= 100  # the cpu claim's precondition P/V >= 100


def test_cell_count_expression_for_the_cli() -> None:
    # repro/cli.py's CELLS_PER_MAP_CALL entry proposed for this experiment: len(_cells(cfg)) in one map call
    for scale in ("ci", "cpu", "paper"):
        cfg = exp.CONFIGS[scale]
        ctx = Capture()
        with pytest.raises(Declared):
            exp.run(cfg, ctx)
        assert len(ctx.calls) == 1 and [c.key for c in ctx.cells] == [c.key for c in exp._cells(cfg)]


# ------------------------------------------------------------------------------------------ ci run

@pytest.fixture(scope="module")
def stored():
    return run_at_ci(exp.ID)


def test_every_cell_ran_on_its_seeds_with_the_same_budget(stored) -> None:
    results = stored["results"]
    for ab in exp.CONFIGS["ci"].ablations:
        entry = results["ablations"][ab.name]
        assert entry["labels"] == [v.label for v in ab.variants]
        for v in ab.variants:
            runs = entry["variants"][v.label]["runs"]
            assert len(runs) == len(ab.seeds)
            for r in runs:
                assert r["evals"] == ab.train.steps * r["evals_per_step"]
                assert 0 <= r["best_test_acc"] <= 1 and r["best_test_acc"] >= r["test_acc"]
                assert len(r["train_loss"]) == ab.train.steps and np.all(np.isfinite(r["train_loss"]))
                if ab.bary_gap and v.rule in ("softmax", "sinkhorn"):
                    assert len(r["bary_gap"]) == len(r["curve"]["step"]) and np.all(r["bary_gap"] >= 0)
                else:  # a hard rule's step sees the encoded costs, not C: no gap recorded
                    assert "bary_gap" not in r
    # the top-3 rule's logged loss is the real mean probe loss (cross-entropy of 10 classes), not the encoding
    top3 = results["ablations"]["h1"]["variants"]["top3"]["runs"][0]["train_loss"]
    assert np.all(top3 < 20)


def test_every_implemented_claim_is_measured(stored) -> None:
    measured = measured_at_ci(exp.ID, stored["results"])
    assert set(measured) == set(claims_of(exp.ID))
    t10 = measured["polystep.table10_cpu_ot_beats_softmax"]["evidence"]
    assert t10["p_over_v"] >= 100 and "h1_bary_gap" in t10 and "table10_bary_gap" in t10


def test_figure_shows_paper_and_per_seed_values(stored) -> None:
    import matplotlib.pyplot as plt

    fig = exp.plot(stored["results"])
    try:
        axes = [ax for ax in fig.axes if ax.get_title()]
        assert len(axes) == 6
        h1 = next(ax for ax in axes if ax.get_title().startswith("H1"))
        ys = np.concatenate([line.get_ydata() for line in h1.get_lines()])
        for value in exp.paper_values("h1").values():
            assert np.any(np.isclose(ys, value))  # the paper's value is drawn on the same axes
        ours = exp.accuracies(stored["results"], "h1", "softmax")
        assert np.any(np.isclose(ys, ours[0]))  # and ours, per seed
    finally:
        plt.close(fig)
    assert "| h1 | softmax | 96.41 |" in exp.table(stored["results"])
