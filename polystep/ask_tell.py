"""Ask/tell front end of the PolyStep step (the protocol the baselines share).

``ask()`` returns a population of candidate points, the caller evaluates them however it likes
(a simulator, a SAT checker, a batched network), and ``tell(losses)`` applies the step.  Two modes:

* ``"block"``: one point ``x in R^D`` cut into ``P = ceil(D / d_p)`` particles; candidate
  ``(i, m)`` is ``x`` with only particle ``i`` moved to its probe ``m`` (the optimizer's
  block-coordinate costs, Algorithm 1).  ``ask()`` returns ``[P * V * K, D]``.
* ``"independent"``: ``P`` independent points ``x_i in R^d`` (the low-level PolyStep on synthetic
  objectives); ``ask()`` returns the probes ``[P * V * K, d]``.

Both call :func:`polystep.functional.propose` and :func:`polystep.functional.update`, so an
ask/tell loop and :func:`polystep.functional.step` give bitwise-identical iterates.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import functional as F
from .functional import PolyStepConfig, PolyStepState, Proposal, StepInfo

__all__ = ["AskTellPolyStep", "ASK_TELL_MODES"]

ASK_TELL_MODES = ("block", "independent")


class AskTellPolyStep:
    """Ask/tell PolyStep.

    Args:
        x0: start point ``[D]`` (``"block"``) or particles ``[P, d]`` (``"independent"``).
        config: :class:`polystep.functional.PolyStepConfig`.
        generator: source of all randomness, on ``x0``'s device.
        particle_dim: ``d_p`` (``"block"`` mode only).
        mode: ``"block"`` or ``"independent"``.
    """

    def __init__(self, x0: Tensor, config: PolyStepConfig, generator: torch.Generator, *,
                 particle_dim: int | None = None, mode: str = "block"):
        if mode not in ASK_TELL_MODES:
            raise ValueError(f"mode must be one of {ASK_TELL_MODES}, got {mode!r}")
        if not isinstance(x0, Tensor) or not x0.is_floating_point():
            raise ValueError("x0 must be a floating-point torch.Tensor")
        self.mode, self.config, self.generator = mode, config, generator
        if mode == "block":
            if x0.ndim != 1:
                raise ValueError(f"x0 must be 1-D [D] in block mode, got shape {tuple(x0.shape)}")
            if not isinstance(particle_dim, int) or particle_dim < 1:
                raise ValueError(f"particle_dim must be an integer >= 1, got {particle_dim!r}")
            self.dim = x0.numel()
            n = math.ceil(self.dim / particle_dim)
            padded = x0.new_zeros(n * particle_dim)
            padded[: self.dim] = x0
            self.particles = padded.reshape(n, particle_dim)
        else:
            if x0.ndim != 2:
                raise ValueError(f"x0 must be 2-D [P, d] in independent mode, got shape {tuple(x0.shape)}")
            self.dim = x0.shape[1]
            self.particles = x0.clone()
        self.state: PolyStepState = F.init()
        self._proposal: Proposal | None = None

    @property
    def x(self) -> Tensor:
        """The current point ``[D]`` (block) or particles ``[P, d]`` (independent)."""
        return self.particles.flatten()[: self.dim].clone() if self.mode == "block" else self.particles.clone()

    def ask(self) -> Tensor:
        """Draw this step's probes and return the candidates to evaluate (see the module docstring)."""
        if self._proposal is not None:
            raise RuntimeError("ask() called twice without tell()")
        self._proposal = F.propose(self.particles, self.state, self.config, self.generator)
        probes = self._proposal.probes  # [P, M, d]
        n, m, d = probes.shape
        if self.mode == "independent":
            return probes.reshape(n * m, d)
        base = self.particles.flatten()[: self.dim]
        cand = base.expand(n * m, self.dim).clone().reshape(n, m, self.dim)
        for i in range(n):  # particle i owns coordinates [i d, (i + 1) d) (the last may be padding)
            lo, hi = i * d, min((i + 1) * d, self.dim)
            cand[i, :, lo:hi] = probes[i, :, : hi - lo]
        return cand.reshape(n * m, self.dim)

    def tell(self, losses: Tensor) -> StepInfo:
        """Apply the step with the losses of the last ``ask()`` (same order)."""
        if self._proposal is None:
            raise RuntimeError("tell() called before ask()")
        n, m, _ = self._proposal.probes.shape
        losses = torch.as_tensor(losses)
        if losses.shape != (n * m,):
            raise ValueError(f"losses must have shape {(n * m,)}, got {tuple(losses.shape)}")
        self.particles, self.state, info = F.update(self.particles, self._proposal,
                                                    losses.reshape(n, m), self.state, self.config)
        self._proposal = None
        return info
