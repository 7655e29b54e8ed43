"""Readers of the file formats the data sets ship in: IDX (MNIST's own format), a zarr v3 zip
store of ``uint8`` arrays, and the fingerprint that identifies an array whatever its source."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from typing import BinaryIO, Iterable

import numpy as np

__all__ = ["fingerprint", "read_idx", "read_zarr_zip", "sha256_bytes", "sha256_file", "zip_member"]

_IDX_UINT8 = 0x08


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of the file at ``path`` (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint(array: np.ndarray) -> str:
    """The source-independent fingerprint of a data array: sha256 of its C-contiguous ``uint8`` bytes.

    Raises:
        TypeError: if ``array`` is not ``uint8`` (a float or int64 copy would hash differently).
    """
    if array.dtype != np.uint8:
        raise TypeError(f"fingerprints are defined on uint8 arrays, got {array.dtype}")
    return sha256_bytes(np.ascontiguousarray(array).tobytes())


def read_idx(data: bytes) -> np.ndarray:
    """Decode an IDX file (gzip-compressed or not) of unsigned bytes.

    Layout: two zero bytes, the type code ``0x08`` (uint8), the number of dimensions ``k``, ``k``
    big-endian uint32 sizes, then the row-major data (header 16 bytes for images, 8 for labels).

    Raises:
        ValueError: on a wrong magic number, a type other than uint8 or a length that does not match
            the header.
    """
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != _IDX_UINT8 or data[3] == 0:
        raise ValueError(f"not an IDX file of uint8 (header {data[:4].hex()!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(data[4:header], dtype=">u4"))
    if len(data) != header + int(np.prod(shape)):
        raise ValueError(f"IDX length {len(data)} does not match its header (shape {shape})")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _decode_chunk(raw: bytes, codecs: list[dict], where: str) -> bytes:
    """Undo a zarr v3 codec pipeline of ``bytes`` (+ optional ``blosc``) on one chunk."""
    names = [c["name"] for c in codecs]
    if names[:1] != ["bytes"] or any(n != "blosc" for n in names[1:]) or len(names) > 2:
        raise ValueError(f"{where}: unsupported zarr codecs {names} (expected bytes[, blosc])")
    if len(names) == 2:
        from numcodecs import Blosc

        raw = Blosc().decode(raw)  # the blosc frame carries its own compressor and shuffle
    return bytes(raw)


def read_zarr_zip(store: str | BinaryIO, names: Iterable[str]) -> dict[str, np.ndarray]:
    """Read ``uint8`` arrays from a zarr v3 zip store (the subset of the format MNIST's store uses).

    Supported: ``data_type = "uint8"``, a ``regular`` chunk grid, the ``default`` chunk-key encoding
    (``<name>/c/i/j/...``, separator ``/``) and the codecs ``bytes`` then optionally ``blosc``
    (decoded with ``numcodecs``).  Edge chunks are stored full size and cropped; a missing chunk
    holds ``fill_value``.

    Raises:
        KeyError: if an array is missing from the store.
        ValueError: on anything outside the supported subset or a chunk of the wrong size.
    """
    out = {}
    with zipfile.ZipFile(store) as z:
        for name in names:
            meta = json.loads(z.read(f"{name}/zarr.json"))
            if meta.get("zarr_format") != 3 or meta.get("data_type") != "uint8":
                raise ValueError(f"{name}: expected a zarr v3 uint8 array, got {meta.get('zarr_format')!r} "
                                 f"{meta.get('data_type')!r}")
            if meta["chunk_grid"]["name"] != "regular" or meta["chunk_key_encoding"]["name"] != "default" \
                    or meta["chunk_key_encoding"].get("configuration", {}).get("separator", "/") != "/":
                raise ValueError(f"{name}: unsupported chunk grid or key encoding")
            shape = tuple(meta["shape"])
            chunk = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
            array = np.full(shape, meta.get("fill_value", 0), dtype=np.uint8)
            present = set(z.namelist())
            for index in np.ndindex(*(-(-s // c) for s, c in zip(shape, chunk))):
                key = f"{name}/c/" + "/".join(map(str, index))
                if key not in present:
                    continue
                raw = _decode_chunk(z.read(key), meta["codecs"], key)
                if len(raw) != int(np.prod(chunk)):
                    raise ValueError(f"{key}: {len(raw)} bytes, expected {int(np.prod(chunk))}")
                block = np.frombuffer(raw, dtype=np.uint8).reshape(chunk)
                region = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, chunk, shape))
                array[region] = block[tuple(slice(0, r.stop - r.start) for r in region)]
            out[name] = array
    return out


def zip_member(path, member: str) -> io.BytesIO:
    """The bytes of ``member`` inside the zip archive at ``path`` (e.g. a wheel), as a file object."""
    with zipfile.ZipFile(path) as z:
        return io.BytesIO(z.read(member))
