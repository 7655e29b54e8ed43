"""The scikit-learn ``digits`` data set (8x8 handwritten digits, 1797 samples, offline).

It stands in for MNIST at ``ci``/``cpu`` scale: it ships with scikit-learn, so the reproduction
package runs without internet.  :func:`load_digits_split` is the one loader of every experiment:
a stratified train/val/test :class:`DataSplit` whose features are standardised with *training*
statistics only (the PolyStep experiments), or, with ``standardise=False, val_fraction=0``, the
released ghosts-of-softmax code's preprocessing: pixels / 16 and one stratified
``train_test_split(test_size, random_state=seed)`` (arXiv 2603.13552's released experiments).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

__all__ = ["DataSplit", "load_digits_split", "stratified_split", "STD_FLOOR"]

#: Lower bound on the per-feature scale used for standardisation (pixel units after ``/ 16``):
#: ``scale = max(std_train, STD_FLOOR)``. Half an intensity level (1/32) rather than a tiny
#: epsilon because several border pixels of ``digits`` are (almost) always 0 in the training split
#: (train std between 0 and about 0.03); dividing by such a std would map a rare non-zero validation/test pixel to
#: hundreds of standard units. With this floor every standardised value satisfies
#: ``|x'| <= 1 / STD_FLOOR = 32`` (pixels lie in [0, 1]); features with ``std_train >= STD_FLOOR``
#: have exactly unit training variance, the others (about 12 of 64) less than one.
STD_FLOOR = 1.0 / 32.0


@dataclass(frozen=True)
class DataSplit:
    """A supervised classification data set split into train / validation / test.

    Attributes:
        x_train, x_val, x_test: float feature tensors of shape ``[n, n_features]``.
        y_train, y_val, y_test: ``torch.int64`` label tensors of shape ``[n]`` in ``0..n_classes-1``.
        n_features: number of input features.
        n_classes: number of classes.
        name: data set identifier (e.g. ``"digits"``, ``"mnist"``).
        indices: optional provenance, ``{"train": ..., "val": ..., "test": ...}`` int64 tensors of
            the rows' positions in the source data set (for MNIST, ``"test"`` indexes the official
            test set and the others the official training set).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_features: int
    n_classes: int
    name: str
    indices: dict[str, torch.Tensor] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for part in ("train", "val", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.ndim != 2 or x.shape[1] != self.n_features:
                raise ValueError(f"x_{part} must have shape [n, {self.n_features}], got {tuple(x.shape)}")
            if y.shape != (x.shape[0],):
                raise ValueError(f"y_{part} must have shape ({x.shape[0]},), got {tuple(y.shape)}")
            if self.indices is not None and self.indices[part].shape != (x.shape[0],):
                raise ValueError(f"indices[{part!r}] must have shape ({x.shape[0]},)")

    @property
    def sizes(self) -> dict[str, int]:
        """Number of samples per split: ``{"train": ..., "val": ..., "test": ...}``."""
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def _split_seeds(seed: int) -> tuple[int, int]:
    """Two independent 32-bit seeds for the two ``train_test_split`` calls (``SeedSequence``)."""
    a, b = np.random.SeedSequence(seed).generate_state(2)
    return int(a), int(b)


def stratified_split(
    y: np.ndarray, *, seed: int, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified indices ``(train, val, test)`` of ``len(y)`` samples, deterministic in ``seed``.

    Every split is ``sklearn.model_selection.train_test_split`` stratified by ``y`` (it rounds test
    sizes up); each index array is sorted.

    * ``val_fraction = 0``: one split, ``train_test_split(arange(n), test_size=test_fraction,
      stratify=y, random_state=seed)`` -- ``seed`` is sklearn's ``random_state`` itself, as in the
      released ghosts-of-softmax scripts; ``val`` is empty.
    * ``val_fraction > 0``: first ``test_fraction`` of all samples is held out as test, then
      ``val_fraction`` of all samples (i.e. ``val_fraction / (1 - test_fraction)`` of the remainder)
      as validation, the two splits seeded by two 32-bit seeds drawn from ``SeedSequence(seed)``.
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction + test_fraction!r}")
    idx = np.arange(len(y))
    if val_fraction == 0:
        train, test = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed)
        return np.sort(train), idx[:0], np.sort(test)
    s_test, s_val = _split_seeds(seed)
    rest, test = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=s_test)
    train, val = train_test_split(
        rest, test_size=val_fraction / (1.0 - test_fraction), stratify=y[rest], random_state=s_val
    )
    return np.sort(train), np.sort(val), np.sort(test)


@lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(pixels / 16, labels)`` from ``sklearn.datasets.load_digits``, cached and read-only."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = np.asarray(data.data, dtype=np.float64) / 16.0
    y = np.asarray(data.target, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_digits_split(
    *, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2, standardise: bool = True,
    dtype: torch.dtype = torch.float32
) -> DataSplit:
    """Load scikit-learn's digits as a stratified :class:`DataSplit` (:func:`stratified_split`).

    Preprocessing: pixels (0..16) are divided by 16 (values in [0, 1]); with ``standardise`` every
    feature is then standardised with the training split's statistics,
    ``x' = (x - mean_train) / max(std_train, STD_FLOOR)`` (population std; ``STD_FLOOR = 1/32``
    keeps nearly constant border pixels from exploding, see its comment).  Validation and test data
    never influence the statistics.  With the defaults the sizes are 1077 / 360 / 360.

    ``standardise=False, val_fraction=0`` is the released ghosts-of-softmax code's loader (``X/16``,
    ``train_test_split(test_size=test_fraction, stratify=y, random_state=seed)``): test fraction
    0.3 gives 1257 / 0 / 540 samples, 0.2 gives 1437 / 0 / 360.

    Args:
        seed: seed of the split (same seed, same split; no global RNG is touched).
        val_fraction: fraction of all samples used for validation (0: no validation part).
        test_fraction: fraction of all samples used for testing.
        standardise: standardise with training statistics (else pixels / 16).
        dtype: floating dtype of the feature tensors (computation is in float64).

    Returns:
        ``DataSplit`` with ``n_features = 64``, ``n_classes = 10``, ``name = "digits"``.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    x, y = _raw_digits()
    train, val, test = stratified_split(y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    z = x
    if standardise:
        mean = x[train].mean(axis=0)
        std = x[train].std(axis=0)
        scale = np.maximum(std, STD_FLOOR)
        z = (x - mean) / scale

    def tx(i: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(z[i]).to(dtype)

    def ty(i: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y[i].copy())

    return DataSplit(
        x_train=tx(train), y_train=ty(train), x_val=tx(val), y_val=ty(val), x_test=tx(test), y_test=ty(test),
        n_features=x.shape[1], n_classes=int(y.max()) + 1, name="digits",
        indices={"train": torch.from_numpy(train), "val": torch.from_numpy(val), "test": torch.from_numpy(test)},
    )
