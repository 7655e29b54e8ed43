"""A fingerprint of the code that produces an experiment's results and measurements.

A cached result is reused, and a committed sidecar counts as current, only when it was made by the
same configuration *and* the same code: the SHA-256 over

* the experiment's module and every module of this repository it imports, transitively (found by
  reading the ``import`` statements, function-level ones included): the optimizer (``polystep/``),
  the theory (``theory/``, ``ghosts/``), the tasks and the shared experiment helpers it uses;
* the machinery that runs every experiment (:data:`RUN_MACHINERY`: runner, run context, storage,
  device and scale handling), whether imported or not.

A file enters as its **code**: the SHA-256 of its abstract syntax tree with docstrings removed
(``ast.dump`` without line numbers), so comments, docstrings and formatting -- which change no
number -- do not force a rerun, while any change to what runs does.

Modules that only turn measurements into verdicts, text and pictures (:data:`BOOKKEEPING`: the
claims registry and its rules, the report, the CLI, plotting style) are left out even when imported:
editing a rule or the report's layout changes no measured number, so it must not force a rerun.
Editing the optimizer changes the fingerprint of every experiment that uses it, and an experiment's
edit changes its own and those of the experiments that import it.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
#: top-level packages of this repository whose modules can enter a fingerprint
LIBRARIES = ("polystep", "ghosts", "theory", "repro")
EXPERIMENTS = Path("repro") / "experiments"
#: always part of the fingerprint: the code around every ``run()``
RUN_MACHINERY = ("repro.runner", "repro.context", "repro.cells", "repro.storage", "repro.device", "repro.scale")
#: never part of it: verdicts, registry, report, CLI, figure style (no measured number depends on them)
BOOKKEEPING = ("repro.claims", "repro.report", "repro.cli", "repro.registry", "repro.fingerprint",
               "repro.notebook", "repro.figures")
_file_cache: dict[Path, tuple[int, int, str]] = {}


_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def code_text(source: str, filename: str = "<source>") -> str:
    """What of a module's source can change a result: ``ast.dump`` of its syntax tree (no line or
    column numbers) with the docstring of the module and of every class and function removed.
    Comments, blank lines, formatting and docstrings do not appear in it; every statement does."""
    tree = ast.parse(source, filename=filename)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, _DOCUMENTED) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:]
    return ast.dump(tree, include_attributes=False)


def _file_digest(path: Path) -> str:
    """SHA-256 of one file's :func:`code_text`, memoised on (mtime, size) so repeated calls are
    cheap."""
    st = path.stat()
    hit = _file_cache.get(path)
    if hit is not None and hit[:2] == (st.st_mtime_ns, st.st_size):
        return hit[2]
    digest = hashlib.sha256(code_text(path.read_text(), str(path)).encode()).hexdigest()
    _file_cache[path] = (st.st_mtime_ns, st.st_size, digest)
    return digest


def module_file(name: str, root: Path = PACKAGE_ROOT) -> Path | None:
    """The source file of the repository module ``name`` (``a.b`` -> a/b.py or a/b/__init__.py)."""
    parts = name.split(".")
    if not parts or parts[0] not in LIBRARIES:
        return None
    base = root.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imported_modules(name: str, root: Path = PACKAGE_ROOT) -> set[str]:
    """Repository modules that module ``name`` imports anywhere in its source (and their parent
    packages, whose ``__init__`` runs on import)."""
    path = module_file(name, root)
    if path is None:
        return set()
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    out = set()
    for mod in found:
        for candidate in _with_parents(mod):
            if module_file(candidate, root) is not None:
                out.add(candidate)
    return out


def modules(experiment_id: str, root: Path = PACKAGE_ROOT) -> list[str]:
    """The repository modules whose source enters ``experiment_id``'s fingerprint."""
    start = f"repro.experiments.{experiment_id}"
    if module_file(start, root) is None:
        raise KeyError(f"unknown experiment {experiment_id!r}: no {EXPERIMENTS / experiment_id}.py")
    seen: set[str] = set()
    todo = [start, *RUN_MACHINERY]
    while todo:
        mod = todo.pop()
        if mod in seen or mod in BOOKKEEPING:
            continue
        seen.add(mod)
        todo += sorted(imported_modules(mod, root) - seen)
    # the run machinery's own imports beyond itself (storage <- context) are covered above
    return sorted(seen)


def source_files(experiment_id: str, root: Path = PACKAGE_ROOT) -> list[Path]:
    """The files whose content enters ``experiment_id``'s fingerprint, relative to ``root``."""
    files = {module_file(m, root) for m in modules(experiment_id, root)}
    return sorted(p.relative_to(root) for p in files if p is not None)


def code_fingerprint(experiment_id: str, root: Path = PACKAGE_ROOT) -> str:
    """SHA-256 (first 16 hex digits) over the paths and :func:`code_text` of :func:`source_files`."""
    h = hashlib.sha256()
    for rel in source_files(experiment_id, root):
        h.update(rel.as_posix().encode() + b"\0" + _file_digest(root / rel).encode() + b"\n")
    return h.hexdigest()[:16]
