"""Cells: the independent units of work of an experiment, and the executors that compute them.

An experiment's ``run(cfg, ctx)`` declares its independent units of work -- typically one seed of one
configuration -- as :class:`Cell` objects and hands them to :meth:`repro.context.RunContext.map`,
which returns their values in order; everything after that (the reduction to the experiment's
results) is ordinary code.  A cell is a module-level function and its arguments::

    def _unit(T: float, seed: int, cfg: Config, ctx: RunContext) -> dict: ...

    values = ctx.map([Cell(f"T{T:g}-seed{s}", _unit, (T, s, cfg)) for T in cfg.temps for s in cfg.seeds])

``fn(*args, ctx)`` is called with a fresh :class:`~repro.context.RunContext` of the same root seed,
device and scale, so a cell's random streams (``ctx.child_seed(...)``), and therefore its result,
depend only on its own arguments: never on which other cells ran before it, in which process, or on
how many cores the machine has.  The cell also fixes its own intra-op thread count
(:attr:`CellEnv.threads`, recorded in the result's metadata): a reduction over floating-point sums
(a matrix product, a convolution) depends on how the work is split between threads, and training
amplifies the difference, so a result is bitwise reproducible only at a fixed thread count.

Executors compute the cells that are not already checkpointed (:func:`make_executor`):

* :class:`InProcess` (default): one after the other, in this process;
* :class:`ProcessPool` (``--jobs N``): ``N`` worker processes of this machine
  (``concurrent.futures``, ``spawn`` start method);
* :class:`DaskExecutor` (``--executor dask:HOST:PORT``): the workers of an existing Dask
  ``distributed`` scheduler -- a workstation's ``LocalCluster``, or a SLURM/PBS cluster started with
  ``dask-jobqueue``.  Workers need the same environment (this package, importable) but no shared
  filesystem: cell values travel back to the client, which writes the checkpoints.

Whatever the executor, the client stores each finished cell atomically as soon as it arrives; a cell
that fails is reported with its traceback while the others still land, and a rerun computes only
the cells that are missing.
"""

from __future__ import annotations

import os
import re
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Cell", "CellEnv", "CellResult", "CellFailure", "CellsFailedError", "ExecutorUnavailable",
           "compute_cell", "InProcess", "ProcessPool", "DaskExecutor", "make_executor"]

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+,-]*$")


@dataclass(frozen=True)
class Cell:
    """One independent unit of work: ``fn(*args, ctx)``, stored under ``key``.

    Args:
        key: unique within the experiment; names the cell's checkpoint file (letters, digits and
            ``. _ = + , -``).
        fn: a module-level function (it is sent to worker processes by reference, so a lambda or
            a nested function cannot be a cell); its last parameter receives the cell's
            :class:`~repro.context.RunContext`.
        args: the other arguments (picklable: numbers, configs, arrays, tensors).
    """

    key: str
    fn: Callable[..., Any]
    args: tuple = ()

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _KEY.match(self.key):
            raise ValueError(f"cell key must be a non-empty file-name-safe string "
                             f"(letters, digits, . _ = + , -), got {self.key!r}")
        qualname = getattr(self.fn, "__qualname__", "")
        if not callable(self.fn) or "<" in qualname or not getattr(self.fn, "__module__", None):
            raise ValueError(f"cell {self.key!r}: fn must be a module-level function (it is sent to "
                             f"worker processes by reference), got {self.fn!r}")
        if not isinstance(self.args, tuple):
            raise ValueError(f"cell {self.key!r}: args must be a tuple, got {type(self.args).__name__}")


@dataclass(frozen=True)
class CellEnv:
    """What a cell needs to know about its run: root seed, device, scale, intra-op threads."""

    seed: int
    device: str
    scale: str
    threads: int = 1


@dataclass
class CellResult:
    """A finished cell: its value and what it adds to the run's metadata."""

    value: Any
    forward_evals: int
    seeds: dict[str, int]
    compute_s: float
    threads: int


@dataclass
class CellFailure:
    """A cell that raised: the exception's text and its traceback (from the worker)."""

    error: str
    traceback: str


class CellsFailedError(RuntimeError):
    """Some cells failed; the others were stored, so a rerun computes only the failed ones."""

    def __init__(self, failures: dict[str, CellFailure]):
        self.failures = failures
        text = "\n\n".join(f"--- cell {key}: {f.error}\n{f.traceback}" for key, f in failures.items())
        super().__init__(f"{len(failures)} cell(s) failed: {', '.join(failures)}; the other cells are "
                         f"stored, rerun to compute only these.\n{text}")


class ExecutorUnavailable(RuntimeError):
    """The executor cannot be started or reached (e.g. no Dask scheduler at the address)."""


def compute_cell(cell: Cell, env: CellEnv) -> CellResult:
    """Compute ``cell`` in this process with ``env.threads`` intra-op threads (the previous thread
    count is restored afterwards) and a fresh run context of the same root seed, device and scale."""
    from .context import RunContext

    previous = torch.get_num_threads()
    torch.set_num_threads(env.threads)
    try:
        ctx = RunContext(seed=env.seed, device=torch.device(env.device), scale=env.scale,
                         checkpoint_dir=None, progress=False, threads=env.threads)
        started = time.perf_counter()
        value = cell.fn(*cell.args, ctx)
        return CellResult(value=value, forward_evals=ctx.forward_evals, seeds=dict(ctx.seeds_used),
                          compute_s=time.perf_counter() - started, threads=env.threads)
    finally:
        torch.set_num_threads(previous)


def _failure(err: BaseException) -> CellFailure:
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return CellFailure(error=f"{type(err).__name__}: {err}", traceback=text)


Outcome = CellResult | CellFailure


@dataclass
class InProcess:
    """Compute the cells one after the other in this process (the default)."""

    workers: int = 1
    name: str = "in-process"

    def run(self, cells: Sequence[Cell], env: CellEnv) -> Iterator[tuple[int, Outcome]]:
        for i, cell in enumerate(cells):
            try:
                yield i, compute_cell(cell, env)
            except KeyboardInterrupt:
                raise
            except Exception as err:  # noqa: BLE001 - reported with its traceback, the rest go on
                yield i, _failure(err)

    def close(self) -> None:
        pass


@dataclass
class ProcessPool:
    """Compute the cells in ``jobs`` worker processes of this machine (``spawn``: each worker
    imports the package afresh, so no state of this process leaks into a cell)."""

    jobs: int
    name: str = field(init=False, default="process-pool")
    _pool: Any = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"jobs must be an integer >= 1, got {self.jobs!r}")

    @property
    def workers(self) -> int:
        return self.jobs

    def _executor(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.jobs,
                                             mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def run(self, cells: Sequence[Cell], env: CellEnv) -> Iterator[tuple[int, Outcome]]:
        from concurrent.futures import as_completed

        pool = self._executor()
        futures = {pool.submit(compute_cell, cell, env): i for i, cell in enumerate(cells)}
        try:
            for fut in as_completed(futures):
                err = fut.exception()
                yield futures[fut], (fut.result() if err is None else _failure(err))
        finally:
            for fut in futures:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@dataclass
class DaskExecutor:
    """Compute the cells on the workers of an existing Dask ``distributed`` scheduler.

    ``address`` is ``HOST:PORT`` (or ``tcp://HOST:PORT``).  A cell whose worker dies is
    rescheduled by Dask on another worker (up to ``distributed.scheduler.allowed-failures``
    times), then reported as failed.
    """

    address: str
    timeout_s: float = 10.0
    name: str = field(init=False, default="dask")
    _client: Any = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.address.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
            self.address = f"tcp://{self.address}"
        try:
            from distributed import Client
        except ImportError as err:  # pragma: no cover - pinned in the lock
            raise ExecutorUnavailable("the dask executor needs `distributed` (pip install distributed)") from err
        try:
            self._client = Client(self.address, timeout=f"{self.timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError) as err:
            raise ExecutorUnavailable(f"no Dask scheduler reachable at {self.address} within "
                                      f"{self.timeout_s:g} s: {err}") from None

    @property
    def workers(self) -> int:
        return max(1, len(self._client.scheduler_info().get("workers", {})))

    def run(self, cells: Sequence[Cell], env: CellEnv) -> Iterator[tuple[int, Outcome]]:
        from distributed import as_completed

        futures = {self._client.submit(compute_cell, cell, env, pure=False,
                                       key=f"cell-{cell.key}-{os.getpid()}-{time.time_ns()}"): i
                   for i, cell in enumerate(cells)}
        try:
            with self._client.as_current():  # as_completed looks for the current client
                for fut in as_completed(list(futures)):  # each cell as soon as it is done
                    if fut.status == "finished":
                        yield futures[fut], fut.result()
                    else:
                        err = fut.exception()
                        tb = fut.traceback()
                        text = ("".join(traceback.format_exception(type(err), err, tb)) if tb is not None
                                else repr(err))
                        yield futures[fut], CellFailure(error=f"{type(err).__name__}: {err}", traceback=text)
        finally:
            for fut in futures:
                fut.release()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def make_executor(jobs: int | None = None, executor: str | None = None):
    """The executor for ``--jobs N`` / ``--executor SPEC``.

    ``executor``: ``None`` or ``"local"`` (in-process, or a process pool when ``jobs >= 2``), or
    ``"dask:HOST:PORT"``.  ``jobs`` must be ``>= 1``.
    """
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"--jobs must be an integer >= 1, got {jobs!r}")
    if executor in (None, "", "local"):
        return ProcessPool(jobs) if jobs and jobs > 1 else InProcess()
    if executor.startswith("dask:"):
        address = executor[len("dask:"):]
        if not address:
            raise ValueError("--executor dask:HOST:PORT needs the scheduler's address")
        return DaskExecutor(address)
    raise ValueError(f"--executor must be 'local' or 'dask:HOST:PORT', got {executor!r}")
