"""Gradient-free baselines of the PolyStep experiments (digest section 5.4), in the ask/tell protocol.

Each baseline holds a flat point ``x in R^N``; ``ask()`` returns a population ``[B, N]`` of
candidates, the caller evaluates their losses however it likes, ``tell(losses)`` updates ``x``.
:class:`PopulationOptimizer` drives any of them on an ``nn.Module`` through the same population
closure as :class:`polystep.optim.PolyStep` (``closure(thetas) -> losses``), so every method
spends its forward evaluations through one interface and ``forward_evals`` counts them.

* :class:`OpenAIES` -- Salimans et al. 2017, antithetic: ``eps_i ~ N(0, I)``, candidates
  ``x +- sigma eps_i``; with fitness shaping ``F`` (centred ranks in ``[-0.5, 0.5]``, or the raw
  losses) the search gradient is::

      g = 1 / (n sigma) sum_i F_i e_i   (e_i = +eps_j or -eps_j),     x <- x (1 - lr_t wd) - lr_t g

  ``lr_t`` decays linearly from ``lr`` to ``lr_end`` over ``total_steps`` (digest: population 50,
  sigma 0.02, lr 0.01 -> 0, weight decay 0.01).
* :class:`SPSA` -- Spall 1992/1998: Rademacher ``Delta``, gains ``a_k = a / (A + k)^alpha``,
  ``c_k = c / k^gamma`` (``k = 1, 2, ...``)::

      g_k = (L(x + c_k Delta) - L(x - c_k Delta)) / (2 c_k) * Delta   (1/Delta_i = Delta_i),
      x <- x - a_k g_k

  (digest: ``a = c = 0.1``, ``A = 0.1 max_iters``, ``alpha = 0.602``, ``gamma = 0.101``).
* :class:`CMAES` -- pycma's ``CMAEvolutionStrategy`` (Hansen), ``sigma0 = 0.5``, population 16,
  separable (diagonal) CMA when ``N >= 1000`` as in the paper's runs; ``x`` is the distribution mean.
  pycma draws from NumPy's global generator, seeded from ``seed`` at construction (a global side
  effect pycma imposes).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["centered_ranks", "OpenAIES", "SPSA", "CMAES", "BASELINES", "PopulationOptimizer"]


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


def _check_losses(losses: Tensor, expected: int) -> Tensor:
    losses = torch.as_tensor(losses).detach().flatten()
    if losses.numel() != expected:
        raise ValueError(f"tell() needs {expected} losses, got {losses.numel()}")
    if not bool(torch.isfinite(losses).all()):
        raise ValueError("losses must be finite")
    return losses


class _AskTell:
    """Shared state: the point ``x``, the step count ``t`` and the asked-but-untold population."""

    population: int

    def __init__(self, x0: Tensor):
        self.x = _check_x0(x0)
        self.t = 0
        self._pending: Tensor | None = None

    def _take_pending(self) -> Tensor:
        if self._pending is None:
            raise RuntimeError("tell() without a preceding ask()")
        pending, self._pending = self._pending, None
        return pending


class OpenAIES(_AskTell):
    """Antithetic OpenAI-ES (module docstring).  ``population`` candidates per step (even)."""

    def __init__(self, x0: Tensor, *, generator: torch.Generator, population: int = 50,
                 sigma: float = 0.02, lr: float = 0.01, lr_end: float = 0.0, total_steps: int = 10_000,
                 weight_decay: float = 0.01, fitness_shaping: str = "centered_ranks"):
        super().__init__(x0)
        if not isinstance(population, int) or population < 2 or population % 2:
            raise ValueError(f"population must be an even integer >= 2 (antithetic pairs), got {population!r}")
        if not sigma > 0 or not lr >= 0 or not lr_end >= 0 or not weight_decay >= 0:
            raise ValueError("need sigma > 0 and lr, lr_end, weight_decay >= 0")
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be an integer >= 1, got {total_steps!r}")
        if fitness_shaping not in ("centered_ranks", "none"):
            raise ValueError(f"fitness_shaping must be 'centered_ranks' or 'none', got {fitness_shaping!r}")
        self.generator, self.population, self.sigma = generator, population, float(sigma)
        self.lr, self.lr_end, self.total_steps = float(lr), float(lr_end), total_steps
        self.weight_decay, self.fitness_shaping = float(weight_decay), fitness_shaping
        self.last_gradient: Tensor | None = None

    def learning_rate(self, t: int) -> float:
        """``lr`` at step ``t`` (0-based): linear from ``lr`` to ``lr_end`` over ``total_steps``."""
        frac = min(t, self.total_steps) / self.total_steps
        return self.lr + (self.lr_end - self.lr) * frac

    def ask(self) -> Tensor:
        half = torch.randn(self.population // 2, self.x.numel(), generator=self.generator,
                           dtype=self.x.dtype, device=self.x.device)
        self._pending = torch.cat([half, -half])
        return self.x + self.sigma * self._pending

    def tell(self, losses: Tensor) -> None:
        noise = self._take_pending()
        losses = _check_losses(losses, self.population).to(self.x)
        fitness = centered_ranks(losses) if self.fitness_shaping == "centered_ranks" else losses
        g = fitness @ noise / (self.population * self.sigma)
        lr = self.learning_rate(self.t)
        self.x = self.x * (1.0 - lr * self.weight_decay) - lr * g
        self.last_gradient = g
        self.t += 1


class SPSA(_AskTell):
    """Simultaneous-perturbation stochastic approximation (module docstring): 2 candidates per step."""

    population = 2

    def __init__(self, x0: Tensor, *, generator: torch.Generator, a: float = 0.1, c: float = 0.1,
                 A: float | None = None, max_iters: int = 50_000, alpha: float = 0.602,
                 gamma: float = 0.101):
        super().__init__(x0)
        if not a > 0 or not c > 0 or not alpha > 0 or not gamma > 0:
            raise ValueError("need a, c, alpha, gamma > 0")
        if not isinstance(max_iters, int) or max_iters < 1:
            raise ValueError(f"max_iters must be an integer >= 1, got {max_iters!r}")
        self.generator, self.a, self.c = generator, float(a), float(c)
        self.A = 0.1 * max_iters if A is None else float(A)
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.last_gradient: Tensor | None = None

    def gains(self, k: int) -> tuple[float, float]:
        """``(a_k, c_k)`` for iteration ``k >= 1``."""
        return self.a / (self.A + k) ** self.alpha, self.c / k ** self.gamma

    def ask(self) -> Tensor:
        delta = torch.randint(0, 2, self.x.shape, generator=self.generator, device=self.x.device)
        delta = delta.to(self.x.dtype) * 2 - 1
        self._pending = delta
        _, c_k = self.gains(self.t + 1)
        return torch.stack([self.x + c_k * delta, self.x - c_k * delta])

    def tell(self, losses: Tensor) -> None:
        delta = self._take_pending()
        plus, minus = _check_losses(losses, 2).to(self.x).unbind()
        a_k, c_k = self.gains(self.t + 1)
        g = (plus - minus) / (2 * c_k) * delta
        self.x = self.x - a_k * g
        self.last_gradient = g
        self.t += 1


class CMAES(_AskTell):
    """pycma's CMA-ES (module docstring); ``x`` is the distribution mean."""

    def __init__(self, x0: Tensor, *, seed: int, sigma0: float = 0.5, population: int = 16,
                 diagonal: bool | None = None):
        super().__init__(x0)
        import cma

        if not sigma0 > 0:
            raise ValueError(f"sigma0 must be > 0, got {sigma0!r}")
        if not isinstance(population, int) or population < 2:
            raise ValueError(f"population must be an integer >= 2, got {population!r}")
        if not isinstance(seed, int) or seed < 1:
            raise ValueError(f"seed must be an integer >= 1 (pycma treats 0 as 'unseeded'), got {seed!r}")
        self.population = population
        self.diagonal = self.x.numel() >= 1000 if diagonal is None else bool(diagonal)
        opts = {"popsize": population, "seed": seed, "verbose": -9, "CMA_diagonal": self.diagonal,
                "verb_disp": 0, "verb_log": 0, "tolfun": 0, "tolx": 0, "tolfunhist": 0,
                "tolstagnation": 10**9, "maxiter": 10**9}
        self.es = cma.CMAEvolutionStrategy(self.x.cpu().double().numpy(), float(sigma0), opts)
        self._solutions: list | None = None

    def ask(self) -> Tensor:
        self._solutions = self.es.ask()
        self._pending = torch.as_tensor(np.asarray(self._solutions), dtype=self.x.dtype, device=self.x.device)
        return self._pending

    def tell(self, losses: Tensor) -> None:
        self._take_pending()
        losses = _check_losses(losses, self.population)
        self.es.tell(self._solutions, losses.double().cpu().tolist())
        self.x = torch.as_tensor(self.es.mean, dtype=self.x.dtype, device=self.x.device)
        self.t += 1


BASELINES: dict[str, type] = {"openai_es": OpenAIES, "spsa": SPSA, "cma_es": CMAES}


class PopulationOptimizer:
    """Drive a baseline on a module's parameters with a population closure.

    ``step(closure)`` asks the method for ``B`` flat candidates, splits them into one
    ``[B, *shape]`` tensor per parameter, evaluates ``closure(thetas) -> [B]`` losses (e.g.
    :func:`polystep.evaluation.population_closure`), tells the method and writes its new point into
    the parameters.  Returns the mean candidate loss.

    Args:
        params: the parameters (one device and dtype).
        method: ``"openai_es"`` | ``"spsa"`` | ``"cma_es"``.
        seed: root seed (a ``torch.Generator`` for OpenAI-ES / SPSA, pycma's seed for CMA-ES).
        **options: the method's keyword arguments (e.g. ``sigma``, ``population``, ``max_iters``).
    """

    def __init__(self, params: Iterable[Tensor], method: str, *, seed: int = 0, **options):
        if method not in BASELINES:
            raise ValueError(f"method must be one of {tuple(BASELINES)}, got {method!r}")
        self.params = list(params)
        if not self.params:
            raise ValueError("no parameters given")
        if len({p.device for p in self.params}) != 1 or len({p.dtype for p in self.params}) != 1:
            raise ValueError("all parameters must share one device and dtype")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        x0 = torch.cat([p.detach().reshape(-1) for p in self.params])
        if method == "cma_es":
            self.method = CMAES(x0, seed=seed + 1, **options)
        else:
            gen = torch.Generator(device=x0.device)
            gen.manual_seed(seed)
            self.method = BASELINES[method](x0, generator=gen, **options)
        self.name = method
        self.forward_evals = 0

    @property
    def evals_per_step(self) -> int:
        return self.method.population

    def _split(self, flat: Tensor) -> list[Tensor]:
        out, offset = [], 0
        for p in self.params:
            out.append(flat[..., offset:offset + p.numel()].reshape(tuple(flat.shape[:-1]) + tuple(p.shape)))
            offset += p.numel()
        return out

    @torch.no_grad()
    def step(self, closure: Callable[[Sequence[Tensor]], Tensor]) -> Tensor:
        candidates = self.method.ask()
        losses = closure(self._split(candidates))
        if not isinstance(losses, Tensor) or losses.shape != (candidates.shape[0],):
            raise ValueError(f"closure must return a tensor of {candidates.shape[0]} losses, got "
                             f"{getattr(losses, 'shape', type(losses).__name__)}")
        self.method.tell(losses)
        self.forward_evals += candidates.shape[0]
        for p, v in zip(self.params, self._split(self.method.x)):
            p.copy_(v)
        return losses.mean()
