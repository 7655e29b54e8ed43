"""Quickstart: train an MLP with PolyStep (forward passes only) next to Adam.

``ci``/``cpu`` scale: scikit-learn's 8x8 digits (real data, offline), MLP 64-32-10, hybrid subspace
of rank 4, particles of dimension 8, orthoplex (V = 16), K = 1, softmax weights.  ``paper`` scale:
the paper's MNIST sanity check (§5.5; paper/polystep_reconstruction.md §4 T5 and §5.3: 784-128-10, rank 8, cosine schedules
eps 10 -> 0.1, r_s 5 -> 1, r_p 10 -> 2, batch 512, 30 epochs), MNIST loaded by torchvision.

Protocol: the model is selected on the validation split (accuracy every ``eval_every`` steps), the
test split is touched once, by the selected model -- unlike the paper's shipped results, which
report the maximum of per-epoch *test* accuracies (paper/polystep_reconstruction.md §6 item 6).  Adam trains the same
architecture on the same batches with backpropagation, as a reference line.  Each method x seed is
one cell (:mod:`repro.cells`, ``"{method}-seed{s}"``), so ``--jobs N`` trains them in parallel.

Claim: the package's own reduced-scale check ``polystep.quickstart_digits_reaches_bar`` (cpu scale:
PolyStep's accuracy on digits and its deficit to Adam against the registered bar); its measuring
function returns the numbers with the evidence its rule reads -- the dataset, both methods' mean
accuracies and PolyStep's deficit to Adam.  The two Table T5 claims ``polystep.t5_mnist_polystep``
and ``polystep.t5_mnist_adam`` were measured here until 2026-12-05; they moved to
:mod:`repro.experiments.t5_mnist_baselines`, which runs Table T5's five methods with one protocol.
The paper-scale plot still draws their paper values (read from the registry).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repro.cells import Cell
from repro.claims import claim, claims_of, get_claim
from repro.context import RunContext
from repro.tasks.mlp_run import train_mlp

ID = "quickstart_digits"
TITLE = "Quickstart: an MLP trained by PolyStep (forward passes only) vs Adam"
CLAIMS = claims_of(ID)
#: Table T5's claims (measured by t5_mnist_baselines; their paper values drawn by the paper-scale plot)
POLYSTEP_CLAIM, ADAM_CLAIM = "polystep.t5_mnist_polystep", "polystep.t5_mnist_adam"
DIGITS_CLAIM = "polystep.quickstart_digits_reaches_bar"


@dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    hidden: int = 32
    steps: int = 300
    batch_size: int = 128
    rank: int = 4
    particle_dim: int = 8
    eps: tuple[float, float] = (0.1, 0.01)          # cosine start -> end
    step_radius: tuple[float, float] = (1.0, 0.2)   # absolute radii, cosine start -> end
    probe_radius: tuple[float, float] = (1.0, 0.2)
    eval_every: int = 25
    adam_lr: float = 1e-2
    seeds: tuple[int, ...] = (0,)


CONFIGS = {
    "ci": Config(steps=150, seeds=(0,)),
    "cpu": Config(steps=400, seeds=(0, 1, 2)),
    "paper": Config(dataset="mnist", hidden=128, steps=3540, batch_size=512, rank=8,
                    eps=(10.0, 0.1), step_radius=(5.0, 1.0), probe_radius=(10.0, 2.0),
                    eval_every=118, adam_lr=1e-3, seeds=(42, 123, 456, 789, 1337)),
}


METHODS = ("PolyStep", "Adam")


def run(cfg: Config, ctx: RunContext) -> dict:
    """One cell per method and seed (``"{method}-seed{s}"``: :func:`~repro.tasks.mlp_run.train_mlp`),
    then the per-method test accuracies."""
    cells = [Cell(f"{method}-seed{s}", train_mlp, (method, cfg, s)) for method in METHODS for s in cfg.seeds]
    values = iter(ctx.map(cells, desc="method x seed"))
    out: dict = {"methods": {}}
    for method in METHODS:
        per_seed = [next(values) for _ in cfg.seeds]
        out["methods"][method] = {
            "seeds": list(cfg.seeds), "runs": per_seed,
            "test_acc": np.asarray([r["test_acc"] for r in per_seed]),
        }
    out["dataset"] = cfg.dataset
    return out


def _evidence(results: dict) -> dict:
    """What the claim's rule reads: the dataset, each method's mean (and per-seed) test accuracy in
    %, and PolyStep's deficit to Adam in percentage points."""
    ps = results["methods"]["PolyStep"]["test_acc"]
    adam = results["methods"]["Adam"]["test_acc"]
    return {"dataset": results["dataset"], "seeds": len(ps),
            "polystep_acc": 100 * float(np.mean(ps)), "adam_acc": 100 * float(np.mean(adam)),
            "gap_to_adam_pp": 100 * float(np.mean(adam) - np.mean(ps)),
            "polystep_acc_per_seed": [100 * float(a) for a in ps],
            "adam_acc_per_seed": [100 * float(a) for a in adam]}


def _measurement(results: dict, method: str) -> dict:
    ev = _evidence(results)
    return {"value": ev["polystep_acc" if method == "PolyStep" else "adam_acc"],
            "detail": (f"{ev['dataset']}, val-selected test acc, mean of {ev['seeds']} seeds; "
                       f"PolyStep-Adam gap {ev['gap_to_adam_pp']:.1f} pp"),
            "evidence": ev}


@claim(DIGITS_CLAIM)
def _quickstart_digits_reaches_bar(results: dict) -> dict:
    return _measurement(results, "PolyStep")


def plot(results: dict):
    import matplotlib.pyplot as plt

    from repro.figures import METHOD_COLORS

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for method, res in results["methods"].items():
        color = METHOD_COLORS[method]
        for i, r in enumerate(res["runs"]):
            c = r["curve"]
            label = f"{method} (test {100 * np.mean(res['test_acc']):.1f}%)" if i == 0 else None
            axes[0].plot(c["step"], 100 * c["val_acc"], color=color, alpha=0.85, label=label)
            axes[1].plot(c["forward_evals"], 100 * c["val_acc"], color=color, alpha=0.85, label=label)
    axes[0].set(xlabel="optimizer step (one mini-batch)", ylabel="validation accuracy (%)",
                title="accuracy per optimizer step")
    axes[1].set(xscale="log", xlabel="forward evaluations (mini-batch losses)",
                title="accuracy per forward evaluation (PolyStep: P·V·K per step)")
    if results["dataset"] == "mnist":  # the paper's numbers (registry)
        for method, cid in (("PolyStep", POLYSTEP_CLAIM), ("Adam", ADAM_CLAIM)):
            axes[0].axhline(get_claim(cid).paper_value, color=METHOD_COLORS[method], ls=":", lw=1)
    else:  # the reduced-scale criterion's accuracy bar (registry)
        axes[0].axhline(get_claim(DIGITS_CLAIM).extra["min_accuracy"], color="0.5", ls=":", lw=1)
    axes[0].legend(loc="lower right")
    fig.suptitle(f"{TITLE} ({results['dataset']})", fontsize=11)
    fig.tight_layout()
    return fig


def summary_lines(results: dict) -> list[str]:
    return [f"  {m}: test acc per seed {np.round(100 * r['test_acc'], 2).tolist()}"
            for m, r in results["methods"].items()]
