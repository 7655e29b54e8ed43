"""The local cache of the data sets: where it is, atomic writes, and verification on every read.

Layout: ``<root>/<name>/<name>.npz`` (image data sets, uncompressed ``uint8`` arrays) or
``<root>/<name>/<file>.csv``, beside ``manifest.json`` (the source, the fingerprints, the time).
``root`` is ``$POLYSTEP_DATA``, else ``$XDG_CACHE_HOME/polystep-repro``, else
``~/.cache/polystep-repro``.  A file is written to a temporary name in the same folder and moved
into place with ``os.replace``, so an interrupted fetch never leaves a half-written file under the
final name; a cached file is used only when every fingerprint matches (:func:`verify_cached`).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from .formats import fingerprint, sha256_bytes, sha256_file
from .registry import DatasetSpec, Payload

__all__ = ["CacheError", "atomic_write_bytes", "cache_root", "data_path", "read_manifest",
           "verify_cached", "verify_payload", "write_cache"]

MANIFEST = "manifest.json"


class CacheError(ValueError):
    """A cached or downloaded data set whose content is not the expected one (a checksum mismatch)."""


def cache_root(root: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``root`` if given, else ``$POLYSTEP_DATA``, else the user cache folder."""
    if root is not None:
        return Path(root)
    if os.environ.get("POLYSTEP_DATA"):
        return Path(os.environ["POLYSTEP_DATA"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "polystep-repro"


def data_path(spec: DatasetSpec, root: str | os.PathLike | None = None) -> Path:
    """Path of the cached data file of ``spec``."""
    return cache_root(root) / spec.name / spec.filename


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, flushed to disk,
    then ``os.replace`` (removed again if anything fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def verify_payload(spec: DatasetSpec, payload: Payload) -> None:
    """Check ``payload`` against ``spec``'s shapes and fingerprints.

    Raises:
        CacheError: naming the first array (or file) whose shape or sha256 differs.
    """
    if spec.kind == "csv":
        if not isinstance(payload, bytes):
            raise CacheError(f"{spec.name}: expected the bytes of {spec.filename}")
        got = sha256_bytes(payload)
        if got != spec.fingerprints[spec.filename]:
            raise CacheError(f"{spec.name}: {spec.filename} has sha256 {got}, expected "
                             f"{spec.fingerprints[spec.filename]}")
        return
    missing = sorted(set(spec.fingerprints) - set(payload))
    if missing:
        raise CacheError(f"{spec.name}: arrays {missing} missing")
    for name, expected in spec.fingerprints.items():
        array = payload[name]
        if spec.shapes and tuple(array.shape) != tuple(spec.shapes[name]):
            raise CacheError(f"{spec.name}: {name} has shape {tuple(array.shape)}, expected {tuple(spec.shapes[name])}")
        got = fingerprint(array) if array.dtype == np.uint8 else f"<dtype {array.dtype}>"
        if got != expected:
            raise CacheError(f"{spec.name}: {name} has sha256 {got}, expected {expected}")


def _load_file(spec: DatasetSpec, path: Path) -> Payload:
    if spec.kind == "csv":
        return path.read_bytes()
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CacheError(f"{spec.name}: {path} is unreadable ({exc})") from exc


def read_manifest(spec: DatasetSpec, root: str | os.PathLike | None = None) -> dict | None:
    """The cache manifest of ``spec`` (``None`` when there is none or it is unreadable)."""
    try:
        return json.loads((data_path(spec, root).parent / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def verify_cached(spec: DatasetSpec, root: str | os.PathLike | None = None) -> Payload | None:
    """The cached payload of ``spec`` after checking every fingerprint; ``None`` when not cached.

    Raises:
        CacheError: if the cached file exists but is unreadable or fails a checksum.
    """
    path = data_path(spec, root)
    if not path.exists():
        return None
    payload = _load_file(spec, path)
    verify_payload(spec, payload)
    return payload


def write_cache(spec: DatasetSpec, payload: Payload, source: str,
                root: str | os.PathLike | None = None) -> Path:
    """Verify ``payload``, then write it and its manifest atomically; returns the data file's path."""
    verify_payload(spec, payload)
    path = data_path(spec, root)
    if spec.kind == "csv":
        atomic_write_bytes(path, payload)
        fingerprints = {spec.filename: sha256_file(path)}
    else:
        buffer = io.BytesIO()
        np.savez(buffer, **{name: np.ascontiguousarray(payload[name]) for name in spec.fingerprints})
        atomic_write_bytes(path, buffer.getvalue())
        fingerprints = dict(spec.fingerprints)
    manifest = {"dataset": spec.name, "file": spec.filename, "source": source, "licence": spec.licence,
                "sha256": fingerprints, "fetched_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_bytes(path.parent / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return path

