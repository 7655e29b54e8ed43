"""Tests for repro.tasks: the offline digits loader (both preprocessings) and the mini-batch stream."""

import numpy as np
import pytest
import torch

from repro.tasks.batches import BatchStream
from repro.tasks.digits import STD_FLOOR, DataSplit, load_digits_split


@pytest.fixture(scope="module")
def split():
    return load_digits_split(seed=0)


def test_sizes_and_metadata(split):
    assert isinstance(split, DataSplit)
    assert sum(split.sizes.values()) == 1797
    assert split.sizes == {"train": 1077, "val": 360, "test": 360}
    assert (split.n_features, split.n_classes, split.name) == (64, 10, "digits")
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    assert load_digits_split(seed=0, dtype=torch.float64).x_val.dtype == torch.float64


def test_no_overlap_and_full_coverage(split):
    from sklearn.datasets import load_digits

    idx = {p: split.indices[p].numpy() for p in ("train", "val", "test")}
    assert not set(idx["train"]) & set(idx["val"])
    assert not set(idx["train"]) & set(idx["test"])
    assert not set(idx["val"]) & set(idx["test"])
    assert sorted(np.concatenate(list(idx.values())).tolist()) == list(range(1797))
    # the stored rows are the source rows, standardised with train statistics only
    data = load_digits()
    raw, target = data.data / 16.0, data.target
    mean, scale = raw[idx["train"]].mean(0), np.maximum(raw[idx["train"]].std(0), STD_FLOOR)
    for p in ("train", "val", "test"):
        assert np.array_equal(getattr(split, f"y_{p}").numpy(), target[idx[p]])
        # float32 storage: relative rounding 6e-8 of values bounded by 1 / STD_FLOOR = 32
        np.testing.assert_allclose(getattr(split, f"x_{p}").numpy(), (raw[idx[p]] - mean) / scale, rtol=0, atol=1e-5)


def test_split_indices_disjoint():
    from repro.tasks.digits import stratified_split

    y = np.repeat(np.arange(10), 50)
    tr, va, te = stratified_split(y, seed=3, val_fraction=0.2, test_fraction=0.2)
    assert len(set(tr) & set(va)) == len(set(tr) & set(te)) == len(set(va) & set(te)) == 0
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(500))
    tr2, va2, te2 = stratified_split(y, seed=3, val_fraction=0.0, test_fraction=0.3)
    assert (len(tr2), len(va2), len(te2)) == (350, 0, 150) and not set(tr2) & set(te2)


def test_pixel_split_is_the_released_ghosts_loader():
    """``standardise=False, val_fraction=0``: X/16 and sklearn's split with ``random_state=seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits_split(seed=42, test_fraction=0.3, val_fraction=0.0, standardise=False)
    assert d.sizes == {"train": 1257, "val": 0, "test": 540} and d.x_val.shape == (0, 64)
    data = load_digits()
    tr, te = train_test_split(np.arange(1797), test_size=0.3, stratify=data.target, random_state=42)
    assert np.array_equal(d.indices["train"].numpy(), np.sort(tr))
    assert np.array_equal(d.indices["test"].numpy(), np.sort(te))
    assert torch.equal(d.x_test, torch.from_numpy(data.data[np.sort(te)] / 16.0).float())
    assert float(d.x_train.min()) == 0.0 and float(d.x_train.max()) == 1.0
    counts = np.bincount(d.y_test.numpy(), minlength=10)
    assert counts.min() >= 50 and counts.max() <= 56  # stratified: ~54 of each digit
    again = load_digits_split(seed=42, test_fraction=0.3, val_fraction=0.0, standardise=False)
    assert torch.equal(again.x_train, d.x_train) and torch.equal(again.y_test, d.y_test)
    other = load_digits_split(seed=0, test_fraction=0.2, val_fraction=0.0, standardise=False)
    assert other.sizes == {"train": 1437, "val": 0, "test": 360}


def test_stratification(split):
    counts = {p: torch.bincount(getattr(split, f"y_{p}"), minlength=10).double() for p in ("train", "val", "test")}
    total = sum(counts.values())
    for p, c in counts.items():
        # class proportions match the full data set up to rounding of one sample per class
        np.testing.assert_allclose((c / c.sum()).numpy(), (total / total.sum()).numpy(), atol=1.5 / c.sum().item())


def test_train_statistics_standardisation(split):
    x = split.x_train.double()
    np.testing.assert_allclose(x.mean(0).numpy(), 0.0, atol=1e-6)  # float32 storage rounding
    std = x.std(0, unbiased=False)
    floored = std < 1 - 1e-4
    # a few near-constant border pixels are divided by STD_FLOOR instead of their tiny std
    assert 0 < int(floored.sum()) < 16
    np.testing.assert_allclose(std[~floored].numpy(), 1.0, rtol=1e-5)  # float32 storage rounding
    # val/test are transformed with train statistics, so their means are not exactly 0
    assert float(split.x_val.double().mean(0).abs().max()) > 1e-3
    # pixels lie in [0, 1], so |x'| <= 1 / STD_FLOOR everywhere
    for x_part in (split.x_train, split.x_val, split.x_test):
        assert torch.isfinite(x_part).all() and float(x_part.abs().max()) <= 1 / STD_FLOOR + 1e-5


def test_determinism_and_seed_dependence(split):
    again = load_digits_split(seed=0)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(split, name), getattr(again, name))
    other = load_digits_split(seed=1)
    assert not torch.equal(split.y_train, other.y_train) or not torch.equal(split.x_train, other.x_train)
    assert not torch.equal(split.x_test, other.x_test)


def test_split_validation():
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="val_fraction"):
            load_digits_split(seed=0, val_fraction=bad)
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_split(seed=0, test_fraction=0.0)
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction"):
        load_digits_split(seed=0, val_fraction=0.6, test_fraction=0.5)


# ---------------------------------------------------------------------------------------------
# BatchStream
# ---------------------------------------------------------------------------------------------
def _ids(stream, n_batches):
    return [yb.tolist() for _, yb in (next(stream) for _ in range(n_batches))]


@pytest.mark.parametrize("n, bs", [(10, 3), (12, 4), (5, 8)])
def test_batch_stream_covers_each_sample_once_per_epoch(n, bs):
    x = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 2)
    y = torch.arange(n)
    s = BatchStream(x, y, bs, torch.Generator().manual_seed(0))
    for epoch in range(3):
        assert s.epoch == epoch
        seen = []
        for _ in range(s.batches_per_epoch):
            xb, yb = next(s)
            assert torch.equal(xb[:, 0].long(), yb)  # x and y stay aligned
            seen += yb.tolist()
        assert sorted(seen) == list(range(n))
    assert s.epoch == 3


def test_batch_stream_reshuffles_and_is_deterministic():
    x, y = torch.randn(20, 3), torch.arange(20)
    a = _ids(BatchStream(x, y, 5, torch.Generator().manual_seed(7)), 12)
    b = _ids(BatchStream(x, y, 5, torch.Generator().manual_seed(7)), 12)
    c = _ids(BatchStream(x, y, 5, torch.Generator().manual_seed(8)), 12)
    assert a == b and a != c
    assert a[:4] != a[4:8]  # a new permutation each epoch


def test_batch_stream_drop_last_and_validation():
    x, y = torch.randn(10, 2), torch.arange(10)
    s = BatchStream(x, y, 4, torch.Generator().manual_seed(0), drop_last=True)
    assert s.batches_per_epoch == 2
    assert all(len(next(s)[1]) == 4 for _ in range(6)) and s.epoch == 3
    with pytest.raises(ValueError, match="batch_size"):
        BatchStream(x, y, 0, torch.Generator())
    with pytest.raises(ValueError, match="leading dimension"):
        BatchStream(x, y[:5], 2, torch.Generator())
    with pytest.raises(TypeError, match="generator"):
        BatchStream(x, y, 2, 0)
    assert iter(s) is s
