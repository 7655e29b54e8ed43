"""The ask/tell protocol of PolyStep and the baselines, and its PolyStep front end.

``ask()`` returns a population of candidate points, the caller evaluates them however it likes
(a simulator, a SAT checker, a batched network), and ``tell(losses)`` applies the step.  Every
method of the package speaks the same protocol (:class:`AskTellOptimizer`): :class:`AskTellPolyStep`
here and :class:`~polystep.baselines.OpenAIES`, :class:`~polystep.baselines.SPSA`,
:class:`~polystep.baselines.CMAES`:

* ``population``: the number ``B`` of candidates per ``ask()``; ``t``: the steps told so far;
  ``x``: the current point (a copy).
* ``ask() -> Tensor [B, D]``; a second ``ask()`` before ``tell()`` raises ``RuntimeError``.
* ``tell(losses) -> info``: ``losses`` of shape ``[B]``, in the order of the candidates; ``info``
  has at least ``info.t`` (the index of the step just applied) and ``info.forward_evals`` (``B``).
  ``tell()`` before ``ask()`` raises ``RuntimeError``; losses of the wrong shape raise
  ``ValueError`` and leave the asked population pending (``tell`` again with the right losses, or
  ``discard()`` it).

:class:`polystep.baselines.PopulationOptimizer` drives any of them, and the ``PolyStep``
optimizer, on a module's parameters through one population closure.

PolyStep has two modes here:

* ``"block"``: one point ``x in R^D`` cut into ``P = ceil(D / d_p)`` particles; candidate
  ``(i, m)`` is ``x`` with only particle ``i`` moved to its probe ``m`` (the optimizer's
  block-coordinate costs, Algorithm 1).  ``ask()`` returns ``[P * V * K, D]``.
* ``"independent"``: ``P`` independent points ``x_i in R^d`` (the low-level PolyStep on synthetic
  objectives); ``ask()`` returns the probes ``[P * V * K, d]``.

Both call :func:`polystep.functional.propose` and :func:`polystep.functional.update`, so an
ask/tell loop and :func:`polystep.functional.step` give bitwise-identical iterates.  Example::

    at = AskTellPolyStep(torch.zeros(10), PolyStepConfig(eps=0.1, step_radius=0.3, probe_radius=0.3,
                         radius_mode="absolute"), torch.Generator().manual_seed(0), particle_dim=4)
    for _ in range(60):
        candidates = at.ask()                    # [population, 10] = [3 * 8, 10]
        info = at.tell(loss(candidates))         # a StepInfo: info.t, info.forward_evals, info.costs
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from ._validation import check_choice, check_int
from .functional import PolyStepConfig, PolyStepState, StepInfo, init, propose, update
from .polytopes import num_vertices

__all__ = ["AskTellOptimizer", "AskTellBase", "TellInfo", "AskTellPolyStep", "ASK_TELL_MODES"]

ASK_TELL_MODES = ("block", "independent")


@runtime_checkable
class AskTellOptimizer(Protocol):
    """The ask/tell protocol (module docstring)."""

    population: int

    @property
    def x(self) -> Tensor: ...

    @property
    def t(self) -> int: ...

    def ask(self) -> Tensor: ...

    def tell(self, losses: Tensor) -> Any: ...


@dataclass(frozen=True)
class TellInfo:
    """What a baseline's ``tell`` returns.

    Attributes:
        t: index of the step just applied (0-based).
        forward_evals: losses consumed by the step (the population size).
        mean_loss, best_loss: mean and minimum of the told losses.
    """

    t: int
    forward_evals: int
    mean_loss: float
    best_loss: float


class AskTellBase:
    """The protocol's bookkeeping: one asked population pending between ``ask`` and ``tell``."""

    population: int
    _pending: Any = None

    def _begin_ask(self) -> None:
        """Call at the start of ``ask()``, before any random draw."""
        if self._pending is not None:
            raise RuntimeError("ask() called twice without tell()")

    def _pending_ask(self) -> Any:
        """The pending population's data (set by ``ask()`` in ``self._pending``)."""
        if self._pending is None:
            raise RuntimeError("tell() called before ask()")
        return self._pending

    def discard(self) -> None:
        """Forget the pending ``ask()`` (e.g. after its evaluation failed); the next ``ask()``
        draws a new population.  The method's point and step count are unchanged."""
        self._pending = None

    def _told(self) -> None:
        """Call at the end of a successful ``tell()``."""
        self._pending = None

    def _losses(self, losses: Tensor) -> Tensor:
        """``losses`` as a detached tensor of shape ``[population]``, else ``ValueError``."""
        losses = torch.as_tensor(losses).detach()
        if losses.shape != (self.population,):
            raise ValueError(f"losses must have shape {(self.population,)}, got {tuple(losses.shape)} (one "
                             "loss per candidate of the last ask(), in its order)")
        return losses


class AskTellPolyStep(AskTellBase):
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
        check_choice("mode", mode, ASK_TELL_MODES)
        if not isinstance(x0, Tensor) or not x0.is_floating_point():
            raise ValueError("x0 must be a floating-point torch.Tensor")
        self.mode, self.config, self.generator = mode, config, generator
        if mode == "block":
            if x0.ndim != 1:
                raise ValueError(f"x0 must be 1-D [D] in block mode, got shape {tuple(x0.shape)}")
            particle_dim = check_int("particle_dim", particle_dim, 1)
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
        self.state: PolyStepState = init()
        n, d = self.particles.shape
        self.population = n * num_vertices(config.polytope, d) * config.num_probes  # P * V * K

    @property
    def x(self) -> Tensor:
        """The current point ``[D]`` (block) or particles ``[P, d]`` (independent)."""
        return self.particles.flatten()[: self.dim].clone() if self.mode == "block" else self.particles.clone()

    @property
    def t(self) -> int:
        """Steps told so far."""
        return self.state.t

    def ask(self) -> Tensor:
        """Draw this step's probes and return the candidates to evaluate (see the module docstring)."""
        self._begin_ask()
        self._pending = propose(self.particles, self.state, self.config, self.generator)
        probes = self._pending.probes  # [P, M, d]
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
        """Apply the step with the losses ``[population]`` of the last ``ask()`` (same order);
        NaN/inf losses are costs (:func:`polystep.functional.sanitize_costs`)."""
        proposal = self._pending_ask()
        n, m, _ = proposal.probes.shape
        losses = self._losses(losses)
        self.particles, self.state, info = update(self.particles, proposal, losses.reshape(n, m),
                                                  self.state, self.config)
        self._told()
        return info
