"""A fingerprint of the code that produces an experiment's results.

A cached result is reused only when it was made by the same configuration *and* the same code:
the SHA-256 over the source of every library the experiments run on (``polystep/``, ``ghosts/``
and ``theory/``), the reproduction machinery (``repro/``, experiments excluded) and the
experiment's own module with the experiment modules it imports (transitively; shared helpers
``repro/experiments/_*.py`` always).  Editing one experiment therefore invalidates its own cache
and those of the experiments that import it, nothing else; editing the optimizer invalidates all.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
#: top-level source folders whose every ``.py`` file enters every fingerprint (absent ones skipped)
LIBRARIES = ("polystep", "ghosts", "theory", "repro")
EXPERIMENTS = Path("repro") / "experiments"
_file_cache: dict[Path, tuple[int, int, str]] = {}


def _file_digest(path: Path) -> str:
    """SHA-256 of one file's bytes, memoised on (mtime, size) so repeated calls are cheap."""
    st = path.stat()
    hit = _file_cache.get(path)
    if hit is not None and hit[:2] == (st.st_mtime_ns, st.st_size):
        return hit[2]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _file_cache[path] = (st.st_mtime_ns, st.st_size, digest)
    return digest


def _imported_experiments(module_file: Path, known: set[str]) -> set[str]:
    """Experiment modules that ``module_file`` imports (``from . import x``, ``from .x import``,
    ``from repro.experiments.x import``, ``from repro.experiments import x``)."""
    tree = ast.parse(module_file.read_text(), filename=str(module_file))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1 or mod == "repro.experiments" or mod.startswith("repro.experiments."):
                base = mod.removeprefix("repro.experiments").lstrip(".") if node.level == 0 else mod
                if base:
                    found.add(base.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("repro.experiments."):
                    found.add(alias.name.split(".")[2])
    return found & known


def source_files(experiment_id: str, root: Path = PACKAGE_ROOT) -> list[Path]:
    """The files whose content enters ``experiment_id``'s fingerprint, relative to ``root``."""
    exp_dir = root / EXPERIMENTS
    known = {p.stem for p in exp_dir.glob("*.py")}
    if experiment_id not in known:
        raise KeyError(f"unknown experiment {experiment_id!r}: no {EXPERIMENTS / experiment_id}.py")
    files: set[Path] = set()
    for lib in LIBRARIES:
        for p in (root / lib).rglob("*.py"):
            if exp_dir not in p.parents:
                files.add(p)
    wanted, todo = set(), [experiment_id] + sorted(k for k in known if k.startswith("_"))
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        todo += sorted(_imported_experiments(exp_dir / f"{name}.py", known) - wanted)
    files |= {exp_dir / f"{name}.py" for name in wanted}
    return sorted(p.relative_to(root) for p in files if "__pycache__" not in p.parts)


def code_fingerprint(experiment_id: str, root: Path = PACKAGE_ROOT) -> str:
    """SHA-256 (first 16 hex digits) over the paths and contents of :func:`source_files`."""
    h = hashlib.sha256()
    for rel in source_files(experiment_id, root):
        h.update(rel.as_posix().encode() + b"\0" + _file_digest(root / rel).encode() + b"\n")
    return h.hexdigest()[:16]
