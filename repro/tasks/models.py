"""Small model builders shared by the experiments, initialised from an explicit generator."""

from __future__ import annotations

import torch
from torch import nn


def mlp(sizes: tuple[int, ...] | list[int], generator: torch.Generator, *,
        activation: type[nn.Module] = nn.ReLU, device=None) -> nn.Sequential:
    """``Linear(sizes[0], sizes[1]) - act - ... - Linear(sizes[-2], sizes[-1])`` with PyTorch's
    default initialisation ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` drawn from ``generator``."""
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"sizes must list at least two positive layer widths, got {sizes!r}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layer = nn.Linear(a, b)
        bound = 1.0 / a ** 0.5
        with torch.no_grad():
            layer.weight.copy_(torch.empty(b, a).uniform_(-bound, bound, generator=generator))
            layer.bias.copy_(torch.empty(b).uniform_(-bound, bound, generator=generator))
        layers.append(layer)
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers).to(device)
