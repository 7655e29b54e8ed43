"""Table T6's forecasting data (repro.tasks.etth1): the Informer split and borders, the z-score with
training statistics only, stride-1 windows, the offline stand-in, and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from repro.data import DATASETS, CacheError, data_path
from repro.tasks.etth1 import (ETTH1_COLUMNS, ETTH1_ROWS, TimeSeries, forecasting_windows, load_forecast_data,
                               parse_ett_csv, require_columns, sliding_windows, synthetic_ett)


def _csv(series: TimeSeries, columns=ETTH1_COLUMNS) -> bytes:
    idx = [series.columns.index(c) for c in columns]
    rows = [str(d).replace("T", " ") + "," + ",".join(f"{v:.6f}" for v in series.values[i, idx])
            for i, d in enumerate(series.dates)]
    return ("date," + ",".join(columns) + "\n" + "\n".join(rows) + "\n").encode()


def test_sliding_windows_are_every_stride_one_window() -> None:
    v = np.arange(10.0)
    x, y = sliding_windows(v, 3, 2)
    assert x.shape == (6, 3) and y.shape == (6, 2)
    np.testing.assert_array_equal(x[0], [0, 1, 2])
    np.testing.assert_array_equal(y[0], [3, 4])
    np.testing.assert_array_equal(x[-1], [5, 6, 7])
    np.testing.assert_array_equal(y[-1], [8, 9])
    np.testing.assert_array_equal(x[1:, :-1], x[:-1, 1:])  # stride 1
    with pytest.raises(ValueError, match="no window"):
        sliding_windows(np.arange(4.0), 3, 2)
    with pytest.raises(ValueError, match="1-D"):
        sliding_windows(np.zeros((5, 2)), 1, 1)


def test_informer_split_borders_counts_and_train_statistics() -> None:
    series = synthetic_ett()
    assert series.values.shape == (ETTH1_ROWS, 7) and series.columns == ETTH1_COLUMNS
    d = forecasting_windows(series)
    # 8640 - 192 + 1 train windows; val / test inputs reach 96 rows back: 2880 - 96 + 1 each
    assert (d.x_train.shape, d.y_train.shape) == ((8449, 96), (8449, 96))
    assert d.x_val.shape == d.x_test.shape == (2785, 96) and d.y_val.shape == d.y_test.shape == (2785, 96)
    ot = series.column("OT")
    mean, std = ot[:8640].mean(), ot[:8640].std()
    assert d.mean == pytest.approx(mean) and d.std == pytest.approx(std)
    z = (ot - mean) / std
    # float32 storage of float64 z-scores: relative rounding 6e-8 on values of order 1-3
    np.testing.assert_allclose(d.x_train[0].numpy(), z[:96], rtol=0, atol=1e-6)
    np.testing.assert_allclose(d.x_val[0].numpy(), z[8640 - 96:8640], rtol=0, atol=1e-6)
    np.testing.assert_allclose(d.y_val[0].numpy(), z[8640:8736], rtol=0, atol=1e-6)
    np.testing.assert_allclose(d.y_val[-1].numpy(), z[11520 - 96:11520], rtol=0, atol=1e-6)
    np.testing.assert_allclose(d.x_test[0].numpy(), z[11520 - 96:11520], rtol=0, atol=1e-6)
    np.testing.assert_allclose(d.y_test[-1].numpy(), z[14400 - 96:14400], rtol=0, atol=1e-6)
    # the last training target is row 8639: no training window sees a validation row
    np.testing.assert_allclose(d.y_train[-1, -1].item(), z[8639], rtol=0, atol=1e-6)


def test_statistics_come_from_the_training_rows_only() -> None:
    series = synthetic_ett()
    values = series.values.copy()
    values[8640:, ETTH1_COLUMNS.index("OT")] += 100.0  # move val / test / unused rows far away
    moved = forecasting_windows(TimeSeries(series.dates, values, series.columns))
    base = forecasting_windows(series)
    assert moved.mean == base.mean and moved.std == base.std
    assert np.array_equal(moved.x_train.numpy(), base.x_train.numpy())
    assert float(moved.y_test.mean()) > float(base.y_test.mean()) + 50  # test windows are not re-normalised


def test_synthetic_stand_in_is_deterministic_and_seeded() -> None:
    a, b, c = synthetic_ett(seed=0), synthetic_ett(seed=0), synthetic_ett(seed=1)
    assert np.array_equal(a.values, b.values) and not np.array_equal(a.values, c.values)
    assert np.all(np.isfinite(a.values)) and a.dates[1] - a.dates[0] == np.timedelta64(1, "h")
    d = load_forecast_data("synthetic", seq_len=24, pred_len=12)
    assert d.x_train.shape == (8640 - 36 + 1, 24) and d.name == "synthetic"


def test_a_file_with_missing_columns_is_refused_naming_them() -> None:
    series = synthetic_ett(n_rows=14_500)
    no_ot = parse_ett_csv(_csv(series, columns=ETTH1_COLUMNS[:-1]))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['OT'\]"):
        require_columns(no_ot)
    with pytest.raises(ValueError, match="'OT'"):
        forecasting_windows(no_ot)
    two_missing = parse_ett_csv(_csv(series, columns=("HUFL", "HULL", "MUFL", "MULL", "LUFL")))
    with pytest.raises(ValueError, match=r"\['LULL', 'OT'\]"):
        require_columns(two_missing)
    assert require_columns(parse_ett_csv(_csv(series))).columns == ETTH1_COLUMNS


def test_short_constant_or_non_finite_series_are_refused() -> None:
    series = synthetic_ett(n_rows=14_400)
    with pytest.raises(ValueError, match="14400 rows"):
        forecasting_windows(synthetic_ett(n_rows=14_399))
    values = series.values.copy()
    values[:8640, -1] = 3.0
    with pytest.raises(ValueError, match="constant"):
        forecasting_windows(TimeSeries(series.dates, values, series.columns))
    values = series.values.copy()
    values[9000, -1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        forecasting_windows(TimeSeries(series.dates, values, series.columns))
    with pytest.raises(ValueError, match="'etth1' or 'synthetic'"):
        load_forecast_data("weather")


def test_a_cached_file_with_a_bad_checksum_is_refused(tmp_path) -> None:
    """The real registry entry, a cache folder holding a file that is not ETTh1: loading without
    fetching raises CacheError naming the file and both checksums (nothing downloaded)."""
    spec = DATASETS["etth1"]
    path = data_path(spec, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_csv(synthetic_ett(n_rows=14_400)))
    with pytest.raises(CacheError, match=r"ETTh1\.csv has sha256 [0-9a-f]{64}, expected f18de3ad"):
        load_forecast_data("etth1", root=tmp_path, fetch_missing=False)


@pytest.mark.real_data
@pytest.mark.skipif(not data_path(DATASETS["etth1"]).exists(),
                    reason="etth1 is not in the data cache; run `polystep-repro data fetch etth1`")
def test_real_etth1_windows() -> None:
    d = load_forecast_data("etth1", fetch_missing=False)
    assert d.x_train.shape == (8449, 96) and d.x_test.shape == (2785, 96)
    # the training rows' z-score: the first-window inputs and last-window targets cover all 8640 rows
    rows = np.concatenate([d.x_train[:, 0].numpy(), d.x_train[-1, 1:].numpy(), d.y_train[-1].numpy()])
    assert rows.shape == (8640,)
    assert abs(rows.mean()) < 1e-5 and rows.std() == pytest.approx(1.0, abs=1e-5)  # float32 sums
    assert d.mean == pytest.approx(17.128, abs=1e-3) and d.std == pytest.approx(9.1765, abs=1e-3)
