"""Atomic, plain-data storage of experiment results: ``name.json`` (+ ``name.npz`` for arrays).

Results are nested dicts/lists of scalars, strings and numpy arrays.  Arrays are moved to an ``.npz``
beside the json and replaced by ``{"__array__": key}`` markers, so a result file is readable with
nothing but ``json`` and ``numpy``.  Every write goes to a temporary file first and is renamed into
place, so an interrupted run never leaves a half-written file behind; the json carries the
SHA-256 of its own payload and of the npz, so a pair that does not belong together (a crash between
the two renames, an edited or truncated file) is detected by :func:`load`, never used.  Every
error names its path.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

_ARRAY_KEY = "__array__"


def _split_arrays(obj: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    if isinstance(obj, dict):
        return {str(k): _split_arrays(v, arrays, f"{path}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_arrays(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)]
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch tensor
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        if obj.ndim == 0:
            return _split_arrays(obj.item(), arrays, path)
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {_ARRAY_KEY: key}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store object of type {type(obj).__name__} at {path or '/'}")


def _join_arrays(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_ARRAY_KEY}:
            return arrays[obj[_ARRAY_KEY]]
        if set(obj) == {"__float__"}:
            return float(obj["__float__"])
        return {k: _join_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_arrays(v, arrays) for v in obj]
    return obj


class StorageError(RuntimeError):
    """A result, checkpoint or figure file could not be read or written; the message names the path."""


class CorruptResultError(StorageError):
    """A stored result failed its integrity check (unreadable, truncated, edited, or a json/npz pair
    that does not belong together).

    Attributes:
        path: the json file of the pair.
        reason: what was wrong, in a few words.
    """

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: corrupt result ({reason})")


def _new_file_mode(path: Path) -> int:
    """The mode a plain ``open(path, "w")`` would give: the existing file's mode, else
    ``0o666 & ~umask`` (``tempfile.mkstemp`` creates 0600 files, which would otherwise stick)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The file gets the permissions an ordinary write would give it (those of the file it replaces,
    else ``0o666 & ~umask``).  Raises :class:`StorageError` naming ``path`` on any OS error.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = _new_file_mode(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise StorageError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise StorageError(f"cannot write {path}: {err.strerror or err}") from err
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def check_writable(folder: Path) -> None:
    """Raise :class:`StorageError` (one line, naming ``folder``) unless files can be created in it.

    Called before any compute, so a read-only results or figures folder fails in a second instead
    of after an hour of work.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise StorageError(f"cannot write to {folder}: {err.strerror or err} (make it writable, or "
                           "point POLYSTEP_RESULTS_DIR / POLYSTEP_FIGURES_DIR elsewhere)") from err


def to_jsonable(obj: Any) -> Any:
    """``obj`` with arrays turned into lists and non-finite floats into strings (for sidecars)."""
    arrays: dict[str, np.ndarray] = {}
    plain = _split_arrays(obj, arrays, "")
    return _join_arrays(plain, {k: v.tolist() for k, v in arrays.items()})


_INTEGRITY_KEY = "__integrity__"


def _canonical(plain: Any) -> bytes:
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save(path: Path, data: dict) -> None:
    """Save ``data`` as ``path`` (json) and, when it holds arrays, ``path.with_suffix('.npz')``.

    The json carries an integrity record binding the pair: the SHA-256 of the npz bytes and of the
    json payload itself (canonical form).  :func:`load` verifies both, so an edited or truncated
    file, or a json beside arrays of another save (a crash between the two renames: the npz is
    written first, the json last), is detected instead of used.
    """
    path = Path(path)
    if not isinstance(data, dict):
        raise TypeError(f"{path}: save() takes a dict, got {type(data).__name__}")
    arrays: dict[str, np.ndarray] = {}
    plain = _split_arrays(data, arrays, "")
    npz_path = path.with_suffix(".npz")
    npz_sha = None
    if arrays:
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        blob = buf.getvalue()
        npz_sha = _sha256(blob)
        atomic_write_bytes(npz_path, blob)
    else:
        try:
            npz_path.unlink(missing_ok=True)
        except OSError as err:
            raise StorageError(f"cannot remove {npz_path}: {err.strerror or err}") from err
    record = {"json_sha256": _sha256(_canonical(plain)), "npz_sha256": npz_sha}
    atomic_write_text(path, json.dumps({**plain, _INTEGRITY_KEY: record}, indent=1, sort_keys=True) + "\n")


def load(path: Path) -> dict:
    """Inverse of :func:`save`, verified.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CorruptResultError: if the json cannot be parsed, has no integrity record, or its payload,
            the npz's bytes or the array keys do not match the record (the message names the file).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptResultError(path, f"unreadable: {err}") from err
    try:
        plain = json.loads(text)
    except json.JSONDecodeError as err:
        raise CorruptResultError(path, f"not valid json ({err.msg} at line {err.lineno})") from err
    if not isinstance(plain, dict) or not isinstance(plain.get(_INTEGRITY_KEY), dict):
        raise CorruptResultError(path, "no integrity record (written by an older version or by hand)")
    record = plain.pop(_INTEGRITY_KEY)
    try:
        payload_ok = _sha256(_canonical(plain)) == record.get("json_sha256")
    except (TypeError, ValueError):
        payload_ok = False
    if not payload_ok:
        raise CorruptResultError(path, "json payload does not match its checksum (edited?)")
    npz_path = path.with_suffix(".npz")
    if record.get("npz_sha256") is None:
        return _join_arrays(plain, {})
    try:
        blob = npz_path.read_bytes()
    except FileNotFoundError as err:
        raise CorruptResultError(path, f"its arrays {npz_path.name} are missing") from err
    except OSError as err:
        raise CorruptResultError(path, f"its arrays {npz_path.name} are unreadable: {err}") from err
    if _sha256(blob) != record["npz_sha256"]:
        raise CorruptResultError(path, f"{npz_path.name} does not match the checksum in the json "
                                       "(edited, truncated, or from another save)")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return _join_arrays(plain, arrays)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as err:
        raise CorruptResultError(path, f"{npz_path.name} unreadable: {err}") from err


def quarantine(path: Path) -> Path:
    """Move a corrupt result ``path`` (and its npz) aside as ``<name>.corrupt-<n>``; returns the
    new json path.  The files are kept for inspection, never reused."""
    path = Path(path)
    n = 0
    while path.with_name(f"{path.name}.corrupt-{n}").exists():
        n += 1
    target = path.with_name(f"{path.name}.corrupt-{n}")
    try:
        if path.exists():
            os.replace(path, target)
        npz = path.with_suffix(".npz")
        if npz.exists():
            os.replace(npz, npz.with_name(f"{npz.name}.corrupt-{n}"))
    except OSError as err:
        raise StorageError(f"cannot move corrupt {path} aside: {err.strerror or err}") from err
    return target
