"""ETTh1 (electricity transformer temperature, hourly) and its standard 12 / 4 / 4-month split.

The csv comes from :mod:`repro.data` (verified cache, fetched on first use).  Columns: ``date``
then ``HUFL HULL MUFL MULL LUFL LULL OT`` (``OT``, the oil temperature, is the usual target);
17,420 hourly rows from 2016-07-01 00:00.  The split of the Informer benchmark
(paper/polystep_reconstruction.md §5.1): the first 12 months (8640 rows) train, the next 4 (2880)
validation, the next 4 (2880) test; the remaining rows are unused.

Table T6's task (:func:`forecasting_windows`, :func:`load_forecast_data`): the ``OT`` column,
z-scored with the training rows' statistics, cut into 96 -> 96 windows of stride 1 with the
Informer borders.  A file without the expected columns raises ``ValueError`` naming them; a file
whose sha256 differs from the registry's raises :class:`repro.data.CacheError` (``fetch_missing=False``)
or is refetched (:mod:`repro.data`).  :func:`synthetic_ett` is an offline stand-in of the same
shape and columns (ci scale).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from repro.data import load_payload

__all__ = ["ETTH1_COLUMNS", "ETTH1_ROWS", "ETTH1_SPLIT", "ForecastData", "PRED_LEN", "SEQ_LEN", "TimeSeries",
           "etth1_split", "forecasting_windows", "load_etth1", "load_forecast_data", "parse_ett_csv",
           "require_columns", "sliding_windows", "synthetic_ett"]

ETTH1_COLUMNS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
#: Row ranges ``[start, stop)`` of the standard split: 12, 4 and 4 months of 30 days x 24 hours.
ETTH1_SPLIT = {"train": (0, 12 * 30 * 24), "val": (12 * 30 * 24, 16 * 30 * 24), "test": (16 * 30 * 24, 20 * 30 * 24)}


@dataclass(frozen=True)
class TimeSeries:
    """A multivariate series: ``dates`` (``datetime64[s]``, shape ``[n]``), ``values`` (float64,
    ``[n, len(columns)]``) and the column names."""

    dates: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]

    def column(self, name: str) -> np.ndarray:
        """The values of one column (``KeyError`` naming the columns if absent)."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; columns: {', '.join(self.columns)}")
        return self.values[:, self.columns.index(name)]


def parse_ett_csv(data: bytes) -> TimeSeries:
    """Parse an ETT csv (``date,<columns...>``, dates ``YYYY-MM-DD HH:MM:SS``).

    Raises:
        ValueError: if the header does not start with ``date`` or a row has the wrong width.
    """
    lines = data.decode("utf-8").strip().splitlines()
    header = lines[0].strip().split(",")
    if header[0] != "date" or len(header) < 2:
        raise ValueError(f"expected a header 'date,<columns>', got {lines[0]!r}")
    rows = [line.split(",") for line in lines[1:]]
    bad = next((i for i, r in enumerate(rows) if len(r) != len(header)), None)
    if bad is not None:
        raise ValueError(f"row {bad + 1} has {len(rows[bad])} fields, expected {len(header)}")
    dates = np.array([r[0].replace(" ", "T") for r in rows], dtype="datetime64[s]")
    values = np.array([r[1:] for r in rows], dtype=np.float64)
    return TimeSeries(dates=dates, values=values, columns=tuple(header[1:]))


def load_etth1(root: str | os.PathLike | None = None, *, fetch_missing: bool = True) -> TimeSeries:
    """The whole ETTh1 series (17,420 x 7), from the verified cache (fetched first if needed)."""
    return parse_ett_csv(load_payload("etth1", root=root, fetch_missing=fetch_missing))


def etth1_split(series: TimeSeries) -> dict[str, TimeSeries]:
    """``{"train", "val", "test"}`` row blocks of :data:`ETTH1_SPLIT` (8640 / 2880 / 2880 rows).

    Raises:
        ValueError: if the series is shorter than the split (14,400 rows).
    """
    if len(series.dates) < ETTH1_SPLIT["test"][1]:
        raise ValueError(f"the split needs {ETTH1_SPLIT['test'][1]} rows, the series has {len(series.dates)}")
    return {part: TimeSeries(series.dates[a:b], series.values[a:b], series.columns)
            for part, (a, b) in ETTH1_SPLIT.items()}


# ------------------------------------------------------------------------------------------ forecasting

#: the Informer benchmark's window lengths (paper/polystep_reconstruction.md §5.1): 96 hours in, 96 out
SEQ_LEN, PRED_LEN = 96, 96
#: rows of the real file (17,420 hourly rows from 2016-07-01 00:00)
ETTH1_ROWS = 17_420


def require_columns(series: TimeSeries, columns: tuple[str, ...] | list[str] = ETTH1_COLUMNS) -> TimeSeries:
    """``series`` if it has every column of ``columns``.

    Raises:
        ValueError: naming the missing columns and the ones the file has.
    """
    missing = [c for c in columns if c not in series.columns]
    if missing:
        raise ValueError(f"the ETT file lacks the column(s) {missing}; it has {list(series.columns)} "
                         f"(an ETTh1 csv has date,{','.join(ETTH1_COLUMNS)})")
    return series


def synthetic_ett(n_rows: int = ETTH1_ROWS, seed: int = 0) -> TimeSeries:
    """An ETTh1-shaped stand-in (offline; the ci scale's data): ``n_rows`` hourly rows from
    2016-07-01 00:00 with the seven ETTh1 columns.  Each column is a level plus daily and weekly
    sinusoids, a slow trend and AR(1) noise (coefficient 0.9) drawn from ``numpy``'s
    ``default_rng(seed)``; ``OT`` is smoother (an oil temperature follows the load with a lag).
    Not ETTh1: only its shape, columns and rough character."""
    n_rows = int(n_rows)
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows, dtype=np.float64)
    dates = np.datetime64("2016-07-01T00:00:00") + t.astype(np.int64) * np.timedelta64(1, "h")
    cols = []
    for j in range(len(ETTH1_COLUMNS)):
        noise = rng.standard_normal(n_rows)
        ar = np.empty(n_rows)
        ar[0] = noise[0]
        for i in range(1, n_rows):
            ar[i] = 0.9 * ar[i - 1] + noise[i]
        daily = (1.0 + 0.3 * j) * np.sin(2 * np.pi * t / 24 + 0.4 * j)
        weekly = 0.5 * np.sin(2 * np.pi * t / (24 * 7) + 0.2 * j)
        trend = 0.3 * np.sin(2 * np.pi * t / n_rows)
        cols.append(10.0 + j + daily + weekly + trend + 0.3 * ar)
    values = np.stack(cols, axis=1)
    ot = ETTH1_COLUMNS.index("OT")
    kernel = np.ones(6) / 6.0  # OT: a lagged moving average of the load columns plus its own noise
    values[:, ot] = 15.0 + np.convolve(values[:, :6].mean(axis=1) - values[:, :6].mean(), kernel, "same") \
        + 0.2 * values[:, ot] - 0.2 * values[:, ot].mean()
    return TimeSeries(dates=dates, values=values, columns=ETTH1_COLUMNS)


def sliding_windows(values: np.ndarray, seq_len: int, pred_len: int) -> tuple[np.ndarray, np.ndarray]:
    """All windows of a 1-D series with stride 1: ``x[k] = values[k : k + seq_len]``,
    ``y[k] = values[k + seq_len : k + seq_len + pred_len]``, ``k = 0 .. n - seq_len - pred_len``.

    Raises:
        ValueError: a series shorter than one window, or non-positive lengths.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"expected a 1-D series, got shape {values.shape}")
    if seq_len < 1 or pred_len < 1:
        raise ValueError(f"seq_len and pred_len must be >= 1, got {seq_len}, {pred_len}")
    n = values.shape[0] - seq_len - pred_len + 1
    if n < 1:
        raise ValueError(f"a series of {values.shape[0]} points has no window of {seq_len} + {pred_len}")
    both = np.lib.stride_tricks.sliding_window_view(values, seq_len + pred_len)
    return np.ascontiguousarray(both[:, :seq_len]), np.ascontiguousarray(both[:, seq_len:])


@dataclass(frozen=True)
class ForecastData:
    """Normalised forecasting windows of one column: ``x_<split>`` ``[n, seq_len]`` and ``y_<split>``
    ``[n, pred_len]`` (float32 tensors) for ``train``, ``val``, ``test``; ``mean`` and ``std`` are
    the training rows' statistics used for the z-score."""

    x_train: "torch.Tensor"
    y_train: "torch.Tensor"
    x_val: "torch.Tensor"
    y_val: "torch.Tensor"
    x_test: "torch.Tensor"
    y_test: "torch.Tensor"
    mean: float
    std: float
    column: str
    seq_len: int
    pred_len: int
    name: str

    def split(self, part: str) -> tuple["torch.Tensor", "torch.Tensor"]:
        """``(x, y)`` of ``part`` (``"train"``, ``"val"`` or ``"test"``)."""
        if part not in ETTH1_SPLIT:
            raise ValueError(f"part must be one of {list(ETTH1_SPLIT)}, got {part!r}")
        return getattr(self, f"x_{part}"), getattr(self, f"y_{part}")


def forecasting_windows(series: TimeSeries, *, column: str = "OT", seq_len: int = SEQ_LEN,
                        pred_len: int = PRED_LEN, name: str = "etth1") -> ForecastData:
    """The univariate forecasting task of Table T6 (paper/polystep_reconstruction.md §5.1).

    * the split of :data:`ETTH1_SPLIT` with the Informer borders: a validation or test window's
      *input* may reach back ``seq_len`` rows into the previous block, its *targets* all lie in the
      block (Informer's ``border1 = start - seq_len``), so the train / val / test blocks give
      ``8640 - seq_len - pred_len + 1`` / ``2880 - pred_len + 1`` / ``2880 - pred_len + 1`` windows
      (8,449 / 2,785 / 2,785 at 96 -> 96; 8,449 / 64 rounds up to the paper's 133 batches per epoch);
    * z-score with the training rows' mean and (population) standard deviation of ``column``;
    * sliding windows of stride 1 (:func:`sliding_windows`).

    Raises:
        ValueError: missing columns (:func:`require_columns`), a series shorter than the split, a
            constant training column or non-finite values.
    """
    require_columns(series, (column,))
    parts = etth1_split(series)
    values = series.column(column)
    train = parts["train"].column(column)
    if not np.all(np.isfinite(values[: ETTH1_SPLIT["test"][1]])):
        raise ValueError(f"column {column!r} has non-finite values in the first {ETTH1_SPLIT['test'][1]} rows")
    mean, std = float(train.mean()), float(train.std())
    if not std > 0:
        raise ValueError(f"column {column!r} is constant over the training rows: no z-score")
    z = (values - mean) / std
    out = {}
    for part, (a, b) in ETTH1_SPLIT.items():
        lo = a if part == "train" else a - seq_len
        x, y = sliding_windows(z[lo:b], seq_len, pred_len)
        out[f"x_{part}"] = torch.as_tensor(x, dtype=torch.float32)
        out[f"y_{part}"] = torch.as_tensor(y, dtype=torch.float32)
    return ForecastData(**out, mean=mean, std=std, column=column, seq_len=seq_len, pred_len=pred_len, name=name)


def load_forecast_data(dataset: str = "etth1", *, seq_len: int = SEQ_LEN, pred_len: int = PRED_LEN,
                       column: str = "OT", root: str | os.PathLike | None = None,
                       fetch_missing: bool = True) -> ForecastData:
    """:func:`forecasting_windows` of ``dataset``: ``"etth1"`` (the verified file, :func:`load_etth1`;
    its columns checked) or ``"synthetic"`` (:func:`synthetic_ett`, nothing downloaded)."""
    if dataset == "etth1":
        series = require_columns(load_etth1(root, fetch_missing=fetch_missing))
    elif dataset == "synthetic":
        series = synthetic_ett()
    else:
        raise ValueError(f"dataset must be 'etth1' or 'synthetic', got {dataset!r}")
    return forecasting_windows(series, column=column, seq_len=seq_len, pred_len=pred_len, name=dataset)
