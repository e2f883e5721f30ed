"""feature: causality (property test) and the target definition."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tsarena.data.params import FeatureParams, SyntheticParams
from tsarena.data.sources import synthetic_prices
from tsarena.data.features import build_features

PARAMS = FeatureParams(return_lags=[1, 3], volatility_windows=[4], ma_windows=[3, 6], rsi_window=5,
                       macd=[3, 6, 2], volume_window=4, target={"horizon": 2})


def prices(n_series: int = 2, n_days: int = 120, seed: int = 0) -> pd.DataFrame:
    return synthetic_prices(SyntheticParams(kind="regime", n_days=n_days, n_series=n_series, seed=seed), None)


@settings(max_examples=40, deadline=None)
@given(
    cut=st.integers(min_value=10, max_value=110),
    seed=st.integers(min_value=0, max_value=10_000),
    scale=st.floats(min_value=0.2, max_value=5.0),
    column=st.sampled_from(["open", "high", "low", "close", "volume"]),
)
def test_changing_rows_after_t_changes_no_feature_at_or_before_t(cut, seed, scale, column):
    raw = prices()
    changed = raw.copy()
    rng = np.random.default_rng(seed)
    later = changed["date"] > raw["date"].iloc[cut]
    changed.loc[later, column] *= scale * rng.uniform(0.5, 1.5, later.sum())
    before, names = build_features(raw, PARAMS)
    after, _ = build_features(changed, PARAMS)
    upto = raw["date"].iloc[cut]
    a = before[before["date"] <= upto].set_index(["ticker", "date"])[names]
    b = after[after["date"] <= upto].set_index(["ticker", "date"])[names]
    pd.testing.assert_frame_equal(a, b)


def test_target_is_forward_log_return_over_horizon():
    raw = prices(n_series=1)
    table, _ = build_features(raw, PARAMS)
    close = raw.set_index("date")["close"]
    row = table.iloc[20]
    t = close.index.get_loc(row["date"])
    assert np.isclose(row["target"], np.log(close.iloc[t + 2] / close.iloc[t]))
    assert row["target_date"] == close.index[t + 2]
    assert np.isclose(row["next_return"], np.log(close.iloc[t + 1] / close.iloc[t]))


def test_direction_target_is_the_sign():
    raw = prices(n_series=1)
    ret, _ = build_features(raw, PARAMS)
    direction, _ = build_features(raw, FeatureParams(**{**PARAMS.model_dump(), "target": {"kind": "direction", "horizon": 2}}))
    assert set(direction["target"].unique()) <= {0.0, 1.0}
    assert ((ret["target"] > 0).astype(float).to_numpy() == direction["target"].to_numpy()).all()


def test_rows_with_undefined_values_are_dropped_per_ticker():
    table, names = build_features(prices(), PARAMS)
    assert not table[names + ["target"]].isna().any().any()
    for _, group in table.groupby("ticker"):
        assert group["date"].is_monotonic_increasing
    # the last `horizon` rows of each ticker have no target and are gone
    assert table.groupby("ticker")["date"].max().nunique() == 1


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(min_value=10, max_value=110), lag=st.integers(min_value=0, max_value=3),
       seed=st.integers(min_value=0, max_value=10_000))
def test_an_extra_column_dated_t_is_first_used_in_row_t_plus_lag(cut, lag, seed):
    """The rule for a user's own columns (a sentiment score): the value dated t enters the feature row
    of t + features.extra_lag, so no forecast made before then can see it."""
    raw = prices().assign(sentiment=np.random.default_rng(seed).normal(size=240))
    params = PARAMS.model_copy(update={"extra_lag": lag})
    features, names = build_features(raw, params)
    assert names[-1] == "extra_sentiment" and "extra_sentiment" not in build_features(raw.drop(columns="sentiment"),
                                                                                      params)[1]
    for ticker, group in raw.groupby("ticker"):
        mine = features[features["ticker"] == ticker].set_index("date")["extra_sentiment"]
        expected = group.set_index("date")["sentiment"].shift(lag)
        pd.testing.assert_series_equal(mine, expected.loc[mine.index], check_names=False, check_dtype=False,
                                       rtol=1e-6)
    changed = raw.copy()
    at = raw["date"].iloc[cut]
    changed.loc[raw["date"] == at, "sentiment"] += 100.0  # change only the values dated `at`
    after, _ = build_features(changed, params)
    moved = features.set_index(["ticker", "date"])[names].compare(after.set_index(["ticker", "date"])[names])
    dates = moved.index.get_level_values("date")
    assert len(moved) == 0 or dates.min() >= at  # never a row before `at` ...
    if lag and len(moved):  # ... and with a lag, not the row of `at` itself either: first seen `lag` rows later
        assert dates.min() > at
