"""window: chronological split by target date, purge, train-only scaler, zero-copy views."""

import numpy as np
import pandas as pd
import pytest

from tsarena.data.params import FeatureParams, SyntheticParams
from tsarena.split.params import WindowParams
from tsarena.data.sources import synthetic_prices
from tsarena.core.errors import TsarenaError
from tsarena.data.features import build_features
from tsarena.split.scaling import fit_scaler, scaler_to_dict, write_matrix
from tsarena.split.windows import chronological_split, training_rows, walk_forward_splits, window_view, windows_at


def table(horizon: int = 5, n_series: int = 3, n_days: int = 400):
    raw = synthetic_prices(SyntheticParams(kind="gbm", n_days=n_days, n_series=n_series), None)
    # tickers with different calendars: drop some days from one of them
    raw = raw.drop(raw[(raw["ticker"] == "SYN1")].index[::7])
    features, names = build_features(raw, FeatureParams(target={"horizon": horizon}))
    return features, names


PARAMS = WindowParams(seq_len=20, val_frac=0.2, test_frac=0.2)


def chunks(values: np.ndarray, rows: int = 37):
    """Blocks as the window stage reads them from the feature file, small enough to split tickers."""
    return ((start, values[start : start + rows]) for start in range(0, len(values), rows))


def test_no_window_crosses_a_ticker():
    features, _ = table()
    split = chronological_split(features, PARAMS)
    tickers = features["ticker"].to_numpy()
    for ends in (split.train, split.val, split.test):
        starts = ends - PARAMS.seq_len + 1
        assert (starts >= 0).all()
        assert (tickers[starts] == tickers[ends]).all()


def test_split_is_chronological_on_target_date_and_purged():
    features, _ = table(horizon=5)
    split = chronological_split(features, PARAMS)
    dates, target_dates = features["date"].to_numpy(), features["target_date"].to_numpy()
    assert (target_dates[split.train] < split.val_start).all()
    assert ((target_dates[split.val] >= split.val_start) & (target_dates[split.val] < split.test_start)).all()
    assert (target_dates[split.test] >= split.test_start).all()
    # purge: no training label interval (date, target_date] overlaps any validation label, likewise val -> test
    assert target_dates[split.train].max() <= dates[split.val].min()
    assert target_dates[split.val].max() <= dates[split.test].min()
    assert split.purged["train"] > 0 and split.purged["val"] > 0


def test_horizon_one_purges_nothing():
    features, _ = table(horizon=1)
    assert chronological_split(features, PARAMS).purged == {"train": 0, "val": 0}


def test_date_split_uses_the_given_dates():
    features, _ = table()
    params = WindowParams(seq_len=20, val_start="2000-10-02", test_start="2001-01-02")
    split = chronological_split(features, params)
    assert split.val_start == pd.Timestamp("2000-10-02") and split.test_start == pd.Timestamp("2001-01-02")


def test_every_test_target_row_is_predicted_exactly_once():
    features, _ = table()
    split = chronological_split(features, PARAMS)
    eligible = features.index[(features["target_date"] >= split.test_start)]
    # every eligible row that has a full window behind it
    position = features.groupby("ticker").cumcount()
    eligible = eligible[position[eligible] >= PARAMS.seq_len - 1]
    assert len(np.unique(split.test)) == len(split.test)
    assert set(split.test) == set(eligible)


def test_scaler_statistics_are_those_of_training_rows_alone(tmp_path):
    features, names = table()
    split = chronological_split(features, PARAMS)
    tickers = features["ticker"].to_numpy()
    mask = training_rows(tickers, split.train)
    # every training row is on or before its ticker's last training window end, and no later row is in
    for ticker in np.unique(tickers):
        last_train_date = features["date"].to_numpy()[split.train][tickers[split.train] == ticker].max()
        rows = features["ticker"] == ticker
        assert (mask[rows.to_numpy()] == (features.loc[rows, "date"] <= last_train_date).to_numpy()).all()
    values = features[names].to_numpy(dtype=np.float32)
    state = scaler_to_dict(fit_scaler(chunks(values), mask, "standard"))
    write_matrix(tmp_path / "matrix.npy", chunks(values), values.shape, state)
    matrix = np.load(tmp_path / "matrix.npy")
    np.testing.assert_allclose(state["mean"], values[mask].mean(axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(state["scale"], values[mask].std(axis=0), rtol=1e-5)
    assert abs(matrix[mask].mean(axis=0)).max() < 1e-4
    assert not np.allclose(matrix[~mask].mean(axis=0), 0, atol=1e-3)  # later rows not used to fit


def test_windows_are_views_into_one_matrix():
    matrix = np.arange(60, dtype=np.float32).reshape(20, 3)
    view = window_view(matrix, 4)
    assert view.shape == (17, 4, 3) and np.shares_memory(view, matrix)
    np.testing.assert_array_equal(view[5], matrix[5:9])
    batch = windows_at(matrix, np.array([3, 10]), 4)
    np.testing.assert_array_equal(batch[1], matrix[7:11])


def test_empty_split_is_a_clear_error():
    features, _ = table(n_days=300)
    with pytest.raises(TsarenaError, match="the test split has no windows"):
        chronological_split(features, WindowParams(seq_len=20, val_start="2000-06-01", test_start="2030-01-01"))


def test_robust_scaler_uses_training_rows_alone():
    features, names = table()
    split = chronological_split(features, PARAMS)
    mask = training_rows(features["ticker"].to_numpy(), split.train)
    values = features[names].to_numpy(dtype=np.float32)
    state = scaler_to_dict(fit_scaler(chunks(values), mask, "robust"))
    np.testing.assert_allclose(state["center"], np.median(values[mask], axis=0), rtol=1e-6)


def test_window_stage_output_never_crosses_tickers(tmp_path):
    """Through the real stage scripts, several tickers: the stage reads tickers as dictionary codes
    from Parquet (one row group per ticker), so check its windows against the tickers' names."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from tsarena.split.windows import load_fold

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "pipeline", tmp_path / "pipeline")
    (tmp_path / "params.yaml").write_text(
        "data:\n  source: synthetic\n  synthetic: {kind: gbm, n_series: 3, n_days: 400}\n"
        "features:\n  target: {horizon: 3}\nwindow:\n  seq_len: 20\n")
    for stage in ("ingest", "sentiment", "feature", "split"):
        subprocess.run([sys.executable, f"pipeline/{stage}.py"], cwd=tmp_path, check=True, capture_output=True)
    windows = load_fold(tmp_path / "data/split", 1)
    tickers = windows.rows["ticker"].to_numpy()
    assert windows.meta["tickers"] == ["SYN0", "SYN1", "SYN2"]
    for name, ends in windows.ends.items():
        assert len(ends) > 0
        assert (tickers[ends - windows.seq_len + 1] == tickers[ends]).all(), name
        assert set(tickers[ends]) == {"SYN0", "SYN1", "SYN2"}, name
    assert windows.meta["purged"] == {"train": 6, "val": 6}  # horizon - 1 per ticker and boundary


def test_too_few_rows_for_one_window_names_the_ticker():
    from tsarena.split.windows import check_lengths

    counts = pd.Series({"AAA": 80, "BBB": 12})
    check_lengths(counts, 12, "window.seq_len")  # exactly one window is enough
    with pytest.raises(TsarenaError) as err:
        check_lengths(counts, 13, "window.seq_len")
    assert str(err.value) == "ticker 'BBB' has 12 rows after features, fewer than one window needs (13) (window.seq_len)"


@pytest.mark.parametrize("horizon", [1, 5])
def test_walk_forward_folds_never_train_on_their_test_period(horizon):
    """Dates: each fold's training labels (and the rows its scaler sees) end before its validation
    labels start, its validation labels before its test labels; test runs are contiguous and ordered."""
    features, _ = table(horizon=horizon)
    dates, target_dates = features["date"].to_numpy(), features["target_date"].to_numpy()
    tickers = pd.factorize(features["ticker"])[0]
    folds = walk_forward_splits(features, PARAMS, 4)
    for k, fold in enumerate(folds):
        test_dates = target_dates[fold.test]
        assert (test_dates >= fold.test_start).all()
        if fold.test_end is not None:
            assert (test_dates < fold.test_end).all() and fold.test_end == folds[k + 1].test_start
        assert target_dates[fold.train].max() <= dates[fold.val].min() < test_dates.min()
        assert target_dates[fold.val].max() <= dates[fold.test].min()
        assert dates[training_rows(tickers, fold.train)].max() < fold.val_start
        if k:  # expanding: every later fold trains on more
            assert len(fold.train) > len(folds[k - 1].train)


def test_walk_forward_folds_cover_the_single_split_test_exactly_in_equal_runs():
    features, _ = table()
    single = chronological_split(features, PARAMS)
    folds = walk_forward_splits(features, PARAMS, 3)
    assert np.array_equal(np.sort(np.concatenate([f.test for f in folds])), np.sort(single.test))
    days = [len(np.unique(features["target_date"].to_numpy()[f.test])) for f in folds]
    assert max(days) - min(days) <= 1
    # one fold is the single split
    (only,) = walk_forward_splits(features, PARAMS, 1)
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(only, name), getattr(single, name))


def test_more_folds_than_test_days_is_an_error_naming_the_param():
    features, _ = table()
    with pytest.raises(TsarenaError) as err:
        walk_forward_splits(features, PARAMS, 10_000)
    assert err.value.where == "window.folds"
