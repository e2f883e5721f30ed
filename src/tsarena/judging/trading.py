"""The sign strategy a forecast implies, after costs: what the trading metrics and the equity plot read.

Position at t = sign(forecast - neutral), equal-weighted across tickers; costs per unit of turnover.
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


def strategy_legs(forecast: np.ndarray, next_return: np.ndarray, dates: np.ndarray, tickers: np.ndarray, neutral: float
                  ) -> pd.DataFrame:
    """Per date, a long/short sign strategy equal-weighted across tickers: `gross` simple return before
    costs and `turnover` (a flip long->short is 2 units). Position at t = sign(forecast - neutral)."""
    frame = pd.DataFrame(
        {"date": dates, "ticker": tickers, "position": np.sign(forecast - neutral), "ret": np.expm1(next_return)}
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
