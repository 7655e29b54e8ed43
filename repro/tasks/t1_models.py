"""The five non-differentiable networks of Table T1 and their smooth twins.

PolyStep paper §5.2 (the authors' ``experiments/runners/nondiff_models.py``; the reconstruction in
paper/polystep_reconstruction.md §5.2).  The operation marked (*) has zero derivative almost
everywhere; ``hard=False`` replaces it by the smooth twin the paper's "Adam on the smooth surrogate
model" baseline trains:

=============  =====================  ==========================================================  ========
task           data                   architecture (hard op (*); smooth twin)                      params
=============  =====================  ==========================================================  ========
``snn``        MNIST                  Linear 784-128 -> LIF (T = 15, constant current) ->          101,770
                                      Linear 128-10 per step -> LIF, output = spike count (*)
                                      (spike ``1[m >= 1]``; twin ``sigmoid(10 (m - 1))``)
``int8``       MNIST                  Linear 784-128, ReLU, QuantizedLinear 128-128 (int8,         118,282
                                      scale 0.01 (*); twin: the float layer), ReLU, Linear 128-10
``argmax``     Fashion-MNIST          Linear 784-128, ReLU, DiscreteAttention(128, 8 slots)        119,306
                                      (``argmax_j <x, K_j>`` (*); twin: softmax), Linear 128-10
``staircase``  MNIST                  Linear 784-128, stair, Linear 128-128, stair, Linear 128-10  118,282
                                      (``stair = floor(5 sigmoid(x)) / 5`` (*); twin: sigmoid)
``moe``        MNIST + Fashion-MNIST  Linear 784-128, ReLU, HardMoE(128, 4 experts of             235,672
               (20 classes)           128-128-128; top-1 gate (*); twin: softmax mixture),
                                      Linear 128-20
=============  =====================  ==========================================================  ========

Every model is an ``nn.Sequential`` (so :func:`polystep.fast_eval.fast_population_closure` can share
its prefix) initialised from an explicit ``torch.Generator``: ``nn.Linear`` layers with PyTorch's
default law ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weight and bias, the int8 layer
``N(0, 0.1^2)``, the attention keys ``N(0, 0.5^2)`` (the authors' initialisations).  The hard model and
its twin built from the same generator state have identical parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from polystep.nondiff import DiscreteAttention, HardMoE, QuantizedLinear, Staircase, spiking_mlp

__all__ = ["TASKS", "Task", "build_t1_model", "n_parameters"]


@dataclass(frozen=True)
class Task:
    """One row of Table T1: its data set (a :mod:`repro.tasks.mnist` split name), class count and the
    name the report prints."""

    name: str
    dataset: str
    n_classes: int
    pretty: str


#: the rows of Table T1, in the paper's order
TASKS: dict[str, Task] = {
    "snn": Task("snn", "mnist", 10, "SNN hard-LIF (MNIST)"),
    "int8": Task("int8", "mnist", 10, "int8 MLP (MNIST)"),
    "argmax": Task("argmax", "fashion_mnist", 10, "argmax attention (Fashion-MNIST)"),
    "staircase": Task("staircase", "mnist", 10, "staircase MLP (MNIST)"),
    "moe": Task("moe", "mnist_fashion", 20, "hard MoE (MNIST + Fashion-MNIST, 20 classes)"),
}


def _uniform_init(layer: nn.Linear, generator: torch.Generator) -> None:
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.copy_(torch.empty_like(layer.weight, device="cpu").uniform_(-bound, bound, generator=generator))
        if layer.bias is not None:
            layer.bias.copy_(torch.empty_like(layer.bias, device="cpu").uniform_(-bound, bound, generator=generator))


def _init(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Draw every parameter of ``model`` from ``generator``, module by module in definition order."""
    for m in model.modules():
        if isinstance(m, QuantizedLinear):
            with torch.no_grad():
                m.weight.copy_(torch.empty_like(m.weight, device="cpu").normal_(0.0, 0.1, generator=generator))
                m.bias.copy_(torch.empty_like(m.bias, device="cpu").normal_(0.0, 0.1, generator=generator))
        elif isinstance(m, nn.Linear):
            _uniform_init(m, generator)
        elif isinstance(m, DiscreteAttention):
            with torch.no_grad():
                m.keys.copy_(torch.empty_like(m.keys, device="cpu").normal_(0.0, 0.5, generator=generator))
    return model


def build_t1_model(task: str, generator: torch.Generator, *, hard: bool = True, hidden: int = 128,
                   timesteps: int = 15, surrogate: float | None = None, device=None,
                   dtype=torch.float32) -> nn.Sequential:
    """The network of Table T1 row ``task`` (module docstring), hard or its smooth twin.

    Args:
        task: one of :data:`TASKS`.
        generator: a CPU ``torch.Generator``; all parameters are drawn from it.
        hard: the non-differentiable model (``True``) or its smooth twin.
        hidden: the hidden width (128 in the paper).
        timesteps: the SNN's time steps ``T`` (15 in the paper).
        surrogate: SNN only: the fast-sigmoid slope ``k`` of a surrogate gradient for BPTT
            (:class:`polystep.nondiff.LIF`; the forward pass stays the hard one).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
    if surrogate is not None and task != "snn":
        raise ValueError(f"surrogate applies to the spiking network only, got task {task!r}")
    n_in, n_out = 784, TASKS[task].n_classes
    if task == "snn":
        model = spiking_mlp((n_in, hidden, n_out), steps=timesteps, hard=hard, surrogate=surrogate, generator=None)
    elif task == "int8":
        model = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(),
                              QuantizedLinear(hidden, hidden, hard=hard, init_std=None), nn.ReLU(),
                              nn.Linear(hidden, n_out))
    elif task == "argmax":
        model = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), DiscreteAttention(hidden, 8, hard=hard),
                              nn.Linear(hidden, n_out))
    elif task == "staircase":
        model = nn.Sequential(nn.Linear(n_in, hidden), Staircase(5, hard=hard), nn.Linear(hidden, hidden),
                              Staircase(5, hard=hard), nn.Linear(hidden, n_out))
    else:
        model = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), HardMoE(hidden, 4, hidden, hard=hard),
                              nn.Linear(hidden, n_out))
    return _init(model, generator).to(device=device, dtype=dtype)


def n_parameters(model: nn.Module) -> int:
    """The number of trainable scalars."""
    return sum(p.numel() for p in model.parameters())
