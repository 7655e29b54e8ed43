"""Gradient-free baselines of the PolyStep experiments, in the ask/tell protocol, and the harness
that runs every method (PolyStep included) through one population closure.

The baselines and their settings are those of the authors' code (anindex/polystep v0.7.0,
``experiments/baselines/openai_es.py``, ``experiments/baselines/spsa.py``, ``src/polystep/cma.py``;
summarised in paper/polystep_reconstruction.md §5.4).  Each holds a flat point ``x in R^N``
and follows the protocol of :mod:`polystep.ask_tell` (:class:`~polystep.ask_tell.AskTellOptimizer`):
``ask()`` returns a population ``[B, N]`` of candidates, the caller evaluates their losses however
it likes, ``tell(losses)`` updates ``x`` and returns a :class:`~polystep.ask_tell.TellInfo`.
:class:`PopulationOptimizer` drives any method of :data:`METHODS` -- ``"polystep"`` (the
:class:`polystep.optim.PolyStep` optimizer) and the three baselines -- on an ``nn.Module`` through the
same population closure (``closure(thetas) -> losses``), so every method spends its forward
evaluations through one interface and ``forward_evals`` counts them.

* :class:`OpenAIES` -- Salimans et al. 2017, antithetic: ``eps_i ~ N(0, I)``, candidates
  ``x +- sigma eps_i``; with fitness shaping ``F`` (centred ranks in ``[-0.5, 0.5]``, or the raw
  losses) the search gradient is::

      g = 1 / (n sigma) sum_i F_i e_i   (e_i = +eps_j or -eps_j),     x <- x (1 - lr_t wd) - lr_t g

  ``lr_t`` decays linearly from ``lr`` to ``lr_end`` over ``total_steps`` (the authors' settings:
  population 50, sigma 0.02, lr 0.01 -> 0, weight decay 0.01).
* :class:`SPSA` -- Spall 1992/1998: Rademacher ``Delta``, gains ``a_k = a / (A + k)^alpha``,
  ``c_k = c / k^gamma`` (``k = 1, 2, ...``)::

      g_k = (L(x + c_k Delta) - L(x - c_k Delta)) / (2 c_k) * Delta   (1/Delta_i = Delta_i),
      x <- x - a_k g_k

  (the authors' settings: ``a = c = 0.1``, ``A = 0.1 max_iters``, ``alpha = 0.602``, ``gamma = 0.101``).
* :class:`CMAES` -- pycma's ``CMAEvolutionStrategy`` (Hansen), ``sigma0 = 0.5``, population 16,
  separable (diagonal) CMA when ``N >= 1000`` as in the paper's runs; ``x`` is the distribution mean.
  pycma draws from NumPy's global generator, seeded from ``seed`` at construction (a global side
  effect pycma imposes).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from ._validation import check_choice, check_int, check_nonnegative, check_positive
from .ask_tell import AskTellBase, TellInfo
from .optim import PolyStep

__all__ = ["centered_ranks", "OpenAIES", "SPSA", "CMAES", "BASELINES", "METHODS", "PopulationOptimizer"]


def centered_ranks(losses: Tensor) -> Tensor:
    """Ranks of ``losses`` scaled to ``[-0.5, 0.5]`` (smallest loss -> -0.5); ties get distinct
    ranks in index order (stable sort)."""
    n = losses.numel()
    if n < 2:
        raise ValueError("centered ranks need at least two losses")
    ranks = torch.empty(n, dtype=losses.dtype, device=losses.device)
    ranks[torch.argsort(losses, stable=True)] = torch.arange(n, dtype=losses.dtype, device=losses.device)
    return ranks / (n - 1) - 0.5


def _check_x0(x0: Tensor) -> Tensor:
    if not isinstance(x0, Tensor) or not x0.is_floating_point() or x0.ndim != 1 or x0.numel() == 0:
        raise ValueError("x0 must be a non-empty 1-D floating-point tensor")
    return x0.detach().clone()


class _Baseline(AskTellBase):
    """Shared state: the point ``x``, the step count ``t`` and the asked-but-untold population."""

    def __init__(self, x0: Tensor):
        self.x = _check_x0(x0)
        self.t = 0
        self._pending = None

    def _finite_losses(self, losses: Tensor) -> Tensor:
        """The protocol's shape check, and finite losses (the baselines have no NaN policy)."""
        losses = self._losses(losses)
        if not bool(torch.isfinite(losses).all()):
            raise ValueError("losses must be finite")
        return losses

    def _finish(self, losses: Tensor) -> TellInfo:
        """End a successful ``tell``: clear the pending ask, count the step, report it."""
        self._told()
        info = TellInfo(t=self.t, forward_evals=self.population, mean_loss=float(losses.double().mean()),
                        best_loss=float(losses.min()))
        self.t += 1
        return info


class OpenAIES(_Baseline):
    """Antithetic OpenAI-ES (module docstring).  ``population`` candidates per step (even)."""

    def __init__(self, x0: Tensor, *, generator: torch.Generator, population: int = 50,
                 sigma: float = 0.02, lr: float = 0.01, lr_end: float = 0.0, total_steps: int = 10_000,
                 weight_decay: float = 0.01, fitness_shaping: str = "centered_ranks"):
        super().__init__(x0)
        population = check_int("population", population, 2, " and even (antithetic pairs)")
        if population % 2:
            raise ValueError(f"population must be an integer >= 2 and even (antithetic pairs), got {population!r}")
        self.generator, self.population, self.sigma = generator, population, check_positive("sigma", sigma)
        self.lr, self.lr_end = check_nonnegative("lr", lr), check_nonnegative("lr_end", lr_end)
        self.total_steps = check_int("total_steps", total_steps, 1)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        self.fitness_shaping = check_choice("fitness_shaping", fitness_shaping, ("centered_ranks", "none"))
        self.last_gradient: Tensor | None = None

    def learning_rate(self, t: int) -> float:
        """``lr`` at step ``t`` (0-based): linear from ``lr`` to ``lr_end`` over ``total_steps``."""
        frac = min(t, self.total_steps) / self.total_steps
        return self.lr + (self.lr_end - self.lr) * frac

    def ask(self) -> Tensor:
        """``[population, N]``: ``x + sigma eps_j`` then ``x - sigma eps_j`` (antithetic halves)."""
        self._begin_ask()
        half = torch.randn(self.population // 2, self.x.numel(), generator=self.generator,
                           dtype=self.x.dtype, device=self.x.device)
        self._pending = torch.cat([half, -half])
        return self.x + self.sigma * self._pending

    def tell(self, losses: Tensor) -> TellInfo:
        """``x <- x (1 - lr_t wd) - lr_t g`` with the search gradient ``g`` (module docstring)."""
        noise = self._pending_ask()
        losses = self._finite_losses(losses).to(self.x)
        fitness = centered_ranks(losses) if self.fitness_shaping == "centered_ranks" else losses
        g = fitness @ noise / (self.population * self.sigma)
        lr = self.learning_rate(self.t)
        self.x = self.x * (1.0 - lr * self.weight_decay) - lr * g
        self.last_gradient = g
        return self._finish(losses)


class SPSA(_Baseline):
    """Simultaneous-perturbation stochastic approximation (module docstring): 2 candidates per step."""

    population = 2

    def __init__(self, x0: Tensor, *, generator: torch.Generator, a: float = 0.1, c: float = 0.1,
                 A: float | None = None, max_iters: int = 50_000, alpha: float = 0.602,
                 gamma: float = 0.101):
        super().__init__(x0)
        self.generator, self.a, self.c = generator, check_positive("a", a), check_positive("c", c)
        max_iters = check_int("max_iters", max_iters, 1)
        self.A = 0.1 * max_iters if A is None else check_nonnegative("A", A)
        self.alpha, self.gamma = check_positive("alpha", alpha), check_positive("gamma", gamma)
        self.last_gradient: Tensor | None = None

    def gains(self, k: int) -> tuple[float, float]:
        """``(a_k, c_k)`` for iteration ``k >= 1``."""
        return self.a / (self.A + k) ** self.alpha, self.c / k ** self.gamma

    def ask(self) -> Tensor:
        """``[2, N]``: ``x + c_k Delta`` and ``x - c_k Delta``."""
        self._begin_ask()
        delta = torch.randint(0, 2, self.x.shape, generator=self.generator, device=self.x.device)
        delta = delta.to(self.x.dtype) * 2 - 1
        self._pending = delta
        _, c_k = self.gains(self.t + 1)
        return torch.stack([self.x + c_k * delta, self.x - c_k * delta])

    def tell(self, losses: Tensor) -> TellInfo:
        """``x <- x - a_k g_k`` (module docstring)."""
        delta = self._pending_ask()
        losses = self._finite_losses(losses)
        plus, minus = losses.to(self.x).unbind()
        a_k, c_k = self.gains(self.t + 1)
        g = (plus - minus) / (2 * c_k) * delta
        self.x = self.x - a_k * g
        self.last_gradient = g
        return self._finish(losses)


class CMAES(_Baseline):
    """pycma's CMA-ES (module docstring); ``x`` is the distribution mean."""

    def __init__(self, x0: Tensor, *, seed: int, sigma0: float = 0.5, population: int = 16,
                 diagonal: bool | None = None):
        super().__init__(x0)
        import cma

        sigma0 = check_positive("sigma0", sigma0)
        self.population = check_int("population", population, 2)
        seed = check_int("seed", seed, 1, " (pycma treats 0 as 'unseeded')")
        self.diagonal = self.x.numel() >= 1000 if diagonal is None else bool(diagonal)
        opts = {"popsize": population, "seed": seed, "verbose": -9, "CMA_diagonal": self.diagonal,
                "verb_disp": 0, "verb_log": 0, "tolfun": 0, "tolx": 0, "tolfunhist": 0,
                "tolstagnation": 10**9, "maxiter": 10**9}
        self.es = cma.CMAEvolutionStrategy(self.x.cpu().double().numpy(), sigma0, opts)

    def ask(self) -> Tensor:
        """``[population, N]``: pycma's samples of ``N(x, sigma^2 C)``."""
        self._begin_ask()
        self._pending = self.es.ask()
        return torch.as_tensor(np.asarray(self._pending), dtype=self.x.dtype, device=self.x.device)

    def tell(self, losses: Tensor) -> TellInfo:
        """pycma's update of the mean, step size and covariance; ``x`` <- the new mean."""
        solutions = self._pending_ask()
        losses = self._finite_losses(losses)
        self.es.tell(solutions, losses.double().cpu().tolist())
        self.x = torch.as_tensor(self.es.mean, dtype=self.x.dtype, device=self.x.device)
        return self._finish(losses)


BASELINES: dict[str, type] = {"openai_es": OpenAIES, "spsa": SPSA, "cma_es": CMAES}
#: every method :class:`PopulationOptimizer` runs: PolyStep and the baselines
METHODS: tuple[str, ...] = ("polystep",) + tuple(BASELINES)


class PopulationOptimizer:
    """Run any method of :data:`METHODS` on a module's parameters with a population closure.

    ``closure(thetas) -> [B]`` losses takes one ``[B, *shape]`` tensor per parameter (e.g.
    :func:`polystep.evaluation.population_closure` or
    :func:`polystep.fast_eval.fast_population_closure`).  ``step(closure)`` makes one step of the
    method and returns the mean candidate loss:

    * ``"polystep"``: one :meth:`polystep.optim.PolyStep.step` (the closure receives
      ``P * V * K`` candidates, in chunks, in the subspace of the optimizer's settings);
    * a baseline: ``ask()`` ``B`` flat candidates, split them into the parameters' shapes, evaluate
      ``closure``, ``tell`` the losses and write the method's new point into the parameters.

    Args:
        params: the parameters (one device and dtype).
        method: one of :data:`METHODS`.
        seed: root seed (PolyStep's ``seed``; a ``torch.Generator`` for OpenAI-ES / SPSA; pycma's
            seed ``seed + 1`` for CMA-ES).
        **options: the method's keyword arguments (PolyStep's, e.g. ``rank``, ``eps``; a baseline's,
            e.g. ``sigma``, ``population``, ``max_iters``).

    Attributes:
        forward_evals: losses evaluated so far.
        last_info: what the last step reported (a :class:`polystep.functional.StepInfo` for PolyStep,
            a :class:`polystep.ask_tell.TellInfo` for a baseline).
    """

    def __init__(self, params: Iterable[Tensor], method: str, *, seed: int = 0, **options: Any):
        check_choice("method", method, METHODS)
        self.params = list(params)
        if not self.params:
            raise ValueError("no parameters given")
        if len({p.device for p in self.params}) != 1 or len({p.dtype for p in self.params}) != 1:
            raise ValueError("all parameters must share one device and dtype")
        seed = check_int("seed", seed, 0)
        x0 = torch.cat([p.detach().reshape(-1) for p in self.params])
        if method == "polystep":
            self.method = PolyStep(self.params, seed=seed, **options)
        elif method == "cma_es":
            self.method = CMAES(x0, seed=seed + 1, **options)
        else:
            gen = torch.Generator(device=x0.device)
            gen.manual_seed(seed)
            self.method = BASELINES[method](x0, generator=gen, **options)
        self.name = method
        self.forward_evals = 0
        self.last_info: Any = None

    @property
    def evals_per_step(self) -> int:
        """Losses evaluated per step (PolyStep: ``P * V * K``; a baseline: its population)."""
        if isinstance(self.method, PolyStep):
            return self.method.evals_per_step
        return self.method.population

    def _split(self, flat: Tensor) -> list[Tensor]:
        out, offset = [], 0
        for p in self.params:
            out.append(flat[..., offset:offset + p.numel()].reshape(tuple(flat.shape[:-1]) + tuple(p.shape)))
            offset += p.numel()
        return out

    @torch.no_grad()
    def step(self, closure: Callable[[Sequence[Tensor]], Tensor]) -> Tensor:
        """One step of the method (class docstring); returns the mean candidate loss."""
        if isinstance(self.method, PolyStep):
            loss = self.method.step(closure)
            self.last_info = self.method.last_info
            self.forward_evals += self.last_info.forward_evals
            return loss
        candidates = self.method.ask()
        try:
            losses = closure(self._split(candidates))
            if not isinstance(losses, Tensor) or losses.shape != (candidates.shape[0],):
                raise ValueError(f"closure must return a tensor of {candidates.shape[0]} losses, got "
                                 f"{getattr(losses, 'shape', type(losses).__name__)}")
            self.last_info = self.method.tell(losses)
        except BaseException:
            self.method.discard()  # the next step asks anew
            raise
        self.forward_evals += candidates.shape[0]
        for p, v in zip(self.params, self._split(self.method.x)):
            p.copy_(v)
        return losses.mean()
