"""One training run of an MLP classifier by PolyStep (forward passes only) or Adam, with the model
selected on the validation split and the test split touched once (used by ``quickstart_digits`` and
``ablation_kronecker_basis``).

``cfg`` is any object with the fields of :class:`repro.experiments.quickstart_digits.Config`
(``dataset``, ``hidden``, ``steps``, ``batch_size``, ``rank``, ``particle_dim``, cosine ranges
``eps``/``step_radius``/``probe_radius``, ``eval_every``, ``adam_lr``).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import nn

from polystep.evaluation import population_closure
from polystep.optim import PolyStep
from polystep.schedules import Cosine
from repro.context import RunContext
from repro.tasks.batches import BatchStream
from repro.tasks.models import mlp

__all__ = ["load_classification_data", "accuracy", "train_classifier", "preload_torch_optim"]


def preload_torch_optim() -> None:
    """Build and drop a throwaway optimizer: the first ``torch.optim.Optimizer`` of a process
    imports ``torch._dynamo`` (~1 s here), which must not be timed as an optimizer's set-up."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def load_classification_data(dataset: str):
    """The fixed train/validation/test split of ``digits`` (offline) or ``mnist`` (torchvision)."""
    if dataset == "digits":
        from repro.tasks.digits import load_digits_split

        return load_digits_split(seed=0)
    from repro.tasks.mnist import load_mnist_split

    return load_mnist_split("data", seed=0, download=True)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean())


def train_classifier(method: str, cfg, seed: int, ctx: RunContext, *,
                     polystep_options: dict | None = None,
                     closure_factory: Callable = population_closure) -> dict:
    """Train ``mlp(n_features, cfg.hidden, n_classes)`` with ``method`` (``"PolyStep"`` | ``"Adam"``).

    PolyStep: hybrid subspace of rank ``cfg.rank``, absolute cosine radii and temperature, plus
    ``polystep_options`` (e.g. ``basis``, ``absorb_every``); the population closure comes from
    ``closure_factory(model, loss, x, y, params)`` (``population_closure`` or the equal-loss
    ``fast_population_closure``).  The seed varies initialisation, batches and probes; the data
    split is fixed.  Returns the validation curve, the selected step, its test accuracy, the
    forward evaluations and the wall time of the optimizer steps (``step_s``: seconds per step).
    """
    if method not in ("PolyStep", "Adam"):
        raise ValueError(f"method must be 'PolyStep' or 'Adam', got {method!r}")
    data = load_classification_data(cfg.dataset)
    dev = ctx.device
    x_tr, y_tr = data.x_train.to(dev), data.y_train.to(dev)
    x_val, y_val = data.x_val.to(dev), data.y_val.to(dev)
    model = mlp((data.n_features, cfg.hidden, data.n_classes), ctx.torch_generator("init", seed, device="cpu"),
                device=dev)
    batches = BatchStream(x_tr, y_tr, cfg.batch_size, ctx.torch_generator("batches", seed))
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
    curve = {"step": [], "forward_evals": [], "train_loss": [], "val_acc": []}
    best = (-1.0, None, 0)
    evals, step_s = 0, 0.0
    for t in ctx.bar(range(1, cfg.steps + 1), desc=f"{method} seed {seed}"):
        x, y = next(batches)
        t0 = time.perf_counter()
        if method == "PolyStep":
            loss = opt.step(closure_factory(model, Fn.cross_entropy, x, y, opt.params))
            evals += opt.evals_per_step
        else:
            opt.zero_grad()
            loss = Fn.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            evals += 1  # one forward (and one backward) pass
        step_s += time.perf_counter() - t0
        if t % cfg.eval_every == 0 or t == cfg.steps:
            acc = accuracy(model, x_val, y_val)
            curve["step"].append(t)
            curve["forward_evals"].append(evals)
            curve["train_loss"].append(float(loss.detach()))
            curve["val_acc"].append(acc)
            if acc > best[0]:
                best = (acc, {k: v.detach().clone() for k, v in model.state_dict().items()}, t)
    ctx.count_evals(evals)
    model.load_state_dict(best[1])
    test_acc = accuracy(model, data.x_test.to(dev), data.y_test.to(dev))
    return {"curve": {k: np.asarray(v) for k, v in curve.items()}, "best_val_acc": best[0],
            "selected_step": best[2], "test_acc": test_acc, "forward_evals": evals,
            "step_s": step_s / cfg.steps, "setup_s": setup_s}
