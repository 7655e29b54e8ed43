"""The run context handed to every experiment's ``run(cfg, ctx)``.

It owns what an experiment must not decide for itself: the root seed and the child seeds derived
from it, the device, the progress bars, the forward-evaluation counter, and the computation of the
experiment's cells (:meth:`RunContext.map`: by the run's executor, at a fixed thread count, each
finished cell stored so that an interrupted run resumes with the missing ones; :mod:`repro.cells`).
"""

from __future__ import annotations

import os
import sys
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

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
        threads: intra-op threads of every cell (:mod:`repro.cells`; fixed, so that a result does
            not depend on the machine's core count).
        executor: where :meth:`map` computes cells (``None``: in this process, one after another).
        cells_compute_s: compute time of the cells computed in this run (summed over workers).
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
    threads: int = 1
    executor: Any = None
    cells_compute_s: float = 0.0

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

    def _load_unit(self, key: str) -> dict | None:
        """The stored unit ``key`` of an earlier (interrupted) run, or ``None``; a corrupt one is
        moved aside with a warning."""
        if self.checkpoint_dir is None:
            return None
        path = Path(self.checkpoint_dir) / f"{key}.json"
        try:
            return storage.load(path)
        except FileNotFoundError:
            return None
        except storage.CorruptResultError as err:
            moved = storage.quarantine(path)
            from .runner import CorruptResultWarning

            warnings.warn(f"{err}; moved aside to {moved.name}, recomputing the unit",
                          CorruptResultWarning, stacklevel=3)
            return None

    def _resume(self, stored: dict) -> Any:
        self.forward_evals += int(stored.get("forward_evals", 0))
        self.seeds_used.update({k: int(v) for k, v in stored.get("seeds", {}).items()})
        self.resumed_units += 1
        self.resumed_compute_s += float(stored.get("compute_s", 0.0))
        return stored["value"]

    def map(self, cells: Sequence[Any], *, desc: str = "cells") -> list:
        """The values of ``cells`` (:class:`repro.cells.Cell`), in order.

        Cells stored by an earlier run of this configuration and code are loaded; the others are
        computed by :attr:`executor` (each with :attr:`threads` intra-op threads and a fresh
        context of this root seed) and stored atomically as each one arrives, with what it adds
        to the run's metadata (forward evaluations, derived seeds, compute time).  If some cells
        fail, the others are stored first and :class:`repro.cells.CellsFailedError` names the
        failed ones with their tracebacks: a rerun computes only those.  A loaded cell re-adds
        what it added to the metadata, so a resumed run's metadata is that of an uninterrupted one
        (its ``compute_time_s`` counts every fragment); a corrupt stored cell is moved aside with a
        warning and recomputed.
        """
        from .cells import Cell, CellEnv, CellFailure, CellsFailedError, InProcess

        cells = list(cells)
        if not all(isinstance(c, Cell) for c in cells):
            raise TypeError("map() takes repro.cells.Cell objects")
        keys = [c.key for c in cells]
        if len(set(keys)) != len(keys):
            raise ValueError(f"cell keys must be unique, repeated: {sorted({k for k in keys if keys.count(k) > 1})}")
        values: list[Any] = [None] * len(cells)
        todo = []
        for i, cell in enumerate(cells):
            stored = self._load_unit(cell.key)
            if stored is None:
                todo.append(i)
            else:
                values[i] = self._resume(stored)
        if not todo:
            return values
        executor = self.executor if self.executor is not None else InProcess()
        env = CellEnv(seed=self.seed, device=str(self.device), scale=self.scale, threads=self.threads)
        failures: dict[str, CellFailure] = {}
        with self.bar(total=len(todo), desc=desc) as bar:
            for j, outcome in executor.run([cells[i] for i in todo], env):
                i = todo[j]
                if isinstance(outcome, CellFailure):
                    failures[cells[i].key] = outcome
                    if self.checkpoint_dir is not None:  # for `polystep-repro status`
                        storage.atomic_write_text(Path(self.checkpoint_dir) / f"{cells[i].key}.failed",
                                                  outcome.traceback)
                    continue
                if self.checkpoint_dir is not None:
                    (Path(self.checkpoint_dir) / f"{cells[i].key}.failed").unlink(missing_ok=True)
                    storage.save(Path(self.checkpoint_dir) / f"{cells[i].key}.json",
                                 {"value": outcome.value, "forward_evals": outcome.forward_evals,
                                  "seeds": outcome.seeds, "compute_s": outcome.compute_s,
                                  "threads": outcome.threads})
                self.forward_evals += outcome.forward_evals
                self.seeds_used.update(outcome.seeds)
                self.cells_compute_s += outcome.compute_s
                values[i] = outcome.value
                bar.update(1)
        if failures:
            raise CellsFailedError({k: failures[k] for k in keys if k in failures})
        return values
