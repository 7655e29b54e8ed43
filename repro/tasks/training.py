"""Training and evaluation of classifiers: the one loop every experiment's training uses.

* :func:`accuracy` -- the fraction of samples whose arg-max logit is the label (eval mode);
  :func:`evaluate` -- mean cross-entropy and accuracy over an iterable of batches (data that does
  not fit one forward pass);
* :func:`cross_entropy_backward` -- one gradient evaluation: zero the gradients, the mean
  cross-entropy of ``model(x) / T``, backward.  Experiments whose protocol puts something between
  the gradient and the step (a :class:`~ghosts.radius_controller.RadiusController`, a step-length
  measurement, gradient clipping) call it and step themselves;
* :func:`train_classifier` -- ``steps`` optimizer steps on full batches or a
  :class:`~repro.tasks.batches.BatchStream`, by a gradient optimizer (one backward pass per step)
  or a forward-only population optimizer such as :class:`polystep.PolyStep` (a closure over the
  mini-batch), with optional model selection on a validation split, checkpoints and BatchNorm
  recalibration;
* :func:`recalibrate_batchnorm` ("precise BN") and :func:`preload_torch_optim` (timing hygiene).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import Tensor, nn

from ghosts.radius_models import eval_mode
from repro.tasks.batches import BatchStream

__all__ = ["accuracy", "evaluate", "cross_entropy_backward", "train_classifier", "recalibrate_batchnorm",
           "preload_torch_optim"]


def preload_torch_optim() -> None:
    """Build and drop a throwaway optimizer: the first ``torch.optim.Optimizer`` of a process
    imports ``torch._dynamo`` (~1 s here), which must not be timed as an optimizer's set-up."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """``mean_i [argmax_k model(x)_ik == y_i]``, one forward pass in eval mode (BatchNorm on its
    running statistics, no dropout); every module's train/eval flag is restored afterwards."""
    with eval_mode(model):
        return float((model(x).argmax(-1) == y).float().mean())


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> tuple[float, float]:
    """``(mean cross-entropy, accuracy)`` of ``model`` over every sample of ``batches`` (eval mode,
    flags restored): per-batch sums of the losses and of the correct predictions, divided by the
    number of samples, so the result does not depend on how the data is batched."""
    loss, correct, n = 0.0, 0, 0
    with eval_mode(model):
        for x, y in batches:
            z = model(x)
            loss += float(Fn.cross_entropy(z, y, reduction="sum"))
            correct += int((z.argmax(-1) == y).sum())
            n += len(y)
    if n == 0:
        raise ValueError("batches is empty")
    return loss / n, correct / n


def _check_temperature(temperature: float) -> None:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def _cross_entropy(temperature: float) -> Callable[[Tensor, Tensor], Tensor]:
    """``(logits, y) -> mean CE(logits / T, y)``; at ``T = 1`` the plain ``Fn.cross_entropy``."""
    _check_temperature(temperature)
    if temperature == 1.0:
        return Fn.cross_entropy
    return lambda z, y: Fn.cross_entropy(z / temperature, y)


def cross_entropy_backward(model: nn.Module, optimizer, x: Tensor, y: Tensor, *,
                           temperature: float = 1.0) -> Tensor:
    """Zero ``optimizer``'s gradients, evaluate ``L = mean_i CE(model(x_i) / T, y_i)`` (the model
    in its current mode) and back-propagate it; returns ``L`` detached.  The caller takes the step
    (``optimizer.step()``, or a radius controller's clipped step)."""
    optimizer.zero_grad(set_to_none=True)
    loss = _cross_entropy(temperature)(model(x), y)
    loss.backward()
    return loss.detach()


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, x: Tensor) -> None:
    """Replace every BatchNorm's running statistics by the exact statistics of ``x`` (one
    train-mode forward pass with a cumulative average; "precise BN").  After mini-batch training
    the momentum-0.1 running averages can lag the weights badly, so eval-mode losses would measure
    the stale statistics rather than the network; the flags and momenta are restored."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    flags = [(m, m.training) for m in model.modules()]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    model(x)
    for bn, mom in zip(bns, momenta):
        bn.momentum = mom
    for m, flag in flags:
        m.training = flag


def _state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_classifier(model: nn.Module, x: Tensor, y: Tensor, *, optimizer, steps: int,
                     batch_size: int | None = None, generator: torch.Generator | None = None,
                     temperature: float = 1.0, closure_factory: Callable | None = None,
                     validation: tuple[Tensor, Tensor] | None = None, eval_every: int = 1,
                     snapshot_steps: Iterable[int] = (), recalibrate_bn: bool = True,
                     progress: Callable[[Iterable[int]], Iterable[int]] = iter) -> dict:
    """Train ``model`` in place for ``steps`` steps on ``L = mean CE(model(x) / T, y)``.

    Args:
        optimizer: over ``model``'s parameters.  Without ``closure_factory`` a gradient optimizer
            (``torch.optim.Adam``, ``SGD``, ...): each step is :func:`cross_entropy_backward` then
            ``optimizer.step()``, one forward evaluation.  With ``closure_factory`` a forward-only
            population optimizer (:class:`polystep.PolyStep`, ``polystep.baselines.PopulationOptimizer``):
            each step is ``optimizer.step(closure_factory(model, loss_fn, xb, yb, optimizer.params))``
            (e.g. ``polystep.evaluation.population_closure``), ``optimizer.evals_per_step`` forward
            evaluations.
        steps: number of optimizer steps (an integer >= 1).
        batch_size: ``None`` = the full batch ``(x, y)`` every step; else mini-batches of a
            :class:`~repro.tasks.batches.BatchStream` (reshuffled each epoch) driven by ``generator``.
        temperature: ``T > 0`` of the loss.
        validation: ``(x_val, y_val)``: after every ``eval_every``-th step and after the last one the
            validation :func:`accuracy` is logged, and at the end the model is put back to the
            parameters of the (first) best validation accuracy -- model selection on a held-out split.
        snapshot_steps: after these step counts a copy of the ``state_dict`` is kept (so early /
            mid / late checkpoints of one run equal separate runs of the same seed).
        recalibrate_bn: recompute BatchNorm statistics on ``x`` (:func:`recalibrate_batchnorm`)
            before every snapshot and validation and at the end.
        progress: wraps the iterable of step numbers (e.g. a progress bar).

    Returns:
        ``loss`` (np.ndarray of the per-step training-batch losses), ``snapshots`` (step -> state),
        ``forward_evals`` and ``step_s`` (wall seconds spent in the optimizer steps, batch drawing
        and validation excluded); with ``validation`` also ``curve`` (``step``, ``forward_evals``,
        ``train_loss`` of the step's batch, ``val_acc``: np.ndarrays over the evaluations),
        ``best_val_acc`` and ``selected_step``.  The model is left in eval mode.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be an integer >= 1, got {eval_every!r}")
    loss_fn = _cross_entropy(temperature)
    stream = None
    if batch_size is not None:
        if generator is None:
            raise ValueError("mini-batch training needs a generator")
        stream = BatchStream(x, y, batch_size, generator)
    snapshot_steps = set(snapshot_steps)
    losses, snaps, evals, step_s = [], {}, 0, 0.0
    curve = {"step": [], "forward_evals": [], "train_loss": [], "val_acc": []}
    best = (-1.0, None, 0)
    model.train()
    for t in progress(range(1, steps + 1)):
        xb, yb = (x, y) if stream is None else next(stream)
        t0 = time.perf_counter()
        if closure_factory is None:
            loss = cross_entropy_backward(model, optimizer, xb, yb, temperature=temperature)
            optimizer.step()
            evals += 1
        else:
            loss = optimizer.step(closure_factory(model, loss_fn, xb, yb, optimizer.params))
            evals += optimizer.evals_per_step
        step_s += time.perf_counter() - t0
        losses.append(float(loss))
        if t in snapshot_steps:
            if recalibrate_bn:
                recalibrate_batchnorm(model, x)
            snaps[t] = _state(model)
        if validation is not None and (t % eval_every == 0 or t == steps):
            if recalibrate_bn:
                recalibrate_batchnorm(model, x)
            acc = accuracy(model, *validation)
            for key, value in zip(curve, (t, evals, losses[-1], acc)):
                curve[key].append(value)
            if acc > best[0]:
                best = (acc, _state(model), t)
    if recalibrate_bn:
        recalibrate_batchnorm(model, x)
    out = {"loss": np.asarray(losses), "snapshots": snaps, "forward_evals": evals, "step_s": step_s}
    if validation is not None:
        model.load_state_dict(best[1])
        out.update(curve={k: np.asarray(v) for k, v in curve.items()}, best_val_acc=best[0],
                   selected_step=best[2])
    model.eval()
    return out
