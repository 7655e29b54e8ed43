"""Resolve ``--device auto|cpu|cuda`` once, at the entry point."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is an error."""
    if name not in DEVICE_CHOICES and not str(name).startswith("cuda:"):
        raise ValueError(f"device must be one of {DEVICE_CHOICES} (or 'cuda:N'), got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but torch.cuda.is_available() is False")
    return torch.device(name)
