"""Theorem 4.2 (convergence rate O(log T / sqrt T)), as reconstructed: PolyStep runs and rate fits.

Provenance. The paper's abstract states "convergence to conservative-stationary points at rate
O(log T/sqrt T) on piecewise-smooth losses"; code comments cite a "Theorem 4.2 condition (iv)"
(probe-radius jitter ``eta_max > 0``). Conditions (i)-(iii), the stationarity measure, the schedules
and the constants could not be read (paper/polystep_reconstruction.md §3.2, tagged [U]).

Version checked here (the "most plausible reading" of paper/polystep_reconstruction.md §3.2, checks 1, 2 and 4):

* PolyStep (:func:`polystep.functional.step`, softmax solver, orthoplex, ``K = 1``) on independent
  particles (``d_p = D``) or on block particles (``D / d_p`` particles of ``d_p = 8``, the optimizer's
  block-coordinate costs), with ``r_s(t) = r_p(t) = r0 / sqrt(t + 1)`` (``InverseSqrt`` schedules,
  ``radius_mode="absolute"``), a **fixed** temperature ``eps`` and jitter ``eta_max = 0.05``;
* measure ``g_T = min_{t <= T} ||grad L(x_t)||`` on smooth losses, and on piecewise-smooth losses
  ``g_T = min_{t <= T} G_{delta_t}(x_t)``, the Goldstein measure (:mod:`theory.stationarity`) with
  ``delta_t = r_p(t)``;
* claim: ``g_T = O(log T / sqrt T)`` -- tested by the log-log slope of ``E g_T`` against ``T`` (bootstrap
  CI over seeds) and by the envelope ratio ``g_T sqrt(T) / log T`` over the ``T`` grid;
* ablation (check 4): constant radii ``r_s = r_p = r`` -- the reconstruction expects a plateau at ``O(r)``.

Derived prediction [D] used to read the results. For small cost differences (``r_p ||grad L|| << eps``)
the softmax weights are linear in the costs and the orthoplex step is *exactly* a gradient step in
expectation-free form (paper/polystep_reconstruction.md §2.14)::

    x' - x = -(r_s r_p / (2 d_p eps)) grad L(x) + O(r^3 / eps^3) + O(r^2 r_p^2 / eps)

so with ``r_s = r_p = r0/sqrt(t+1)`` and fixed ``eps`` PolyStep is gradient descent with step
``eta_t = r0^2 / (2 d_p eps (t + 1))`` -- a ``1/t`` step, not ``1/sqrt t``. Near a minimiser with
Hessian eigenvalue ``lambda_min`` this gives ``||grad L(x_t)|| ~ t^{-c}`` with
``c = lambda_min r0^2 / (2 d_p eps)`` (:func:`linear_regime_exponent`): faster than ``T^{-1/2}`` when
``c > 1/2`` and slower when ``c < 1/2``. With constant radii the same step is GD with the constant
step ``r^2 / (2 d_p eps)``, which converges linearly when stable; the ``O(r)`` plateau belongs to the
direct-search (small ``eps``, argmin-like) regime where every step moves the full ``r_s``.

Implementation note (batching). To keep runs cheap, all problems that share a particle dimension
and a schedule *shape* run in **one** :func:`polystep.functional.step` call per iteration. A
problem with radius scale ``r0`` and temperature ``eps`` is run in the rescaled coordinates
``y = x / r0`` on the objective ``f(r0 y) / eps`` with base ``r0 = 1``, ``eps = 1``: probes
``y + s r u`` map to ``x + s r0 r u`` and the softmax of ``-f/eps`` is unchanged, so the iterates are
those of the original problem (mathematically exactly; floating-point rounding differs). The one
shared random quantity is the jitter ``eta_t``: :func:`polystep.functional.propose` draws one
``eta_t`` per step for all particles, so seeds batched together share the ``+-5 %`` probe-radius
factor (rotations are independent per particle).

All functions are pure and deterministic given the ``torch.Generator``; float64 on CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from polystep import functional as psf
from polystep.schedules import Constant, InverseSqrt

from .stationarity import goldstein_measures

__all__ = [
    "RateProblem",
    "linear_regime_exponent",
    "fit_grid",
    "record_grid",
    "run_rates",
    "fit_rate",
    "envelope_stats",
    "plateau_stats",
    "probe_law_sample",
    "rotation_haar_stats",
]

SCHEDULES = ("inverse_sqrt", "constant")


@dataclass(frozen=True)
class RateProblem:
    """One objective run from ``seeds`` random starts.

    Attributes:
        name: label used in the results.
        objective: a :class:`theory.objectives.Objective` on ``R^dim`` with ``grad``.
        dim: ``D``.
        particle_dim: ``d_p`` (``D % d_p == 0``; ``d_p < D`` means block particles).
        r0: radius scale (``r_s = r_p = r0 / sqrt(t+1)``, or ``r0`` for constant radii).
        eps: fixed temperature.
        measure: ``"grad"`` (``||grad L||``) or ``"goldstein"`` (Goldstein measure, ``delta = r_p(t)``).
        x0_center: centre of the random starts ``x0 = x0_center + x0_scale * N(0, I)``.
        x0_scale: spread of the random starts.
        hessian_min_eig: ``lambda_min`` of the Hessian at the minimiser (for the linear-regime
            exponent; ``nan`` if unknown or nonsmooth).
    """

    name: str
    objective: Any
    dim: int
    particle_dim: int
    r0: float
    eps: float
    measure: str = "grad"
    x0_center: float = 0.0
    x0_scale: float = 1.0
    hessian_min_eig: float = math.nan

    def __post_init__(self) -> None:
        if self.dim % self.particle_dim:
            raise ValueError(f"{self.name}: dim {self.dim} is not a multiple of particle_dim {self.particle_dim}")
        if self.measure not in ("grad", "goldstein"):
            raise ValueError(f"{self.name}: measure must be 'grad' or 'goldstein', got {self.measure!r}")
        if not (self.r0 > 0 and self.eps > 0):
            raise ValueError(f"{self.name}: r0 and eps must be > 0")

    @property
    def num_particles(self) -> int:
        return self.dim // self.particle_dim

    @property
    def exponent(self) -> float:
        """Linear-regime exponent ``c`` of ``||grad L(x_t)|| ~ t^{-c}`` (decaying radii)."""
        return linear_regime_exponent(self.hessian_min_eig, self.r0, self.eps, self.particle_dim)


def linear_regime_exponent(lambda_min: float, r0: float, eps: float, particle_dim: int) -> float:
    """``c = lambda_min r0^2 / (2 d_p eps)``: PolyStep with ``r_s = r_p = r0/sqrt(t+1)`` and fixed
    ``eps`` is, once ``r_p ||grad L|| << eps``, gradient descent with step ``r0^2/(2 d_p eps (t+1))``,
    whose error near a minimiser decays like ``t^{-c}`` along the slowest eigendirection."""
    return float(lambda_min) * r0 * r0 / (2.0 * particle_dim * eps)


def fit_grid(t_min: int, t_max: int, per_decade: int) -> np.ndarray:
    """Log-spaced integer horizons ``T`` from ``t_min`` to ``t_max`` (``per_decade`` points a decade)."""
    n = int(round(per_decade * math.log10(t_max / t_min))) + 1
    return np.unique(np.round(np.logspace(math.log10(t_min), math.log10(t_max), n)).astype(int))


def record_grid(t_max: int, n: int, extra: Sequence[int] = ()) -> np.ndarray:
    """Steps at which iterates are recorded: ``n`` log-spaced steps in ``[1, t_max]`` plus ``extra``."""
    base = np.round(np.logspace(0, math.log10(t_max), n)).astype(int)
    return np.unique(np.concatenate([base, np.asarray(extra, dtype=int), [t_max]]))


def _block_candidates(x_rows: torch.Tensor, probes: torch.Tensor, runs: int, nparts: int) -> torch.Tensor:
    """Full vectors of the candidates: ``x`` with only particle ``i`` moved to its probe.

    ``x_rows``: ``[R * P, d]`` (run-major), ``probes``: ``[R * P, M, d]`` -> ``[R, P, M, D]``.
    """
    d = x_rows.shape[1]
    m = probes.shape[1]
    dim = nparts * d
    base = x_rows.reshape(runs, 1, 1, dim).expand(runs, nparts, m, dim).clone()
    base = base.reshape(runs, nparts, m, nparts, d)
    idx = torch.arange(nparts)
    base[:, idx, :, idx, :] = probes.reshape(runs, nparts, m, d).permute(1, 0, 2, 3)
    return base.reshape(runs, nparts, m, dim)


def run_rates(problems: Sequence[RateProblem], *, steps: int, seeds: int, generator: torch.Generator,
              schedule: str = "inverse_sqrt", jitter: float = 0.05, polytope: str = "orthoplex",
              record: Sequence[int] | None = None, goldstein_samples: int | None = None,
              tail_fraction: float = 0.2, keep_iterates: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Run PolyStep on every problem (``seeds`` starts each) for ``steps`` steps, in one batch.

    Problems with the same objective object, dimension and measure form one group whose runs
    (``seeds`` per problem, each with its own ``r0`` and ``eps``) are evaluated by one call of the
    objective per step (module docstring, "batching").

    Args:
        problems: problems sharing one ``particle_dim`` (unique names).
        steps: ``T``.
        seeds: independent starts per problem.
        generator: CPU generator (starts first, in problem order, then the steps, then the Goldstein
            samples).
        schedule: ``"inverse_sqrt"`` (``r0/sqrt(t+1)``) or ``"constant"`` (``r0``).
        jitter: ``eta_max``.
        polytope: vertex template.
        record: steps (``1..steps``) at which the measure is recorded (Goldstein problems are only
            measured there; default :func:`record_grid` with 120 points).
        goldstein_samples: sampled gradients per Goldstein estimate (default ``4 D``).
        tail_fraction: the last fraction of steps averaged in ``tail_mean``.
        keep_iterates: also return the recorded iterates ``x_record`` (``[n_rec, S, D]``).

    Returns:
        ``{name: {...}}`` with float64 arrays: ``record`` (steps), ``delta`` (``r_p(t)`` at the
        recorded steps, pre-jitter), ``value`` (the measure at the recorded iterates, ``[n_rec, S]``),
        ``running_min`` (``min_{t' <= t}`` of the measure, ``[n_rec, S]``; for ``grad`` problems the
        minimum over *every* step, for ``goldstein`` problems over the recorded steps),
        ``tail_mean`` (mean ``||grad L||`` over the last ``tail_fraction`` of the steps, ``[S]``),
        ``x_final`` (``[S, D]``), ``f_final`` (``[S]``).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    dps = {p.particle_dim for p in problems}
    if len(dps) != 1:
        raise ValueError(f"all problems must share one particle_dim, got {sorted(dps)}")
    names = [p.name for p in problems]
    if len(set(names)) != len(names):
        raise ValueError("problem names must be unique")
    dp = dps.pop()
    rec = record_grid(steps, 120) if record is None else np.unique(np.asarray(record, dtype=int))
    if rec.min() < 1 or rec.max() > steps:
        raise ValueError("record steps must lie in [1, steps]")
    rec_set = {int(t): i for i, t in enumerate(rec)}
    sched = InverseSqrt(start=1.0) if schedule == "inverse_sqrt" else Constant(value=1.0)
    cfg = psf.PolyStepConfig(polytope=polytope, eps=1.0, step_radius=sched, probe_radius=sched,
                           radius_mode="absolute", probe_jitter=jitter)

    # groups of problems sharing (objective, dim, measure); runs = seeds of every member problem
    keys: list[tuple] = []
    members: dict[tuple, list[int]] = {}
    for k, p in enumerate(problems):
        key = (id(p.objective), p.dim, p.measure)
        if key not in members:
            keys.append(key)
            members[key] = []
        members[key].append(k)
    x0s = [p.x0_center + p.x0_scale * torch.randn(seeds, p.dim, generator=generator, dtype=torch.float64)
           for p in problems]
    groups = []
    rows, start = [], 0
    for key in keys:
        ks = members[key]
        p0 = problems[ks[0]]
        r0 = torch.cat([torch.full((seeds,), problems[k].r0, dtype=torch.float64) for k in ks])
        eps = torch.cat([torch.full((seeds,), problems[k].eps, dtype=torch.float64) for k in ks])
        runs = len(ks) * seeds
        y0 = torch.cat([x0s[k] for k in ks]) / r0[:, None]
        rows.append(y0.reshape(runs * p0.num_particles, dp))
        n_rows = runs * p0.num_particles
        groups.append({"members": ks, "objective": p0.objective, "dim": p0.dim, "nparts": p0.num_particles,
                       "measure": p0.measure, "runs": runs, "r0": r0, "eps": eps,
                       "r0_rows": r0.repeat_interleave(p0.num_particles),
                       "eps_rows": eps.repeat_interleave(p0.num_particles),
                       "rows": slice(start, start + n_rows)})
        start += n_rows
    y = torch.cat(rows)

    def full_x(y_all: torch.Tensor, g: dict) -> torch.Tensor:
        return y_all[g["rows"]].reshape(g["runs"], g["dim"]) * g["r0"][:, None]

    def cost_fn(probes: torch.Tensor) -> torch.Tensor:
        out = []
        for g in groups:
            pr = probes[g["rows"]] * g["r0_rows"][:, None, None]
            if g["nparts"] == 1:
                val = g["objective"](pr)
            else:
                cand = _block_candidates(y[g["rows"]] * g["r0_rows"][:, None], pr, g["runs"], g["nparts"])
                val = g["objective"](cand).reshape(g["runs"] * g["nparts"], -1)
            out.append(val / g["eps_rows"][:, None])
        return torch.cat(out)

    n_rec = len(rec)
    value = {p.name: np.empty((n_rec, seeds)) for p in problems}
    run_min = {p.name: np.empty((n_rec, seeds)) for p in problems}
    xs_rec = {id(g["rows"]): np.empty((n_rec, g["runs"], g["dim"])) for g in groups
              if g["measure"] == "goldstein" or keep_iterates}
    cur_min = [np.full(g["runs"], np.inf) for g in groups]
    tail_sum = [np.zeros(g["runs"]) for g in groups]
    tail_start = steps - max(1, int(round(tail_fraction * steps)))
    state = psf.init()
    for t in range(steps):
        y, state, _ = psf.step(y, cost_fn, state, cfg, generator)
        i_rec = rec_set.get(t + 1)
        for j, g in enumerate(groups):
            x = full_x(y, g)
            gn = g["objective"].grad(x).norm(dim=-1).numpy()
            if t >= tail_start:
                tail_sum[j] += gn
            if g["measure"] == "grad":
                np.minimum(cur_min[j], gn, out=cur_min[j])
                if i_rec is not None:
                    for m, k in enumerate(g["members"]):
                        sl = slice(m * seeds, (m + 1) * seeds)
                        value[problems[k].name][i_rec] = gn[sl]
                        run_min[problems[k].name][i_rec] = cur_min[j][sl]
            if i_rec is not None and id(g["rows"]) in xs_rec:
                xs_rec[id(g["rows"])][i_rec] = x.numpy()

    out: dict[str, dict[str, np.ndarray]] = {}
    n_tail = steps - tail_start
    for j, g in enumerate(groups):
        x_final = full_x(y, g)
        f_final = g["objective"](x_final).numpy()
        for m, k in enumerate(g["members"]):
            p = problems[k]
            sl = slice(m * seeds, (m + 1) * seeds)
            delta = np.array([p.r0 * sched(int(t)) for t in rec])  # r_p at the recorded iterate x_t
            if g["measure"] == "goldstein":
                xs = torch.from_numpy(np.ascontiguousarray(xs_rec[id(g["rows"])][:, sl]).reshape(-1, p.dim))
                vals = goldstein_measures(p.objective.grad, xs, np.repeat(delta, seeds), generator,
                                          num_samples=goldstein_samples).reshape(n_rec, seeds)
                value[p.name] = vals
                run_min[p.name] = np.minimum.accumulate(vals, axis=0)
            out[p.name] = {
                "record": rec.astype(np.int64), "delta": delta, "value": value[p.name],
                "running_min": run_min[p.name], "tail_mean": tail_sum[j][sl] / n_tail,
                "x_final": x_final[sl].numpy(), "f_final": f_final[sl],
            }
            if keep_iterates:
                out[p.name]["x_record"] = np.ascontiguousarray(xs_rec[id(g["rows"])][:, sl])
    return {p.name: out[p.name] for p in problems}


def _lstsq_slopes(logt: np.ndarray, logg: np.ndarray) -> np.ndarray:
    """Least-squares slopes of ``logg[..., j]`` against ``logt[j]`` along the last axis."""
    tc = logt - logt.mean()
    return ((logg - logg.mean(axis=-1, keepdims=True)) * tc).sum(-1) / (tc * tc).sum()


def fit_rate(T: np.ndarray, g_by_seed: np.ndarray, generator: np.random.Generator, *, n_boot: int = 2000,
             level: float = 0.95, floor: float = 1e-12) -> dict[str, Any]:
    """Log-log slope of the seed mean of ``g_T`` against ``T`` with a bootstrap CI over seeds.

    Args:
        T: horizons ``[n_T]``.
        g_by_seed: ``g_T`` per seed, ``[n_T, S]``.
        generator: NumPy generator of the bootstrap resamples.
        n_boot: bootstrap resamples (seeds drawn with replacement).
        level: two-sided confidence level.
        floor: horizons whose mean ``g_T`` is below ``floor`` (rounding level) are left out of the fit.

    Returns:
        ``slope``, ``ci`` (``[lo, hi]``), ``mean`` (``[n_T]``), ``used`` (mask of fitted horizons),
        ``intercept`` (of ``log g = intercept + slope log T``).
    """
    T = np.asarray(T, dtype=np.float64)
    g = np.asarray(g_by_seed, dtype=np.float64)
    mean = g.mean(axis=1)
    used = mean > floor
    if used.sum() < 3:
        return {"slope": math.nan, "ci": np.array([math.nan, math.nan]), "mean": mean, "used": used,
                "intercept": math.nan}
    lt = np.log(T[used])
    slope, intercept = np.polyfit(lt, np.log(mean[used]), 1)
    s = g.shape[1]
    idx = generator.integers(0, s, size=(n_boot, s))
    boot_mean = g[used][:, idx].mean(axis=2).T  # [n_boot, n_used]
    boot = _lstsq_slopes(lt, np.log(np.maximum(boot_mean, floor)))
    a = (1 - level) / 2
    return {"slope": float(slope), "ci": np.quantile(boot, [a, 1 - a]), "mean": mean, "used": used,
            "intercept": float(intercept)}


def envelope_stats(T: np.ndarray, mean_g: np.ndarray) -> dict[str, Any]:
    """The envelope ratio ``rho(T) = g_T sqrt(T) / log T`` over the grid.

    Returns ``ratio`` (``[n_T]``), ``max_over_min`` (two-sided constancy: the claim's "max/min < 5"),
    and ``growth`` = ``max_T rho(T) / rho(T_0)`` (the upper-bound reading ``g_T <= C log T/sqrt T``:
    the ratio must not grow).
    """
    T = np.asarray(T, dtype=np.float64)
    ratio = np.asarray(mean_g, dtype=np.float64) * np.sqrt(T) / np.log(T)
    pos = ratio[ratio > 0]
    mom = float(pos.max() / pos.min()) if len(pos) else math.inf
    return {"ratio": ratio, "max_over_min": mom, "growth": float(ratio.max() / ratio[0]) if ratio[0] > 0 else math.inf}


def plateau_stats(record: np.ndarray, value: np.ndarray, tail_mean: np.ndarray,
                  window: float = 10.0) -> dict[str, float]:
    """Late behaviour of a constant-radius run.

    Args:
        record: recorded steps ``[n_rec]``.
        value: the measure at the recorded iterates, ``[n_rec, S]``.
        tail_mean: per-seed mean of ``||grad L||`` over the last steps, ``[S]``.
        window: the tail is the last ``window``-fold range of recorded steps.

    Returns:
        ``tail_slope``: log-log slope of the seed mean of ``value`` over the tail (``~0`` on a
        plateau; a running minimum would keep creeping down on a stationary noisy plateau, so the
        raw value is used); ``plateau``: seed mean of ``tail_mean``; ``final``: seed mean of
        ``value`` at the last recorded step; ``first``: the same at the first recorded step.
    """
    record = np.asarray(record, dtype=np.float64)
    mean = np.asarray(value, dtype=np.float64).mean(axis=1)
    sel = record >= record[-1] / window
    ok = sel & (mean > 0)
    slope = float(np.polyfit(np.log(record[ok]), np.log(mean[ok]), 1)[0]) if ok.sum() >= 3 else math.nan
    return {"tail_slope": slope, "plateau": float(np.mean(tail_mean)), "final": float(mean[-1]),
            "first": float(mean[0])}


def probe_law_sample(n: int, dim: int, r: float, eta_max: float, generator: torch.Generator,
                     polytope: str = "orthoplex") -> dict[str, np.ndarray]:
    """Draw ``n`` proposals of one particle at the origin and return the probe law's ingredients.

    Returns ``factor`` = ``r_p / r`` (the jitter ``1 + eta_t``), ``rotations`` ``[n, d, d]`` (recovered
    from the orthoplex directions ``R e_j = directions[2j]``), and ``probe_norm`` (``||p - x||`` of
    the first probe, ``= s_1 r (1 + eta_t)``).
    """
    cfg = psf.PolyStepConfig(polytope=polytope, eps=1.0, step_radius=r, probe_radius=r,
                           radius_mode="absolute", probe_jitter=eta_max)
    x = torch.zeros(1, dim, dtype=torch.float64)
    state = psf.init()
    fac, rots, pn = np.empty(n), np.empty((n, dim, dim)), np.empty(n)
    for i in range(n):
        prop = psf.propose(x, state, cfg, generator)
        fac[i] = prop.probe_radius / r
        if polytope == "orthoplex":
            rots[i] = prop.directions[0, 0::2, :].T.numpy()  # columns R e_j
        pn[i] = float(prop.probes[0, 0].norm())
    return {"factor": fac, "rotations": rots, "probe_norm": pn}


def rotation_haar_stats(rotations: np.ndarray) -> dict[str, Any]:
    """Moments and tests of Haar(SO(d)) for rotations ``[n, d, d]``.

    ``max_abs_mean`` (``E R = 0``), ``r11_sq_mean`` (``E R_11^2 = 1/d``), ``det_err``
    (``max |det R - 1|``), ``orth_err`` (``max |R^T R - I|``), ``ks_p`` (KS test of ``R_11^2`` against
    ``Beta(1/2, (d-1)/2)``, the law of a squared coordinate of a uniform unit vector).
    """
    from scipy import stats

    n, d, _ = rotations.shape
    eye = np.eye(d)
    r11 = rotations[:, 0, 0] ** 2
    return {
        "max_abs_mean": float(np.abs(rotations.mean(axis=0)).max()),
        "r11_sq_mean": float(r11.mean()),
        "det_err": float(np.abs(np.linalg.det(rotations) - 1.0).max()),
        "orth_err": float(np.abs(np.einsum("nji,njk->nik", rotations, rotations) - eye).max()),
        "ks_p": float(stats.kstest(r11, stats.beta(0.5, (d - 1) / 2).cdf).pvalue),
    }
