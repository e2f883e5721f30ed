"""Price sources. Each returns a raw table with columns date, ticker, open, high, low, close, volume;
SOURCES (the end of this file) is the one list of them, read by `data.source`'s validation and ingest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from tsarena.core.errors import TsarenaError

if TYPE_CHECKING:  # the params import this file for SOURCES' names
    from tsarena.data.params import SyntheticParams

_ALIASES = {"adj close": "adj close", "adjclose": "adj close", "adj_close": "adj close", "adjusted close": "adj close"}


def _canonical(column: str) -> str:
    name = str(column).strip().lower()
    return _ALIASES.get(name, name.replace("_", " "))


def adjust_for_splits(table: pd.DataFrame) -> pd.DataFrame:
    """Use adjusted close where given, scaling open/high/low by the same factor (splits, dividends)."""
    if "adj close" not in table:
        return table
    table = table.copy()
    if "close" in table:
        close = pd.to_numeric(table["close"], errors="coerce")
        adj = pd.to_numeric(table["adj close"], errors="coerce")
        factor = (adj / close).where(close > 0)
        for column in ("open", "high", "low"):
            if column in table:
                numeric = pd.to_numeric(table[column], errors="coerce")
                # keep unparseable text as-is so validation can point at it
                table[column] = (numeric * factor).where(numeric.notna() & factor.notna(), table[column])
        table["close"] = table["adj close"].where(adj.notna() & close.notna(), table["close"])
    else:
        table["close"] = table["adj close"]
    return table.drop(columns="adj close")


def complete_columns(table: pd.DataFrame, where: str, default_ticker: str) -> pd.DataFrame:
    """Any price table (a CSV's text, or a DataFrame sent to a served model) -> date, ticker, OHLCV.

    Column names match case-insensitively; `date` and `close` (or `adj close`) are required;
    open/high/low default to close, volume to 0, ticker to `default_ticker`.
    """
    table = table.copy()
    table.columns = [_canonical(c) for c in table.columns]
    if table.columns.duplicated().any():
        raise TsarenaError(f"duplicate column {table.columns[table.columns.duplicated()][0]!r}", where)
    if "date" not in table:
        raise TsarenaError(f"missing column 'date' (found {list(table.columns)})", where)
    if "close" not in table and "adj close" not in table:
        raise TsarenaError(f"missing column 'close' (found {list(table.columns)})", where)
    table = adjust_for_splits(table)
    for column in ("open", "high", "low"):
        if column not in table:
            table[column] = table["close"]
    if "volume" not in table:
        table["volume"] = "0"
    if "ticker" not in table:
        table["ticker"] = default_ticker
    return table


def has_adjusted_close(columns: pd.Index) -> bool:
    """Whether a price table gives an adjusted close (then close becomes it: see adjust_for_splits)."""
    return any(_canonical(c) == "adj close" for c in columns)


def read_csv_text(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """A user CSV as it is (its own column names, every value as text), plus each row's line number
    for error messages."""
    where = str(path)
    if not path.is_file():
        raise TsarenaError("file not found", f"data.csv.path: {where}")
    head = path.read_bytes()[:65536]
    if not head.strip():
        raise TsarenaError("file is empty", where)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        head = b"\x00"
    if b"\x00" in head:
        raise TsarenaError("not a CSV text file (binary content)", where)
    return csv_table(path, where)


def csv_table(source: Any, where: str) -> tuple[pd.DataFrame, pd.Series]:
    """CSV text (a path or a text buffer) as it is, every value as text, and each row's line number."""
    try:
        table = pd.read_csv(source, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise TsarenaError("no CSV header", where) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TsarenaError(f"not valid CSV: {str(exc).strip().splitlines()[-1]}", where) from None
    lines = pd.Series([f"line {i + 2}" for i in range(len(table))])
    return table, lines


def read_csv(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """A user CSV as the raw price columns (text), ticker defaulting to the file's name, plus line numbers."""
    table, lines = read_csv_text(path)
    table = complete_columns(table, str(path), default_ticker=path.stem.upper())
    if table.empty:
        raise TsarenaError("no data rows below the header", str(path))
    return table, lines


def arch_prices(series: list[str]) -> pd.DataFrame:
    """Daily series shipped inside the `arch` package (offline): S&P 500 and NASDAQ OHLCV 1999-2018,
    WTI crude oil 1986-2019 and the VIX level 2014-2018 (close only: open/high/low are the close and
    volume 0, as for a CSV without them). Several series are several tickers."""
    from arch.data import nasdaq, sp500, vix, wti

    loaders = {"sp500": sp500.load, "nasdaq": nasdaq.load, "wti": wti.load, "vix": vix.load}
    frames = []
    for name in series:
        table = loaders[name]()
        if table.shape[1] == 1:  # a close-only series
            table = table.set_axis(["close"], axis=1)
        table = table.rename_axis("date").reset_index()
        table.columns = [_canonical(c) for c in table.columns]
        table = complete_columns(adjust_for_splits(table), f"arch {name}", default_ticker=name.upper())
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def yfinance_prices(tickers: list[str], start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
    """Optional extra; offline yfinance returns an empty frame instead of raising, so check."""
    try:
        import yfinance
    except ImportError:
        raise TsarenaError("yfinance is not installed: pip install -e '.[yfinance]'", "data.source") from None
    frames = []
    for ticker in tickers:
        table = yfinance.download(ticker, start=start, end=end, auto_adjust=False, progress=False)
        if table is None or table.empty:
            raise TsarenaError(
                f"yfinance returned no data for {ticker!r} (offline, or unknown ticker)", "data.yfinance.tickers"
            )
        if isinstance(table.columns, pd.MultiIndex):
            table.columns = table.columns.get_level_values(0)
        table = table.rename_axis("date").reset_index()
        table.columns = [_canonical(c) for c in table.columns]
        table = adjust_for_splits(table)
        table["ticker"] = ticker
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def _log_returns(kind: str, n: int, rng: np.random.Generator, phi: float) -> np.ndarray:
    sigma = 0.01
    if kind == "gbm":  # iid returns: nothing to forecast
        return 0.0002 + sigma * rng.standard_normal(n)
    if kind == "ar1":  # planted autocorrelation phi in daily log returns
        noise = sigma * rng.standard_normal(n)
        returns = np.empty(n)
        returns[0] = noise[0] / np.sqrt(1 - phi**2)
        for t in range(1, n):
            returns[t] = phi * returns[t - 1] + noise[t]
        return returns
    if kind == "sine":  # log price = slow sine + iid noise
        t = np.arange(n + 1)
        log_price = 0.05 * np.sin(2 * np.pi * t / 63) + 0.005 * rng.standard_normal(n + 1)
        return np.diff(log_price)
    if kind == "regime":
        return _regimes(n, rng)[0]
    raise ValueError(kind)


def _regimes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two-state Markov switching: calm up-trend (state 0), volatile down-trend (1). (returns, states)"""
    drift, vol, stay = np.array([0.0006, -0.0010]), np.array([0.007, 0.02]), 0.98
    state, returns, states = 0, np.empty(n), np.empty(n, dtype=np.int64)
    for t in range(n):
        if rng.random() > stay:
            state = 1 - state
        returns[t], states[t] = drift[state] + vol[state] * rng.standard_normal(), state
    return returns, states


def regime_states(params: SyntheticParams, start: dt.date | None = None) -> pd.DataFrame:
    """The `regime` source's hidden state per (date, ticker) (0 calm, 1 volatile) as synthetic_prices drew
    it: what a test of regime-aware methods scores against. The state of day t drove the return into t."""
    dates = pd.bdate_range(start or "2000-01-03", periods=params.n_days)
    return pd.concat([pd.DataFrame({"date": dates, "ticker": f"SYN{i}",
                                    "state": _regimes(params.n_days, np.random.default_rng([params.seed, i]))[1]})
                      for i in range(params.n_series)], ignore_index=True)


def synthetic_prices(params: SyntheticParams, start: dt.date | None) -> pd.DataFrame:
    """Seeded generators with known signal (or none), for tests and leak detection."""
    dates = pd.bdate_range(start or "2000-01-03", periods=params.n_days)
    frames = []
    for i in range(params.n_series):
        rng = np.random.default_rng([params.seed, i])
        close = 100 * np.exp(np.cumsum(_log_returns(params.kind, params.n_days, rng, params.phi)))
        prev = np.concatenate([[100.0], close[:-1]])
        open_ = prev * np.exp(0.005 * rng.standard_normal(params.n_days))  # overnight gap: ~1/5 of the daily variance
        spread = np.exp(np.abs(0.004 * rng.standard_normal((2, params.n_days))))
        frames.append(
            pd.DataFrame(
                {
                    "date": dates,
                    "ticker": f"SYN{i}",
                    "open": open_,
                    "high": np.maximum(open_, close) * spread[0],
                    "low": np.minimum(open_, close) / spread[1],
                    "close": close,
                    "volume": np.round(1e6 * rng.lognormal(0, 0.3, params.n_days)),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


Raw = tuple[pd.DataFrame, str, "pd.Series | None"]  # the table, where it came from (for errors), CSV line labels


def _csv(params: Any, root: Path) -> Raw:
    raw, labels = read_csv(root / params.csv.path)
    return raw, params.csv.path, labels


def _arch(params: Any, root: Path) -> Raw:
    return arch_prices(params.series), f"arch {', '.join(params.series)}", None


def _synthetic(params: Any, root: Path) -> Raw:
    return synthetic_prices(params.synthetic, params.start), f"synthetic {params.synthetic.kind}", None


def _yfinance(params: Any, root: Path) -> Raw:
    return yfinance_prices(params.yfinance.tickers, params.start, params.end), "yfinance", None


# `data.source` -> (the `data` params, the repo root) -> the raw table; adding a source is adding it here
SOURCES: dict[str, Callable[[Any, Path], Raw]] = {"arch": _arch, "csv": _csv, "synthetic": _synthetic,
                                                  "yfinance": _yfinance}
