"""Experiment id -> experiment module.

An experiment is a module ``repro.experiments.<ID>`` that defines:

* ``ID`` (its own module name), ``TITLE`` and ``CLAIMS`` (claim ids of ``paper/claims.toml``);
* ``VERSION`` (optional int, default 1): bump it when the result format changes, so that cached
  results of the old format are recomputed instead of reused;
* ``CONFIGS``: a dict ``{"ci": Config, "cpu": Config, "paper": Config}`` of frozen dataclasses;
* ``run(cfg, ctx) -> dict``: plain data (scalars, lists, numpy arrays);
* ``plot(results) -> Figure | dict[str, Figure]`` (optional);
* ``table(results) -> str`` (optional): a markdown table;
* one measuring function per claim, registered with ``@repro.claims.claim("<claim id>")``:
  ``fn(results) -> {"value": ..., "detail": str, "evidence": {...}}`` (never a verdict: the claim's
  rule in ``paper/claims.toml`` decides, in :mod:`repro.claims`).

Modules are discovered, not listed: adding a file adds an experiment.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from types import ModuleType

from . import experiments as _experiments_pkg

REQUIRED = ("ID", "TITLE", "CLAIMS", "CONFIGS", "run")


@lru_cache(maxsize=None)
def experiment_ids() -> tuple[str, ...]:
    """Ids of every experiment module, sorted."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(_experiments_pkg.__path__)
                        if not m.name.startswith("_")))


def get(experiment_id: str) -> ModuleType:
    """The experiment module called ``experiment_id`` (checked for the required attributes)."""
    if experiment_id not in experiment_ids():
        raise KeyError(f"unknown experiment {experiment_id!r}; known: {', '.join(experiment_ids())}")
    module = importlib.import_module(f"{_experiments_pkg.__name__}.{experiment_id}")
    missing = [name for name in REQUIRED if not hasattr(module, name)]
    if missing:
        raise TypeError(f"experiment module {experiment_id} lacks {missing}")
    if module.ID != experiment_id:
        raise TypeError(f"experiment module {experiment_id} declares ID={module.ID!r}")
    return module


def config(experiment_id: str, scale: str):
    """The ``Config`` of ``experiment_id`` at ``scale``."""
    from .scale import check_scale

    configs = get(experiment_id).CONFIGS
    check_scale(scale)
    if scale not in configs:
        raise KeyError(f"experiment {experiment_id} has no {scale!r} configuration")
    return configs[scale]
