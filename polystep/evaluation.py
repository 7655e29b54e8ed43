"""Population evaluation: the loss of many candidate parameter vectors in one vectorised call.

PolyStep's cost is ``P * V * K`` forward evaluations per step.  The optimizer hands its closure a
*population*: a list of tensors aligned with the optimizer's parameters, each of shape
``[B, *param.shape]`` (candidate ``b`` uses ``params[j][b]``), and expects ``B`` losses back.
:func:`population_closure` builds such a closure for any ``nn.Module`` with
``torch.func.functional_call`` + ``torch.vmap``; tensors that are identical across the population
arrive as stride-0 expansions, so they cost no memory.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

__all__ = ["population_closure", "parameter_names"]


def parameter_names(model: nn.Module, params: Sequence[Tensor]) -> list[str]:
    """The names in ``model`` of ``params`` (matched by identity), in the given order."""
    by_id = {id(p): name for name, p in model.named_parameters()}
    names = []
    for i, p in enumerate(params):
        if id(p) not in by_id:
            raise ValueError(f"parameter {i} (shape {tuple(p.shape)}) is not a parameter of the model")
        names.append(by_id[id(p)])
    return names


def population_closure(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor,
                       y: Tensor, params: Sequence[Tensor] | None = None,
                       ) -> Callable[[Sequence[Tensor]], Tensor]:
    """A closure ``thetas -> losses`` evaluating ``loss_fn(model_theta(x), y)`` for every candidate.

    Args:
        model: the network; evaluated in its current mode (use ``eval()`` for batch-norm models:
            running statistics cannot be updated inside ``vmap``).
        loss_fn: ``(outputs, targets) -> scalar``, e.g. ``torch.nn.functional.cross_entropy``.
        x, y: the mini-batch shared by every candidate (same batch for all probes, Algorithm 1).
        params: the optimizer's parameters (default: ``list(model.parameters())``).

    Returns:
        ``closure(thetas)`` with ``thetas[j]`` of shape ``[B, *params[j].shape]`` -> losses ``[B]``.
    """
    params = list(model.parameters()) if params is None else list(params)
    names = parameter_names(model, params)

    def single(*thetas: Tensor) -> Tensor:
        out = functional_call(model, dict(zip(names, thetas)), (x,), strict=False)
        return loss_fn(out, y)

    batched = vmap(single, in_dims=tuple(0 for _ in names))

    def closure(thetas: Sequence[Tensor]) -> Tensor:
        if len(thetas) != len(names):
            raise ValueError(f"expected {len(names)} parameter tensors, got {len(thetas)}")
        with torch.no_grad():
            return batched(*thetas)

    closure.parameter_names = names  # type: ignore[attr-defined]
    return closure
