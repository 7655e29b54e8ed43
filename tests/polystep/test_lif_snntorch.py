"""Cross-check of :class:`polystep.nondiff.LIF` against snntorch's ``Leaky`` neuron (reset to zero).

The correspondence (documented in the ``LIF`` docstring): snntorch (v1.0, ``reset_delay=True``)
computes ``U_t = beta (1 - S_{t-1}) U_{t-1} + I_t``, ``S_t = 1[U_t - theta > 0]`` and returns the
pre-reset membrane ``U_t``; our LIF computes ``m <- beta m + I_t``, ``s_t = 1[m >= theta]``,
``m <- m (1 - s_t)``.  So ``U_t`` is our membrane before the reset of step ``t``, the spikes occur at
the same steps, and the two differ only where ``m == theta`` exactly (strict vs non-strict
comparison): our LIF at ``theta' = nextafter(theta, +inf)`` equals snntorch at ``theta`` bitwise for
every input.  The surrogate gradients (fast sigmoid, slope ``k``, detached reset) agree.
"""

from __future__ import annotations

import pytest
import torch

from polystep.nondiff import LIF, FastSigmoidSpike, spiking_mlp

BETA, THETA = 0.95, 1.0


def _snntorch():
    """The ``snntorch`` module; skips the calling test where it is not installed."""
    return pytest.importorskip("snntorch")


def _currents(batch: int, steps: int, features: int, dtype: torch.dtype, seed: int, *,
              tie_width: float) -> torch.Tensor:
    """Random input currents ``[B, T, F]``: the first half of the features uniform in ``[0, 0.3)``
    (integrate over several steps before firing), the second half within ``tie_width`` of the
    threshold (fire or just miss at every step)."""
    g = torch.Generator().manual_seed(seed)
    cur = torch.rand(batch, steps, features, generator=g, dtype=dtype) * 0.3
    half = features // 2
    near = (torch.rand(batch, steps, features - half, generator=g, dtype=dtype) - 0.5) * tie_width
    cur[:, :, half:] = THETA + near
    return cur


def _leaky(dtype: torch.dtype, threshold: float = THETA, spike_grad=None):
    """``snntorch.Leaky`` with ``beta`` and ``threshold`` as tensors of ``dtype`` (its default
    buffers are float32, whose 0.95 is not float64's 0.95)."""
    return _snntorch().Leaky(beta=torch.tensor(BETA, dtype=dtype), threshold=torch.tensor(threshold, dtype=dtype),
                     reset_mechanism="zero", spike_grad=spike_grad)


def _run_snntorch(leaky, cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Step ``leaky`` through ``cur`` ``[B, T, F]`` from ``U_0 = 0``: spikes and returned
    membranes, both ``[B, T, F]``."""
    mem = torch.zeros_like(cur[:, 0])
    spikes, mems = [], []
    for t in range(cur.shape[1]):
        s, mem = leaky(cur[:, t], mem)
        spikes.append(s)
        mems.append(mem)
    return torch.stack(spikes, dim=1), torch.stack(mems, dim=1)


def _pre_reset_membrane(cur: torch.Tensor, threshold: float) -> torch.Tensor:
    """Our LIF recursion written out, recording ``m`` after ``m <- beta m + I_t`` (before the reset)."""
    m = torch.zeros_like(cur[:, 0])
    out = []
    for t in range(cur.shape[1]):
        m = BETA * m + cur[:, t]
        out.append(m)
        m = m * (1.0 - (m >= threshold).to(m.dtype))
    return torch.stack(out, dim=1)


def _next_up(x: float, dtype: torch.dtype) -> float:
    """The smallest number of ``dtype`` above ``x``: ``m >= next_up(x)`` iff ``m > x`` in ``dtype``."""
    return torch.nextafter(torch.tensor(x, dtype=dtype), torch.tensor(float("inf"), dtype=dtype)).item()


@pytest.mark.parametrize("steps", [15, 100])
def test_same_spikes_and_membranes_as_snntorch_without_ties(steps: int) -> None:
    """float64 currents, half of them within 1e-6 of the threshold (no exact ties): identical spike
    trains at identical steps and snntorch's membrane == our pre-reset membrane, bitwise."""
    cur = _currents(16, steps, 40, torch.float64, seed=steps, tie_width=1e-6)
    ours = LIF(BETA, THETA)(cur)
    theirs, their_mem = _run_snntorch(_leaky(torch.float64), cur)
    assert 0 < ours.sum() < ours.numel()  # a real test: some neurons fire, some do not
    assert torch.equal(ours, theirs.to(ours.dtype))
    assert torch.equal(_pre_reset_membrane(cur, THETA), their_mem)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("steps", [15, 100])
def test_exact_correspondence_with_ties(dtype: torch.dtype, steps: int) -> None:
    """Currents on the threshold's grid make ``m == theta`` frequent: snntorch fires on ``m > theta``,
    so our LIF at ``nextafter(theta, +inf)`` equals it bitwise, and at ``theta`` it fires more."""
    cur = _currents(16, steps, 40, dtype, seed=7, tie_width=0.0)  # second half: exactly theta
    theirs, _ = _run_snntorch(_leaky(dtype), cur)
    shifted = LIF(BETA, _next_up(THETA, dtype))(cur)
    assert torch.equal(shifted, theirs.to(dtype))
    # I_t = theta: we fire at every step (m = theta, reset, m = theta, ...); snntorch misses the tie
    # and fires at every other step (U = theta, then beta theta + theta > theta, reset, ...)
    ours = LIF(BETA, THETA)(cur)
    assert ours[:, :, 20:].eq(1.0).all()
    assert theirs[:, 0::2, 20:].eq(0.0).all() and theirs[:, 1::2, 20:].eq(1.0).all()


def test_a_single_tie_is_the_only_difference() -> None:
    """One step of current ``theta``: ``m = theta`` exactly; ours spikes (``>=``), snntorch does not."""
    cur = torch.full((1, 1, 1), THETA, dtype=torch.float64)
    theirs, _ = _run_snntorch(_leaky(torch.float64), cur)
    assert LIF(BETA, THETA)(cur).item() == 1.0 and theirs.item() == 0.0


@pytest.mark.parametrize("slope", [2.0, 25.0])
@pytest.mark.parametrize("steps", [15, 100])
def test_same_surrogate_gradients_as_snntorch(slope: float, steps: int) -> None:
    """``d(sum_t,i s_t,i w_t,i) / d I`` through BPTT: our ``LIF(surrogate=k)`` vs snntorch's Leaky with
    ``spike_grad=surrogate.fast_sigmoid(slope=k)`` (its reset detached, as ours).  The weights are
    float32 numbers (snntorch's spikes are float32, so its incoming gradients are)."""
    cur = _currents(8, steps, 30, torch.float64, seed=3, tie_width=0.2)
    w = torch.randn(cur.shape, generator=torch.Generator().manual_seed(4)).to(torch.float64)
    x_ours = cur.clone().requires_grad_(True)
    spikes = LIF(BETA, THETA, surrogate=slope)(x_ours)
    (spikes * w).sum().backward()
    x_theirs = cur.clone().requires_grad_(True)
    fast_sigmoid = _snntorch().surrogate.fast_sigmoid(slope=slope)
    their_spikes, _ = _run_snntorch(_leaky(torch.float64, spike_grad=fast_sigmoid), x_theirs)
    (their_spikes * w).sum().backward()
    assert torch.equal(spikes.detach(), their_spikes.to(spikes.dtype))
    assert x_ours.grad.abs().max() > 1e-3  # a real gradient through time
    torch.testing.assert_close(x_ours.grad, x_theirs.grad, rtol=1e-10, atol=1e-12)


def test_fast_sigmoid_spike_derivative_is_the_formula() -> None:
    """``ds/dm = 1 / (1 + k |m - theta|)^2`` elementwise, forward ``1[m >= theta]``."""
    mem = torch.tensor([0.0, 0.9, 1.0, 1.1, 3.0], dtype=torch.float64, requires_grad=True)
    s = FastSigmoidSpike.apply(mem, 1.0, 25.0)
    s.sum().backward()
    expected = 1.0 / (1.0 + 25.0 * (mem.detach() - 1.0).abs()) ** 2
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    torch.testing.assert_close(mem.grad, expected, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_surrogate_forward_equals_the_hard_forward_bitwise(dtype: torch.dtype) -> None:
    """``LIF(surrogate=k)`` and ``spiking_mlp(surrogate=k)`` compute bitwise the hard forward pass
    (spike trains, counts, logits), with or without autograd; only the backward pass differs."""
    cur = _currents(8, 30, 20, dtype, seed=11, tie_width=0.0)  # includes exact ties m == theta
    for kwargs in ({"steps": None}, {"steps": None, "count": True}):
        hard = LIF(BETA, THETA, **kwargs)(cur)
        surr = LIF(BETA, THETA, surrogate=25.0, **kwargs)(cur.clone().requires_grad_(True))
        assert torch.equal(hard, surr.detach())
    const = cur[:, 0]
    assert torch.equal(LIF(steps=15)(const), LIF(steps=15, surrogate=2.0)(const))
    x = torch.randn(64, 12, generator=torch.Generator().manual_seed(5), dtype=dtype) * 3
    nets = [spiking_mlp((12, 16, 4), steps=15, surrogate=k, generator=torch.Generator().manual_seed(6),
                        dtype=dtype) for k in (None, 25.0)]
    logits = [net(x) for net in nets]
    assert logits[0].sum() > 0 and torch.equal(logits[0], logits[1].detach())


def test_surrogate_gives_gradients_the_hard_lif_does_not() -> None:
    """The hard spike (a comparison) cuts the graph: the spike counts carry no gradient.  With the
    surrogate, back-propagation through time reaches ``fc1``."""
    x = torch.randn(32, 12, generator=torch.Generator().manual_seed(8)) * 3
    hard = spiking_mlp((12, 16, 4), steps=15, generator=torch.Generator().manual_seed(6))
    assert not hard(x).requires_grad
    net = spiking_mlp((12, 16, 4), steps=15, surrogate=25.0, generator=torch.Generator().manual_seed(6))
    net(x).sum().backward()
    assert net[0].weight.grad.abs().sum() > 0


def test_surrogate_needs_the_hard_spike_and_a_positive_slope() -> None:
    with pytest.raises(ValueError, match="hard=True"):
        LIF(hard=False, surrogate=25.0)
    with pytest.raises(ValueError, match="surrogate must be a finite number > 0"):
        LIF(surrogate=0.0)
