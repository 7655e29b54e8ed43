"""MNIST loading for users with internet access (paper scale; never used in the tests).

Normalisation as in the paper's runners (digest section 5.1): ``x / 255``, then
``(x - 0.1307) / 0.3081``, flattened to 784 features. The 60k training images are split into a
stratified validation set of ``val_size`` images and the remaining training images (the
original code's ``make_train_val_split`` idea; the shipped results did not hold out a validation
set, see digest section 6 item 6); the 10k test images are the official test set.
"""

from __future__ import annotations

import numpy as np
import torch

from repro.tasks.digits import DataSplit

__all__ = ["load_mnist_split", "MNIST_MEAN", "MNIST_STD"]

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def load_mnist_split(
    root: str, *, seed: int, val_size: int = 6000, download: bool = False, dtype: torch.dtype = torch.float32
) -> DataSplit:
    """Load MNIST through ``torchvision`` as a :class:`~repro.tasks.digits.DataSplit`.

    Args:
        root: directory holding (or receiving) the torchvision ``MNIST`` files.
        seed: seed of the stratified train/validation split of the 60k training images.
        val_size: number of validation images taken from the training set (``1..59999``).
        download: let torchvision download the files (needs internet).
        dtype: floating dtype of the features.

    Returns:
        ``DataSplit`` with ``60000 - val_size`` / ``val_size`` / 10000 samples, 784 features,
        10 classes, ``name = "mnist"``.

    Raises:
        RuntimeError: if torchvision is not installed, or the files are missing and
            ``download=False`` (or cannot be downloaded).
    """
    if isinstance(val_size, bool) or not isinstance(val_size, int) or not 1 <= val_size < 60000:
        raise ValueError(f"val_size must be an integer in [1, 59999], got {val_size!r}")
    try:
        from torchvision.datasets import MNIST
    except ImportError as exc:
        raise RuntimeError(
            "load_mnist_split needs torchvision (pip install torchvision) and, for the first call, "
            "internet access with download=True; use repro.tasks.digits.load_digits_split offline"
        ) from exc
    from sklearn.model_selection import train_test_split

    try:
        train_set = MNIST(root, train=True, download=download)
        test_set = MNIST(root, train=False, download=download)
    except RuntimeError as exc:
        raise RuntimeError(
            f"MNIST not found under {root!r}; pass download=True (requires internet) or copy the "
            f"torchvision MNIST files there ({exc})"
        ) from exc

    def prep(images: torch.Tensor) -> torch.Tensor:
        x = images.reshape(images.shape[0], -1).to(torch.float64) / 255.0
        return ((x - MNIST_MEAN) / MNIST_STD).to(dtype)

    x_all, y_all = prep(train_set.data), train_set.targets.to(torch.int64)
    (split_seed,) = np.random.SeedSequence(seed).generate_state(1)
    idx = np.arange(len(y_all))
    train, val = train_test_split(idx, test_size=val_size, stratify=y_all.numpy(), random_state=int(split_seed))
    train, val = torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(val))
    return DataSplit(
        x_train=x_all[train], y_train=y_all[train], x_val=x_all[val], y_val=y_all[val],
        x_test=prep(test_set.data), y_test=test_set.targets.to(torch.int64),
        n_features=784, n_classes=10, name="mnist",
        indices={"train": train, "val": val, "test": torch.arange(len(test_set.targets))},
    )
