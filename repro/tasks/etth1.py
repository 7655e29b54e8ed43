"""ETTh1 (electricity transformer temperature, hourly) and its standard 12 / 4 / 4-month split.

The csv comes from :mod:`repro.data` (verified cache, fetched on first use).  Columns: ``date``
then ``HUFL HULL MUFL MULL LUFL LULL OT`` (``OT``, the oil temperature, is the usual target);
17,420 hourly rows from 2016-07-01 00:00.  The split of the Informer benchmark
(paper/polystep_reconstruction.md §5.1): the first 12 months (8640 rows) train, the next 4 (2880)
validation, the next 4 (2880) test; the remaining rows are unused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from repro.data import load_payload

__all__ = ["ETTH1_COLUMNS", "ETTH1_SPLIT", "TimeSeries", "etth1_split", "load_etth1", "parse_ett_csv"]

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
