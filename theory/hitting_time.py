"""Hitting times of PolyStep on piecewise-constant (staircase) losses, and the ES/SPSA contrast.

Provenance. The abstract says the analysis is "extended to the piecewise-constant regime via a
hitting-time bound"; the bound itself (its dependence on dimension, radius and vertex count)
could not be read (paper/polystep_reconstruction.md §3.4, tagged [U]). The version checked here is
the hypothesis stated there:

* on a staircase, the number of steps ``tau`` until the level first decreases is (dominated by) a
  geometric variable with the one-step hit probability ``p`` of the current state, so
  ``E[tau] p = 1`` (and ``E[tau] <= 1/p``);
* ``p`` is bounded below by a spherical-cap measure: if a strictly lower level contains every point
  ``x + r_s u`` with ``u`` in a cap ``{<u, e> > kappa}`` of the unit sphere, a vertex direction
  ``R u_v`` (marginally uniform for Haar ``R``) falls in it with probability
  ``mu_d(kappa) = 1/2 I_{1 - kappa^2}((d - 1)/2, 1/2)`` (``kappa >= 0``; regularised incomplete beta,
  :func:`cap_measure`), so ``E[tau] <= 1/p_lower`` (:func:`vertex_hit_bounds`);
* ``E[tau]`` grows with ``d_p`` (caps shrink) and falls with ``V`` and with ``r_s / w``;
* two-point ES/SPSA estimates with perturbation ``0.02 w`` are exactly zero (both points on one
  level), so those methods do not move.

Setting (documented choices). ``probe_radius = 2 step_radius`` (the package/paper default ratio
``rho_p = 2 rho_s``) with ``K = 1`` puts the only probe of vertex ``v`` *at* the vertex
``x + r_s R u_v`` (``s_1 = 1/2``), and no jitter, so a vertex's cost is the level it would move to. With
a small temperature (``eps = 0.01`` against integer level gaps: ``exp(-1/eps) ~ 4e-44``) the
barycentre is the average of the lowest-level vertices; for the radial staircase the sub-level set
``{||y|| < m w}`` is a ball, hence convex, so *if any vertex is at a lower level the barycentre is at a
lower level too*: ``p >= P(some vertex lower) >= p_lower``. For a centrally symmetric template
(orthoplex, cube) the pair ``+-R u_1`` gives ``p_lower = min(1, 2 mu)`` (a cap and its antipode are
disjoint for ``mu <= 1/2``); for the simplex ``p_lower = mu``. The union bound ``V mu`` bounds
``P(some vertex lower)`` from above (not ``p``: same-level vertices can average into the lower ball).

Radial symmetry: with Haar rotations the law of a step depends on ``x`` only through ``||x||``.

Baselines (minimal, inline, documented):

* OpenAI-ES two-point (antithetic) estimator without fitness shaping,
  ``g = 1/(2 n sigma) sum_i [f(x + sigma e_i) - f(x - sigma e_i)] e_i``, ``e_i ~ N(0, I)``;
  (with centred-rank shaping, ties would be broken by sort order and the "estimate" would be noise);
* SPSA (Spall 1992), ``g = (f(x + c D) - f(x - c D)) / (2 c) * D^{-1}``, ``D`` Rademacher;
* both update ``x <- x - lr g``.

All functions are pure and deterministic given the ``torch.Generator``; float64 on CPU.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
from scipy.special import betainc

from polystep import functional as psf
from polystep import polytopes

__all__ = [
    "cap_measure",
    "radial_cap_cos",
    "vertex_hit_bounds",
    "hitting_config",
    "radial_start",
    "separable_start",
    "one_step_hit_probability",
    "hitting_times",
    "level_trajectories",
    "geometric_summary",
    "es_gradient",
    "spsa_gradient",
    "run_two_point_baseline",
]


def cap_measure(dim: int, kappa: float) -> float:
    """Normalised surface measure of the cap ``{u in S^{d-1}: <u, e> > kappa}``.

    ``1/2 I_{1-kappa^2}((d-1)/2, 1/2)`` for ``kappa in [0, 1]``, ``1 -`` that for ``kappa in [-1, 0)``,
    ``0`` above 1 and ``1`` below -1 (``d >= 2``). ``d = 2``: ``arccos(kappa)/pi``; ``d = 3``:
    ``(1 - kappa)/2`` (Archimedes).
    """
    if dim < 2:
        raise ValueError(f"dim must be >= 2, got {dim}")
    if kappa >= 1.0:
        return 0.0
    if kappa <= -1.0:
        return 1.0
    half = 0.5 * float(betainc((dim - 1) / 2.0, 0.5, 1.0 - kappa * kappa))
    return half if kappa >= 0 else 1.0 - half


def radial_cap_cos(rho: float, radius: float, r: float) -> float:
    """``kappa`` such that ``||x + r u|| < radius`` iff ``<u, -x/||x||> > kappa`` (``||x|| = rho``):
    ``kappa = (rho^2 + r^2 - radius^2) / (2 r rho)``."""
    return (rho * rho + r * r - radius * radius) / (2.0 * r * rho)


def vertex_hit_bounds(kind: str, dim: int, rho: float, w: float, level: int, r_s: float) -> dict[str, float]:
    """Analytic bounds for the radial staircase ``floor(||x||/w)`` at ``||x|| = rho`` (level ``level``).

    Returns ``kappa``, ``mu`` (cap measure of the directions whose vertex lies in the lower ball
    ``||y|| < level w``), ``p_lower`` (``min(1, 2 mu)`` for centrally symmetric templates, ``mu`` for
    the simplex: a lower bound of the one-step hit probability, see the module docstring) and
    ``p_vertex_upper`` (``min(1, V mu)``, union bound on ``P(some vertex lower)``).
    """
    kappa = radial_cap_cos(rho, level * w, r_s)
    mu = cap_measure(dim, kappa)
    v = polytopes.num_vertices(kind, dim)
    symmetric = kind in ("orthoplex", "cube")
    p_lower = min(1.0, 2.0 * mu) if symmetric else mu
    return {"kappa": kappa, "mu": mu, "p_lower": p_lower, "p_vertex_upper": min(1.0, v * mu), "V": v}


def hitting_config(kind: str, r_s: float, eps: float = 0.01) -> psf.PolyStepConfig:
    """PolyStep config of the hitting-time checks: probes at the vertices (``r_p = 2 r_s``, ``K = 1``),
    absolute constant radii, no jitter, softmax at temperature ``eps``."""
    return psf.PolyStepConfig(polytope=kind, eps=eps, step_radius=r_s, probe_radius=2.0 * r_s,
                            radius_mode="absolute", num_probes=1, probe_jitter=0.0)


def radial_start(dim: int, level: int, w: float, beta: float) -> torch.Tensor:
    """The state ``x0 = (level + beta) w e_1`` of level ``level`` of ``floor(||x||/w)`` (``0 < beta < 1``)."""
    x = torch.zeros(dim, dtype=torch.float64)
    x[0] = (level + beta) * w
    return x


def separable_start(dim: int, level: int, w: float, beta: float) -> torch.Tensor:
    """A state of level ``level`` of ``sum_i floor(|x_i|/w)``: floors ``k_i`` as equal as possible
    (``sum k_i = level``), ``x_i = (k_i + beta) w``."""
    k = np.full(dim, level // dim)
    k[: level % dim] += 1
    return torch.as_tensor((k + beta) * w, dtype=torch.float64)


def one_step_hit_probability(objective: Callable, x0: torch.Tensor, config: psf.PolyStepConfig, n: int,
                             generator: torch.Generator, *, chunk: int = 4096) -> dict[str, float]:
    """Monte-Carlo probability that one PolyStep step from ``x0`` lands on a strictly lower level.

    Returns ``p_hat``, its standard error ``se``, ``p_vertex`` (fraction of draws where some vertex
    -- equivalently, here, some probe -- is on a lower level) and ``n``.
    """
    lvl0 = float(objective(x0))
    hits = vert = 0
    done = 0
    while done < n:
        m = min(chunk, n - done)
        x = x0.expand(m, -1).clone()
        prop = psf.propose(x, psf.init(), config, generator)
        costs = objective(prop.probes)
        x1, _, _ = psf.update(x, prop, costs, psf.init(), config)
        hits += int((objective(x1) < lvl0).sum())
        vert += int((costs.min(dim=1).values < lvl0).sum())
        done += m
    p = hits / n
    return {"p_hat": p, "se": math.sqrt(max(p * (1 - p), 1.0 / n) / n), "p_vertex": vert / n, "n": n}


def hitting_times(objective: Callable, x0: torch.Tensor, config: psf.PolyStepConfig, n_runs: int,
                  max_steps: int, generator: torch.Generator) -> dict[str, np.ndarray]:
    """Steps ``tau`` until the level first drops below ``objective(x0)``, for ``n_runs`` chains.

    All chains start at ``x0`` and run as independent particles of one PolyStep batch; a chain leaves
    the batch when it hits. Chains still at the start level after ``max_steps`` are censored
    (``tau = max_steps + 1``, ``censored = True``).

    Returns ``tau`` (int64 ``[n_runs]``), ``censored`` (bool), ``moved`` (fraction of non-hitting steps
    in which the iterate moved by more than ``1e-9 r_s``, i.e. the state changed within the level;
    smaller displacements are the rounding of ``sum_v u_v = 0`` under uniform weights).
    """
    lvl0 = float(objective(x0))
    x = x0.expand(n_runs, -1).clone()
    alive = torch.arange(n_runs)
    tau = np.full(n_runs, max_steps + 1, dtype=np.int64)
    state = psf.init()
    moved = idle = 0
    for t in range(1, max_steps + 1):
        if alive.numel() == 0:
            break
        x_new, state, _ = psf.step(x, objective, state, config, generator)
        hit = objective(x_new) < lvl0
        stay = ~hit
        idle += int(stay.sum())
        moved += int((stay & ((x_new - x).norm(dim=1) > 1e-9 * config_step(config))).sum())
        tau[alive[hit].numpy()] = t
        alive, x = alive[stay], x_new[stay]
    return {"tau": tau, "censored": tau > max_steps, "moved": moved / idle if idle else 0.0}


def config_step(config: psf.PolyStepConfig) -> float:
    """The (constant) step radius of a hitting-time config (moves below ``1e-9 r_s`` are rounding)."""
    return config.resolve(0)[1]


def level_trajectories(objective: Callable, x0: torch.Tensor, config: psf.PolyStepConfig, n_runs: int,
                       steps: int, generator: torch.Generator) -> np.ndarray:
    """Levels ``objective(x_t)`` of ``n_runs`` PolyStep chains from ``x0``, ``[steps + 1, n_runs]``."""
    x = x0.expand(n_runs, -1).clone()
    state = psf.init()
    out = np.empty((steps + 1, n_runs))
    out[0] = objective(x).numpy()
    for t in range(steps):
        x, state, _ = psf.step(x, objective, state, config, generator)
        out[t + 1] = objective(x).numpy()
    return out


def geometric_summary(tau: np.ndarray, p_hat: float, p_se: float) -> dict[str, float]:
    """``E[tau]``, its standard error, ``E[tau] p_hat`` with a delta-method standard error, and the
    chi-square goodness-of-fit p-value of ``tau`` against ``Geometric(p_hat)`` (bins with expected
    count >= 5, tail pooled)."""
    from scipy import stats

    tau = np.asarray(tau, dtype=np.float64)
    n = len(tau)
    m = float(tau.mean())
    se_m = float(tau.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    prod = m * p_hat
    se_prod = prod * math.sqrt((se_m / m) ** 2 + (p_se / p_hat) ** 2) if p_hat > 0 else math.nan
    gof = math.nan
    if 0 < p_hat < 1:
        kmax = int(tau.max())
        ks = np.arange(1, kmax + 1)
        pmf = p_hat * (1 - p_hat) ** (ks - 1)
        exp_counts = n * pmf
        obs = np.array([(tau == k).sum() for k in ks], dtype=float)
        # pool the tail so that every bin has expected count >= 5
        last = max(1, int(np.searchsorted(-exp_counts, -5.0)))
        e = np.append(exp_counts[:last], n - exp_counts[:last].sum())
        o = np.append(obs[:last], n - obs[:last].sum())
        keep = e > 0
        if keep.sum() >= 2:
            chi = float(((o[keep] - e[keep]) ** 2 / e[keep]).sum())
            gof = float(stats.chi2.sf(chi, keep.sum() - 1))
    return {"mean_tau": m, "se_tau": se_m, "product": prod, "se_product": se_prod, "gof_p": gof}


def es_gradient(f: Callable, x: torch.Tensor, sigma: float, n_pairs: int, generator: torch.Generator) -> torch.Tensor:
    """OpenAI-ES antithetic estimate ``1/(2 n sigma) sum_i [f(x + sigma e_i) - f(x - sigma e_i)] e_i``
    (no fitness shaping)."""
    e = torch.randn(n_pairs, x.shape[-1], generator=generator, dtype=torch.float64)
    diff = f(x + sigma * e) - f(x - sigma * e)
    return (diff[:, None] * e).sum(0) / (2.0 * n_pairs * sigma)


def spsa_gradient(f: Callable, x: torch.Tensor, c: float, generator: torch.Generator) -> torch.Tensor:
    """SPSA estimate ``(f(x + c D) - f(x - c D)) / (2 c) * D^{-1}`` with Rademacher ``D``."""
    delta = torch.randint(0, 2, (x.shape[-1],), generator=generator).to(torch.float64) * 2.0 - 1.0
    diff = f(x + c * delta) - f(x - c * delta)
    return diff / (2.0 * c) / delta


def run_two_point_baseline(method: str, f: Callable, x0: torch.Tensor, iters: int, perturbation: float,
                           lr: float, generator: torch.Generator, *, n_pairs: int = 8) -> dict[str, Any]:
    """Run ES (``method="es"``, ``sigma = perturbation``) or SPSA (``"spsa"``, ``c = perturbation``).

    Returns ``zero_fraction`` (iterations whose estimate is exactly the zero vector),
    ``level_changes`` (iterations where ``f`` changed), ``start_level``, ``final_level``,
    ``evals`` (function evaluations), ``levels`` (``f`` after each iteration, ``[iters + 1]``).
    """
    if method not in ("es", "spsa"):
        raise ValueError(f"method must be 'es' or 'spsa', got {method!r}")
    x = x0.clone()
    lvl = float(f(x))
    start = lvl
    zeros = changes = 0
    levels = np.empty(iters + 1)
    levels[0] = lvl
    for i in range(iters):
        g = es_gradient(f, x, perturbation, n_pairs, generator) if method == "es" else \
            spsa_gradient(f, x, perturbation, generator)
        if bool((g == 0).all()):
            zeros += 1
        x = x - lr * g
        new = float(f(x))
        if new != lvl:
            changes += 1
        lvl = new
        levels[i + 1] = lvl
    evals = iters * (2 * n_pairs if method == "es" else 2)
    return {"zero_fraction": zeros / iters, "level_changes": changes, "start_level": start,
            "final_level": lvl, "evals": evals, "levels": levels}
