"""Tests for polystep.ask_tell.AskTellPolyStep (the ask/tell front end of the pure step)."""

from __future__ import annotations

import math

import pytest
import torch

from polystep import functional as psf
from theory import objectives
from polystep.ask_tell import AskTellPolyStep
from polystep.functional import PolyStepConfig


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("objective", [
    objectives.rosenbrock(),
    objectives.random_quadratic(2, 10.0, torch.Generator().manual_seed(0)),
])
@pytest.mark.parametrize("num_probes", [1, 2])
def test_independent_mode_equals_functional_step(objective, num_probes):
    cfg = PolyStepConfig(eps=0.5, step_radius=0.5, probe_radius=0.5, num_probes=num_probes, probe_jitter=0.1)
    X0 = torch.randn(5, 2, generator=_gen(1), dtype=torch.float64)
    at = AskTellPolyStep(X0, cfg, _gen(7), mode="independent")
    X, state, g = X0, psf.init(), _gen(7)
    for _ in range(6):
        cand = at.ask()
        assert cand.shape == (5 * 4 * num_probes, 2)
        info_at = at.tell(objective(cand))
        X, state, info = psf.step(X, objective, state, cfg, g)
        assert torch.equal(at.x, X)
        assert torch.equal(info_at.costs, info.costs)
    assert at.state == state
    assert not torch.equal(at.x, X0)


def test_x_is_a_copy():
    at = AskTellPolyStep(torch.zeros(3, dtype=torch.float64), PolyStepConfig(), _gen(0), particle_dim=2)
    x = at.x
    x += 1
    assert torch.equal(at.x, torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize("D,d_p", [(10, 4), (8, 4), (3, 5)])
def test_block_candidates_differ_in_one_particle(D, d_p):
    x0 = torch.randn(D, generator=_gen(2), dtype=torch.float64)
    cfg = PolyStepConfig(eps=0.3, step_radius=1.0, probe_radius=1.0, num_probes=2)
    at = AskTellPolyStep(x0, cfg, _gen(3), particle_dim=d_p, mode="block")
    P = math.ceil(D / d_p)
    M = 2 * d_p * 2  # orthoplex V = 2 d_p, K = 2
    cand = at.ask().reshape(P, M, D)
    probes = at._pending.probes  # the pending Proposal's probes [P, M, d_p]
    for i in range(P):
        lo, hi = i * d_p, min((i + 1) * d_p, D)
        outside = torch.ones(D, dtype=torch.bool)
        outside[lo:hi] = False
        # every other coordinate is exactly x
        assert torch.equal(cand[i][:, outside], x0[outside].expand(M, -1))
        # this particle's coordinates are the probes (padding coordinates dropped)
        assert torch.equal(cand[i][:, lo:hi], probes[i, :, : hi - lo])
        # and they do move (probe radius 1 * s_k)
        assert bool((cand[i][:, lo:hi] != x0[lo:hi]).any(dim=1).all())


def test_block_mode_decreases_loss_with_padding():
    """D = 10, d_p = 4: P = 3 particles, the last holds 2 padding coordinates."""
    q = objectives.random_quadratic(10, 5.0, _gen(4))
    x0 = torch.full((10,), 2.0, dtype=torch.float64)
    cfg = PolyStepConfig(eps=0.1, step_radius=0.3, probe_radius=0.3, radius_mode="absolute")
    at = AskTellPolyStep(x0, cfg, _gen(5), particle_dim=4)
    assert at.particles.shape == (3, 4)
    f0 = float(q(x0))
    losses = [f0]
    for _ in range(60):
        info = at.tell(q(at.ask()))
        assert info.forward_evals == 3 * 8
        losses.append(float(q(at.x)))
    assert at.x.shape == (10,)
    # measured: gap 1.7e-6 of the initial 50 after 60 steps; require 1e-4 of it
    assert losses[-1] - q.minimum < 1e-4 * (f0 - q.minimum)
    assert losses[-1] < losses[10] < f0
    # padding coordinates never influence the loss, but they are free coordinates of the particle
    assert torch.isfinite(at.particles).all()


def test_block_mode_step_counts_and_state():
    at = AskTellPolyStep(torch.zeros(6, dtype=torch.float64), PolyStepConfig(), _gen(0), particle_dim=4)
    cand = at.ask()
    assert cand.shape == (2 * 8, 6)
    at.tell(torch.rand(16, generator=_gen(1), dtype=torch.float64))
    assert at.state.t == 1 and at.state.forward_evals == 16


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------


def _block():
    return AskTellPolyStep(torch.zeros(5, dtype=torch.float64), PolyStepConfig(), _gen(0), particle_dim=2)


def test_tell_before_ask():
    with pytest.raises(RuntimeError, match=r"tell\(\) called before ask\(\)"):
        _block().tell(torch.zeros(12))


def test_ask_twice():
    at = _block()
    at.ask()
    with pytest.raises(RuntimeError, match=r"ask\(\) called twice without tell\(\)"):
        at.ask()


def test_tell_twice_after_one_ask():
    at = _block()
    n = at.ask().shape[0]
    at.tell(torch.zeros(n, dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"tell\(\) called before ask\(\)"):
        at.tell(torch.zeros(n, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(11,), (13,), (3, 4), ()])
def test_wrong_losses_shape(shape):
    at = _block()
    cand = at.ask()
    assert cand.shape == (12, 5)  # P = 3, V = 4
    with pytest.raises(ValueError, match=rf"losses must have shape \(12,\), got {re_shape(shape)}"):
        at.tell(torch.zeros(shape, dtype=torch.float64))
    at.tell(torch.zeros(12, dtype=torch.float64))  # the pending proposal survives the error


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_bad_mode():
    with pytest.raises(ValueError, match=r"mode must be one of \('block', 'independent'\), got 'batch'"):
        AskTellPolyStep(torch.zeros(4), PolyStepConfig(), _gen(0), particle_dim=2, mode="batch")


def test_x0_wrong_ndim_and_type():
    with pytest.raises(ValueError, match=r"x0 must be 1-D \[D\] in block mode, got shape \(2, 2\)"):
        AskTellPolyStep(torch.zeros(2, 2), PolyStepConfig(), _gen(0), particle_dim=2)
    with pytest.raises(ValueError, match=r"x0 must be 2-D \[P, d\] in independent mode, got shape \(4,\)"):
        AskTellPolyStep(torch.zeros(4), PolyStepConfig(), _gen(0), mode="independent")
    with pytest.raises(ValueError, match="x0 must be a floating-point torch.Tensor"):
        AskTellPolyStep(torch.zeros(4, dtype=torch.int64), PolyStepConfig(), _gen(0), particle_dim=2)
    with pytest.raises(ValueError, match="x0 must be a floating-point torch.Tensor"):
        AskTellPolyStep([0.0, 1.0], PolyStepConfig(), _gen(0), particle_dim=2)


@pytest.mark.parametrize("particle_dim", [None, 0, 1.5])
def test_block_mode_needs_particle_dim(particle_dim):
    with pytest.raises(ValueError, match=rf"particle_dim must be an integer >= 1, got {particle_dim!r}"):
        AskTellPolyStep(torch.zeros(4), PolyStepConfig(), _gen(0), particle_dim=particle_dim)
