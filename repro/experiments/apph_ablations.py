"""App H (extended ablations H1, H3-H6) and Table 10 (= H2, full space) of the PolyStep paper, on MNIST.

The questions a user of PolyStep asks before adopting it -- which update rule, which temperature,
which radii, which particle dimension and polytope, which subspace -- answered the paper's way: the
MNIST MLP 784-128-10 trained by PolyStep with one setting changed at a time (paper/polystep_reconstruction.md
§4 "App H"; best test %):

* **H1 update rule** (rank 8, ``d_p`` 8, eps cosine 3 -> 0.1, ``rho_s`` 8, ``rho_p`` 1, K 3): entropic
  OT (Sinkhorn, 50 iterations) 96.42, softmax 96.41, min-cost greedy 12.76, top-3 mean 11.66 --
  softmax = OT in subspace mode, hard assignments collapse;
* **Table 10** (full space, ``P = 50,885`` particles of ``d_p = 2``, ``V = 4``, 3 epochs, eps 3 -> 0.1,
  ``rho_s`` 8, ``rho_p`` 1): entropic OT 57.57 vs softmax 34.61 -- "P >> V => OT helps";
* **H3 eps grid** (rank 4, ``rho_s`` 4.5, ``rho_p`` 1 times eps): larger ``eps_init`` better;
* **H4 particle dimension x polytope**: orthoplex best, ``d_p`` 2 > 4 > 8;
* **H5 radius grid** (``rho_s`` at ``rho_p`` 1, ``rho_p`` at ``rho_s`` 4.5): both monotone-helpful;
* **H6 subspace type**: hybrid 93.72 > linear 86.11 +- 16 (a collapsed seed), adaptive 71.49, full 84.22.

Every (ablation, variant, seed) is one cell (:func:`repro.tasks.apph_train.train_variant`; same
initial parameters and batches for every variant of a seed), so the grids fan out over ``--jobs``.
What this package's PolyStep cannot do and is left out (amortized OT, biased rotation, the adaptive
radius) and how H1's top-3 rule and H6's subspace types are realised are in
:mod:`repro.tasks.apph_train`'s docstring.  The measurements use the paper's protocol, the maximum of
the checkpoints' test accuracies ("best test"); the validation-selected accuracy is recorded beside it.

Beside Table 10, the Theorem 4.1 study of :mod:`repro.experiments.thm41_one_sided_limit` ("P/V small =>
softmax = OT") measured on the runs themselves: at every checkpoint of the H1 and Table 10 cells the
barycentre gap ``mean_i ||sum_v (w^softmax_iv - w^OT_iv) u_v||`` (units of ``r_s``) on that step's cost
matrix (:func:`repro.tasks.apph_train.barycentre_gap`).  :func:`gap_study` sets it beside the accuracy
gap OT - softmax of the subspace (H1, ``P/V`` small) and the full-space (Table 10, ``P/V`` large) runs:
does the barycentre gap predict the accuracy gap?

Scales.  ``paper``: the paper's budgets (batch 512, the full rank-4/8 subspace with the QR basis, 5
seeds; H1 590 OT steps = 10 epochs at amortize 2, H3-H6 393 = 10 epochs at amortize 3 -- H4-H6's
amortization is not reported, H3's is assumed; Table 10 354 steps = 3 epochs; 10 checkpoints, Table 10
3), GPU hours.  ``cpu``: reduced grids -- H3 only the target 0.1 (4 cells of 12), H5 five points per
axis (9 cells of 15, corners left out), H1 and H4 complete -- 2 seeds (Table 10 3) of 120 steps of batch
128 with the hybrid subspace capped at 256 coordinates (138 of them the biases); the full-space cells
(Table 10, H6) on a 784-8-10 MLP (``P = 3,185`` particles, ``P/V ~ 800``), 80 steps of batch 64, and H6's
four subspace types compared on that MLP: 62 cells.  Sized from per-step timings of every cpu variant
(3 steps each, no accuracy looked at; a shared 2-core machine loaded by other work): 0.10-0.16 s per
subspace step at K = 3 (cube d_p 4: 0.23 s), 0.47 s per full-space step of the 784-8-10 MLP (of the
784-128-10 MLP: ~30 s), ~1,230 core-seconds -- ~10 minutes with ``--jobs 2`` on that machine, less on
idle cores.
``ci``: a few steps of a 16-unit MLP on the 784-feature digits stand-in, reduced grids, one seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from repro.cells import Cell
from repro.claims import claim, claims_of, get_claim
from repro.context import RunContext
from repro.tasks.apph_train import TrainConfig, Variant, train_variant

ID = "apph_ablations"
TITLE = "App H ablations (update rule, eps, d_p x polytope, radii, subspace) and Table 10 (full space), MNIST MLP"
CLAIMS = claims_of(ID)
ABLATIONS = ("h1", "h3", "h4", "h5", "h6", "table10")
PAPER_SEEDS = (42, 123, 456, 789, 1337)
#: a seed "collapsed" (H6 linear) when its best test accuracy is this far below the hybrid mean (pp)
COLLAPSE_PP = 20.0


@dataclass(frozen=True)
class Ablation:
    """One ablation: its training budget, its variants (unique labels) and seeds."""

    name: str
    train: TrainConfig
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...]
    bary_gap: bool = False


@dataclass(frozen=True)
class Config:
    ablations: tuple[Ablation, ...]


# ------------------------------------------------------------------------------------------ grids

def h1_variants() -> tuple[Variant, ...]:
    base = dict(rank=8, eps=(3.0, 0.1), step_radius=8.0, probe_radius=1.0)
    return tuple(Variant(label, rule=rule, **base) for label, rule in
                 (("sinkhorn", "sinkhorn"), ("softmax", "softmax"), ("greedy", "argmin"), ("top3", "top3")))


def h3_variants(inits=(0.5, 1.0, 2.0, 3.0), targets=(0.01, 0.1, 0.5)) -> tuple[Variant, ...]:
    return tuple(Variant(f"eps{e0:g}-{e1:g}", eps=(e0, e1)) for e0 in inits for e1 in targets)


H4_GRID = ((2, "orthoplex"), (2, "simplex"), (2, "cube"), (4, "orthoplex"), (4, "simplex"), (4, "cube"),
           (8, "orthoplex"))


def h4_variants(grid=H4_GRID) -> tuple[Variant, ...]:
    return tuple(Variant(f"{poly}-dp{d}", particle_dim=d, polytope=poly) for d, poly in grid)


def h5_variants(step_radii=(1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 10.0), probe_radii=(0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0),
                corners=((3.0, 10.0), (0.1, 1.0))) -> tuple[Variant, ...]:
    """``rho_s`` grid at ``rho_p = 1``, ``rho_p`` grid at ``rho_s = 4.5`` (their shared cell once), and
    the ``(rho_p, rho_s)`` corners."""
    pairs = [(rs, 1.0) for rs in step_radii] + [(4.5, rp) for rp in probe_radii] + [(rs, rp) for rp, rs in corners]
    seen, out = set(), []
    for rs, rp in pairs:
        if (rs, rp) not in seen:
            seen.add((rs, rp))
            out.append(Variant(f"rs{rs:g}-rp{rp:g}", step_radius=rs, probe_radius=rp))
    return tuple(out)


def h6_variants(adaptive_dim: int | None = None) -> tuple[Variant, ...]:
    return (Variant("hybrid", subspace="hybrid"),
            Variant("linear", subspace="linear"),
            Variant("adaptive", subspace="adaptive", eps=(0.5, 0.5), step_radius=10.0, probe_radius=2.0,
                    subspace_dim=adaptive_dim),
            Variant("full", subspace="full", particle_dim=2, rule="sinkhorn", step_radius=0.15, probe_radius=0.12))


def table10_variants() -> tuple[Variant, ...]:
    base = dict(subspace="full", particle_dim=2, eps=(3.0, 0.1), step_radius=8.0, probe_radius=1.0)
    return (Variant("sinkhorn", rule="sinkhorn", **base), Variant("softmax", rule="softmax", **base))


def _config(scale: str) -> Config:
    if scale == "ci":
        sub = TrainConfig(dataset="digits", batch_size=32, hidden=16, steps=4, eval_every=2, max_subspace_dim=64)
        full = TrainConfig(dataset="digits", batch_size=32, hidden=4, steps=2, eval_every=1, max_subspace_dim=64)
        s = (0,)
        return Config((Ablation("h1", sub, h1_variants(), s, bary_gap=True),
                       Ablation("h3", sub, h3_variants((0.5, 3.0), (0.1,)), s),
                       Ablation("h4", sub, h4_variants(((2, "orthoplex"), (2, "simplex"), (8, "orthoplex"))), s),
                       Ablation("h5", sub, h5_variants((1.0, 4.5), (0.1, 1.0), ()), s),
                       Ablation("h6", full, h6_variants(), s),
                       Ablation("table10", full, table10_variants(), s, bary_gap=True)))
    if scale == "cpu":
        sub = TrainConfig(batch_size=128, hidden=128, steps=120, eval_every=12, max_subspace_dim=256)
        full = TrainConfig(batch_size=64, hidden=8, steps=80, eval_every=8, max_subspace_dim=256)
        s = (0, 1)
        return Config((Ablation("h1", sub, h1_variants(), s, bary_gap=True),
                       Ablation("h3", sub, h3_variants(targets=(0.1,)), s),
                       Ablation("h4", sub, h4_variants(), s),
                       Ablation("h5", sub, h5_variants((1.0, 3.0, 4.5, 6.0, 10.0), (0.1, 0.5, 1.0, 2.0, 3.0), ()), s),
                       Ablation("h6", full, h6_variants(), s),
                       Ablation("table10", full, table10_variants(), (0, 1, 2), bary_gap=True)))
    # the paper's budgets: 10 epochs of 118 batches of 512 (H1 amortize 2 -> 590 OT steps; H3-H6 amortize 3
    # -> 393), Table 10 3 epochs (354 steps); the full subspace (no cap) with the QR basis; 5 seeds
    h1 = TrainConfig(batch_size=512, steps=590, eval_every=59, max_subspace_dim=None)
    rest = TrainConfig(batch_size=512, steps=393, eval_every=39, max_subspace_dim=None)
    t10 = TrainConfig(batch_size=512, steps=354, eval_every=118, max_subspace_dim=None)
    return Config((Ablation("h1", h1, h1_variants(), PAPER_SEEDS, bary_gap=True),
                   Ablation("h3", rest, h3_variants(), PAPER_SEEDS),
                   Ablation("h4", rest, h4_variants(), PAPER_SEEDS),
                   Ablation("h5", rest, h5_variants(), PAPER_SEEDS),
                   Ablation("h6", rest, h6_variants(adaptive_dim=4096), PAPER_SEEDS),
                   Ablation("table10", t10, table10_variants(), PAPER_SEEDS, bary_gap=True)))


CONFIGS = {scale: _config(scale) for scale in ("ci", "cpu", "paper")}


# ------------------------------------------------------------------------------------------ run

def _cells(cfg: Config) -> list[Cell]:
    cells = []
    for ab in cfg.ablations:
        if ab.name not in ABLATIONS:
            raise ValueError(f"ablation must be one of {list(ABLATIONS)}, got {ab.name!r}")
        labels = [v.label for v in ab.variants]
        if len(set(labels)) != len(labels):
            raise ValueError(f"ablation {ab.name}: variant labels must be unique, got {labels}")
        if not ab.seeds:
            raise ValueError(f"ablation {ab.name}: at least one seed is needed")
        for v in ab.variants:
            for s in ab.seeds:
                cells.append(Cell(f"{ab.name}-{v.label}-seed{s}", _train_cell, (v, ab.train, s, ab.bary_gap)))
    return cells


def run(cfg: Config, ctx: RunContext) -> dict:
    """One cell per (ablation, variant, seed) (``"h3-eps2-0.1-seed0"``), then per ablation and
    variant the per-seed runs."""
    values = iter(ctx.map(_cells(cfg), desc="ablation x variant x seed"))
    out: dict = {"ablations": {}}
    for ab in cfg.ablations:
        entry = {"train": asdict(ab.train), "seeds": list(ab.seeds), "labels": [v.label for v in ab.variants],
                 "variants": {}}
        for v in ab.variants:
            entry["variants"][v.label] = {"variant": asdict(v), "runs": [next(values) for _ in ab.seeds]}
        out["ablations"][ab.name] = entry
    return out


def _train_cell(variant: Variant, train: TrainConfig, seed: int, bary_gap: bool, ctx: RunContext) -> dict:
    """One cell: :func:`~repro.tasks.apph_train.train_variant`."""
    return train_variant(variant, train, seed, ctx, bary_gap=bary_gap)


# ------------------------------------------------------------------------------------------ reduction

def accuracies(results: dict, ablation: str, label: str, protocol: str = "best") -> np.ndarray | None:
    """Per-seed test accuracy (%) of ``label`` in ``ablation``: ``"best"`` the maximum over
    checkpoints (the paper's protocol), ``"val"`` the validation-selected checkpoint's; None if the
    variant was not run."""
    if protocol not in ("best", "val"):
        raise ValueError(f"protocol must be 'best' or 'val', got {protocol!r}")
    ab = results["ablations"].get(ablation)
    if ab is None or label not in ab["variants"]:
        return None
    key = "best_test_acc" if protocol == "best" else "test_acc"
    return np.asarray([100 * r[key] for r in ab["variants"][label]["runs"]])


def _mean(results: dict, ablation: str, label: str) -> float | None:
    a = accuracies(results, ablation, label)
    return None if a is None else float(a.mean())


def _variants(results: dict, ablation: str) -> dict:
    """Label -> ``{"variant": fields, "runs": [...]}`` of ``ablation`` in the configured order."""
    ab = results["ablations"].get(ablation)
    return {} if ab is None else {label: ab["variants"][label] for label in ab["labels"]}


def _spearman(x, y) -> float:
    from scipy import stats

    if len(x) < 2 or np.ptp(np.asarray(y, dtype=float)) == 0:
        return 0.0
    return float(stats.spearmanr(x, y).statistic)


def _cell_measurement(results: dict, ablation: str, label: str) -> dict | None:
    best = accuracies(results, ablation, label)
    if best is None:
        return None
    val = accuracies(results, ablation, label, "val")
    runs = _variants(results, ablation)[label]["runs"]
    std = float(best.std(ddof=1)) if len(best) > 1 else 0.0
    return {"value": float(best.mean()),
            "detail": (f"{ablation} {label}: best test {best.mean():.2f} +- {std:.2f}% over {len(best)} seeds "
                       f"(validation-selected {val.mean():.2f}%), {runs[0]['evals']:.3g} forward evals"),
            "evidence": {"best_test_acc_per_seed": best.tolist(), "best_test_acc_std": std,
                         "val_selected_test_acc_mean": float(val.mean()), "seeds": len(best),
                         "evals": float(runs[0]["evals"]), "particles": int(runs[0]["particles"]),
                         "vertices": int(runs[0]["vertices"])}}


def _difference(results: dict, ablation: str, a: str, b: str) -> dict | None:
    """Mean best test accuracy of ``a`` minus ``b`` (pp)."""
    x, y = accuracies(results, ablation, a), accuracies(results, ablation, b)
    if x is None or y is None:
        return None
    d = float(x.mean() - y.mean())
    runs = _variants(results, ablation)[a]["runs"]
    P, V = int(runs[0]["particles"]), int(runs[0]["vertices"])
    return {"value": d,
            "detail": f"{ablation}: {a} {x.mean():.2f}% - {b} {y.mean():.2f}% = {d:+.2f} pp (best test, "
                      f"{len(x)} seeds, P = {P}, V = {V})",
            "evidence": {f"{a}_acc_per_seed": x.tolist(), f"{b}_acc_per_seed": y.tolist(), "difference_pp": d,
                         "particles": P, "vertices": V, "p_over_v": P / V, "seeds": len(x)}}


def _register_cells(pairs, ablation: str) -> None:
    """One measuring function per (claim id, variant label): the variant's mean best test accuracy."""
    for cid, label in pairs:
        def fn(results: dict, label: str = label) -> dict | None:
            return _cell_measurement(results, ablation, label)
        fn.__name__ = fn.__qualname__ = "_" + cid.split(".", 1)[1]
        claim(cid)(fn)


# ------------------------------------------------------------------------------------------ H1

_register_cells((("polystep.h1_entropic_ot", "sinkhorn"), ("polystep.h1_softmax", "softmax"),
                 ("polystep.h1_greedy_collapse", "greedy"), ("polystep.h1_top3_collapse", "top3")), "h1")


@claim("polystep.h1_softmax_ot_gap")
def _h1_softmax_ot_gap(results: dict) -> dict | None:
    m = _difference(results, "h1", "sinkhorn", "softmax")
    if m is not None:
        m["value"] = abs(m["value"])
    return m


@claim("polystep.h1_cpu_softmax_matches_ot")
def _h1_cpu_softmax_matches_ot(results: dict) -> dict | None:
    return _difference(results, "h1", "sinkhorn", "softmax")


@claim("polystep.h1_cpu_hard_rules_collapse")
def _h1_cpu_hard_rules_collapse(results: dict) -> dict | None:
    means = {k: _mean(results, "h1", k) for k in ("sinkhorn", "softmax", "greedy", "top3")}
    if any(v is None for v in means.values()):
        return None
    hard = max(means["greedy"], means["top3"])
    smooth = min(means["sinkhorn"], means["softmax"])
    return {"value": hard,
            "detail": ("H1 mean best test %: " + ", ".join(f"{k} {v:.2f}" for k, v in means.items())
                       + f"; smooth - hard = {smooth - hard:+.2f} pp"),
            "evidence": {"smooth_minus_hard_pp": smooth - hard, "greedy_acc": means["greedy"],
                         "top3_acc": means["top3"], "softmax_acc": means["softmax"],
                         "sinkhorn_acc": means["sinkhorn"]}}


# ------------------------------------------------------------------------------------------ Table 10

_register_cells((("polystep.table10_entropic_ot", "sinkhorn"), ("polystep.table10_softmax", "softmax")), "table10")


def gap_study(results: dict) -> dict:
    """Theorem 4.1's barycentre gap beside the accuracy gap, for H1 (subspace) and Table 10 (full
    space): per ablation ``P``, ``V``, ``P/V``, the mean barycentre gap over checkpoints, seeds and
    both solvers' runs (units of ``r_s``), and the accuracy gap OT - softmax (pp)."""
    out = {}
    for ab in ("h1", "table10"):
        v = _variants(results, ab)
        if not {"sinkhorn", "softmax"} <= set(v) or "bary_gap" not in v["softmax"]["runs"][0]:
            continue
        runs = v["sinkhorn"]["runs"] + v["softmax"]["runs"]
        P, V = int(runs[0]["particles"]), int(runs[0]["vertices"])
        out[ab] = {"P": P, "V": V, "p_over_v": P / V,
                   "bary_gap": float(np.mean([np.mean(r["bary_gap"]) for r in runs])),
                   "bary_gap_max": float(np.max([np.max(r["bary_gap"]) for r in runs])),
                   "acc_gap_pp": float(_mean(results, ab, "sinkhorn") - _mean(results, ab, "softmax"))}
    return out


@claim("polystep.table10_ot_softmax_gap")
def _table10_ot_softmax_gap(results: dict) -> dict | None:
    return _table10_gap(results)


@claim("polystep.table10_cpu_ot_beats_softmax")
def _table10_cpu_ot_beats_softmax(results: dict) -> dict | None:
    return _table10_gap(results)


def _table10_gap(results: dict) -> dict | None:
    m = _difference(results, "table10", "sinkhorn", "softmax")
    if m is None:
        return None
    g = gap_study(results)
    for ab, row in g.items():
        m["evidence"][f"{ab}_bary_gap"] = row["bary_gap"]
        m["evidence"][f"{ab}_acc_gap_pp"] = row["acc_gap_pp"]
        m["evidence"][f"{ab}_p_over_v"] = row["p_over_v"]
    if g:
        m["detail"] += "; barycentre gap |x'_softmax - x'_OT| / r_s: " + ", ".join(
            f"{ab} (P/V {row['p_over_v']:.3g}) {row['bary_gap']:.2e}" for ab, row in g.items())
    return m


# ------------------------------------------------------------------------------------------ H3

def _grid_means(results: dict, ablation: str, key) -> dict:
    """Variant field(s) ``key(variant dict)`` -> mean best test accuracy (%)."""
    return {key(e["variant"]): float(np.mean([100 * r["best_test_acc"] for r in e["runs"]]))
            for e in _variants(results, ablation).values()}


def _h3(results: dict) -> dict | None:
    means = _grid_means(results, "h3", lambda v: tuple(v["eps"]))
    inits = sorted({e0 for e0, _ in means})
    if len(inits) < 2:
        return None
    per_init = [float(np.mean([m for (e0, _), m in means.items() if e0 == i])) for i in inits]
    rho = _spearman(inits, per_init)
    rise = per_init[-1] - per_init[0]
    return {"value": rho,
            "detail": ("H3 mean best test % per eps_init (over targets "
                       f"{sorted({e1 for _, e1 in means})}): "
                       + ", ".join(f"{i:g}: {m:.2f}" for i, m in zip(inits, per_init))
                       + f"; Spearman {rho:.2f}, rise {rise:+.2f} pp"),
            "evidence": {"rise_pp": rise, "eps_init": inits, "acc_per_eps_init": per_init,
                         "cells": len(means)}}


@claim("polystep.h3_epsilon_trend")
def _h3_epsilon_trend(results: dict) -> dict | None:
    return _h3(results)


@claim("polystep.h3_cpu_larger_eps_better")
def _h3_cpu_larger_eps_better(results: dict) -> dict | None:
    return _h3(results)


# ------------------------------------------------------------------------------------------ H4

_register_cells((("polystep.h4_orthoplex_dp2", "orthoplex-dp2"), ("polystep.h4_orthoplex_dp8", "orthoplex-dp8")), "h4")

#: the paper's stated H4 orderings: (better, worse) as (d_p, polytope)
H4_ORDERINGS = (((2, "orthoplex"), (2, "simplex")), ((2, "orthoplex"), (2, "cube")),
                ((4, "orthoplex"), (4, "simplex")), ((4, "orthoplex"), (4, "cube")),
                ((2, "orthoplex"), (4, "orthoplex")), ((4, "orthoplex"), (8, "orthoplex")))


def _h4(results: dict) -> dict | None:
    means = _grid_means(results, "h4", lambda v: (v["particle_dim"], v["polytope"]))
    checked = [(a, b) for a, b in H4_ORDERINGS if a in means and b in means]
    if not checked:
        return None
    held = [(a, b) for a, b in checked if means[a] > means[b]]
    name = lambda c: f"{c[1]} d_p {c[0]}"  # noqa: E731
    return {"value": len(held),
            "detail": (f"H4: {len(held)} of {len(checked)} stated orderings hold; mean best test %: "
                       + ", ".join(f"{name(c)} {m:.2f}" for c, m in means.items())),
            "evidence": {"orderings": len(checked), "held": len(held),
                         "failed": [f"{name(a)} > {name(b)}" for a, b in checked if (a, b) not in held]}}


@claim("polystep.h4_polytope_trend")
def _h4_polytope_trend(results: dict) -> dict | None:
    return _h4(results)


@claim("polystep.h4_cpu_polytope_trend")
def _h4_cpu_polytope_trend(results: dict) -> dict | None:
    return _h4(results)


# ------------------------------------------------------------------------------------------ H5

def h5_axes(results: dict) -> dict:
    """``{"step": (rho_s values, means) at rho_p = 1, "probe": (rho_p values, means) at rho_s = 4.5}``."""
    means = _grid_means(results, "h5", lambda v: (v["step_radius"], v["probe_radius"]))
    step = sorted((rs, m) for (rs, rp), m in means.items() if rp == 1.0)
    probe = sorted((rp, m) for (rs, rp), m in means.items() if rs == 4.5)
    return {"step": ([x for x, _ in step], [m for _, m in step]),
            "probe": ([x for x, _ in probe], [m for _, m in probe])}


def _h5_axis(results: dict, axis: str) -> dict | None:
    x, m = h5_axes(results)[axis]
    if len(x) < 2:
        return None
    rho = _spearman(x, m)
    name = "rho_s (rho_p = 1)" if axis == "step" else "rho_p (rho_s = 4.5)"
    return {"value": rho,
            "detail": f"H5 {name}: " + ", ".join(f"{a:g}: {b:.2f}" for a, b in zip(x, m)) + f"; Spearman {rho:.2f}",
            "evidence": {"radii": x, "acc": m, "rise_pp": m[-1] - m[0]}}


@claim("polystep.h5_step_radius_trend")
def _h5_step_radius_trend(results: dict) -> dict | None:
    return _h5_axis(results, "step")


@claim("polystep.h5_probe_radius_trend")
def _h5_probe_radius_trend(results: dict) -> dict | None:
    return _h5_axis(results, "probe")


@claim("polystep.h5_cpu_radii_monotone")
def _h5_cpu_radii_monotone(results: dict) -> dict | None:
    s, p = _h5_axis(results, "step"), _h5_axis(results, "probe")
    if s is None or p is None:
        return None
    return {"value": min(s["value"], p["value"]), "detail": s["detail"] + "; " + p["detail"],
            "evidence": {"spearman_step": s["value"], "spearman_probe": p["value"],
                         "rise_step_pp": s["evidence"]["rise_pp"], "rise_probe_pp": p["evidence"]["rise_pp"]}}


# ------------------------------------------------------------------------------------------ H6

_register_cells((("polystep.h6_hybrid_subspace", "hybrid"), ("polystep.h6_adaptive_subspace", "adaptive"),
                 ("polystep.h6_full_space", "full")), "h6")


@claim("polystep.h6_linear_subspace_unstable")
def _h6_linear_subspace_unstable(results: dict) -> dict | None:
    lin, hyb = accuracies(results, "h6", "linear"), accuracies(results, "h6", "hybrid")
    if lin is None or hyb is None:
        return None
    collapsed = int(np.sum(lin < hyb.mean() - COLLAPSE_PP))
    return {"value": float(lin.mean()),
            "detail": (f"H6 linear {lin.mean():.2f}% (per seed {np.round(lin, 2).tolist()}) vs hybrid "
                       f"{hyb.mean():.2f}%; {collapsed} seed(s) more than {COLLAPSE_PP:g} pp below the hybrid mean"),
            "evidence": {"hybrid_mean": float(hyb.mean()), "collapsed_seeds": collapsed,
                         "linear_acc_per_seed": lin.tolist(), "seeds": len(lin)}}


@claim("polystep.h6_cpu_hybrid_best")
def _h6_cpu_hybrid_best(results: dict) -> dict | None:
    means = {k: _mean(results, "h6", k) for k in ("hybrid", "linear", "adaptive", "full")}
    if any(v is None for v in means.values()):
        return None
    others = {k: v for k, v in means.items() if k != "hybrid"}
    best_other = max(others, key=others.get)
    d = means["hybrid"] - others[best_other]
    return {"value": d,
            "detail": "H6 mean best test %: " + ", ".join(f"{k} {v:.2f}" for k, v in means.items())
                      + f"; hybrid - {best_other} = {d:+.2f} pp",
            "evidence": {f"{k}_acc": v for k, v in means.items()}}


# ------------------------------------------------------------------------------------------ paper values

def paper_values(ablation: str) -> dict:
    """The paper's values (best test %) of ``ablation``'s variants, keyed like the variants' grid
    fields, from paper/claims.toml."""
    pv = lambda cid: get_claim(cid).paper_value  # noqa: E731
    if ablation == "h1":
        return {"sinkhorn": pv("polystep.h1_entropic_ot"), "softmax": pv("polystep.h1_softmax"),
                "greedy": pv("polystep.h1_greedy_collapse"), "top3": pv("polystep.h1_top3_collapse")}
    if ablation == "table10":
        return {"sinkhorn": pv("polystep.table10_entropic_ot"), "softmax": pv("polystep.table10_softmax")}
    if ablation == "h3":
        return {(e0, e1): a for e0, e1, a in get_claim("polystep.h3_epsilon_trend").extra["paper_grid"]}
    if ablation == "h4":
        return {(d, p): a for d, p, a in get_claim("polystep.h4_polytope_trend").extra["paper_grid"]}
    if ablation == "h5":
        return {"step": dict(map(tuple, get_claim("polystep.h5_step_radius_trend").extra["paper_grid"])),
                "probe": dict(map(tuple, get_claim("polystep.h5_probe_radius_trend").extra["paper_grid"]))}
    if ablation == "h6":
        return {"hybrid": pv("polystep.h6_hybrid_subspace"),
                "linear": get_claim("polystep.h6_linear_subspace_unstable").extra["paper_mean"],
                "adaptive": pv("polystep.h6_adaptive_subspace"), "full": pv("polystep.h6_full_space")}
    raise ValueError(f"ablation must be one of {list(ABLATIONS)}, got {ablation!r}")


# ------------------------------------------------------------------------------------------ outputs

def summary(results: dict) -> dict:
    """Per ablation and variant: mean and std over seeds of the best-test and validation-selected
    accuracies (%), the forward evaluations, ``P``, ``V`` and the wall time of the steps."""
    out = {}
    for ab in results["ablations"]:
        out[ab] = {}
        for label, e in _variants(results, ab).items():
            best = np.asarray([100 * r["best_test_acc"] for r in e["runs"]])
            val = np.asarray([100 * r["test_acc"] for r in e["runs"]])
            out[ab][label] = {"best": float(best.mean()), "best_std": float(best.std(ddof=1)) if len(best) > 1 else 0.0,
                              "val": float(val.mean()), "evals": float(e["runs"][0]["evals"]),
                              "P": int(e["runs"][0]["particles"]), "V": int(e["runs"][0]["vertices"]),
                              "step_s": float(np.mean([r["step_s"] for r in e["runs"]]))}
    return out


def _paper_of(ab: str, variant: dict, label: str):
    pv = paper_values(ab)
    if ab in ("h1", "table10", "h6"):
        return pv.get(label)
    if ab == "h3":
        return pv.get(tuple(variant["eps"]))
    if ab == "h4":
        return pv.get((variant["particle_dim"], variant["polytope"]))
    if ab == "h5":
        rs, rp = variant["step_radius"], variant["probe_radius"]
        if rp == 1.0 and rs in pv["step"]:
            return pv["step"][rs]
        if rs == 4.5 and rp in pv["probe"]:
            return pv["probe"][rp]
        corners = {(c[1], c[0]): c[2] for c in get_claim("polystep.h5_probe_radius_trend").extra["paper_corners"]}
        return corners.get((rs, rp))
    return None


def table(results: dict) -> str:
    s = summary(results)
    lines = ["Best test accuracy (%, the paper's protocol: maximum over checkpoints), mean ± std over seeds; "
             "validation-selected beside it.", "",
             "| ablation | variant | paper | ours best test | ours val-selected | P | V | evals | step time (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for ab in _order(results):
        for label, e in _variants(results, ab).items():
            r = s[ab][label]
            p = _paper_of(ab, e["variant"], label)
            lines.append(f"| {ab} | {label} | {p if p is not None else '–'} | "
                         f"{r['best']:.2f} ± {r['best_std']:.2f} | "
                         f"{r['val']:.2f} | {r['P']} | {r['V']} | {r['evals']:.3g} | {r['step_s']:.3g} |")
    g = gap_study(results)
    if g:
        lines += ["", "Theorem 4.1 beside Table 10: barycentre gap |x'_softmax - x'_OT| / r_s on the runs' cost "
                  "matrices (mean over checkpoints, seeds and both solvers' runs) and the accuracy gap OT - softmax.",
                  "", "| runs | P | V | P/V | barycentre gap (mean) | (max) | accuracy gap (pp) |",
                  "|---|---|---|---|---|---|---|"]
        for ab, row in g.items():
            lines.append(f"| {ab} | {row['P']} | {row['V']} | {row['p_over_v']:.3g} | {row['bary_gap']:.3g} | "
                         f"{row['bary_gap_max']:.3g} | {row['acc_gap_pp']:+.2f} |")
    return "\n".join(lines)


def summary_lines(results: dict) -> list[str]:
    s = summary(results)
    return [f"  {ab}: " + ", ".join(f"{k} {v['best']:.1f}%" for k, v in s[ab].items()) for ab in _order(results)]


def _order(results: dict) -> list[str]:
    return [ab for ab in ("h1", "table10", "h3", "h4", "h5", "h6") if ab in results["ablations"]]


_PANEL_TITLES = {"h1": "H1 update rule (rank 8)", "table10": "Table 10: full space (P >> V)",
                 "h3": "H3 eps_init (radii x eps)", "h4": "H4 d_p x polytope", "h5": "H5 radii (x eps)",
                 "h6": "H6 subspace type"}


def _points(ax, x: float, accs, color, label=None, jitter: float = 0.08):
    accs = np.asarray(accs)
    offs = np.linspace(-jitter, jitter, len(accs)) if len(accs) > 1 else np.zeros(1)
    ax.plot(x + offs, accs, "o", ms=3.5, color=color, alpha=0.6)
    ax.plot([x - 1.6 * jitter, x + 1.6 * jitter], [accs.mean()] * 2, "-", color=color, lw=2, label=label)


def plot(results: dict):
    """One panel per ablation: our per-seed best test accuracies (dots) and their mean (bar), the
    paper's value (black star) at the same x."""
    import matplotlib.pyplot as plt

    ours, paper = "#0072B2", "k"
    present = _order(results)
    n = len(present)
    cols = 3 if n > 2 else n
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, ab in zip(axes.ravel(), present):
        variants = _variants(results, ab)
        if ab == "h5":
            for axis, color, marker in (("step", ours, "o"), ("probe", "#D55E00", "s")):
                for label, e in variants.items():
                    v = e["variant"]
                    rs, rp = v["step_radius"], v["probe_radius"]
                    if (axis == "step" and rp == 1.0) or (axis == "probe" and rs == 4.5):
                        x = rs if axis == "step" else rp
                        accs = [100 * r["best_test_acc"] for r in e["runs"]]
                        ax.plot([x] * len(accs), accs, marker, ms=3.5, color=color, alpha=0.6)
                xs, ms = h5_axes(results)[axis]
                ax.plot(xs, ms, "-", color=color, lw=1.5,
                        label=("ours: rho_s at rho_p 1" if axis == "step" else "ours: rho_p at rho_s 4.5"))
                pv = paper_values("h5")[axis]
                ax.plot(list(pv), list(pv.values()), "*--", color=color, mec="k", ms=8, lw=0.8,
                        label=f"paper ({'rho_s' if axis == 'step' else 'rho_p'})")
            ax.set(xscale="log", xlabel="radius (x eps)")
        else:
            labels = list(variants)
            for i, label in enumerate(labels):
                e = variants[label]
                _points(ax, i, [100 * r["best_test_acc"] for r in e["runs"]], ours,
                        label="ours (seeds, mean)" if i == 0 else None)
                p = _paper_of(ab, e["variant"], label)
                if p is not None:
                    ax.plot([i], [p], "*", color=paper, ms=9, label="paper" if i == 0 else None)
            ax.set_xticks(range(len(labels)), labels, rotation=35 if len(labels) > 4 else 0, ha="right" if
                          len(labels) > 4 else "center", fontsize=7)
        ax.set(ylabel="best test accuracy (%)", ylim=(0, 100), title=_PANEL_TITLES[ab])
        ax.axhline(10, color="0.7", lw=0.6, ls=":")
        ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(TITLE, fontsize=10)
    fig.tight_layout()
    return fig
