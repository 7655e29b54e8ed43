"""Table T5 (the MNIST sanity check, PolyStep paper §5.5) and the convergence curves of App H7:
a ReLU MLP 784-128-10 (101,770 parameters) trained by PolyStep, Adam with backpropagation, and the
gradient-free baselines sep-CMA-ES, OpenAI-ES and SPSA.

The runs (:mod:`repro.tasks.t5_train`, Table T1's machinery on the MNIST MLP):

* **PolyStep** with the paper's MNIST hyperparameters (paper/polystep_reconstruction.md §5.3: rank-8
  hybrid subspace, softmax, orthoplex ``d_p = 8``, ``K = 1``, cosine ``eps`` 10 -> 0.1, step radius
  5 -> 1, probe radius 10 -> 2), evaluated by the fast population closure.  The paper amortized its
  OT steps (3,540 calls, a loss evaluation on every third: 1,180 OT steps, 2.02e7 forward passes,
  §2.9 / §2.13); this package's PolyStep has no amortization, so its paper budget is the paper's
  1,180 OT steps on 1,180 batches -- the same updates, batches used and forward passes, without the
  2,360 coasting moves along past displacements;
* **Adam** (lr 1e-3 cosine, backpropagation; the same initial parameters and batch stream, three
  steps per PolyStep step as in the paper: 3,540 = 30 epochs);
* **CMA-ES** (sep-CMA, popsize 16, ``sigma0 = 0.5``), **OpenAI-ES** (antithetic, 50, ``sigma =
  0.02``, lr 0.01 -> 0, weight decay 0.01) and **SPSA** (``a = c = 0.1``) -- Table T1's settings
  (§5.4) -- each at two budgets: ``paper``, the paper's MNIST ratio of generations to PolyStep's OT
  steps (2,000 / 2,000 / 10,000 per 1,180), and ``matched``, as many forward evaluations as PolyStep.

Protocol (every method): the test accuracy of the checkpoint with the best validation accuracy
(6,000 validation images carved from the training set); the paper's protocol -- the maximum of the
checkpoints' *test* accuracies (paper/polystep_reconstruction.md §6 item 6) -- beside it, and the
``value`` of the paper's five Table T5 claims, whose numbers quote it.  "PolyStep beats X" is a
one-sided Welch test over seeds with Holm's correction over the three baselines (:mod:`repro.stats`).

App H7 plots accuracy against forward evaluations for the same five methods; :func:`plot`'s right
panel draws those curves from this experiment's runs.  The paper's H7 runs are a different
configuration (20 epochs; PolyStep 97.07 %, and baseline budgets of 1e4 / 3.2e3 / 1e4 evaluations,
paper/polystep_reconstruction.md §4 App H), whose PolyStep settings are not recorded: the curves here
are those of the Table T5 configuration, and App H7's numbers are not claims of this experiment.

Scales: ``paper`` is the paper's (full training set, batch 512, PolyStep 1,180 OT steps, Adam 3,540
steps = 30 epochs of the paper's 118 batches, 30 checkpoints, the full rank-8 subspace with the
paper's QR basis, 5 seeds; GPU hours -- each matched-evaluation baseline evaluates 2.02e7 losses);
``cpu`` keeps the network and MNIST but runs 240 PolyStep steps of batch 128 (Adam 720), 20
checkpoints, and caps PolyStep's subspace at 256 coordinates (138 of them the biases; 512
evaluations per step) on the Kronecker basis, 3 seeds.  It was sized from per-step timings only (no
accuracy was measured): on one core PolyStep's step costs ~28 ms, a baseline's evaluation ~0.5-0.7
ms (its ask/tell in 101,770 dimensions dominates, not the forward pass), so each matched-evaluation
baseline costs ~12 x PolyStep's run and the 24 cells are estimated at ~7 minutes with ``--jobs 2``
on two otherwise idle cores (~2.5 x that on a machine loaded by other work).  Its numbers are
*indicative* for the paper-scale claims; the cpu claims (registered before any T5 accuracy was
measured) state the comparisons at this scale.  ``ci`` runs every cell on a few steps of a 16-unit
MLP on the 784-feature digits stand-in (nothing downloaded).

Cells: one per (method, budget, seed) (:mod:`repro.cells`); ``--jobs N`` trains them in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repro.cells import Cell
from repro.claims import claim, claims_of, get_claim
from repro.context import RunContext
from repro.stats import compare, welch_greater
from repro.tasks.t5_train import (BASELINE_NAMES, BASELINES, BUDGETS, PAPER_ADAM_STEPS, PAPER_POLYSTEP_STEPS,
                                  baseline_generations, check_config, polystep_evals_per_step, train_adam,
                                  train_baseline, train_polystep)

ID = "t5_mnist_baselines"
TITLE = "Table T5 / App H7: the MNIST MLP, PolyStep vs Adam, CMA-ES, OpenAI-ES, SPSA"
CLAIMS = claims_of(ID)
METHODS = ("PolyStep", "Adam") + BASELINE_NAMES
LEADS_PAPER_CLAIM = "polystep.t5_cpu_leads_paper_budget"
LEADS_MATCHED_CLAIM = "polystep.t5_cpu_leads_matched_evals"
ADAM_CLAIM = "polystep.t5_cpu_adam_above_polystep"
CMAES_WEAKEST_CLAIM = "polystep.t5_cpu_cmaes_weakest"
#: the paper's Table T5 claims: claim id -> method (value: mean best test accuracy, %)
T5_CLAIMS = {"polystep.t5_mnist_polystep": "PolyStep", "polystep.t5_mnist_adam": "Adam",
             "polystep.t5_mnist_cmaes": "CMA-ES", "polystep.t5_mnist_openai_es": "OpenAI-ES",
             "polystep.t5_mnist_spsa": "SPSA"}


@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"                # "mnist" | "digits" (ci stand-in)
    seeds: tuple[int, ...] = (0, 1, 2)
    train_subset: int | None = None
    batch_size: int = 128
    hidden: int = 128
    steps: int = 240                      # PolyStep's (OT) steps
    adam_steps: int = 720                 # Adam's: three per PolyStep step, as in the paper
    eval_every: int = 12                  # PolyStep steps per checkpoint; every method has steps // eval_every
    max_subspace_dim: int | None = 256
    basis: str = "kronecker"
    chunk_size: int = 1024
    adam_lr: float = 1e-3
    baselines: tuple[str, ...] = BASELINE_NAMES
    budgets: tuple[str, ...] = BUDGETS


CONFIGS = {
    "ci": Config(dataset="digits", seeds=(0, 1), batch_size=32, hidden=16, steps=4, adam_steps=12, eval_every=2,
                 max_subspace_dim=64),
    "cpu": Config(),
    # 30 checkpoints, as the paper's per-epoch evaluations
    "paper": Config(seeds=(42, 123, 456, 789, 1337), batch_size=512, steps=PAPER_POLYSTEP_STEPS,
                    adam_steps=PAPER_ADAM_STEPS, eval_every=PAPER_POLYSTEP_STEPS // 30, max_subspace_dim=None,
                    basis="qr"),
}


def _key(method: str, budget: str | None = None) -> str:
    return f"{method}-{budget}" if budget else method


def _cells(cfg: Config) -> list[Cell]:
    check_config(cfg)
    cells = []
    for s in cfg.seeds:
        cells.append(Cell(f"PolyStep-seed{s}", train_polystep, (cfg, s)))
        cells.append(Cell(f"Adam-seed{s}", train_adam, (cfg, s)))
        for m in cfg.baselines:
            for b in cfg.budgets:
                cells.append(Cell(f"{m}-{b}-seed{s}", train_baseline, (m, b, cfg, s)))
    return cells


def run(cfg: Config, ctx: RunContext) -> dict:
    """Every (method, budget, seed) cell, then per method (and budget) the per-seed runs."""
    cells = _cells(cfg)
    values = ctx.map(cells, desc="method x budget x seed")
    runs: dict = {}
    for c, v in zip(cells, values):
        runs.setdefault(c.key.rsplit("-seed", 1)[0], []).append(v)
    return {"seeds": list(cfg.seeds), "runs": runs, "dataset": cfg.dataset, "train_subset": cfg.train_subset,
            "batch_size": cfg.batch_size, "steps": cfg.steps, "adam_steps": cfg.adam_steps,
            "evals_per_step": polystep_evals_per_step(cfg),
            "baselines": list(cfg.baselines), "budgets": list(cfg.budgets),
            "generations": {m: {b: baseline_generations(m, b, cfg) for b in cfg.budgets} for m in cfg.baselines}}


# ------------------------------------------------------------------------------------------ reduction

def accuracies(results: dict, method: str, budget: str | None = None, *, protocol: str = "val") -> np.ndarray:
    """Per-seed test accuracy (%) of ``method`` (at ``budget`` for a baseline): ``protocol="val"``
    the validation-selected checkpoint's, ``"best_test"`` the paper's maximum over checkpoints."""
    if protocol not in ("val", "best_test"):
        raise ValueError(f"protocol must be 'val' or 'best_test', got {protocol!r}")
    if method in BASELINES and budget is None:
        raise ValueError(f"baseline {method} needs a budget ({list(BUDGETS)})")
    key = _key(method, budget if method in BASELINES else None)
    if key not in results["runs"]:
        raise KeyError(f"no runs of {key!r}; present: {sorted(results['runs'])}")
    field_ = "test_acc" if protocol == "val" else "best_test_acc"
    return np.asarray([100 * r[field_] for r in results["runs"][key]])


def comparisons(results: dict, budget: str, alpha: float) -> dict:
    """PolyStep against each baseline at ``budget`` (:func:`repro.stats.compare`: one-sided Welch,
    Holm over the baselines), on the validation-selected accuracies."""
    ps = accuracies(results, "PolyStep")
    return compare({m: (ps, accuracies(results, m, budget)) for m in results["baselines"]}, alpha=alpha)


def _leads_measurement(results: dict, claim_id: str, budget: str) -> dict:
    alpha = get_claim(claim_id).extra["alpha"]
    comp = comparisons(results, budget, alpha)
    wins = [k for k, v in comp.items() if v["difference"] > 0]
    sig = [k for k, v in comp.items() if v["significant"]]
    lost = sorted(set(comp) - set(sig))
    evals = {m: float(np.mean([r["evals"] for r in results["runs"][_key(m, budget)]])) for m in comp}
    return {"value": len(sig),
            "detail": (f"{budget} budgets: PolyStep's mean validation-selected test accuracy higher than "
                       f"{len(wins)} of {len(comp)} baselines, significantly (Welch, Holm, alpha {alpha:g}) "
                       f"than {len(sig)}" + (f"; not significant: {', '.join(lost)}" if lost else "")),
            "evidence": {"comparisons": len(comp), "mean_wins": len(wins), "significant_wins": len(sig),
                         "baselines": list(comp), "difference_pp": [comp[k]["difference"] for k in comp],
                         "p_holm": [comp[k]["p_holm"] for k in comp],
                         "p_mann_whitney": [comp[k]["p_mann_whitney"] for k in comp],
                         "baseline_evals": [evals[k] for k in comp],
                         "polystep_evals": float(np.mean([r["evals"] for r in results["runs"]["PolyStep"]])),
                         "seeds": len(results["seeds"]), "dataset": results["dataset"]}}


@claim(LEADS_PAPER_CLAIM)
def _t5_cpu_leads_paper_budget(results: dict) -> dict:
    return _leads_measurement(results, LEADS_PAPER_CLAIM, "paper")


@claim(LEADS_MATCHED_CLAIM)
def _t5_cpu_leads_matched_evals(results: dict) -> dict:
    return _leads_measurement(results, LEADS_MATCHED_CLAIM, "matched")


@claim(ADAM_CLAIM)
def _t5_cpu_adam_above_polystep(results: dict) -> dict:
    adam, ps = accuracies(results, "Adam"), accuracies(results, "PolyStep")
    p = welch_greater(adam, ps)
    diff = float(adam.mean() - ps.mean())
    return {"value": diff, "detail": f"Adam {adam.mean():.2f}% vs PolyStep {ps.mean():.2f}% ({diff:+.2f} pp, "
                                     f"validation-selected), one-sided Welch p = {p:.3g}",
            "evidence": {"adam_minus_polystep_pp": diff, "p_value": p, "adam_acc": adam.tolist(),
                         "polystep_acc": ps.tolist(), "dataset": results["dataset"]}}


@claim(CMAES_WEAKEST_CLAIM)
def _t5_cpu_cmaes_weakest(results: dict) -> dict:
    means = {m: float(accuracies(results, m, "paper").mean()) for m in results["baselines"]}
    others = [m for m in means if m != "CMA-ES"]
    below = [m for m in others if means["CMA-ES"] < means[m]] if "CMA-ES" in means else []
    return {"value": len(below),
            "detail": "at the paper's budget ratio, mean validation-selected test accuracy: "
                      + ", ".join(f"{m} {v:.2f}%" for m, v in means.items()),
            "evidence": {"cmaes_below_count": len(below), "others": len(others),
                         "cmaes_measured": "CMA-ES" in means, "baselines": list(means),
                         "baseline_acc_mean": list(means.values()), "dataset": results["dataset"]}}


def _cell_measurement(results: dict, method: str) -> dict:
    budget = "paper" if method in BASELINES else None
    best = accuracies(results, method, budget, protocol="best_test")
    val = accuracies(results, method, budget)
    runs = results["runs"][_key(method, budget)]
    ev = {"best_test_acc_mean": float(best.mean()),
          "best_test_acc_std": float(best.std(ddof=1)) if len(best) > 1 else 0.0,
          "val_selected_test_acc_mean": float(val.mean()), "best_test_acc_per_seed": best.tolist(),
          "val_selected_test_acc_per_seed": val.tolist(), "seeds": len(best), "budget": budget or "steps",
          "evals": float(np.mean([r["evals"] for r in runs])), "dataset": results["dataset"]}
    if budget and _key(method, "matched") in results["runs"]:
        ev["matched_evals_val_selected_test_acc_mean"] = float(accuracies(results, method, "matched").mean())
    return {"value": float(best.mean()),
            "detail": (f"{results['dataset']}: best test {best.mean():.2f} +- {ev['best_test_acc_std']:.2f}% "
                       f"(paper protocol), validation-selected {val.mean():.2f}%, {ev['evals']:.3g} forward evals"
                       + (" at the paper's budget ratio" if budget else "")),
            "evidence": ev}


def _register_cell_claims() -> None:
    for cid, method in T5_CLAIMS.items():
        def fn(results: dict, method: str = method) -> dict:
            return _cell_measurement(results, method)
        fn.__name__ = fn.__qualname__ = "_" + cid.split(".", 1)[1]
        claim(cid)(fn)


_register_cell_claims()


# ------------------------------------------------------------------------------------------ outputs

def summary(results: dict) -> dict:
    """Per method key (``PolyStep``, ``Adam``, ``<baseline>-<budget>``): mean and std over seeds of
    the validation-selected and best-test accuracies (%), the forward evaluations and the wall time
    of the optimizer steps."""
    out = {}
    for key, runs in results["runs"].items():
        val = np.asarray([100 * r["test_acc"] for r in runs])
        best = np.asarray([100 * r["best_test_acc"] for r in runs])
        out[key] = {"val": float(val.mean()), "val_std": float(val.std(ddof=1)) if len(val) > 1 else 0.0,
                    "best": float(best.mean()), "best_std": float(best.std(ddof=1)) if len(best) > 1 else 0.0,
                    "evals": float(np.mean([r["evals"] for r in runs])),
                    "wall_s": float(np.mean([r["step_s"] for r in runs]))}
    return out


def _paper_value(method: str) -> float | None:
    for cid, m in T5_CLAIMS.items():
        if m == method:
            return get_claim(cid).paper_value
    return None


def _rows(results: dict) -> list[tuple[str, str, str | None]]:
    """(label, run key, method) in the report's order."""
    rows = [("PolyStep", "PolyStep", "PolyStep"), ("Adam", "Adam", "Adam")]
    for b in results["budgets"]:
        for m in results["baselines"]:
            rows.append((f"{m} ({'paper ratio' if b == 'paper' else 'matched evals'})", _key(m, b), m))
    return [r for r in rows if r[1] in results["runs"]]


def table(results: dict) -> str:
    """Paper value (paper-budget rows), ours under the paper's protocol (best test) and validation-
    selected, forward evaluations and step time."""
    s = summary(results)
    lines = [f"Data: {results['dataset']}, training subset {results['train_subset'] or 'all'}, batch "
             f"{results['batch_size']}, PolyStep {results['steps']} steps x {results['evals_per_step']} evaluations, "
             f"Adam {results['adam_steps']} steps, "
             f"{len(results['seeds'])} seeds; accuracies in %, mean (+- std) over seeds.", "",
             "| method | paper (best test) | ours best test | ours val-selected | forward evals | step time (s) |",
             "|---|---|---|---|---|---|"]
    for label, key, method in _rows(results):
        r = s[key]
        pv = _paper_value(method) if not key.endswith("-matched") else None
        lines.append(f"| {label} | {pv if pv is not None else '–'} | {r['best']:.2f} ± {r['best_std']:.2f} | "
                     f"{r['val']:.2f} ± {r['val_std']:.2f} | {r['evals']:.3g} | {r['wall_s']:.3g} |")
    return "\n".join(lines)


def mean_curve(results: dict, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Forward evaluations and test accuracy (%) at the checkpoints, averaged over seeds (the H7
    curve of run ``key``)."""
    cs = [r["curve"] for r in results["runs"][key]]
    n = min(len(c["evals"]) for c in cs)
    return (np.mean([np.asarray(c["evals"][:n], dtype=float) for c in cs], axis=0),
            100 * np.mean([np.asarray(c["mlp_test_acc"][:n]) for c in cs], axis=0))


def plot(results: dict):
    """Left: test accuracy per method -- validation-selected (filled, +- std over seeds) and best test
    (open), the paper's Table T5 value as a star.  Right (App H7): test accuracy against forward
    evaluations (log x, mean over seeds); baselines at the paper's budget ratio dashed, at matched
    evaluations solid; Adam counts one evaluation per step."""
    import matplotlib.pyplot as plt

    from repro.figures import METHOD_COLORS

    s = summary(results)
    rows = _rows(results)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13.5, 4.4), gridspec_kw={"width_ratios": [1, 1.25]})
    for i, (label, key, method) in enumerate(rows):
        color = METHOD_COLORS[method]
        r = s[key]
        ax.errorbar([i], [r["val"]], yerr=[r["val_std"]], fmt="o", color=color, ms=7, capsize=3,
                    label="val-selected" if i == 0 else None)
        ax.plot([i], [r["best"]], "o", mfc="none", mec=color, ms=10, label="best test (paper protocol)" if i == 0
                else None)
        pv = _paper_value(method) if not key.endswith("-matched") else None
        if pv is not None:
            ax.plot([i], [pv], "*", color="k", ms=10, label="paper, Table T5 (MNIST)" if i == 0 else None)
    ax.set_xticks(range(len(rows)), [lbl.replace(" (", "\n(") for lbl, _, _ in rows], fontsize=7, rotation=30,
                  ha="right")
    ax.set(ylabel="test accuracy (%)", ylim=(0, 100), title="Table T5: test accuracy per method")
    ax.legend(loc="best", fontsize=7)
    for label, key, method in rows:
        x, y = mean_curve(results, key)
        style = "--" if key.endswith("-paper") else "-"
        bx.plot(x, y, style, color=METHOD_COLORS[method], lw=2 if method == "PolyStep" else 1.3, label=label,
                marker="." if len(x) < 4 else None)
    bx.set(xscale="log", xlabel="forward evaluations (mini-batch losses)", ylabel="test accuracy (%)", ylim=(0, 100),
           title="App H7: accuracy vs forward evaluations")
    bx.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.suptitle(f"{TITLE} ({results['dataset']})", fontsize=11)
    fig.tight_layout()
    return fig


def summary_lines(results: dict) -> list[str]:
    s = summary(results)
    return [f"  {label}: val-selected {s[k]['val']:.2f} ± {s[k]['val_std']:.2f}%, best test {s[k]['best']:.2f}%, "
            f"{s[k]['evals']:.3g} evals, {s[k]['wall_s']:.3g} s of steps" for label, k, _ in _rows(results)]
