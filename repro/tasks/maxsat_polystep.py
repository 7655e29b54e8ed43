"""PolyStep in full space on MAX-SAT through :func:`polystep.functional.step`, without candidates.

Full space (paper/polystep_reconstruction.md §2.2): the scores ``s in R^n`` are zero-padded to an
even length and cut into ``P = ceil(n / 2)`` particles of ``d_p = 2`` coordinates
(``(s_{2i}, s_{2i+1})``); the orthoplex gives ``V = 4`` vertices ``+-R_i e_1, +-R_i e_2``.  A
candidate is ``s`` with one particle moved to one probe, so the dense population would be
``[P V K, n]`` (``2M x 1M`` at 1M variables).  The pure step never needs it:
:func:`polystep.functional.step` hands its cost oracle the probes ``[P, V K, 2]``, where probe
``(i, m)`` *stands for* ``s`` with particle ``i`` replaced (``functional.step`` docstring), and
takes back the costs ``[P, V K]``.  :class:`MaxSATCost` is such an oracle: it turns the probes
into the two new assignment bits of each candidate (``bit = probe > 0``) and scores every
candidate with :class:`repro.tasks.maxsat_eval.IncrementalEvaluator` (cost proportional to the
clause occurrences of the particles' variables).  No change to :mod:`polystep` is needed; the
test suite checks the step against the dense ask/tell path
(:class:`polystep.ask_tell.AskTellPolyStep`, ``mode="block"``) bit for bit on small ``n``.

:class:`MaxSATPolyStep` drives the step with the paper's extra machinery (reconstructed from
paper/polystep_reconstruction.md §2.9; the authors' optimizer is not reused): amortized OT (an OT
step on calls ``c`` with ``c mod A = 0``, otherwise a coasting move
``x <- x + (1 - (c mod A)/A) d_EMA`` without evaluations, ``d_EMA <- a d_EMA + (1 - a) (x_bary - x)``
after each OT step, first ``d_EMA = x_bary - x``) and momentum (``beta_t = beta_0 +
min(1, t / (T_max - 1)) (beta_1 - beta_0)``, ``T_max = 50``; ``v <- beta_t v + (x_bary - x)``,
``x <- x + v`` on OT steps; coasting uses the pure OT direction ``d_EMA``).  Schedules are
evaluated at the call counter ``c`` (the OT step receives a state whose ``t`` is ``c``), so a
cosine over ``T`` calls ends at its end value whatever ``A`` is.  :func:`paper_config` gives the
paper's MAX-SAT settings with the schedules as intended (cosine) or as run (the positional
``CosineEpsilon`` bug of paper/polystep_reconstruction.md §6 item 9: the end value at ``t = 0``,
then the start value for every ``t >= 1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from polystep import functional
from polystep.functional import PolyStepConfig, PolyStepState, StepInfo
from polystep.schedules import Cosine, Linear

from .maxsat_eval import IncrementalEvaluator, ParticlePairs, assignment, full_space_pairs
from .maxsat_instances import CNF

__all__ = ["MaxSATCost", "polystep_step", "MaxSATPolyStep", "StepRecord", "paper_config", "COST_UNITS", "SCHEDULES"]

COST_UNITS = ("fraction", "count")
SCHEDULES = ("intended", "as_run")


class MaxSATCost:
    """The MAX-SAT cost oracle of full-space PolyStep (``d_p = 2``).

    Args:
        cnf: the formula.
        unit: ``"fraction"`` (the paper's loss, unsatisfied count / m; what its runner used below
            1M variables) or ``"count"`` (the unsatisfied count; the runner's 1M "delta" path
            returned counts).
        evaluator: a prebuilt :class:`IncrementalEvaluator` (built here if ``None``).
    """

    def __init__(self, cnf: CNF, *, unit: str = "fraction", evaluator: IncrementalEvaluator | None = None):
        if unit not in COST_UNITS:
            raise ValueError(f"unit must be one of {COST_UNITS}, got {unit!r}")
        self.cnf, self.unit = cnf, unit
        self.evaluator = IncrementalEvaluator(cnf) if evaluator is None else evaluator
        self.pairs = ParticlePairs.build(cnf, full_space_pairs(cnf.num_vars))
        self.forward_evals = 0

    @property
    def num_particles(self) -> int:
        return self.pairs.num_particles

    def particles(self, scores: Tensor) -> Tensor:
        """``s [n]`` -> particles ``[P, 2]`` (zero padding for odd ``n``, as the ask/tell block mode)."""
        n = self.cnf.num_vars
        if scores.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), got {tuple(scores.shape)}")
        out = scores.new_zeros(2 * self.num_particles)
        out[:n] = scores
        return out.reshape(-1, 2)

    def scores(self, particles: Tensor) -> Tensor:
        """Particles ``[P, 2]`` -> ``s [n]`` (padding dropped)."""
        return particles.reshape(-1)[: self.cnf.num_vars]

    def loss_of_count(self, count):
        """An unsatisfied count in this oracle's unit (float64)."""
        return np.asarray(count, dtype=np.float64) / max(self.cnf.num_clauses, 1) if self.unit == "fraction" \
            else np.asarray(count, dtype=np.float64)

    def oracle(self, particles: Tensor) -> Callable[[Tensor], Tensor]:
        """The ``cost_fn`` of :func:`polystep.functional.step` around the current ``particles``.

        The base assignment is ``round(sigmoid(s))`` of the current scores; the returned function
        maps probes ``[P, M, 2]`` to the losses ``[P, M]`` (float64) of the candidates "``s`` with
        particle ``i`` at probe ``m``".
        """
        self.evaluator.set_base(assignment(self.scores(particles)))

        def cost_fn(probes: Tensor) -> Tensor:
            if probes.ndim != 3 or probes.shape[0] != self.num_particles or probes.shape[2] != 2:
                raise ValueError(f"probes must have shape [{self.num_particles}, M, 2], got {tuple(probes.shape)}")
            counts = self.evaluator.evaluate(self.pairs, assignment(probes))
            self.forward_evals += counts.size
            return torch.from_numpy(self.loss_of_count(counts)).to(probes.device)

        return cost_fn


def polystep_step(particles: Tensor, cost: MaxSATCost, state: PolyStepState, config: PolyStepConfig,
                  generator: torch.Generator) -> tuple[Tensor, PolyStepState, StepInfo]:
    """One PolyStep step on MAX-SAT: :func:`polystep.functional.step` with :meth:`MaxSATCost.oracle`."""
    return functional.step(particles, cost.oracle(particles), state, config, generator)


@dataclass
class StepRecord:
    """What :meth:`MaxSATPolyStep.step` returns.

    Attributes:
        call: the call counter ``c`` of this step; ``ot``: whether it was an OT step (else coasting).
        forward_evals: candidate evaluations of this step (``P V K`` or 0).
        unsat: unsatisfied count of the assignment after the step (``None`` if not reported).
        info: the :class:`polystep.functional.StepInfo` of an OT step (``None`` when coasting).
    """

    call: int
    ot: bool
    forward_evals: int
    unsat: int | None
    info: StepInfo | None


class MaxSATPolyStep:
    """Full-space PolyStep on a MAX-SAT instance with optional amortization and momentum.

    Args:
        cnf: the formula.
        config: the step's :class:`PolyStepConfig` (polytope, solver, schedules, ...).
        generator: the only source of randomness (initial scores unless ``s0`` is given, rotations).
        s0: initial scores ``[n]``; default ``N(0, init_std^2)`` drawn from ``generator``.
        init_std: the paper's ``0.1``.
        dtype: of the scores/particles.
        unit: cost unit (:class:`MaxSATCost`).
        amortize: ``A >= 1`` (1: every call is an OT step).
        amortize_ema: ``a`` of the coasting direction's EMA.
        momentum: ``(beta_0, beta_1)`` or ``None`` (off).
        momentum_horizon: ``T_max`` of the momentum ramp (the authors' default 50).
    """

    def __init__(self, cnf: CNF, config: PolyStepConfig, generator: torch.Generator, *, s0: Tensor | None = None,
                 init_std: float = 0.1, dtype: torch.dtype = torch.float64, unit: str = "fraction",
                 amortize: int = 1, amortize_ema: float = 0.7, momentum: tuple[float, float] | None = None,
                 momentum_horizon: int = 50, evaluator: IncrementalEvaluator | None = None):
        if not isinstance(amortize, int) or amortize < 1:
            raise ValueError(f"amortize must be an integer >= 1, got {amortize!r}")
        if not 0.0 <= amortize_ema < 1.0:
            raise ValueError(f"amortize_ema must be in [0, 1), got {amortize_ema!r}")
        if momentum is not None and not all(0.0 <= b < 1.0 for b in momentum):
            raise ValueError(f"momentum must be a pair (beta_0, beta_1) in [0, 1), got {momentum!r}")
        if momentum_horizon < 2:
            raise ValueError(f"momentum_horizon must be >= 2, got {momentum_horizon}")
        self.cnf, self.config, self.generator = cnf, config, generator
        self.cost = MaxSATCost(cnf, unit=unit, evaluator=evaluator)
        n = cnf.num_vars
        if s0 is None:
            s0 = init_std * torch.randn(n, generator=generator, dtype=dtype, device=generator.device)
        self.particles = self.cost.particles(s0.to(dtype))
        self.state = functional.init()
        self.amortize, self.amortize_ema = amortize, amortize_ema
        self.momentum, self.momentum_horizon = momentum, momentum_horizon
        self.calls = 0
        self.forward_evals = 0
        self._d_ema: Tensor | None = None
        self._velocity: Tensor | None = None

    @property
    def scores(self) -> Tensor:
        return self.cost.scores(self.particles).clone()

    def assignment(self) -> np.ndarray:
        return assignment(self.cost.scores(self.particles))

    def unsat(self) -> int:
        """Unsatisfied count of the current assignment (via the evaluator's clause counts)."""
        return self.cost.evaluator.set_base(self.assignment())

    def _beta(self, c: int) -> float:
        b0, b1 = self.momentum
        return b0 + min(1.0, c / (self.momentum_horizon - 1)) * (b1 - b0)

    def step(self, *, report: bool = True) -> StepRecord:
        """One call: an OT step (``c mod A = 0``) or a coasting move.  ``report=False`` skips
        counting the new assignment's unsatisfied clauses (``StepRecord.unsat`` is then ``None``;
        saves one pass over the clauses on coasting calls)."""
        c = self.calls
        phase = c % self.amortize
        if phase == 0 or self._d_ema is None:
            state = replace(self.state, t=c)  # schedules read the call counter
            new, state, info = polystep_step(self.particles, self.cost, state, self.config, self.generator)
            d = new - self.particles
            if self.amortize > 1:
                a = self.amortize_ema
                self._d_ema = d.clone() if self._d_ema is None else a * self._d_ema + (1 - a) * d
            if self.momentum is not None:
                v = d if self._velocity is None else self._beta(c) * self._velocity + d
                self._velocity = v
                new = self.particles + v
            if not bool(torch.isfinite(new).all()):
                raise FloatingPointError(f"call {c}: the OT (and momentum) move made the scores non-finite")
            self.particles = new
            self.state = state
            evals, ot = info.forward_evals, True
        else:
            new = self.particles + (1.0 - phase / self.amortize) * self._d_ema
            if not bool(torch.isfinite(new).all()):
                raise FloatingPointError(f"call {c}: the coasting move made the scores non-finite")
            self.particles = new
            info, evals, ot = None, 0, False
        self.calls += 1
        self.forward_evals += evals
        return StepRecord(c, ot, evals, self.unsat() if report else None, info)


def paper_config(n: int, *, schedule: str = "as_run", solver: str = "softmax",
                 steps: int | None = None) -> tuple[PolyStepConfig, dict]:
    """The paper's MAX-SAT settings (paper/polystep_reconstruction.md §5.3 table and §6 item 9).

    ``eps`` 5 -> 0.5; step radius 3000 c -> 600 c and probe radius 100 c -> 20 c with
    ``c = sqrt(n / 1e5)`` below 1M variables, 5000 -> 1000 and 500 -> 100 at ``n >= 1e6``;
    radii are absolute (schedules are not multiplied by ``eps``); orthoplex ``V = 4`` (the
    authors' result files count 6.68e7 evaluations at 100K = 334 OT steps x 50,000 particles x 4), ``K = 1``;
    1,000 steps (500 at 1M); amortize 3 (EMA 0.7), momentum 0.5 -> 0.95.

    Args:
        n: number of variables.
        schedule: ``"intended"`` (a half cosine from start to end over ``steps`` calls) or
            ``"as_run"`` (the end value at ``t = 0``, the start value for ``t >= 1``).
        solver: ``"softmax"`` or ``"sinkhorn"`` (which one produced Table T3 is not recorded).
        steps: number of calls (default 1,000; 500 at ``n >= 1e6``).

    Returns:
        ``(config, runner_kwargs)``; ``runner_kwargs`` holds ``amortize``, ``amortize_ema``,
        ``momentum``, ``unit`` and ``steps`` for :class:`MaxSATPolyStep` and the loop.  ``unit``
        is the cost the authors' runner handed the optimizer: the unsatisfied *fraction* below
        1M variables (its full evaluation) and the unsatisfied *count* at 1M (its "delta"
        evaluation, scaled to clause counts "for OT discrimination").
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    big = n >= 1_000_000
    steps = (500 if big else 1000) if steps is None else int(steps)
    c = math.sqrt(n / 1e5)
    ranges = {"eps": (5.0, 0.5),
              "step_radius": (5000.0, 1000.0) if big else (3000.0 * c, 600.0 * c),
              "probe_radius": (500.0, 100.0) if big else (100.0 * c, 20.0 * c)}
    if schedule == "intended":
        sched = {k: Cosine(start=a, end=b, steps=steps) for k, (a, b) in ranges.items()}
    else:
        # CosineEpsilon(start, end) binds (target=start, init=end), so T = 1 and the original
        # formula target + (init - target)(1 + cos(pi min(t, 1)))/2 gives start + (end - start) at
        # t = 0 (written so, it rounds like the original) and start for every t >= 1
        sched = {k: Linear(start=a + 0.5 * (b - a) * 2.0, end=a, steps=1) for k, (a, b) in ranges.items()}
    config = PolyStepConfig(polytope="orthoplex", solver=solver, radius_mode="absolute", num_probes=1, **sched)
    return config, {"amortize": 3, "amortize_ema": 0.7, "momentum": (0.5, 0.95),
                    "unit": "count" if big else "fraction", "steps": steps}
