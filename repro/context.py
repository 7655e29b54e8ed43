"""The run context handed to every experiment's ``run(cfg, ctx)``.

It owns what an experiment must not decide for itself: the root seed and the child seeds derived
from it, the device, the progress bars, the forward-evaluation counter and the resumable
checkpoints of partial work.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from . import storage


def _key_to_ints(keys: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(zlib.crc32(repr(k).encode()) for k in keys)


def progress_enabled() -> bool:
    """Progress bars only for a person at a terminal: off under CI and when stderr is not a TTY."""
    if os.environ.get("CI") or os.environ.get("POLYSTEP_NO_PROGRESS"):
        return False
    return sys.stderr.isatty()


@dataclass
class RunContext:
    """Seeds, device, progress and checkpoints of one experiment run.

    Attributes:
        seed: root seed; every random stream is a named child of it (``SeedSequence`` spawn keys),
            so adding a stream never changes the others.
        device: where tensors live (resolved once by the CLI).
        scale: ``ci`` | ``cpu`` | ``paper``.
        checkpoint_dir: where resumable partial results go (``None``: no checkpointing).
        forward_evals: forward evaluations counted by the experiment (``count_evals``).
        seeds_used: the derived seeds, recorded in the result metadata (those derived inside units
            computed by an earlier, interrupted run included: they are stored with the unit).
        resumed_units: units loaded from checkpoints of an earlier run.
        resumed_compute_s: compute time those units took when they were made.
    """

    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    scale: str = "ci"
    checkpoint_dir: Path | None = None
    progress: bool = field(default_factory=progress_enabled)
    forward_evals: int = 0
    seeds_used: dict[str, int] = field(default_factory=dict)
    resumed_units: int = 0
    resumed_compute_s: float = 0.0

    def child_seed(self, *keys: Any) -> int:
        """A 63-bit seed derived from the root seed and ``keys`` (stable across runs and machines)."""
        ss = np.random.SeedSequence(entropy=self.seed, spawn_key=_key_to_ints(keys))
        value = int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
        self.seeds_used["/".join(map(str, keys))] = value
        return value

    def numpy_rng(self, *keys: Any) -> np.random.Generator:
        return np.random.default_rng(self.child_seed(*keys))

    def torch_generator(self, *keys: Any, device: torch.device | str | None = None) -> torch.Generator:
        gen = torch.Generator(device=device if device is not None else self.device)
        gen.manual_seed(self.child_seed(*keys))
        return gen

    def count_evals(self, n: int) -> None:
        """Add ``n`` forward evaluations (one loss of one candidate on one batch) to the budget."""
        self.forward_evals += int(n)

    def bar(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = ""):
        """A tqdm progress bar, disabled where :func:`progress_enabled` says so."""
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, disable=not self.progress, leave=False,
                    dynamic_ncols=True)

    def checkpoint(self, key: str, compute: Callable[[], dict]) -> dict:
        """Return the stored result of unit ``key`` or compute, store and return it.

        Long experiments split their work into units (one seed, one grid cell, ...) and wrap each
        in ``checkpoint``: an interrupted run then resumes at the first unfinished unit.  A unit is
        stored with what it adds to the run's metadata -- its forward evaluations, the seeds derived
        inside it and its compute time -- which are re-added on resume, so a resumed run's metadata
        is that of an uninterrupted one (its ``compute_time_s`` counts every fragment).  A corrupt
        checkpoint is moved aside with a warning and the unit recomputed.
        """
        if self.checkpoint_dir is None:
            return compute()
        path = Path(self.checkpoint_dir) / f"{key}.json"
        try:
            stored = storage.load(path)
        except FileNotFoundError:
            stored = None
        except storage.CorruptResultError as err:
            moved = storage.quarantine(path)
            from .runner import CorruptResultWarning

            warnings.warn(f"{err}; moved aside to {moved.name}, recomputing the unit",
                          CorruptResultWarning, stacklevel=2)
            stored = None
        if stored is not None:
            self.forward_evals += int(stored.get("forward_evals", 0))
            self.seeds_used.update({k: int(v) for k, v in stored.get("seeds", {}).items()})
            self.resumed_units += 1
            self.resumed_compute_s += float(stored.get("compute_s", 0.0))
            return stored["value"]
        before, seeds_before = self.forward_evals, dict(self.seeds_used)
        started = time.perf_counter()
        value = compute()
        seeds = {k: v for k, v in self.seeds_used.items() if seeds_before.get(k) != v}
        storage.save(path, {"value": value, "forward_evals": self.forward_evals - before,
                            "seeds": seeds, "compute_s": time.perf_counter() - started})
        return value
