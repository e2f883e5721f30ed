"""The strategies a forecast implies, after costs: what the trading metrics and the equity plot read.

The sign rule: position at t = sign(forecast - neutral). The sized rule ("signal + confidence"): position
= forecast / the half-width of its adaptive interval at `uncertainty.size_level`, capped at +-1, so a
forecast that is small beside its uncertainty trades little and a calm day's trades more. Both
equal-weighted across tickers; costs per unit of turnover.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

TRADING_DAYS = 252
BUY_AND_HOLD = "buy_and_hold"  # the equity plot's yardstick: long every ticker all along, the same costs


def neutral_forecast(target_kind: str) -> float:
    """The no-information forecast: zero log return (random walk), or a coin flip."""
    return 0.5 if target_kind == "direction" else 0.0


def sized_positions(forecast: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The sized rule's positions: forecast over its interval's half-width, in [-1, 1] (0 for a zero width)."""
    half = (np.asarray(upper) - np.asarray(lower)) / 2
    ratio = np.divide(forecast, half, out=np.zeros(len(half)), where=half > 0)
    return np.clip(ratio, -1.0, 1.0)


def strategy_legs(forecast: np.ndarray, next_return: np.ndarray, dates: np.ndarray, tickers: np.ndarray, neutral: float,
                  position: np.ndarray | None = None) -> pd.DataFrame:
    """Per date, a long/short strategy equal-weighted across tickers: `gross` simple return before
    costs and `turnover` (a flip long->short is 2 units). Position at t = sign(forecast - neutral), or
    `position` as given (the sized rule's)."""
    position = np.sign(forecast - neutral) if position is None else position
    frame = pd.DataFrame(
        {"date": dates, "ticker": tickers, "position": position, "ret": np.expm1(next_return)}
    ).sort_values(["ticker", "date"], kind="stable")
    frame["turnover"] = frame.groupby("ticker", sort=False)["position"].diff().fillna(frame["position"]).abs()
    frame["gross"] = frame["position"] * frame["ret"]
    return frame.groupby("date")[["gross", "turnover"]].mean()


def strategy_returns(
    forecast: np.ndarray, next_return: np.ndarray, dates: np.ndarray, tickers: np.ndarray, neutral: float, cost_bps: float
) -> pd.Series:
    """Daily simple returns of the sign strategy after costs of `cost_bps` per unit turnover."""
    return after_costs(strategy_legs(forecast, next_return, dates, tickers, neutral), cost_bps)


def after_costs(legs: pd.DataFrame, cost_bps: float) -> pd.Series:
    """A strategy's daily returns (strategy_legs) after `cost_bps` per unit of turnover."""
    return legs["gross"] - cost_bps / 1e4 * legs["turnover"]


def break_even_bps(legs: pd.DataFrame) -> float | None:
    """The cost per unit turnover (bps) at which the strategy's mean return after costs is zero."""
    turnover = legs["turnover"].mean()
    return float(1e4 * legs["gross"].mean() / turnover) if turnover > 0 else None


def sharpe_ratio(returns: pd.Series) -> float | None:
    std = returns.std()
    return float(returns.mean() / std * math.sqrt(TRADING_DAYS)) if std > 0 else None


def max_drawdown(returns: pd.Series) -> float:
    equity = (1 + returns).cumprod()
    return float((equity / equity.cummax() - 1).min())


def equity_curves(pnl: dict[str, pd.Series], models: list[str]) -> pd.DataFrame:
    """Equity (start 1.0) by date of each of `models`' strategies, from their daily returns after costs."""
    columns = {name: (1 + returns).cumprod() for name, returns in pnl.items() if name in models}
    return pd.DataFrame(columns).rename_axis("date").reset_index()
