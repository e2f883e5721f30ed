"""Causal features and forward targets, per ticker.

A feature at row t reads only rows <= t of the same ticker (rolling windows, EWMs with
adjust=False, lags). The target is the only column that looks forward, and it is kept apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsarena.data.params import FeatureParams
from tsarena.data.sentiment import SENTIMENT_COLUMNS

KEY_COLUMNS = ["date", "ticker", "target_date", "close", "next_return"]
PRICE_INPUTS = {"date", "ticker", "open", "high", "low", "close", "volume"}
EXTRA_PREFIX = "extra_"


def extra_columns(prices: pd.DataFrame) -> list[str]:
    """A user's own columns: whatever a validated price table carries beyond date, ticker, OHLCV and the
    news sentiment joined to it."""
    return [c for c in prices.columns if c not in PRICE_INPUTS and c not in SENTIMENT_COLUMNS]


def raw_extras(feature_names_: list[str]) -> list[str]:
    """The raw columns a model's extra features are made from (what its input must carry)."""
    return [n.removeprefix(EXTRA_PREFIX) for n in feature_names_ if n.startswith(EXTRA_PREFIX)]


def _ewm(x: pd.Series, span: int) -> pd.Series:
    return x.ewm(span=span, adjust=False, min_periods=span).mean()


def _rsi(close: pd.Series, window: int) -> pd.Series:
    """Wilder's RSI in [0, 1]."""
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    loss = (-delta).clip(lower=0).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    total = gain + loss
    return (gain / total).where(total > 0, 0.5)


def ticker_features(prices: pd.DataFrame, params: FeatureParams) -> pd.DataFrame:
    """Features for one ticker's rows, sorted by date; NaN where a window is not yet full."""
    close, log_close = prices["close"], np.log(prices["close"])
    log_return = log_close.diff()
    out = {"log_return": log_return}
    for lag in params.return_lags:
        if lag > 1:
            out[f"return_{lag}d"] = log_close - log_close.shift(lag)
    for window in params.volatility_windows:
        out[f"volatility_{window}d"] = log_return.rolling(window).std()
    for window in params.ma_windows:
        out[f"ma_ratio_{window}d"] = close / close.rolling(window).mean() - 1
    if params.rsi_window:
        out[f"rsi_{params.rsi_window}"] = _rsi(close, params.rsi_window)
    if params.macd:
        fast, slow, signal = params.macd
        macd = (_ewm(close, fast) - _ewm(close, slow)) / close
        out["macd"] = macd
        out["macd_signal"] = _ewm(macd, signal)
        out["macd_hist"] = macd - out["macd_signal"]
    if params.volume_window:
        log_volume = np.log1p(prices["volume"])
        rolling = log_volume.rolling(params.volume_window)
        std = rolling.std()
        # constant volume carries no information: its z-score is 0, not undefined
        out["volume_z"] = ((log_volume - rolling.mean()) / std).where(std > 0, 0.0).where(std.notna())
    if params.high_low_range:
        out["high_low_range"] = np.log(prices["high"] / prices["low"])
        out["close_open"] = np.log(close / prices["open"])
    for column in extra_columns(prices):  # dated t, first seen in row t + extra_lag: never before it exists
        out[f"{EXTRA_PREFIX}{column}"] = prices[column].shift(params.extra_lag)
    if SENTIMENT_COLUMNS[0] in prices:  # dated by the close each item preceded (data.sentiment.trading_days)
        for column in SENTIMENT_COLUMNS:
            out[column] = prices[column].shift(params.sentiment_lag)
    return pd.DataFrame(out, index=prices.index)


def ticker_targets(prices: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The forward-looking columns: target return over `horizon`, its date, next-day return."""
    log_close = np.log(prices["close"])
    return pd.DataFrame(
        {
            "target_date": prices["date"].shift(-horizon),
            "forward_return": log_close.shift(-horizon) - log_close,
            "next_return": log_close.shift(-1) - log_close,
        },
        index=prices.index,
    )


def feature_names(params: FeatureParams, extras: list[str] = (), sentiment: bool = False) -> list[str]:
    """The feature columns `params` produce from prices with `extras` (and news sentiment), in order (from a
    tiny frame: one source of truth)."""
    dummy = pd.DataFrame({"open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0],
                          **{c: [1.0] for c in [*extras, *(SENTIMENT_COLUMNS if sentiment else [])]}})
    return list(ticker_features(dummy, params).columns)


def ticker_table(prices: pd.DataFrame, params: FeatureParams, labelled: bool = True) -> pd.DataFrame:
    """One ticker's finished rows: keys, float32 features, target; undefined rows dropped.

    `labelled=False` keeps the latest rows, whose target is not known yet (for forecasting).
    """
    features = ticker_features(prices, params).astype("float32")
    targets = ticker_targets(prices, params.target.horizon)
    forward = targets.pop("forward_return")
    target = (forward > 0).astype("float64").where(forward.notna()) if params.target.kind == "direction" else forward
    table = pd.concat([prices[["date", "ticker", "close"]], targets, features], axis=1).assign(target=target)
    table = table.replace([np.inf, -np.inf], np.nan)
    table = table.dropna(subset=None if labelled else list(features.columns))[[*KEY_COLUMNS, *features.columns, "target"]]
    return table.join(prices[extra_columns(prices)])  # the raw extras too, as a user sends them (a model's example)


def build_features(
    prices: pd.DataFrame, params: FeatureParams, labelled: bool = True
) -> tuple[pd.DataFrame, list[str]]:
    """Features + target for every ticker (in memory; the feature stage streams ticker_table instead)."""
    parts = [ticker_table(group, params, labelled) for _, group in prices.groupby("ticker", sort=False)]
    return pd.concat(parts, ignore_index=True), feature_names(params, extra_columns(prices),
                                                              SENTIMENT_COLUMNS[0] in prices)
