"""The one scale switch of the reproduction package.

Every experiment has three configurations:

* ``ci``    -- seconds on 2 CPU cores; what the test-suite and the notebook tests run.
* ``cpu``   -- minutes on 2 CPU cores; what ``make reproduce`` runs and what the report shows by default.
* ``paper`` -- the paper's own sizes; GPU hours.  Never run by the tests.
"""

from __future__ import annotations

import os

SCALES: tuple[str, ...] = ("ci", "cpu", "paper")
DEFAULT_SCALE = "cpu"
SCALE_ENV = "POLYSTEP_SCALE"


def check_scale(scale: str) -> str:
    """Return ``scale`` if it is one of :data:`SCALES`, else raise ``ValueError``."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return scale


def scale_from_env(default: str = DEFAULT_SCALE) -> str:
    """The scale named by ``$POLYSTEP_SCALE`` (how notebooks learn theirs), else ``default``."""
    return check_scale(os.environ.get(SCALE_ENV, default))


def scale_rank(scale: str) -> int:
    """0 for ci, 1 for cpu, 2 for paper: a run at scale s covers claims whose scale ranks <= s."""
    return SCALES.index(check_scale(scale))
