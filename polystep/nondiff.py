"""Non-differentiable building blocks of the PolyStep experiments (the authors' code, anindex/polystep
v0.7.0, ``experiments/runners/nondiff_models.py``; the architectures in paper/polystep_reconstruction.md §5.2).

Every block acts on each sample (row of dimension 0) on its own and says so with the class attribute
``polystep_rowwise = True``, which :mod:`polystep.fast_eval` reads: a layer stack containing them
keeps the fast path for the blocks of its ``nn.Linear`` / ``nn.LayerNorm`` layers (the suffix after a
perturbed layer runs on the candidates folded into the batch), while the blocks owned by these modules
(quantised weights, attention keys, experts) take the exact generic path.  The operation marked (*) in
each docstring has zero derivative almost everywhere (or none): backpropagation gets no signal through
it, which is what PolyStep (forward passes only) is for.  Each block has a smooth twin
(``hard=False``) for the "Adam on the smooth surrogate model" baselines.

* :class:`Staircase` -- ``stair(x) = floor(L sigmoid(x)) / L`` (*); smooth: ``sigmoid(x)``.
* :class:`QuantizedLinear` -- ``y = x w_q^T + b_q``, ``w_q = clamp(round(w / s), -2^{k-1}, 2^{k-1} - 1) s``
  (*), the same for the bias (int8: ``k = 8``, ``s = 0.01``); smooth: the plain linear map.
* :class:`DiscreteAttention` -- ``j* = argmax_j <x, K_j>`` (*), ``y = values(x) * sigmoid(K_{j*})``;
  smooth: ``y = values(x) * sigmoid(sum_j softmax_j(<x, K>) K_j)``.
* :class:`HardMoE` -- ``e* = argmax gate(x)`` (*), ``y = expert_{e*}(x)``; smooth: the gate's softmax
  mixture of the experts.
* :class:`LIF` -- leaky integrate-and-fire over ``T`` time steps: ``m <- beta m + I_t``,
  ``s_t = 1[m >= theta]`` (*), ``m <- m (1 - s_t)``; smooth: ``s_t = sigmoid(k (m - theta))``;
  surrogate gradient (``surrogate=k``): the hard spike forward, the fast-sigmoid derivative
  ``1 / (1 + k |m - theta|)^2`` backward (:class:`FastSigmoidSpike`; the BPTT baseline).
* :func:`spiking_mlp` -- the SNN of Table T1 as an ``nn.Sequential``:
  ``Linear(784, 128) -> LIF(constant current, T = 15) -> Linear(128, 10) -> LIF(spike count)``, the
  count of output spikes (``0 .. T``) used as logits.
* :class:`Sign` -- ``sign(x)`` with ``sign(0) = +1`` (*) (binary activations of the RL policies);
  smooth: ``tanh(x)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as Fn
from torch import Tensor, nn

from ._validation import check_int, check_positive

__all__ = ["Staircase", "QuantizedLinear", "DiscreteAttention", "HardMoE", "LIF", "FastSigmoidSpike",
           "Sign", "spiking_mlp", "quantize"]


class Staircase(nn.Module):
    """``floor(levels * sigmoid(x)) / levels`` (``hard``) or ``sigmoid(x)``; the authors' code: ``levels = 5``."""

    polystep_rowwise = True

    def __init__(self, levels: int = 5, hard: bool = True):
        super().__init__()
        self.levels, self.hard = check_int("levels", levels, 1), hard

    def forward(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(x)
        return torch.floor(self.levels * s) / self.levels if self.hard else s

    def extra_repr(self) -> str:
        return f"levels={self.levels}, hard={self.hard}"


class Sign(nn.Module):
    """``sign(x)`` with ``sign(0) = +1`` (``hard``) or ``tanh(x)``."""

    polystep_rowwise = True

    def __init__(self, hard: bool = True):
        super().__init__()
        self.hard = hard

    def forward(self, x: Tensor) -> Tensor:
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype) if self.hard else torch.tanh(x)


def quantize(w: Tensor, scale: float, bits: int) -> Tensor:
    """``clamp(round(w / scale), -2^{bits-1}, 2^{bits-1} - 1) * scale`` (round half to even)."""
    q = 2 ** (bits - 1)
    return torch.clamp(torch.round(w / scale), -q, q - 1) * scale


class QuantizedLinear(nn.Linear):
    """A linear layer whose weight and bias are used quantised to ``bits``-bit integers times
    ``scale`` (the authors' code: int8, ``scale = 0.01``, init ``w ~ N(0, 0.1^2)``); ``hard=False`` uses them as
    they are.  The stored (latent) parameters are real; the loss is piecewise constant in them."""

    polystep_rowwise = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, scale: float = 0.01,
                 bits: int = 8, hard: bool = True, init_std: float | None = 0.1,
                 generator: torch.Generator | None = None, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.scale, self.bits, self.hard = check_positive("scale", scale), check_int("bits", bits, 2), hard
        if init_std is not None:
            with torch.no_grad():
                self.weight.normal_(0.0, init_std, generator=generator)
                if self.bias is not None:
                    self.bias.normal_(0.0, init_std, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        if not self.hard:
            return Fn.linear(x, self.weight, self.bias)
        b = None if self.bias is None else quantize(self.bias, self.scale, self.bits)
        return Fn.linear(x, quantize(self.weight, self.scale, self.bits), b)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", scale={self.scale}, bits={self.bits}, hard={self.hard}"


class DiscreteAttention(nn.Module):
    """Hard slot attention: ``j* = argmax_j <x, K_j>``, ``y = values(x) * sigmoid(K_{j*})``.

    ``keys``: ``[slots, dim]`` (init ``N(0, 0.5^2)``), ``values``: ``Linear(dim, dim)``.  Smooth
    (``hard=False``): ``y = values(x) * sigmoid(softmax(<x, K>) K)``."""

    polystep_rowwise = True

    def __init__(self, dim: int, slots: int = 8, hard: bool = True, *, key_std: float = 0.5,
                 generator: torch.Generator | None = None, device=None, dtype=None):
        super().__init__()
        self.keys = nn.Parameter(torch.empty(slots, dim, device=device, dtype=dtype))
        with torch.no_grad():
            self.keys.normal_(0.0, key_std, generator=generator)
        self.values = nn.Linear(dim, dim, device=device, dtype=dtype)
        self.hard = hard

    def forward(self, x: Tensor) -> Tensor:
        scores = x @ self.keys.T  # [..., slots]
        if self.hard:
            gate = self.keys[scores.argmax(dim=-1)]
        else:
            gate = torch.softmax(scores, dim=-1) @ self.keys
        return self.values(x) * torch.sigmoid(gate)


class HardMoE(nn.Module):
    """Top-1 mixture of experts: ``e* = argmax gate(x)``, ``y = expert_{e*}(x)``; each expert is
    ``Linear(dim, hidden) -> ReLU -> Linear(hidden, dim)``.  Smooth: ``sum_e softmax(gate(x))_e
    expert_e(x)``.  Every expert is evaluated on every row (cost ``E`` experts; exact)."""

    polystep_rowwise = True

    def __init__(self, dim: int, experts: int = 4, hidden: int | None = None, hard: bool = True,
                 device=None, dtype=None):
        super().__init__()
        hidden = dim if hidden is None else hidden
        self.gate = nn.Linear(dim, experts, device=device, dtype=dtype)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, hidden, device=device, dtype=dtype), nn.ReLU(),
                          nn.Linear(hidden, dim, device=device, dtype=dtype)) for _ in range(experts))
        self.hard = hard

    def forward(self, x: Tensor) -> Tensor:
        outs = torch.stack([e(x) for e in self.experts], dim=-2)  # [..., E, dim]
        logits = self.gate(x)
        if self.hard:
            weights = Fn.one_hot(logits.argmax(dim=-1), len(self.experts)).to(outs.dtype)
        else:
            weights = torch.softmax(logits, dim=-1)
        return (weights[..., None] * outs).sum(dim=-2)


class FastSigmoidSpike(torch.autograd.Function):
    """The surrogate-gradient spike of BPTT training (Zenke & Ganguli 2018, SuperSpike; snntorch's
    ``surrogate.fast_sigmoid(slope=k)``; the 97.8 % "surrogate-gradient Adam ceiling" of the paper's
    abstract, paper/polystep_reconstruction.md §5.2)::

        forward:   s = 1[m >= theta]                       (bitwise the hard LIF spike)
        backward:  ds/dm = 1 / (1 + k |m - theta|)^2       (the derivative of the fast sigmoid
                                                            (m - theta) / (1 + k |m - theta|))

    ``FastSigmoidSpike.apply(mem, threshold, slope)``; no gradient flows to ``threshold`` or
    ``slope``."""

    @staticmethod
    def forward(ctx, mem: Tensor, threshold: float, slope: float) -> Tensor:
        ctx.save_for_backward(mem)
        ctx.threshold, ctx.slope = threshold, slope
        return (mem >= threshold).to(mem.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (mem,) = ctx.saved_tensors
        return grad_out / (1.0 + ctx.slope * (mem - ctx.threshold).abs()) ** 2, None, None


class LIF(nn.Module):
    """Leaky integrate-and-fire neurons over ``T`` steps (reset to zero after a spike)::

        m_0 = 0,   m <- beta m + I_t,   s_t = 1[m >= threshold],   m <- m (1 - s_t)

    Input: a constant current ``I`` of shape ``[B, F]`` repeated for ``steps`` steps (``steps``
    given; the SNN's direct current input), or a sequence ``[B, T, F]`` (``steps=None``).  Output: the
    spike train ``[B, T, F]`` or, with ``count=True``, the spike count ``sum_t s_t`` (``[B, F]``,
    values ``0 .. T``).  Smooth (``hard=False``): ``s_t = sigmoid(slope (m - threshold))``.
    The authors' code: ``beta = 0.95``, ``threshold = 1``, ``T = 15``, ``slope = 10``.

    Surrogate gradient (``surrogate=k``, with ``hard=True``; the BPTT baseline of the paper's
    abstract): the same spikes, bitwise, with ``s_t = FastSigmoidSpike(m, threshold, k)``, i.e.
    ``ds_t/dm = 1 / (1 + k |m - threshold|)^2`` in the backward pass; the reset is *detached*,
    ``m <- m (1 - sg(s_t))`` (``sg`` = stop-gradient: the gradient flows through ``m`` only, not
    through the spike that resets it), which is snntorch's default (``Leaky`` computes its reset
    with ``.detach()``).  ``surrogate=None`` (default) and ``hard=True``: no gradient through the
    spikes at all (the hard LIF, zero derivative almost everywhere).

    Correspondence with ``snntorch.Leaky(beta, threshold, reset_mechanism="zero")`` (v1.0, default
    ``reset_delay=True``; tests/polystep/test_lif_snntorch.py): snntorch applies the reset of step
    ``t - 1`` at the start of step ``t``, ``U_t = beta (1 - S_{t-1}) U_{t-1} + I_t``, ``S_t =
    H(U_t - threshold)``, and returns the *pre-reset* membrane ``U_t``.  Since our post-reset
    membrane is ``(1 - s_{t-1}) m_{t-1}``, the recursions are the same: ``U_t`` equals our membrane
    before the reset of step ``t`` and the spikes coincide at the same step (no shift), bitwise,
    except where ``m`` equals ``threshold`` exactly (snntorch fires on ``m - threshold > 0``, we on
    ``m >= threshold``): our LIF at ``nextafter(threshold, +inf)`` equals snntorch at ``threshold``
    bitwise for every input (``beta`` and ``threshold`` given to snntorch as tensors of the input's
    dtype: its default buffers are float32; its spikes are always float32).  Its surrogate gradients
    (``spike_grad=surrogate.fast_sigmoid(slope=k)``) equal ours to rounding."""

    polystep_rowwise = True

    def __init__(self, beta: float = 0.95, threshold: float = 1.0, steps: int | None = None,
                 count: bool = False, hard: bool = True, slope: float = 10.0,
                 surrogate: float | None = None):
        super().__init__()
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta!r}")
        if steps is not None:
            steps = check_int("steps", steps, 1, " or None")
        if surrogate is not None:
            if not hard:
                raise ValueError("surrogate applies to the hard spike (hard=True); the smooth "
                                 "LIF (hard=False) has its own sigmoid gradient")
            surrogate = check_positive("surrogate", surrogate)
        self.beta, self.threshold, self.steps = float(beta), float(threshold), steps
        self.count, self.hard, self.slope = count, hard, float(slope)
        self.surrogate = surrogate

    def _spike(self, mem: Tensor) -> Tensor:
        """``s_t`` of the membrane ``m``: hard, surrogate-gradient or smooth (see the class)."""
        if self.surrogate is not None:
            return FastSigmoidSpike.apply(mem, self.threshold, self.surrogate)
        if self.hard:
            return (mem >= self.threshold).to(mem.dtype)
        return torch.sigmoid(self.slope * (mem - self.threshold))

    def forward(self, current: Tensor) -> Tensor:
        if self.steps is not None:
            inputs = [current] * self.steps
        else:
            if current.ndim < 3:
                raise ValueError("without steps, LIF takes a sequence [B, T, F]")
            inputs = current.unbind(dim=1)
        mem = torch.zeros_like(inputs[0])
        spikes = []
        for i_t in inputs:
            mem = self.beta * mem + i_t
            s = self._spike(mem)
            mem = mem * (1.0 - (s.detach() if self.surrogate is not None else s))
            spikes.append(s)
        if self.count:
            return torch.stack(spikes).sum(dim=0)
        return torch.stack(spikes, dim=1)

    def extra_repr(self) -> str:
        extra = "" if self.surrogate is None else f", surrogate={self.surrogate}"
        return (f"beta={self.beta}, threshold={self.threshold}, steps={self.steps}, "
                f"count={self.count}, hard={self.hard}{extra}")


def spiking_mlp(sizes: tuple[int, int, int] = (784, 128, 10), steps: int = 15, *, beta: float = 0.95,
                threshold: float = 1.0, hard: bool = True, slope: float = 10.0,
                surrogate: float | None = None, generator: torch.Generator | None = None, device=None,
                dtype=torch.float32) -> nn.Sequential:
    """The hard-LIF SNN of Table T1 (``SpikingMNISTNet``, 101,770 parameters at 784-128-10)::

        Linear(d_in, h) -> LIF(steps=T) -> Linear(h, d_out) -> LIF(count=True)

    ``fc1(x)`` is the constant input current of the first LIF layer at every step, ``fc2`` maps its
    spike train step by step, the output is the count of output spikes (the logits).  Linear
    layers take PyTorch's default initialisation drawn from ``generator``.  ``surrogate=k`` gives
    both LIF layers the fast-sigmoid surrogate gradient (:class:`LIF`; the same forward pass), the
    network of the BPTT surrogate-gradient baseline (paper abstract: 97.8 % on MNIST)."""
    d_in, h, d_out = sizes
    fc1 = nn.Linear(d_in, h, device=device, dtype=dtype)
    fc2 = nn.Linear(h, d_out, device=device, dtype=dtype)
    if generator is not None:
        for fc in (fc1, fc2):
            bound = 1 / math.sqrt(fc.in_features)
            with torch.no_grad():
                fc.weight.uniform_(-bound, bound, generator=generator)
                fc.bias.uniform_(-bound, bound, generator=generator)
    lif = {"hard": hard, "slope": slope, "surrogate": surrogate}
    return nn.Sequential(fc1, LIF(beta, threshold, steps=steps, **lif), fc2,
                         LIF(beta, threshold, steps=None, count=True, **lif))
