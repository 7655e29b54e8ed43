"""Run one experiment with caching, metadata and figure output.

Layout on disk (the results folder defaults to ``<repo>/results`` and follows ``$POLYSTEP_RESULTS_DIR``)::

    results/<id>/<scale>-seed<seed>-<device>.json|.npz     finished results + metadata
    results/<id>/<scale>-seed<seed>-<device>.<hash>.partial/ checkpoints of an unfinished run
    figures/<id>[_<name>].png|.pdf|.json                    figures + sidecar (metadata, measurements)
    figures/<id>.md                                         the experiment's table, if it has one

A finished result is reused when its stored config equals the current one; an interrupted run
resumes from its checkpoints.
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
from pathlib import Path
from typing import Any

import torch

from . import registry, storage
from .context import RunContext
from .device import resolve_device
from .scale import check_scale

REPO_ROOT = Path(__file__).resolve().parent.parent


def results_dir() -> Path:
    return Path(os.environ.get("POLYSTEP_RESULTS_DIR", REPO_ROOT / "results"))


def figures_dir() -> Path:
    return Path(os.environ.get("POLYSTEP_FIGURES_DIR", REPO_ROOT / "figures"))


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10)
        sha = out.stdout.strip() if out.returncode == 0 else "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
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


def result_path(experiment_id: str, scale: str, seed: int, device: torch.device) -> Path:
    return results_dir() / experiment_id / f"{scale}-seed{seed}-{device.type}.json"


def command_line(experiment_id: str, scale: str, seed: int, device: str = "auto") -> str:
    parts = ["polystep-repro", "run", experiment_id, "--scale", scale, "--seed", str(seed)]
    if device != "auto":
        parts += ["--device", device]
    return " ".join(parts)


def run_experiment(experiment_id: str, *, scale: str = "cpu", device: str | torch.device = "auto",
                   seed: int = 0, force: bool = False, make_figures: bool = True,
                   progress: bool | None = None) -> dict:
    """Run (or load from cache) ``experiment_id`` at ``scale``; returns ``{"results", "meta"}``."""
    check_scale(scale)
    module = registry.get(experiment_id)
    cfg = registry.config(experiment_id, scale)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    path = result_path(experiment_id, scale, seed, dev)
    chash = config_hash(cfg, getattr(module, "VERSION", 1))
    if path.exists() and not force:
        stored = storage.load(path)
        if stored.get("meta", {}).get("config_hash") == chash:
            if make_figures:
                write_outputs(experiment_id, stored)
            return stored
    partial = path.with_suffix(f".{chash}.partial")  # checkpoints of this configuration only
    if force and partial.exists():
        shutil.rmtree(partial)
    ctx = RunContext(seed=seed, device=dev, scale=scale, checkpoint_dir=partial)
    if progress is not None:
        ctx.progress = progress
    started = time.perf_counter()
    results = module.run(cfg, ctx)
    wall = time.perf_counter() - started
    meta = {
        "experiment": experiment_id, "title": module.TITLE, "scale": scale, "seed": seed,
        "device": str(dev), "git_sha": git_sha(), "versions": versions(),
        "config": config_dict(cfg), "config_hash": chash, "wall_time_s": wall,
        "forward_evals": ctx.forward_evals, "seeds": dict(ctx.seeds_used),
        "command": command_line(experiment_id, scale, seed),
        "torch_threads": torch.get_num_threads(),
    }
    stored = {"results": results, "meta": meta}
    storage.save(path, stored)
    if partial.exists():
        shutil.rmtree(partial)
    if make_figures:
        write_outputs(experiment_id, stored)
    return stored


def measurements(experiment_id: str, results: dict) -> dict:
    module = registry.get(experiment_id)
    return module.measure(results) if hasattr(module, "measure") else {}


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
    out_dir = figures_dir()
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
