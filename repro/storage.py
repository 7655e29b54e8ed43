"""Atomic, plain-data storage of experiment results: ``name.json`` (+ ``name.npz`` for arrays).

Results are nested dicts/lists of scalars, strings and numpy arrays.  Arrays are moved to an ``.npz``
beside the json and replaced by ``{"__array__": key}`` markers, so a result file is readable with
nothing but ``json`` and ``numpy``.  Every write goes to a temporary file first and is renamed into
place, so an interrupted run never leaves a half-written result behind.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """``obj`` with arrays turned into lists and non-finite floats into strings (for sidecars)."""
    arrays: dict[str, np.ndarray] = {}
    plain = _split_arrays(obj, arrays, "")
    return _join_arrays(plain, {k: v.tolist() for k, v in arrays.items()})


def save(path: Path, data: dict) -> None:
    """Save ``data`` as ``path`` (json) and, when it holds arrays, ``path.with_suffix('.npz')``.

    The npz is written first and the json last, so a json on disk always has its arrays.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    plain = _split_arrays(data, arrays, "")
    npz_path = path.with_suffix(".npz")
    if arrays:
        import io

        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(npz_path, buf.getvalue())
    else:
        npz_path.unlink(missing_ok=True)
    atomic_write_text(path, json.dumps(plain, indent=1, sort_keys=True) + "\n")


def load(path: Path) -> dict:
    """Inverse of :func:`save`."""
    path = Path(path)
    plain = json.loads(path.read_text())
    npz_path = path.with_suffix(".npz")
    if npz_path.exists():
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return _join_arrays(plain, arrays)
    return _join_arrays(plain, {})
