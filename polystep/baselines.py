"""Gradient-free baselines of the PolyStep experiments, in the ask/tell protocol, and the harness
that runs every method (PolyStep included) through one population closure.

The baselines and their settings are those of the authors' code (anindex/polystep v0.7.0,
``experiments/baselines/openai_es.py``, ``experiments/baselines/spsa.py``, ``src/polystep/cma.py``;
summarised in paper/polystep_reconstruction.md §5.4).  Each holds a flat point ``x in R^N``
and follows the protocol of :mod:`polystep.ask_tell` (:class:`~polystep.ask_tell.AskTellOptimizer`):
``ask()`` returns a population ``[B, N]`` of candidates, the caller evaluates their losses however
it likes, ``tell(losses)`` updates ``x`` and returns a :class:`~polystep.ask_tell.TellInfo`.
:class:`PopulationOptimizer` drives any method of :data:`METHODS` -- ``"polystep"`` (the
:class:`polystep.optim.PolyStep` optimizer) and the baselines -- on an ``nn.Module`` through the
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
* :class:`SepCMAES` -- the same separable CMA-ES update as pycma's ``CMA_diagonal=True`` (its class
  docstring lists the equations), in torch on the point's device, sampling from a
  ``torch.Generator`` (``"sep_cma_es"``).  At ``N = 118,282``, population 16, one CPU thread: ~16 ms
  per ask + tell in float32 (~50 ms in float64, where ``torch.randn`` is slower) against pycma's
  ~110 ms (``tests/polystep/test_sep_cmaes.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from ._validation import check_choice, check_int, check_nonnegative, check_positive
from .ask_tell import AskTellBase, TellInfo
from .optim import PolyStep

__all__ = ["centered_ranks", "OpenAIES", "SPSA", "CMAES", "SepCMAParameters", "sep_cma_parameters", "SepCMAES",
           "BASELINES", "METHODS", "PopulationOptimizer"]


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


#: pycma 4.5.0 (``evolution_strategy.TPA_dimension``) adapts the step size by TPA from this dimension on
TPA_DIMENSION = 300


def _chi_mean(n: int) -> float:
    """``E||N(0, I_n)||`` as pycma's ``Mh.chiN``: exact ``sqrt(2) Gamma((n+1)/2) / Gamma(n/2)`` for
    ``n <= 100`` (pycma's table), else ``sqrt(n) (1 - 1/(4n) + 1/(32 n^2))``."""
    if n <= 100:
        return math.exp(0.5 * math.log(2.0) + math.lgamma((n + 1) / 2) - math.lgamma(n / 2))
    return n ** 0.5 * (1 - 1 / (4 * n) + 1 / (32 * n ** 2))


def _positive_weights(lam: int) -> tuple[list[float], float]:
    """pycma's ``RecombinationWeights(lam)`` before finalisation: raw ``w'_i = ln((lam+1)/2) - ln i``
    (``i = 1..lam``) with the positive ones scaled to sum 1 and the negative ones to sum -1; returns
    ``(weights, mueff)``, ``mueff = 1 / sum_{w_i > 0} w_i^2``."""
    raw = [math.log((lam + 1) / 2.0) - math.log(i) for i in range(1, lam + 1)]
    pos = sum(v for v in raw if v > 0)
    neg = -sum(v for v in raw if v <= 0)
    w = [v / pos if v > 0 else (v / neg if neg > 0 else 0.0) for v in raw]
    return w, 1.0 / sum(v * v for v in w if v > 0)


def _finalize_negative_weights(weights: list[float], mueff: float, c1: float, cmu: float) -> list[float]:
    """pycma's ``finalize_negative_weights(N, c1, cmu, pos_def=False)`` (active CMA; Hansen's tutorial
    arXiv:1604.00772, App. A): the negative weights scaled to sum ``-(1 + c1/cmu)`` (no decay:
    ``c1 + cmu sum w = 0``), then to at most ``1 + 2 mueff^- / (mueff + 2)`` in absolute sum,
    ``mueff^- = (sum w^-)^2 / sum (w^-)^2``."""
    pos = [v for v in weights if v > 0]
    neg = [v for v in weights if v <= 0]
    if not neg or neg[-1] >= 0:  # no negative weight (pycma: left as is)
        return list(weights)
    neg = [v * (1 + c1 / cmu) / -sum(neg) for v in neg]
    limit = 1 + 2 * (sum(neg) ** 2 / sum(v * v for v in neg)) / (mueff + 2)
    if -sum(neg) > limit:
        neg = [v * limit / -sum(neg) for v in neg]
    return pos + neg


@dataclass(frozen=True)
class SepCMAParameters:
    """The constants of pycma 4.5.0's separable CMA-ES (:func:`sep_cma_parameters`)."""

    dimension: int
    population: int
    weights: tuple[float, ...]
    mu: int
    mueff: float
    cc: float
    c1: float
    cmu: float
    sigma_adaptation: str
    cs: float
    damps: float
    tpa_damp: float
    tpa_c: float
    chi_n: float


def sep_cma_parameters(dimension: int, population: int, sigma_adaptation: str = "auto") -> SepCMAParameters:
    """pycma 4.5.0's constants for ``CMA_diagonal=True`` (``CMAParameters.set``, Ros & Hansen 2008).

    With ``n = dimension``, ``lam = population``, the weights of :func:`_positive_weights` and
    :func:`_finalize_negative_weights` (computed with the ``c1, cmu`` below)::

        cc    = (1 + 1/n + mueff/n) / (sqrt(n) + 1/n + 2 mueff/n)
        c1    = 1 / (n + 2 sqrt(n) + mueff/n)
        cmu   = min(1 - c1, (1/4 + mueff + 1/mueff - 2) / (n + 4 sqrt(n) + mueff/2))

    Step size, ``"csa"`` (``CMAAdaptSigmaCSA``): ``cs = min(1/2, (mueff + 2) / (n + mueff + 3))``,
    ``damps = 1 + 2 max(0, a sqrt((mueff - 1)/(n + 1)) - 1) + cs``, ``a = max(1, 3 (1 - 2^(-n/9)))``;
    ``"tpa"`` (``CMAAdaptSigmaTPA``): ``damp = 0.7 + 2 ln n + 2 ln max(1, lam - n)``, ``c = 0.3``, and
    ``cs = (mueff + 2) / (n + mueff + 3)`` for the path ``p_sigma`` that only feeds ``h_sigma``.
    ``"auto"`` is pycma's choice: TPA when ``n >= 300`` (:data:`TPA_DIMENSION`), else CSA.
    """
    n = check_int("dimension", dimension, 1)
    lam = check_int("population", population, 2)
    sigma_adaptation = check_choice("sigma_adaptation", sigma_adaptation, ("auto", "csa", "tpa"))
    if sigma_adaptation == "auto":
        sigma_adaptation = "tpa" if n >= TPA_DIMENSION else "csa"
    raw, mueff = _positive_weights(lam)
    cc = (1 + 1 / n + mueff / n) / (n ** 0.5 + 1 / n + 2 * mueff / n)
    c1 = 1.0 / (n + 2.0 * n ** 0.5 + mueff / n)
    cmu = min(1 - c1, (0.25 + mueff + 1 / mueff - 2) / (n + 4 * n ** 0.5 + mueff / 2.0))
    # pycma first finalises with the full-CMA rates and pos_def=True, which zeroes the negative
    # weights for good when the full rank-mu rate is capped at 1 - c1 (small n, large lam)
    c1_full = min(1.0, lam / 6) * 2 / ((n + 1.3) ** 2 + mueff)
    cmu_full = min(1 - c1_full, 2 * (0.25 + mueff + 1 / mueff - 2) / ((n + 2) ** 2 + mueff))
    if 1 - c1_full - cmu_full == 0:
        raw = [max(v, 0.0) for v in raw]
    weights = _finalize_negative_weights(raw, mueff, c1, cmu)
    mu = sum(v > 0 for v in weights)
    cs_csa = min(0.5, (mueff + 2) / (n + mueff + 3))
    a = max(1.0, 3 * (1 - 0.5 ** (n / 9)))
    damps = 1 + 2 * max(0.0, a * ((mueff - 1) / (n + 1)) ** 0.5 - 1) + cs_csa
    cs = cs_csa if sigma_adaptation == "csa" else (mueff + 2) / (n + mueff + 3)
    tpa_damp = 0.7 + 2 * math.log(n) + 2 * math.log(max(1, lam - n))
    return SepCMAParameters(dimension=n, population=lam, weights=tuple(weights), mu=mu, mueff=mueff, cc=cc,
                            c1=c1, cmu=cmu, sigma_adaptation=sigma_adaptation, cs=cs, damps=damps,
                            tpa_damp=tpa_damp, tpa_c=0.3, chi_n=_chi_mean(n))


class SepCMAES(_Baseline):
    r"""Separable CMA-ES (Ros & Hansen 2008) with exactly the update of pycma 4.5.0's
    ``CMAEvolutionStrategy(x0, sigma0, {"CMA_diagonal": True, "popsize": lam})`` (the options of
    :class:`CMAES`), in torch: the state lives on ``x0``'s device and dtype and the samples come from
    ``generator``.  A matched forward-evaluation budget for Table T1 (paper/polystep_reconstruction.md
    §5.4) needs thousands of generations at ``N ~ 10^5``, where pycma spends 0.1-0.3 s per generation.

    State: mean ``m`` (:attr:`x`), step size ``sigma``, diagonal covariance ``C = diag(d^2)``
    (:attr:`d`; :attr:`c` ``= d^2``; pycma's ``es.sigma_vec.scaling``, its sampler ``es.sm`` stays
    the identity), evolution paths ``p_c``, ``p_sigma``, generation counter ``g`` (= :attr:`t` + 1
    inside ``tell``).  Constants: :func:`sep_cma_parameters`.  Notation of Hansen's tutorial
    (arXiv:1604.00772): ``z_k ~ N(0, I)``, ``x_k = m + sigma d * z_k`` (elementwise), losses ranked
    ``x_{1:lam} <= ... <= x_{lam:lam}``, weights ``w_i`` (``mu`` positive, summing to 1, the rest
    negative: active CMA).  One ``tell`` computes, in this order::

        <z>_w   = sum_{i<=mu} w_i z_{i:lam}                            (= (m' - m) / (sigma d))
        m'      = m + sigma d * <z>_w                                  (cmean = 1)
        p_sigma = (1 - cs) p_sigma + sqrt(cs (2 - cs) mueff) <z>_w
        h_sigma = [ |p_sigma|^2 / (1 - (1 - cs)^(2g)) / N - 1 < 1 + 4 / (N + 1) ]
        p_c     = (1 - cc) p_c + h_sigma sqrt(cc (2 - cc) mueff) <z>_w
        c1a     = c1 (1 - (1 - h_sigma) cc (2 - cc))
        d'      = d * exp( ln(2)/2 [ c1a (p_c^2 - 1) + cmu sum_{i<=lam} w_i (z_{i:lam}^2 - 1) ] )

    i.e. ``C' = C * 2^(c1a (p_c^2 - 1) + cmu sum_i w_i (z_i^2 - 1))``: pycma's multiplicative
    ("diagonal decoding", ``DiagonalDecoding.update``) form of the sep-CMA rank-one + rank-mu update,
    ``C' = C (1 + c1 (p_c^2 - 1) + cmu sum w_i (z_i^2 - 1))`` to first order, with ``p_c`` and
    ``z`` in the coordinates of the old ``d``.  Then the step size (pycma's ``AdaptSigma=True``):

    * CSA for ``N < 300`` (path length control, tutorial App. A, with pycma's ``chiN`` and clip):
      ``sigma' = sigma exp(clip((|p_sigma| / E|N(0,I)| - 1) cs / damps, -1, 1))``;
    * TPA for ``N >= 300`` (Hansen 2008, two-point adaptation; Akimoto & Hansen 2020): the first two
      candidates of a generation ``g >= 2`` are the mirrored pair ``z_{0,1} = +-r u`` along the last
      mean shift, ``u = ((m - m_old) / d) / |(m - m_old) / d|``, ``r = |N(0, I)|`` (one extra normal
      draw, pycma's ``_random_rescaling_factor_to_mahalanobis_size``); with ``z_r = (#{f < f_1} -
      #{f < f_0}) / (lam - 1)`` (``f_0, f_1`` the losses of the first two candidates, also in
      generation 1 where they are ordinary samples, as pycma does),
      ``s <- (1 - c) s + c sign(z_r) |z_r|^(1/2)``, ``sigma' = sigma exp(s / damp)``; ``p_sigma``
      then only feeds ``h_sigma``.

    Same as pycma up to floating-point rounding (``tests/polystep/test_sep_cmaes.py`` checks mean,
    ``sigma`` and ``d^2`` against pycma on pycma's own samples to 1e-10 relative; measured <= 1e-12),
    except for pycma
    features that its defaults leave off here: bounds, ``minstd``/``maxstd``, integer variables,
    injections, elitism, the ``sigma > 1e9 sigma0`` representation change, and selective mirroring
    (pycma's default for ``popsize < 6``; here never).  pycma's ``DiagonalDecoding.update`` means to
    clip large factors but its chained-index assignment is a no-op, so nothing is clipped there or
    here.  Ties are ranked stably (pycma: ``np.argsort``); non-finite losses raise ``ValueError`` like
    the other baselines (pycma substitutes the median).  Rounding: ``m' - m`` and ``(x_k - m) /
    (sigma d)`` are taken from ``z`` directly, not recomputed from ``x_k`` (pycma), which is more
    accurate when ``sigma d << |m|``.

    Args:
        x0: initial mean ``[N]`` (its device and dtype carry the state).
        generator: source of all samples, on ``x0``'s device.
        sigma0: initial step size (> 0).
        population: ``lam`` (>= 2; equal to pycma's update for >= 6).
        sigma_adaptation: ``"auto"`` (pycma: TPA iff ``N >= 300``), ``"csa"`` or ``"tpa"``.
    """

    def __init__(self, x0: Tensor, *, generator: torch.Generator, sigma0: float = 0.5, population: int = 16,
                 sigma_adaptation: str = "auto"):
        super().__init__(x0)
        self.sigma0 = self.sigma = check_positive("sigma0", sigma0)
        self.population = check_int("population", population, 2)
        self.generator = generator
        self.params = sep_cma_parameters(self.x.numel(), self.population, sigma_adaptation)
        self.weights = torch.tensor(self.params.weights, dtype=self.x.dtype, device=self.x.device)
        self.d = torch.ones_like(self.x)
        self.pc = torch.zeros_like(self.x)
        self.ps = torch.zeros_like(self.x)
        self.tpa_s = 0.0
        self.mean_shift: Tensor | None = None  # m - m_old of the last tell (TPA's direction)

    @property
    def c(self) -> Tensor:
        """The diagonal of ``C`` (``d^2``; pycma: ``es.sigma_vec.scaling**2``)."""
        return self.d * self.d

    @property
    def stds(self) -> Tensor:
        """Coordinate-wise standard deviations ``sigma d`` of the sample distribution."""
        return self.sigma * self.d

    def _uses_mirrors(self) -> bool:
        return self.params.sigma_adaptation == "tpa" and self.mean_shift is not None

    def _draw(self) -> Tensor:
        """``[lam, N]`` standard-normal coordinates: iid, or (TPA, generation >= 2) the mirrored pair
        ``+-r u`` in rows 0 and 1, then ``lam - 2`` iid rows (class docstring)."""
        z = torch.empty(self.population, self.x.numel(), dtype=self.x.dtype, device=self.x.device)
        if not self._uses_mirrors():
            return z.normal_(generator=self.generator)
        z[1:].normal_(generator=self.generator)  # row 1 is the draw of r, then it is overwritten
        direction = self.mean_shift / self.d
        scale = z[1].norm() / direction.norm().clamp_min(torch.finfo(self.x.dtype).tiny)
        torch.mul(direction, scale, out=z[0])  # a zero mean shift gives the pair z = 0 (pycma: NaN)
        torch.neg(z[0], out=z[1])
        return z

    def ask(self) -> Tensor:
        """``[population, N]``: ``x_k = m + sigma d * z_k`` (class docstring)."""
        self._begin_ask()
        return self._candidates(self._draw())

    def ask_from(self, z: Tensor) -> Tensor:
        """Like :meth:`ask`, with given standard-normal coordinates ``z`` ``[population, N]`` instead
        of drawn ones, e.g. ``(X - m) / (sigma d)`` of pycma's samples ``X`` to replay pycma's run."""
        self._begin_ask()
        if not isinstance(z, Tensor) or z.shape != (self.population, self.x.numel()):
            raise ValueError(f"z must be a tensor of shape {(self.population, self.x.numel())}, got "
                             f"{getattr(z, 'shape', type(z).__name__)}")
        return self._candidates(z.to(self.x, copy=True))

    def _candidates(self, z: Tensor) -> Tensor:
        self._pending = z
        return torch.addcmul(self.x, self.stds, z)

    def _rank_weights(self, losses: Tensor) -> Tensor:
        """``w_rank(k)`` for candidate ``k`` (stable ranking of ``losses``), so that
        ``sum_k w_rank(k) v_k = sum_i w_i v_{i:lam}`` without sorting ``z``."""
        order = torch.argsort(losses.to(self.x.device), stable=True)
        out = torch.empty_like(self.weights)
        out[order] = self.weights
        return out

    def _tpa_factor(self, losses: Tensor) -> float:
        """TPA's step-size factor ``exp(s / damp)`` from the ranks of the first two losses."""
        f = losses.double().cpu()
        z = (int((f < f[1]).sum()) - int((f < f[0]).sum())) / (self.population - 1)
        c = self.params.tpa_c
        self.tpa_s = (1 - c) * self.tpa_s + c * math.copysign(abs(z) ** 0.5, z) * (z != 0)
        return math.exp(self.tpa_s / self.params.tpa_damp)

    def _csa_factor(self) -> float:
        """CSA's step-size factor ``exp(clip((|p_sigma| / chiN - 1) cs / damps, -1, 1))``."""
        p = self.params
        s = (float(self.ps.norm()) / p.chi_n - 1) * p.cs / p.damps
        return math.exp(min(1.0, max(-1.0, s)))

    def tell(self, losses: Tensor) -> TellInfo:
        """pycma's sep-CMA update of ``m``, ``p_sigma``, ``p_c``, ``d`` and ``sigma`` (class docstring)."""
        z = self._pending_ask()
        losses = self._finite_losses(losses)
        p, g = self.params, self.t + 1
        w = self._rank_weights(losses)
        w_pos = w.clamp_min(0.0)
        zw = w_pos @ z  # <z>_w: the positive weights of the mu best
        z2w = w @ z.square_()  # sum_i w_i z_{i:lam}^2 (z, ours since ask, is no longer needed)
        self.mean_shift = (self.sigma * self.d) * zw
        self.x = self.x + self.mean_shift
        self.ps.mul_(1 - p.cs).add_(zw, alpha=math.sqrt(p.cs * (2 - p.cs) * p.mueff))
        n = self.x.numel()
        hsig = float(self.ps.square().sum()) / (1 - (1 - p.cs) ** (2 * g)) / n - 1 < 1 + 4.0 / (n + 1)
        self.pc.mul_(1 - p.cc)
        if hsig:
            self.pc.add_(zw, alpha=math.sqrt(p.cc * (2 - p.cc) * p.mueff))
        c1a = p.c1 * (1 - (0.0 if hsig else 1.0) * p.cc * (2 - p.cc))
        exponent = c1a * (self.pc.square() - 1) + p.cmu * (z2w - sum(p.weights))
        self.d = self.d * torch.exp(0.5 * math.log(2.0) * exponent)
        sigma_factor = self._csa_factor() if p.sigma_adaptation == "csa" else self._tpa_factor(losses)
        self.sigma *= sigma_factor
        return self._finish(losses)


BASELINES: dict[str, type] = {"openai_es": OpenAIES, "spsa": SPSA, "cma_es": CMAES,
                              "sep_cma_es": SepCMAES}
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
        seed: root seed (PolyStep's ``seed``; a ``torch.Generator`` for OpenAI-ES / SPSA /
            sep-CMA-ES; pycma's seed ``seed + 1`` for CMA-ES).
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
