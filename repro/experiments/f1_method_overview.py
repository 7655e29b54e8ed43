r"""Figure F1 (method overview): the barycentric step and its temperature limits, checked on the step.

The figure draws one PolyStep step (paper Eq. 7; paper/polystep_reconstruction.md §2.8, §2.14):
particle ``x_i`` probes the rotated orthoplex ``R_i u_v`` (V = 2 d_p vertices), the probe costs
``C_iv`` give the weights ``W_iv = softmax_v(-C_iv / eps)`` (the one-sided limit of Theorem 4.1),
and the particle moves to the barycentre

    x_i' = x_i + r_s R_i sum_v W_iv u_v .

Two of the figure's statements are checked here on :func:`polystep.functional.step` itself (float64,
orthoplex, ``K = 1``, so the probes sit at ``s_1 r_p = r_p / 2``; the figure's probe distance
``r_p eps`` and its KL bound are audited elsewhere: ``protocol_audit`` and
``thm41_one_sided_limit``):

* ``f1_barycentric_within_radius``: ``||x_i' - x_i|| <= r_s`` (a convex combination of unit
  vectors), over random cost oracles, temperatures from ``1e-8`` to ``1e8`` and both radius modes;
  the value is ``max ||x_i' - x_i|| / r_s`` (``r_s`` the resolved radius of the step).
* ``f1_temperature_limits``: as ``eps -> 0`` the step is the greedy orthogonal poll
  ``x_i + r_s R_i u_{argmin_v C_iv}`` (checked at ``eps = 1e-8``); as ``eps -> inf`` nothing moves
  (``eps = 1e8``); at large ``eps`` the step is the central-difference gradient step

      x_i' - x_i  ~  -(r_s r_p) / (2 d_p eps) grad L(x_i)

  (first order in ``1/eps``: ``W_iv ~ (1 - (C_iv - mean C_i)/eps) / V``, and for the orthoplex the
  pairs ``+-u`` give ``sum_v C_iv R_i u_v = 2 s_1 r_p grad L`` exactly on a quadratic, with
  ``s_1 = 1/2`` and ``V = 2 d_p``), checked on random convex quadratics
  ``L(x) = x^T A x / 2 + b^T x``; radii in ``radius_mode="absolute"`` so that they stay fixed while
  ``eps`` varies.  The value is the relative error of the prediction at the largest ``eps``.

Scales: pure arithmetic on small problems.  ``ci`` draws 4 problems of 64 particles in ``d_p = 8``;
``cpu`` and ``paper`` draw 16 (and add ``d_p = 2, 4`` there); the claims are registered at ``ci``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from polystep import functional as F
from repro.claims import claim, claims_of
from repro.context import RunContext

ID = "f1_method_overview"
TITLE = "Figure F1: the barycentric step moves at most r_s; greedy poll, no move and gradient step as eps varies"
CLAIMS = claims_of(ID)


@dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (8,)
    problems: int = 4
    particles: int = 64
    step_radius: float = 0.1
    probe_radius: float = 0.1
    #: temperatures of the within-radius check (both radius modes)
    sweep_eps: tuple[float, ...] = (1e-8, 1e-4, 1e-2, 1.0, 1e2, 1e4, 1e8)
    greedy_eps: float = 1e-8
    hot_eps: float = 1e8
    gradient_eps: tuple[float, ...] = (10.0, 100.0, 1000.0)
    #: temperatures of the figure's displacement curve (plot only)
    curve_eps: tuple[float, ...] = tuple(float(e) for e in np.logspace(-4, 4, 17))


_LARGER = Config(dims=(2, 4, 8), problems=16)
CONFIGS = {"ci": Config(), "cpu": _LARGER, "paper": _LARGER}  # arithmetic: no paper-sized version


def _quadratic(d: int, gen: torch.Generator):
    """A random convex quadratic ``L(x) = x^T A x / 2 + b^T x`` (eigenvalues of A in [0.5, 2])."""
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    lam = 0.5 + 1.5 * torch.rand(d, generator=gen, dtype=torch.float64)
    A = q @ torch.diag(lam) @ q.T
    b = torch.randn(d, generator=gen, dtype=torch.float64)

    def loss(z: torch.Tensor) -> torch.Tensor:  # z [..., d] -> [...]
        return 0.5 * torch.einsum("...i,ij,...j->...", z, A, z) + z @ b

    def grad(z: torch.Tensor) -> torch.Tensor:
        return z @ A + b

    return loss, grad


def _step(x, loss, eps, cfg: Config, mode: str, gen: torch.Generator):
    conf = F.PolyStepConfig(eps=eps, step_radius=cfg.step_radius, probe_radius=cfg.probe_radius,
                            radius_mode=mode, num_probes=1)
    prop = F.propose(x, F.init(), conf, gen)
    costs = loss(prop.probes)
    new, _, info = F.update(x, prop, costs, F.init(), conf)
    return new, prop, info


def _problem(d: int, k: int, cfg: Config, ctx: RunContext) -> dict:
    gen = ctx.torch_generator("problem", d, k, device="cpu")
    loss, grad = _quadratic(d, gen)
    x = torch.randn(cfg.particles, d, generator=gen, dtype=torch.float64)
    # within the radius: a quadratic oracle and a rough one (uniform noise), every eps, both modes
    within, recomputed = [], []
    for eps in cfg.sweep_eps:
        for mode in ("times_eps", "absolute"):
            for oracle in ("quadratic", "noise"):
                f = loss if oracle == "quadratic" else (lambda z: torch.rand(z.shape[:-1], generator=gen,
                                                                            dtype=torch.float64))
                new, prop, info = _step(x, f, eps, cfg, mode, gen)
                # the move r_s R_i sum_v W_iv u_v as the step computed it (info.displacement): at
                # eps = 1e-8 in times_eps mode r_s = 1e-9 << |x| ~ 1, and ||x' - x|| recomputed from
                # the new particles carries float64 cancellation of ~1e-16 |x| / r_s ~ 1e-7 (kept as
                # evidence, "recomputed")
                within.append(float((info.displacement / prop.step_radius).max()))
                recomputed.append(float(((new - x).norm(dim=1) / prop.step_radius).max()))
    # eps -> 0: the greedy poll
    new, prop, info = _step(x, loss, cfg.greedy_eps, cfg, "absolute", gen)
    best = info.costs.argmin(dim=1)
    target = x + prop.step_radius * prop.directions[torch.arange(len(x)), best]
    greedy_error = float(((new - target).norm(dim=1) / prop.step_radius).max())
    # eps -> inf: no move
    new, prop, _ = _step(x, loss, cfg.hot_eps, cfg, "absolute", gen)
    hot_move = float(((new - x).norm(dim=1) / prop.step_radius).max())
    # large eps: the central-difference gradient step
    cosines, rel = [], []
    for eps in cfg.gradient_eps:
        new, prop, _ = _step(x, loss, eps, cfg, "absolute", gen)
        pred = -(prop.step_radius * prop.probe_radius) / (2 * d * eps) * grad(x)
        move = new - x
        cosines.append(float(torch.nn.functional.cosine_similarity(move, pred, dim=1).min()))
        rel.append(float(((move - pred).norm(dim=1) / pred.norm(dim=1)).max()))
    curve = []
    for eps in cfg.curve_eps:
        new, prop, _ = _step(x, loss, eps, cfg, "absolute", gen)
        curve.append(float(((new - x).norm(dim=1) / prop.step_radius).mean()))
    return {"d": d, "within": np.asarray(within), "within_recomputed": np.asarray(recomputed),
            "greedy_error": greedy_error, "hot_move": hot_move,
            "gradient_cosine": np.asarray(cosines), "gradient_rel_error": np.asarray(rel),
            "curve": np.asarray(curve)}


def run(cfg: Config, ctx: RunContext) -> dict:
    """Every problem in one piece (milliseconds each)."""
    problems = [_problem(d, k, cfg, ctx) for d in cfg.dims for k in range(cfg.problems)]
    return {"problems": problems, "sweep_eps": np.asarray(cfg.sweep_eps),
            "gradient_eps": np.asarray(cfg.gradient_eps), "curve_eps": np.asarray(cfg.curve_eps)}


@claim("polystep.f1_barycentric_within_radius")
def _within_radius(results: dict) -> dict:
    ratios = np.concatenate([p["within"] for p in results["problems"]])
    return {"value": float(ratios.max()),
            "detail": (f"max ||x' - x|| / r_s = {ratios.max():.15f} over {len(results['problems'])} problems x "
                       f"{len(results['sweep_eps'])} temperatures (1e-8 .. 1e8) x 2 radius modes x 2 cost oracles"),
            "evidence": {"n_steps": int(ratios.size), "min_ratio": float(ratios.min()),
                         # ||x' - x|| recomputed from the new particles (float64 cancellation when r_s << |x|)
                         "max_ratio_recomputed": float(np.max([p["within_recomputed"].max()
                                                               for p in results["problems"]]))}}


@claim("polystep.f1_temperature_limits")
def _temperature_limits(results: dict) -> dict:
    ps = results["problems"]
    greedy = max(p["greedy_error"] for p in ps)
    hot = max(p["hot_move"] for p in ps)
    cos = min(float(p["gradient_cosine"].min()) for p in ps)
    rel = np.max(np.stack([p["gradient_rel_error"] for p in ps]), axis=0)  # per eps
    eps = results["gradient_eps"]
    return {"value": float(rel[-1]),
            "detail": (f"eps -> 0: max distance to the greedy vertex {greedy:.2e} r_s; eps -> inf: max move {hot:.2e} r_s; "
                       f"large eps: min cosine with -(r_s r_p)/(2 d_p eps) grad L {cos:.9f}, max relative error "
                       + ", ".join(f"{r:.2e} (eps {e:g})" for e, r in zip(eps, rel))),
            "evidence": {"greedy_max_error": greedy, "hot_max_move": hot, "gradient_min_cosine": cos,
                         "gradient_rel_error_per_eps": [float(r) for r in rel],
                         "gradient_eps": [float(e) for e in eps], "n_problems": len(ps)}}


def plot(results: dict):
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.6))
    eps = results["curve_eps"]
    for p in results["problems"]:
        ax.plot(eps, p["curve"], color="#0072B2", alpha=0.5)
    ax.axhline(1.0, color="0.3", ls="--", lw=0.8)
    ax.set(xscale="log", xlabel="temperature eps", ylabel="mean ||x' - x|| / r_s",
           title="(A) greedy poll (eps -> 0) to no move (eps -> inf)")
    ge = results["gradient_eps"]
    for p in results["problems"]:
        bx.plot(ge, p["gradient_rel_error"], "o-", color="#D55E00", alpha=0.5)
    bx.set(xscale="log", yscale="log", xlabel="temperature eps", ylabel="relative error",
           title="(B) step vs -(r_s r_p)/(2 d_p eps) grad L")
    fig.tight_layout()
    return fig


def summary_lines(results: dict) -> list[str]:
    return [f"  {len(results['problems'])} random problems, d_p in "
            f"{sorted({int(p['d']) for p in results['problems']})}"]
