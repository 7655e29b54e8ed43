"""The run context handed to every experiment's ``run(cfg, ctx)``.

It owns what an experiment must not decide for itself: the root seed and the child seeds derived
from it, the device, the progress bars, the forward-evaluation counter, and the computation of the
experiment's cells (:meth:`RunContext.map`: by the run's executor, at a fixed thread count, each
finished cell stored so that an interrupted run resumes with the missing ones; :mod:`repro.cells`).

Bookkeeping in an experiment's partial-results folder, read by ``polystep-repro status``:

* ``<key>.json`` (+ ``.npz``): a finished cell (value, forward evaluations, seeds, compute time);
* ``<key>.failed``: a cell that raised, as json ``{"error": last line, "traceback": ...}``;
* ``map-<digest>.manifest``: the keys declared by one :meth:`RunContext.map` call, as json
  ``{"desc": ..., "keys": [...]}``, written before any of them is computed -- so the cells still
  missing are known while the run is under way or after it was interrupted.

None of it enters a cell's value: the numbers are the same with or without it.
"""

from __future__ import annotations

import hashlib
import json
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


#: suffix of a map call's manifest of declared cell keys, and of a failed cell's record
MANIFEST_SUFFIX = ".manifest"
FAILED_SUFFIX = ".failed"


def _key_to_ints(keys: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(zlib.crc32(repr(k).encode()) for k in keys)


def progress_enabled() -> bool:
    """Progress bars only for a person at a terminal: off under CI and when stderr is not a TTY."""
    if os.environ.get("CI") or os.environ.get("POLYSTEP_NO_PROGRESS"):
        return False
    return sys.stderr.isatty()


@dataclass
class OverallProgress:
    """One progress bar over the cells of several experiments (``polystep-repro all``).

    Each :meth:`RunContext.map` given this object adds its cells to :attr:`total` when it declares
    them (so the total grows experiment by experiment) and counts each cell in :attr:`done` when it
    is loaded or computed; a failed cell is not counted.  The bar (tqdm, with an ETA) is shown only
    when :attr:`enabled` (default :func:`progress_enabled`); the counters are kept either way.
    """

    enabled: bool = field(default_factory=progress_enabled)
    desc: str = "all experiments' cells"
    total: int = 0
    done: int = 0
    _bar: Any = field(default=None, init=False, repr=False)

    def declare(self, n: int) -> None:
        """Add ``n`` declared cells to the total."""
        self.total += int(n)
        if self.enabled and self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, leave=True, dynamic_ncols=True)
        elif self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more cells as done."""
        self.done += int(n)
        if self._bar is not None:
            self._bar.update(int(n))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "OverallProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


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
        cells_declared: cells declared by the :meth:`map` calls of this run (loaded or computed).
        overall: the bar over several experiments' cells (:class:`OverallProgress`), or ``None``.
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
    cells_declared: int = 0
    overall: OverallProgress | None = None

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

    def _write_manifest(self, keys: list[str], desc: str) -> None:
        """Record the keys of one :meth:`map` call (``map-<digest>.manifest``), before computing."""
        if self.checkpoint_dir is None:
            return
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:12]
        storage.atomic_write_text(Path(self.checkpoint_dir) / f"map-{digest}{MANIFEST_SUFFIX}",
                                  json.dumps({"desc": desc, "keys": keys}) + "\n")

    def _record_failure(self, key: str, failure: Any) -> None:
        """Record a failed cell (``<key>.failed``: its error's last line and traceback)."""
        if self.checkpoint_dir is None:
            return
        lines = [line for line in (failure.traceback or "").strip().splitlines() if line.strip()]
        last = lines[-1].strip() if lines else failure.error
        storage.atomic_write_text(Path(self.checkpoint_dir) / f"{key}{FAILED_SUFFIX}",
                                  json.dumps({"error": last, "traceback": failure.traceback}) + "\n")

    def _store_cell(self, key: str, outcome: Any) -> None:
        """Store a finished cell (``<key>.json``) and drop the record of an earlier failure."""
        if self.checkpoint_dir is None:
            return
        (Path(self.checkpoint_dir) / f"{key}{FAILED_SUFFIX}").unlink(missing_ok=True)
        storage.save(Path(self.checkpoint_dir) / f"{key}.json",
                     {"value": outcome.value, "forward_evals": outcome.forward_evals,
                      "seeds": outcome.seeds, "compute_s": outcome.compute_s, "threads": outcome.threads})

    def map(self, cells: Sequence[Any], *, desc: str = "cells") -> list:
        """The values of ``cells`` (:class:`repro.cells.Cell`), in order.

        The call first records the declared keys (a manifest in the checkpoint folder, for
        ``polystep-repro status``).  Cells stored by an earlier run of this configuration and code
        are loaded; the others are computed by :attr:`executor` (each with :attr:`threads` intra-op
        threads and a fresh context of this root seed) and stored atomically as each one arrives,
        with what it adds to the run's metadata (forward evaluations, derived seeds, compute time).
        If some cells fail, the others are stored first, each failure is recorded with its error's
        last line, and :class:`repro.cells.CellsFailedError` names the failed ones with their
        tracebacks: a rerun computes only those.  A loaded cell re-adds what it added to the
        metadata, so a resumed run's metadata is that of an uninterrupted one (its
        ``compute_time_s`` counts every fragment); a corrupt stored cell is moved aside with a
        warning and recomputed.  :attr:`overall`, if set, counts the declared and finished cells.
        """
        from .cells import Cell, CellEnv, CellFailure, CellsFailedError, InProcess

        cells = list(cells)
        if not all(isinstance(c, Cell) for c in cells):
            raise TypeError("map() takes repro.cells.Cell objects")
        keys = [c.key for c in cells]
        if len(set(keys)) != len(keys):
            raise ValueError(f"cell keys must be unique, repeated: {sorted({k for k in keys if keys.count(k) > 1})}")
        self._write_manifest(keys, desc)
        self.cells_declared += len(cells)
        if self.overall is not None:
            self.overall.declare(len(cells))
        values: list[Any] = [None] * len(cells)
        todo = []
        for i, cell in enumerate(cells):
            stored = self._load_unit(cell.key)
            if stored is None:
                todo.append(i)
            else:
                values[i] = self._resume(stored)
        if self.overall is not None and len(todo) < len(cells):
            self.overall.advance(len(cells) - len(todo))
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
                    self._record_failure(cells[i].key, outcome)
                    continue
                self._store_cell(cells[i].key, outcome)
                self.forward_evals += outcome.forward_evals
                self.seeds_used.update(outcome.seeds)
                self.cells_compute_s += outcome.compute_s
                values[i] = outcome.value
                bar.update(1)
                if self.overall is not None:
                    self.overall.advance(1)
        if failures:
            raise CellsFailedError({k: failures[k] for k in keys if k in failures})
        return values
