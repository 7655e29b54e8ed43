"""Deterministic, infinite mini-batch streams."""

from __future__ import annotations

from typing import Iterator

import torch

__all__ = ["BatchStream"]


class BatchStream:
    """Infinite iterator of ``(x_batch, y_batch)`` mini-batches, reshuffled every epoch.

    Each epoch draws a permutation ``torch.randperm(n, generator=generator)`` and yields
    consecutive chunks of ``batch_size`` samples; the last chunk of an epoch is smaller when
    ``batch_size`` does not divide ``n`` (unless ``drop_last``), so without ``drop_last`` every
    sample appears exactly once per epoch. The stream is a deterministic function of the
    generator's state; it consumes only that generator.

    Args:
        x: features, shape ``[n, ...]``.
        y: targets, shape ``[n, ...]`` (same ``n``).
        batch_size: samples per batch, an integer ``>= 1`` (capped at ``n``).
        generator: a CPU ``torch.Generator`` driving the shuffles.
        drop_last: drop the incomplete last batch of each epoch.

    Attributes:
        epoch: index of the epoch the next batch comes from (0-based).
        batches_per_epoch: number of batches in each epoch.
    """

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator, *, drop_last: bool = False
    ) -> None:
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError("x and y must be torch.Tensors")
        if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y must share the leading dimension, got {tuple(x.shape)} and {tuple(y.shape)}")
        if x.shape[0] == 0:
            raise ValueError("x must contain at least one sample")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        self.x, self.y = x, y
        self.n = x.shape[0]
        self.batch_size = min(batch_size, self.n)
        self.generator = generator
        self.drop_last = drop_last
        self.batches_per_epoch = self.n // self.batch_size if drop_last else -(-self.n // self.batch_size)
        self.epoch = 0
        self._perm: torch.Tensor | None = None
        self._pos = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._perm is None:
            perm = torch.randperm(self.n, generator=self.generator, device=self.generator.device)
            self._perm = perm.to(self.x.device)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        remaining = self.n - self._pos
        if remaining <= 0 or (self.drop_last and remaining < self.batch_size):
            self._perm = None
            self.epoch += 1
        return self.x[idx], self.y[idx.to(self.y.device)]

    def __repr__(self) -> str:
        return f"BatchStream(n={self.n}, batch_size={self.batch_size}, drop_last={self.drop_last}, epoch={self.epoch})"
