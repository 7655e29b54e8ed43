"""ghosts_table1_fig10 at ci scale: a 1000x single-step spike on MLP+LN, four methods."""

from __future__ import annotations

import numpy as np
import pytest

from repro import claims
from repro.context import RunContext
from repro.experiments import ghosts_table1_fig10 as exp
from tests.experiments.ci import run_at_ci


@pytest.fixture(scope="module")
def stored():
    return run_at_ci("ghosts_table1_fig10")


def _cell(stored, method):
    res = stored["results"]
    return res["cells"][f"mlp_ln|1000|{method}"]


def test_exact_controller_bounds_the_realized_step(stored) -> None:
    c = _cell(stored, "ctrl_exact")
    r = c["tau"] / c["rho_a"]
    assert np.all(r <= 1 + 1e-6), r.max()
    assert np.all(c["spike_r"] <= 1 + 1e-6)
    # rho_a along the realized step, recomputed at the spike, is the controller's own rho_a
    s = stored["results"]["spike_step"]
    assert np.allclose(c["spike_rho_step"], c["rho_a"][:, s], rtol=1e-4)


def test_gradient_direction_controller_does_not_bound_adams_step(stored) -> None:
    c = _cell(stored, "ctrl_grad")
    assert np.all(c["spike_r"] > 1)            # the paper's controller lets r exceed 1 ...
    assert np.all(_cell(stored, "plain")["spike_r"] > 100)   # ... but far less than plain Adam
    assert np.all(c["spike_r"] < _cell(stored, "plain")["spike_r"] / 10)


def test_plain_and_clip_collapse_controllers_survive(stored) -> None:
    """At the 1000x spike plain Adam and clipping lose accuracy, both controllers keep learning."""
    res = stored["results"]
    st = {m: exp.cell_stats(res, "mlp_ln", 1000.0, m) for m in exp.METHODS}
    for m in ("plain", "clip"):
        assert st[m]["final_acc"] < st[m]["pre_acc"], (m, st[m])       # the spike costs accuracy
    for m in ("ctrl_grad", "ctrl_exact"):
        assert st[m]["final_acc"] > st[m]["pre_acc"], (m, st[m])       # learning goes on
        for bad in ("plain", "clip"):
            assert st[m]["retained"] > st[bad]["retained"] and st[m]["final_acc"] > st[bad]["final_acc"]
    for m in exp.METHODS:
        c = _cell(stored, m)
        assert np.array_equal(c["divergent"].astype(bool), c["final_loss"] > exp.DIVERGED_LOSS)


def test_shared_prefix_equals_an_independent_run() -> None:
    """Branching at the spike from a deep copy gives the same run as training from scratch."""
    cfg = exp.Config(archs=("mlp_ln",), spikes=(100.0,), seeds=(0,), steps=8, spike_step=4)
    ctx = RunContext(seed=3)
    data = exp._data(cfg, ctx.device)
    for method in ("ctrl_exact", "ctrl_grad"):
        pre = exp._Run("mlp_ln", method, 0, cfg, ctx, data)
        pre.advance(cfg.spike_step, 1.0)
        branched = pre.clone()
        branched.advance(cfg.steps, 100.0)
        fresh = exp._Run("mlp_ln", method, 0, cfg, ctx, data)
        fresh.advance(cfg.steps, 100.0)
        a, b = branched.result(), fresh.result()
        for k in ("train_loss", "test_acc", "tau", "rho_a"):
            np.testing.assert_allclose(a[k], b[k], rtol=1e-6, err_msg=f"{method} {k}")
        assert len(branched.ctrl.history) == cfg.steps and branched.ctrl.model is branched.model


def test_claims_measured_at_ci(stored) -> None:
    """ci has one spike (1000x) and no 10000x cell: only the r <= 1 claim is measurable there, and
    its value is the largest realized r of the gradient-direction controller's spiked step."""
    res = stored["results"]
    m = claims.measure(exp.ID, res)
    assert set(exp.CLAIMS) == set(claims.claims_of(exp.ID))
    assert set(m) == {"ghosts.fig10_controller_enforces_r_le_1"}
    r = m["ghosts.fig10_controller_enforces_r_le_1"]
    assert r["value"] == pytest.approx(float(np.max(_cell(stored, "ctrl_grad")["spike_r"])))
    assert r["value"] > 1                                    # a counterexample to r <= 1 is exhibited
    assert r["evidence"]["max_r_ctrl_exact_all_steps"] <= 1 + 1e-6  # the exact controller keeps r <= 1
    for cid, x in m.items():
        claims.verdict(claims.get_claim(cid), x)
    assert "| MLP+LN | 1000x |" in exp.table(res)


def _full_grid(res: dict) -> dict:
    """The ci cells copied to every (architecture, spike) of the paper's grid: exercises every
    measuring function and every registered rule without running the grid."""
    cells = {f"{a}|{s:g}|{m}": res["cells"][f"mlp_ln|1000|{m}"]
             for a in exp.ARCHS for s in exp.CONFIGS["paper"].spikes for m in exp.METHODS}
    return {**res, "cells": cells, "archs": list(exp.ARCHS), "spikes": list(exp.CONFIGS["paper"].spikes)}


def test_every_claim_measured_on_the_full_grid_and_its_rule_evaluates(stored) -> None:
    res = _full_grid(stored["results"])
    m = claims.measure(exp.ID, res)
    assert set(m) == set(claims.claims_of(exp.ID))
    for cid, x in m.items():
        assert claims.verdict(claims.get_claim(cid), x) in claims.VERDICTS, cid
    plain = exp.cell_stats(res, "mlp_ln", 1000.0, "plain")
    t1 = m["ghosts.table1_mlpln_plain"]
    assert t1["value"] == pytest.approx(100 * plain["final_acc"]) and t1["evidence"]["retained"] == plain["retained"]
    ab = m["ghosts.abstract_spike_10000x"]["evidence"]
    assert min(ab["retained_ctrl_exact"]) > max(ab["retained_clip"])  # the controller beats clipping
    # every cell is the ci 1000x cell, so plain Adam cannot both survive 10x and collapse at 1000x
    assert claims.verdict(claims.get_claim("ghosts.fig10_plain_tolerance"), m["ghosts.fig10_plain_tolerance"]) \
        == "not reproduced"


def test_batch_statistics_accuracy_leaves_the_model_untouched() -> None:
    """The authors' convention for BN models (test-batch statistics) must not move running stats."""
    import torch

    from repro.tasks.zoo import build

    model = build("cnn_bn", torch.Generator().manual_seed(0))
    x, y = torch.randn(40, 64), torch.randint(0, 10, (40,))
    model.train()
    model(x)  # non-trivial running statistics
    before = {k: v.clone() for k, v in model.state_dict().items()}
    acc = exp._evaluate_batch_stats(model, x, y)
    assert 0.0 <= acc <= 1.0 and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():  # it equals a train-mode forward (batch statistics)
        assert acc == float((model(x).argmax(1) == y).float().mean())


def test_a_cell_branches_each_spike_as_a_cell_of_that_spike_alone() -> None:
    """One cell holds every spike value of an (architecture, method, seed), branched from a shared
    prefix; each branch equals the cell computed with that spike value alone, bit for bit."""
    cfg = exp.Config(archs=("mlp_ln",), spikes=(10.0, 1000.0), seeds=(0,), steps=6, spike_step=3)
    both = exp._branches("mlp_ln", "ctrl_exact", 0, cfg, RunContext(seed=3))
    assert len(both) == 2
    for spike, branch in zip(cfg.spikes, both):
        [alone] = exp._branches("mlp_ln", "ctrl_exact", 0, exp.Config(**{**cfg.__dict__, "spikes": (spike,)}),
                                RunContext(seed=3))
        for k, v in alone.items():
            np.testing.assert_array_equal(branch[k], v, err_msg=f"x{spike:g} {k}")
