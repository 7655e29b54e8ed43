"""Run one experiment with caching, metadata and figure output.

Layout on disk (the results folder defaults to ``<repo>/results`` and follows ``$POLYSTEP_RESULTS_DIR``,
the figures folder ``<repo>/figures`` and ``$POLYSTEP_FIGURES_DIR``)::

    results/<id>/<scale>-seed<seed>-<device>.json|.npz       finished results + metadata
    results/<id>/<scale>-seed<seed>-<device>.<key>.partial/   checkpoints of an unfinished run
    figures/<scale>/<id>[_<name>].png|.pdf|.json              figures + sidecar (metadata, measurements)
    figures/<scale>/<id>.md                                   the experiment's table, if it has one
    figures/<scale>/seed<N>/...                               the same for a root seed N != 0

Figures are kept per scale (and seed), so a run at one scale never overwrites the artefacts of
another: a ``ci`` run (tests, notebooks) cannot replace the committed ``cpu``/``paper`` figures and
sidecars from which ``paper/REPORT.md`` is built.

A finished result is reused only when its configuration *and* the fingerprint of the code that
made it (:mod:`repro.fingerprint`) equal the current ones, and its files pass their integrity
check; a corrupt result is moved aside (``*.corrupt-N``) with a warning and recomputed.  An
interrupted run resumes from its checkpoints (keyed the same way).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from . import registry, storage
from .context import RunContext
from .device import resolve_device
from .fingerprint import code_fingerprint
from .scale import check_scale

REPO_ROOT = Path(__file__).resolve().parent.parent


def results_dir() -> Path:
    return Path(os.environ.get("POLYSTEP_RESULTS_DIR", REPO_ROOT / "results"))


def figures_dir() -> Path:
    return Path(os.environ.get("POLYSTEP_FIGURES_DIR", REPO_ROOT / "figures"))


def figure_dir(scale: str, seed: int = 0) -> Path:
    """Where the figures, sidecars and table of a run at ``scale`` with root seed ``seed`` go."""
    folder = figures_dir() / check_scale(scale)
    return folder if seed == 0 else folder / f"seed{seed}"


class CorruptResultWarning(UserWarning):
    """A cached result or checkpoint failed its integrity check; it was moved aside and recomputed."""


def load_verified(path: Path) -> dict | None:
    """``storage.load(path)``, or ``None`` after moving a corrupt file aside with a warning that
    names it (the caller recomputes)."""
    try:
        return storage.load(path)
    except FileNotFoundError:
        return None
    except storage.CorruptResultError as err:
        moved = storage.quarantine(path)
        warnings.warn(f"{err}; moved aside to {moved.name}, recomputing", CorruptResultWarning,
                      stacklevel=2)
        return None


#: generated outputs: changes to them do not make a checkout "dirty" (a run that writes its figures
#: into the tree must not make the next run of the same clean checkout look dirty)
GENERATED_OUTPUTS = (":(exclude)figures", ":(exclude)paper/REPORT*.md")


def git_sha() -> str:
    """``HEAD``'s sha, with ``-dirty`` when tracked files other than the generated outputs
    (:data:`GENERATED_OUTPUTS`) differ from it."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10)
        sha = out.stdout.strip() if out.returncode == 0 else "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                *GENERATED_OUTPUTS],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout
        return sha + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    import numpy
    import scipy

    out = {"python": platform.python_version(), "torch": torch.__version__,
           "numpy": numpy.__version__, "scipy": scipy.__version__}
    try:
        from importlib.metadata import version

        out["polystep-repro"] = version("polystep-repro")
    except Exception:  # noqa: BLE001 - running from a source tree without install
        out["polystep-repro"] = "source"
    return out


def config_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)


def config_hash(cfg: Any, version: int = 1) -> str:
    """Hash of a configuration and the experiment's result-format ``VERSION``: a cached result is
    reused only when both match."""
    blob = json.dumps([storage.to_jsonable(config_dict(cfg)), version], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_key(config_hash_: str, fingerprint: str) -> str:
    """The key of a result's checkpoints: configuration and code together."""
    return hashlib.sha256(f"{config_hash_}/{fingerprint}".encode()).hexdigest()[:16]


def result_path(experiment_id: str, scale: str, seed: int, device: torch.device) -> Path:
    return results_dir() / experiment_id / f"{scale}-seed{seed}-{device.type}.json"


def command_line(experiment_id: str, scale: str, seed: int, device: str = "auto") -> str:
    parts = ["polystep-repro", "run", experiment_id, "--scale", scale, "--seed", str(seed)]
    if device != "auto":
        parts += ["--device", device]
    return " ".join(parts)


#: intra-op threads of an experiment that does not set ``THREADS``: fixed, not the machine's core
#: count, so that a result is the same on every machine (see :mod:`repro.cells`)
DEFAULT_THREADS = 1


def experiment_threads(module, scale: str) -> int:
    """The experiment's fixed intra-op thread count at ``scale``: its ``THREADS`` (an integer, or a
    mapping scale -> integer; default 1)."""
    threads = getattr(module, "THREADS", DEFAULT_THREADS)
    if isinstance(threads, dict):
        threads = threads.get(scale, DEFAULT_THREADS)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"{module.__name__}.THREADS must be an integer >= 1 (or a mapping scale -> "
                         f"integer), got {threads!r}")
    return threads


def run_experiment(experiment_id: str, *, scale: str = "cpu", device: str | torch.device = "auto",
                   seed: int = 0, force: bool = False, make_figures: bool = True,
                   progress: bool | None = None, executor=None, overall=None) -> dict:
    """Run (or load from cache) ``experiment_id`` at ``scale``; returns ``{"results", "meta"}``.

    The cached result is reused when its config hash and code fingerprint match and it passes its
    integrity check. Folders are checked for writability before any compute. ``executor``
    (:func:`repro.cells.make_executor`; default in-process) computes the experiment's cells; the
    experiment runs, cells and all, at its fixed thread count (:func:`experiment_threads`).
    ``overall`` (:class:`repro.context.OverallProgress`) counts the experiment's cells in a bar
    over several experiments (``polystep-repro all``).
    """
    check_scale(scale)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    module = registry.get(experiment_id)
    cfg = registry.config(experiment_id, scale)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    path = result_path(experiment_id, scale, seed, dev)
    storage.check_writable(path.parent)
    if make_figures:
        storage.check_writable(figure_dir(scale, seed))
    chash = config_hash(cfg, getattr(module, "VERSION", 1))
    fingerprint = code_fingerprint(experiment_id)
    # one process computes a given result at a time: a concurrent run of the same experiment (a
    # notebook and a test on two pytest-xdist workers, two shells) waits and then loads it
    with FileLock(str(path.with_suffix(".lock"))):
        if not force:
            stored = load_verified(path)
            meta = (stored or {}).get("meta", {})
            if meta.get("config_hash") == chash and meta.get("code_fingerprint") == fingerprint:
                if overall is not None:  # a cached result's cells count as done
                    overall.declare(int(meta.get("cells", 0)))
                    overall.advance(int(meta.get("cells", 0)))
                if make_figures:
                    write_outputs(experiment_id, stored)
                return stored
        stored = _compute(module, cfg, experiment_id, scale, seed, dev, path, chash, fingerprint,
                          force, progress, executor, overall)
    if make_figures:
        write_outputs(experiment_id, stored)
    return stored


def _compute(module, cfg, experiment_id: str, scale: str, seed: int, dev: torch.device, path: Path,
             chash: str, fingerprint: str, force: bool, progress: bool | None, executor=None,
             overall=None) -> dict:
    """Run ``module`` (resuming from this configuration's and code's checkpoints) and save the result."""
    partial = path.with_suffix(f".{cache_key(chash, fingerprint)}.partial")  # this config + code only
    if force and partial.exists():
        shutil.rmtree(partial)
    threads = experiment_threads(module, scale)
    ctx = RunContext(seed=seed, device=dev, scale=scale, checkpoint_dir=partial, threads=threads,
                     executor=executor, overall=overall)
    if progress is not None:
        ctx.progress = progress
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # the experiment's own code outside its cells runs the same way
    try:
        started = time.perf_counter()
        results = module.run(cfg, ctx)
        wall = time.perf_counter() - started
    finally:
        torch.set_num_threads(previous)
    meta = {
        "experiment": experiment_id, "title": module.TITLE, "scale": scale, "seed": seed,
        "device": str(dev), "git_sha": git_sha(), "versions": versions(),
        "config": config_dict(cfg), "config_hash": chash, "code_fingerprint": fingerprint,
        "wall_time_s": wall, "compute_time_s": wall + ctx.resumed_compute_s,
        "resumed_units": ctx.resumed_units,
        "forward_evals": ctx.forward_evals, "seeds": dict(sorted(ctx.seeds_used.items())),
        "command": command_line(experiment_id, scale, seed),
        "torch_threads": threads,
        "executor": getattr(executor, "name", "in-process"),
        "workers": getattr(executor, "workers", 1),
        "cells_compute_s": ctx.cells_compute_s,
        "cells": ctx.cells_declared,
    }
    stored = {"results": results, "meta": meta}
    storage.save(path, stored)
    if partial.exists():
        shutil.rmtree(partial)
    return stored


def measurements(experiment_id: str, results: dict) -> dict:
    """``{claim_id: measurement}`` from the experiment's ``@claim`` measuring functions."""
    from .claims import measure

    return measure(experiment_id, results)


def write_outputs(experiment_id: str, stored: dict) -> list[Path]:
    """Figures (+ sidecars with metadata and claim measurements) and the table of one result."""
    import matplotlib.pyplot as plt

    from .figures import save_figure, style

    module = registry.get(experiment_id)
    results, meta = stored["results"], stored["meta"]
    sidecar = {"meta": {k: v for k, v in meta.items() if k != "versions"} | {"versions": meta["versions"]},
               "measurements": measurements(experiment_id, results)}
    if hasattr(module, "report_section"):
        sidecar["report_section"] = module.report_section(results, meta)
    out_dir = figure_dir(meta["scale"], int(meta.get("seed", 0)))
    written: list[Path] = []
    if hasattr(module, "plot"):
        with style():  # the style's savefig settings (tight bbox, dpi) apply to the saving too
            figs = module.plot(results)
            if not isinstance(figs, dict):
                figs = {"": figs}
            for name, fig in figs.items():
                stem = out_dir / (experiment_id + (f"_{name}" if name else ""))
                written += save_figure(fig, stem, sidecar)
                plt.close(fig)
    target = out_dir / f"{experiment_id}.json"
    if target not in written:  # the experiment-level sidecar the report reads
        storage.atomic_write_text(target, json.dumps(storage.to_jsonable(sidecar), indent=1,
                                                     sort_keys=True) + "\n")
        written.append(target)
    if hasattr(module, "table"):
        target = out_dir / f"{experiment_id}.md"
        storage.atomic_write_text(target, module.table(results).rstrip() + "\n")
        written.append(target)
    return written
