"""Zeroth-order query complexity: final gradient norm at a fixed query budget ``Q`` against the
dimension ``D``, for PolyStep, OpenAI-ES and SPSA, and the fits compared with the known bounds.

Provenance. The paper's abstract says PolyStep's rates "match the known zeroth-order
query-complexity lower bounds that all forward-only methods inherit"; which bound is cited is
unknown (paper/polystep_reconstruction.md §3.5, tagged [U]).

The bounds used as the reference (order ``sqrt(D / Q)`` in the gradient norm or the optimisation
error after ``Q`` function evaluations in dimension ``D``):

* **Lower bound** -- J. C. Duchi, M. I. Jordan, M. J. Wainwright, A. Wibisono, "Optimal rates for
  zero-order convex optimization: the power of two function evaluations", IEEE Trans. Inf. Theory
  61(5):2788-2806, 2015: for stochastic convex optimisation with two function evaluations per
  round (the same sample ``xi`` at both points), the minimax optimisation error after ``k`` rounds
  is of order ``G R sqrt(d / k)``: a factor ``sqrt(d)`` above the first-order rate ``G R / sqrt(k)``,
  and no algorithm does better over the class (their lower bound); ``Q = 2k`` queries.
* **Matching upper bound for smooth nonconvex problems** -- Yu. Nesterov, V. Spokoiny, "Random
  gradient-free minimization of convex functions", Found. Comput. Math. 17(2):527-566, 2017
  (§7): for an ``L``-smooth nonconvex ``f`` the random gradient-free method (Gaussian smoothing,
  two evaluations per iteration) reaches ``min_k E ||grad f(x_k)||^2 <= eps^2`` after
  ``O(d L (f(x_0) - f*) / eps^2)`` iterations, i.e. ``||grad f|| ~ sqrt(d L Delta / Q)``.

So the reference exponents of ``g(D, Q) = C D^a Q^b`` are ``a = 1/2``, ``b = -1/2``: the
dimension enters through ``Q / D`` (one scalar per query, ``D`` unknowns). Both statements are
about *classes* (the minimax over stochastic or worst-case smooth functions), not one function: on
a deterministic, noiseless quadratic a method may decay faster than ``Q^{-1/2}`` (finite
differences with ``D + 1`` queries per step converge linearly, ``exp(-c Q / D)``) -- but it still
needs ``~D`` queries per unit of progress, so the dependence through ``Q / D`` is what carries over.
Our deterministic objectives therefore test (i) dimension dependence (``a > 0``: no method is
dimension-free) and (ii) the ``Q / D`` form (``a ~ -b``), and show the measured exponents beside
``+-1/2``.

PolyStep's queries. With block particles of ``d_p`` coordinates, the orthoplex (``V = 2 d_p``) and
``K = 1`` probe, a step costs ``P V K = (D / d_p) 2 d_p = 2D`` evaluations, so ``T = Q / (2D)``
steps fit in the budget. With ``r_s = r_p = r_0 / sqrt(t + 1)`` and a fixed ``eps`` PolyStep is
gradient descent with a ``1/t`` step once ``r_p ||grad|| << eps`` (:mod:`theory.rates`), so near a
minimiser with Hessian eigenvalue ``lambda`` the gradient norm decays like ``T^{-c}`` with
``c = lambda r_0^2 / (2 d_p eps)`` (:func:`theory.rates.linear_regime_exponent`), i.e. predicted
``a = c``, ``b = -c`` from a start whose gradient norm does not depend on ``D``.

Objectives (elementwise, so a [rows, D] batch costs ``O(rows D)``): ``f(x) = 1/2 ||x||^2`` and the
smooth non-quadratic ``f(x) = sum_i log cosh x_i`` (``L = 1``, Hessian ``I`` at the minimiser 0,
gradient ``tanh x``). Starts ``x_0 ~ N(0, I / D)``: ``||x_0|| ~ 1`` and ``f(x_0) - f* ~ 1/2`` at
every ``D``, the normalisation under which the bounds' constants (``L``, ``Delta``) do not change
with ``D``.

Everything is float64 on CPU, deterministic given the generators. The baselines' updates are those
of :class:`polystep.baselines.OpenAIES` and :class:`polystep.baselines.SPSA`, batched over seeds
(for one seed they give the classes' iterates bitwise: ``tests/theory/test_zo_lower_bound.py``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from .objectives import Objective, _log_cosh
from .rates import RateProblem, run_rates

__all__ = [
    "HalfSquaredNorm",
    "LogCoshSum",
    "RowStack",
    "OBJECTIVES",
    "reference_order",
    "budget_steps",
    "normalised_starts",
    "batched_centered_ranks",
    "run_polystep",
    "run_openai_es",
    "run_spsa",
    "fit_power_law",
    "fit_slope",
]

#: exponents of the reference order sqrt(D / Q) (module docstring)
REFERENCE_D_EXPONENT = 0.5
REFERENCE_Q_EXPONENT = -0.5


class HalfSquaredNorm(Objective):
    """``f(x) = 1/2 ||x||^2``; ``grad f = x``; minimum 0 at 0 (elementwise: no ``D x D`` matrix)."""

    name = "half_squared_norm"
    minimum = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        return 0.5 * (x * x).sum(-1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return self._check(x).clone()


class LogCoshSum(Objective):
    """``f(x) = sum_i log cosh x_i``; ``grad f = tanh x``; minimum 0 at 0; smooth with ``L = 1``,
    Hessian ``I`` at the minimiser, non-quadratic (gradient bounded by 1 per coordinate)."""

    name = "log_cosh_sum"
    minimum = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _log_cosh(self._check(x)).sum(-1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self._check(x))


class RowStack(Objective):
    """Several objectives on consecutive row blocks of one batch: rows ``[0, rows_0)`` of ``x [R, ...,
    D]`` (dimension 0) go to ``objectives[0]``, the next ``rows_1`` to ``objectives[1]``, ... -- so
    independent runs on different objectives share one loop of a batched optimizer."""

    name = "row_stack"

    def __init__(self, objectives: Sequence[Objective], rows: Sequence[int]):
        if len(objectives) != len(rows) or not objectives:
            raise ValueError("one row count per objective")
        self.objectives, self.rows = list(objectives), [int(r) for r in rows]
        self.bounds = np.cumsum([0] + self.rows)

    def _apply(self, fn: str, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.bounds[-1]:
            raise ValueError(f"x must have {self.bounds[-1]} rows, got {x.shape[0]}")
        return torch.cat([getattr(o, fn)(x[lo:hi]) if fn == "grad" else o(x[lo:hi])
                          for o, lo, hi in zip(self.objectives, self.bounds[:-1], self.bounds[1:])])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply("__call__", x)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply("grad", x)


#: the study's objectives by name; both have Hessian eigenvalue 1 at the minimiser 0
OBJECTIVES = {"quadratic": HalfSquaredNorm, "logcosh": LogCoshSum}


def reference_order(dim: float | np.ndarray, queries: float | np.ndarray) -> np.ndarray:
    """``sqrt(D / Q)``: the order of the bounds (module docstring), without constants."""
    return np.sqrt(np.asarray(dim, dtype=float) / np.asarray(queries, dtype=float))


def budget_steps(budgets: Sequence[int], queries_per_step: int) -> np.ndarray:
    """Steps that fit in each budget: ``floor(Q / queries_per_step)`` (at least 1)."""
    steps = np.asarray(budgets, dtype=np.int64) // int(queries_per_step)
    if np.any(steps < 1):
        raise ValueError(f"a budget in {list(budgets)} is below one step ({queries_per_step} queries)")
    return steps


def normalised_starts(dim: int, seeds: int, generator: torch.Generator) -> torch.Tensor:
    """``[seeds, D]`` starts ``x_0 ~ N(0, I / D)`` (``E ||x_0||^2 = 1``)."""
    return torch.randn(seeds, dim, generator=generator, dtype=torch.float64) / math.sqrt(dim)


def batched_centered_ranks(losses: torch.Tensor) -> torch.Tensor:
    """:func:`polystep.baselines.centered_ranks` of every row of ``losses [S, n]`` (stable ties)."""
    n = losses.shape[-1]
    if n < 2:
        raise ValueError("centered ranks need at least two losses")
    order = torch.argsort(losses, dim=-1, stable=True)
    ranks = torch.empty_like(losses)
    ranks.scatter_(-1, order, torch.arange(n, dtype=losses.dtype).expand_as(losses).contiguous())
    return ranks / (n - 1) - 0.5


def _record(record: dict[int, int], t: int, out: np.ndarray, objective: Objective, x: torch.Tensor) -> None:
    """Store ``||grad f(x)||`` (per seed) in ``out[i]`` if step ``t`` (1-based) is recorded as ``i``."""
    i = record.get(t)
    if i is not None:
        out[i] = objective.grad(x).norm(dim=-1).numpy()


def run_polystep(objectives: dict[str, Objective], dim: int, seeds: int, budgets: Sequence[int],
                 generator: torch.Generator, *, particle_dim: int = 4, r0: float = 1.0,
                 eps: Sequence[float] = (0.1,), jitter: float = 0.05) -> dict[str, Any]:
    """PolyStep with block particles (``2D`` queries a step) on every objective and ``eps``, all seeds
    in one :func:`theory.rates.run_rates` batch, run to the largest budget; the gradient norm is
    recorded at the last step within each budget.

    Separable objectives (both of :data:`OBJECTIVES`: ``f(x) = sum_i f_i(x_i)`` over the particles'
    blocks) are simulated block by block: the cost of candidate ``(i, v)`` -- ``x`` with only block
    ``i`` moved to its probe ``v`` -- is ``f(x) - f_i(x_i) + f_i(probe)``, and the softmax weights of
    particle ``i`` are invariant to the constant ``f(x) - f_i(x_i)``, so running the ``P = D / d_p``
    blocks as independent particles on ``f_i`` gives the block-mode iterates (exactly in exact
    arithmetic; ``tests/theory/test_zo_lower_bound.py`` checks it against
    :class:`polystep.ask_tell.AskTellPolyStep` evaluating the full ``D``-vectors). The queries are
    counted as the algorithm spends them, ``P V K = 2D`` a step; only the simulation is cheaper
    (``O(D)`` instead of ``O(D^2)`` a step).

    Returns:
        ``{"queries": [n_Q] queries actually spent, "steps": [n_Q], "queries_per_step": 2D,
        "g": {(objective, eps): [n_Q, S]}}`` (``||grad f||`` of the whole ``D``-vector).
    """
    if dim % particle_dim:
        raise ValueError(f"D = {dim} is not a multiple of particle_dim = {particle_dim}")
    nparts = dim // particle_dim
    qps = nparts * 2 * particle_dim  # P V K with the orthoplex, K = 1
    steps = budget_steps(budgets, qps)
    problems = [RateProblem(f"{name}_eps{e:g}", obj, particle_dim, particle_dim, r0, e,
                            x0_scale=1.0 / math.sqrt(dim), hessian_min_eig=1.0)
                for name, obj in objectives.items() for e in eps]
    runs = run_rates(problems, steps=int(steps.max()), seeds=seeds * nparts, generator=generator, jitter=jitter,
                     record=steps)
    g = {}
    for name in objectives:
        for e in eps:
            r = runs[f"{name}_eps{e:g}"]
            idx = np.searchsorted(r["record"], steps)
            blocks = r["value"][idx].reshape(len(steps), seeds, nparts)  # run j = seed * P + block
            g[(name, float(e))] = np.sqrt((blocks ** 2).sum(axis=2))
    return {"queries": steps * qps, "steps": steps, "queries_per_step": qps, "g": g}


def run_openai_es(objective: Objective, x0: torch.Tensor, budgets: Sequence[int], generator: torch.Generator, *,
                  population: int = 50, sigma: float = 0.02, lr: float = 0.01,
                  weight_decay: float = 0.0) -> dict[str, Any]:
    """Antithetic OpenAI-ES with centred ranks and a constant learning rate
    (:class:`polystep.baselines.OpenAIES` with ``lr_end = lr``), the rows of ``x0 [S, D]`` being
    independent runs; noise ``[S, population / 2, D]`` is drawn once a step.

    Returns ``{"queries", "steps", "queries_per_step", "g": [n_Q, S]}``.
    """
    if population < 2 or population % 2:
        raise ValueError(f"population must be an even integer >= 2, got {population!r}")
    steps = budget_steps(budgets, population)
    rec = {int(t): i for i, t in enumerate(steps)}
    x = x0.clone()
    s, d = x.shape
    g_out = np.empty((len(steps), s))
    for t in range(1, int(steps.max()) + 1):
        half = torch.randn(s, population // 2, d, generator=generator, dtype=x.dtype)
        step = sigma * half
        losses = objective(torch.cat([x[:, None, :] + step, x[:, None, :] - step], dim=1))  # [S, n]
        fitness = batched_centered_ranks(losses)
        m = population // 2  # sum_j F_j e_j with e = (half, -half): (F_+ - F_-) . half
        grad = torch.einsum("sn,snd->sd", fitness[:, :m] - fitness[:, m:], half) / (population * sigma)
        x = x * (1.0 - lr * weight_decay) - lr * grad
        _record(rec, t, g_out, objective, x)
    return {"queries": steps * population, "steps": steps, "queries_per_step": population, "g": g_out}


def run_spsa(objective: Objective, x0: torch.Tensor, budgets: Sequence[int], generator: torch.Generator, *,
             a: float = 0.1, c: float = 0.1, A: float = 0.0, alpha: float = 0.602,
             gamma: float = 0.101) -> dict[str, Any]:
    """SPSA (:class:`polystep.baselines.SPSA` with a fixed ``A``), rows of ``x0 [S, D]`` independent
    runs; Rademacher ``Delta [S, D]`` drawn once a step. Returns as :func:`run_openai_es`."""
    steps = budget_steps(budgets, 2)
    rec = {int(t): i for i, t in enumerate(steps)}
    x = x0.clone()
    g_out = np.empty((len(steps), x.shape[0]))
    sign = torch.tensor([1.0, -1.0], dtype=x.dtype)[:, None]
    for k in range(1, int(steps.max()) + 1):
        delta = torch.randint(0, 2, x.shape, generator=generator).to(x.dtype).mul_(2).sub_(1)
        a_k, c_k = a / (A + k) ** alpha, c / k ** gamma
        losses = objective(x[:, None, :] + (c_k * sign) * delta[:, None, :])  # [S, 2]: x + c_k Delta, x - c_k Delta
        x = x - (a_k / (2 * c_k)) * (losses[:, 0] - losses[:, 1])[:, None] * delta
        _record(rec, k, g_out, objective, x)
    return {"queries": steps * 2, "steps": steps, "queries_per_step": 2, "g": g_out}


def _lstsq(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(design, y, rcond=None)[0]


def fit_power_law(dims: np.ndarray, queries: np.ndarray, g: np.ndarray, generator: np.random.Generator, *,
                  n_boot: int = 1000, level: float = 0.95) -> dict[str, Any]:
    """Fit ``log E g = alpha + a log D + b log Q`` over a grid, with a bootstrap CI over seeds.

    Args:
        dims: ``[n_D]``.
        queries: ``[n_D, n_Q]`` queries actually spent (they may differ by ``D``: whole steps).
        g: ``[n_D, n_Q, S]`` final gradient norms per seed.
        generator: bootstrap resamples (seeds drawn with replacement, the same for every cell).

    Returns:
        ``a``, ``b``, ``alpha``, ``a_ci``, ``b_ci`` (``[lo, hi]``), ``residual_rms`` (of the log fit),
        ``mean`` (``[n_D, n_Q]``).
    """
    dims = np.asarray(dims, dtype=float)
    queries = np.asarray(queries, dtype=float)
    g = np.asarray(g, dtype=float)
    n_d, n_q, s = g.shape
    if queries.shape != (n_d, n_q) or dims.shape != (n_d,):
        raise ValueError(f"shapes: dims {dims.shape}, queries {queries.shape}, g {g.shape}")
    if np.any(g <= 0) or not np.all(np.isfinite(g)):
        raise ValueError("gradient norms must be finite and positive to fit a power law")
    design = np.column_stack([np.ones(n_d * n_q), np.repeat(np.log(dims), n_q), np.log(queries).ravel()])
    mean = g.mean(axis=2)
    coef = _lstsq(design, np.log(mean).ravel())
    resid = np.log(mean).ravel() - design @ coef
    idx = generator.integers(0, s, size=(n_boot, s))
    boots = np.array([_lstsq(design, np.log(g[:, :, i].mean(axis=2)).ravel()) for i in idx])
    q = [(1 - level) / 2, (1 + level) / 2]
    return {"alpha": float(coef[0]), "a": float(coef[1]), "b": float(coef[2]),
            "a_ci": np.quantile(boots[:, 1], q), "b_ci": np.quantile(boots[:, 2], q),
            "residual_rms": float(np.sqrt(np.mean(resid ** 2))), "mean": mean}


def fit_slope(x: np.ndarray, g: np.ndarray, generator: np.random.Generator, *, n_boot: int = 1000,
              level: float = 0.95) -> dict[str, Any]:
    """Log-log slope of the seed mean of ``g [n, S]`` against ``x [n]``, bootstrap CI over seeds."""
    x = np.log(np.asarray(x, dtype=float))
    g = np.asarray(g, dtype=float)
    if np.any(g <= 0) or not np.all(np.isfinite(g)):
        raise ValueError("values must be finite and positive to fit a power law")
    xc = x - x.mean()

    def slope(mean: np.ndarray) -> np.ndarray:
        ly = np.log(mean)
        return ((ly - ly.mean(axis=-1, keepdims=True)) * xc).sum(-1) / (xc * xc).sum()

    idx = generator.integers(0, g.shape[1], size=(n_boot, g.shape[1]))
    boots = slope(np.stack([g[:, i].mean(axis=1) for i in idx]))
    return {"slope": float(slope(g.mean(axis=1))), "ci": np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]),
            "mean": g.mean(axis=1)}
