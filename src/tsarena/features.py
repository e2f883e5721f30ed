"""Causal features and forward targets, per ticker.

A feature at row t reads only rows <= t of the same ticker (rolling windows, EWMs with
adjust=False, lags). The target is the only column that looks forward, and it is kept apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsarena.config import FeatureParams

KEY_COLUMNS = ["date", "ticker", "target_date", "close", "next_return"]


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


def build_features(
    prices: pd.DataFrame, params: FeatureParams, labelled: bool = True
) -> tuple[pd.DataFrame, list[str]]:
    """Features + target for every ticker; rows with any undefined value are dropped per ticker.

    `labelled=False` keeps the latest rows, whose target is not known yet (for forecasting).
    """
    parts = []
    for _, group in prices.groupby("ticker", sort=False):
        features = ticker_features(group, params)
        targets = ticker_targets(group, params.target.horizon)
        parts.append(pd.concat([group[["date", "ticker", "close"]], targets, features], axis=1))
    table = pd.concat(parts)
    feature_names = [c for c in table.columns if c not in (*KEY_COLUMNS, "forward_return")]
    if params.target.kind == "direction":
        table["target"] = (table["forward_return"] > 0).astype("float64").where(table["forward_return"].notna())
    else:
        table["target"] = table["forward_return"]
    table = table.drop(columns="forward_return")
    table = table.replace([np.inf, -np.inf], np.nan)
    table = table.dropna(subset=None if labelled else feature_names).reset_index(drop=True)
    table[feature_names] = table[feature_names].astype("float32")
    return table[[*KEY_COLUMNS, *feature_names, "target"]], feature_names
