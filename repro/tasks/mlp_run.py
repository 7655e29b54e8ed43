"""One run of the MLP benchmark of ``quickstart_digits`` and ``ablation_kronecker_basis``: an MLP
classifier trained by PolyStep (forward passes only) or Adam, the model selected on the validation
split and the test split touched once.

``cfg`` is any object with the fields of :class:`repro.experiments.quickstart_digits.Config`
(``dataset``, ``hidden``, ``steps``, ``batch_size``, ``rank``, ``particle_dim``, cosine ranges
``eps``/``step_radius``/``probe_radius``, ``eval_every``, ``adam_lr``).

:func:`train_mlp` is a cell function (:mod:`repro.cells`): ``quickstart_digits`` maps
``Cell(key, train_mlp, (method, cfg, seed))`` directly (``ctx``, the cell's run context, is its last
positional parameter); ``ablation_kronecker_basis`` wraps it in a module-level cell that passes the
keyword options.  It loads its data itself (:func:`load_classification_data`, deterministic), so a
cell carries only its configuration.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from polystep.evaluation import population_closure
from polystep.optim import PolyStep
from polystep.schedules import Cosine
from repro.context import RunContext
from repro.tasks.digits import DataSplit
from repro.tasks.models import mlp
from repro.tasks.training import accuracy, preload_torch_optim, train_classifier

__all__ = ["load_classification_data", "train_mlp"]


def load_classification_data(dataset: str) -> DataSplit:
    """The fixed train/validation/test split of ``digits`` (offline) or ``mnist`` (the verified data
    cache of :mod:`repro.data`, fetched on first use)."""
    if dataset == "digits":
        from repro.tasks.digits import load_digits_split

        return load_digits_split(seed=0)
    if dataset == "mnist":
        from repro.tasks.mnist import load_mnist_split

        return load_mnist_split(seed=0)
    raise ValueError(f"dataset must be 'digits' or 'mnist', got {dataset!r}")


def train_mlp(method: str, cfg, seed: int, ctx: RunContext, *, polystep_options: dict | None = None,
              closure_factory: Callable = population_closure) -> dict:
    """Train ``mlp(n_features, cfg.hidden, n_classes)`` with ``method`` (``"PolyStep"`` | ``"Adam"``)
    by :func:`~repro.tasks.training.train_classifier` with model selection on the validation split.

    PolyStep: hybrid subspace of rank ``cfg.rank``, absolute cosine radii and temperature, plus
    ``polystep_options`` (e.g. ``basis``, ``absorb_every``); the population closure comes from
    ``closure_factory(model, loss, x, y, params)`` (``population_closure`` or the equal-loss
    ``fast_population_closure``).  The seed varies initialisation, batches and probes; the data
    split is fixed.  Returns the validation curve, the selected step, its test accuracy, the
    forward evaluations and the wall time of the optimizer steps (``step_s``: seconds per step;
    ``setup_s``: building the optimizer).
    """
    if method not in ("PolyStep", "Adam"):
        raise ValueError(f"method must be 'PolyStep' or 'Adam', got {method!r}")
    data = load_classification_data(cfg.dataset)
    dev = ctx.device
    x_tr, y_tr = data.x_train.to(dev), data.y_train.to(dev)
    model = mlp((data.n_features, cfg.hidden, data.n_classes), ctx.torch_generator("init", seed, device="cpu"),
                device=dev)
    setup_s = 0.0
    preload_torch_optim()
    if method == "PolyStep":
        steps = cfg.steps
        t0 = time.perf_counter()
        opt = PolyStep(model.parameters(), rank=cfg.rank, particle_dim=cfg.particle_dim,
                       eps=Cosine(start=cfg.eps[0], end=cfg.eps[1], steps=steps),
                       step_radius=Cosine(start=cfg.step_radius[0], end=cfg.step_radius[1], steps=steps),
                       probe_radius=Cosine(start=cfg.probe_radius[0], end=cfg.probe_radius[1], steps=steps),
                       radius_mode="absolute", seed=ctx.child_seed("polystep", seed) % 2**31,
                       **(polystep_options or {}))
        setup_s = time.perf_counter() - t0
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg.adam_lr)
    hist = train_classifier(model, x_tr, y_tr, optimizer=opt, steps=cfg.steps, batch_size=cfg.batch_size,
                            generator=ctx.torch_generator("batches", seed),
                            closure_factory=closure_factory if method == "PolyStep" else None,
                            validation=(data.x_val.to(dev), data.y_val.to(dev)), eval_every=cfg.eval_every,
                            progress=lambda steps: ctx.bar(steps, desc=f"{method} seed {seed}"))
    ctx.count_evals(hist["forward_evals"])
    test_acc = accuracy(model, data.x_test.to(dev), data.y_test.to(dev))
    return {"curve": hist["curve"], "best_val_acc": hist["best_val_acc"], "selected_step": hist["selected_step"],
            "test_acc": test_acc, "forward_evals": hist["forward_evals"], "step_s": hist["step_s"] / cfg.steps,
            "setup_s": setup_s}
