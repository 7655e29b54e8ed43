"""The ghosts library stands alone: importing it and its three modules in a fresh interpreter imports
nothing of the reproduction machinery (``repro``) nor of the PolyStep packages.

One interpreter suffices: importing any ``ghosts.<module>`` runs ``ghosts/__init__.py``, which imports
all three modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OTHER_PACKAGES = ("repro", "polystep", "theory")

CODE = """
import json, sys
import ghosts
from ghosts import radius_controller, radius_models, softmax_radius
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('ghosts', 'repro', 'polystep', 'theory'))
print(json.dumps({"loaded": loaded, "all": ghosts.__all__,
                  "rho_a": softmax_radius.rho_a([1.0, -1.0]),
                  "names": [radius_models.rho_from_slopes.__name__, radius_controller.RadiusController.__name__]}))
"""


def test_import_in_a_fresh_interpreter_needs_no_repro() -> None:
    done = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"ghosts", "ghosts.softmax_radius", "ghosts.radius_models", "ghosts.radius_controller"} <= set(out["loaded"])
    assert not [m for m in out["loaded"] if m.split(".")[0] in OTHER_PACKAGES], out["loaded"]
    assert sorted(out["all"]) == ["radius_controller", "radius_models", "softmax_radius"]
    assert out["rho_a"] == 1.5707963267948966  # pi / (1 - (-1)), Theorem 4.6
    assert out["names"] == ["rho_from_slopes", "RadiusController"]
