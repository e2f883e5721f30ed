"""Turn a raw price table into the long-format contract (README "Data sources"), or say exactly what is wrong.

Every rejection names the source and, where it applies, the column and the row (for CSV files,
the line number a user sees in an editor).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tsarena.core.errors import TsarenaError

PRICE_COLUMNS = ["open", "high", "low", "close"]
COLUMNS = ["date", "ticker", *PRICE_COLUMNS, "volume"]
CHECK_ORDER = ["close", "open", "high", "low", "volume"]  # close first: a CSV's missing OHLC default to it


def _place(where: str, *parts: str) -> str:
    return ", ".join([where, *parts])


def _parse_dates(raw: pd.Series, labels: pd.Series, where: str) -> pd.Series:
    text = raw.astype("string").str.strip()
    missing = text.isna() | (text == "")
    if missing.any():
        raise TsarenaError("missing date", _place(where, "column date", labels[missing.idxmax()]))
    dates = pd.to_datetime(text, errors="coerce", format="mixed")
    bad = dates.isna()
    if bad.any():
        i = bad.idxmax()
        raise TsarenaError(f"unparseable date {raw[i]!r}", _place(where, "column date", labels[i]))
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert(None)
    return dates.astype("datetime64[ns]")


def _parse_numbers(raw: pd.Series, column: str, labels: pd.Series, where: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(raw):
        return raw.astype("float64")
    text = raw.astype("string").str.strip().replace("", pd.NA)
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & text.notna()
    if bad.any():
        i = bad.idxmax()
        raise TsarenaError(f"non-numeric value {raw[i]!r}", _place(where, f"column {column}", labels[i]))
    return values.astype("float64")


def _longest_nan_run(missing: np.ndarray) -> tuple[int, int]:
    """(length, start position) of the longest run of True."""
    best, best_start, run, start = 0, 0, 0, 0
    for pos, flag in enumerate(missing):
        if flag:
            if run == 0:
                start = pos
            run += 1
            if run > best:
                best, best_start = run, start
        else:
            run = 0
    return best, best_start


def _handle_missing(frame: pd.DataFrame, where: str, policy: str, max_run: int, extras: Sequence[str] = ()
                    ) -> pd.DataFrame:
    numeric = [*CHECK_ORDER, *extras]
    if not frame[numeric].isna().any().any():
        return frame
    parts = []
    for ticker, group in frame.groupby("ticker", sort=False):
        for column in numeric:
            missing = group[column].isna().to_numpy()
            if not missing.any():
                continue
            run, start = _longest_nan_run(missing)
            label = group["_label"].iloc[start]
            if policy == "error":
                raise TsarenaError(
                    "missing value, set data.nan_policy to drop or ffill to allow short gaps",
                    _place(where, f"column {column}", label),
                )
            if run > max_run:
                raise TsarenaError(
                    f"{run} consecutive missing values, more than data.max_nan_run={max_run}",
                    _place(where, f"ticker {ticker}", f"column {column}", f"from {label}"),
                )
        n_missing = int(group[numeric].isna().any(axis=1).sum())
        if policy == "ffill":
            group = group.copy()
            group[numeric] = group[numeric].ffill()  # past values only: causal
        group = group.dropna(subset=numeric)
        print(f"note: {policy} applied to {n_missing} rows with missing values ({where}, ticker {ticker})", file=sys.stderr)
        parts.append(group)
    return pd.concat(parts) if parts else frame.iloc[:0]


def _check_order(frame: pd.DataFrame, where: str, sort: bool, sort_key: str) -> pd.DataFrame:
    for ticker, group in frame.groupby("ticker", sort=False):
        dates = group["date"]
        dup = dates.duplicated(keep=False)
        if dup.any():
            rows = group.loc[dup, "_label"].tolist()[:2]
            day = dates[dup].iloc[0].date()
            raise TsarenaError(f"duplicate date {day}", _place(where, f"ticker {ticker}", " and ".join(rows)))
        if not dates.is_monotonic_increasing and not sort:
            step = dates.diff() < pd.Timedelta(0)
            i = step.idxmax()
            raise TsarenaError(
                f"dates out of order: {dates[i].date()} comes after a later date; "
                f"set {sort_key}: true to sort them",
                _place(where, f"ticker {ticker}", group.loc[i, "_label"]),
            )
    if sort:
        unsorted = not frame.sort_values(["ticker", "date"]).index.equals(frame.index)
        if unsorted:
            print(f"note: sorted out-of-order dates ({where}, {sort_key}: true)", file=sys.stderr)
    return frame.sort_values(["ticker", "date"], kind="stable")


def normalise_prices(
    raw: pd.DataFrame,
    where: str,
    *,
    labels: pd.Series | None = None,
    nan_policy: str = "error",
    max_nan_run: int = 0,
    sort: bool = False,
    sort_key: str = "data.csv.sort",
    extras: Sequence[str] = (),
) -> pd.DataFrame:
    """Validate and convert a raw table with columns date, ticker, open..volume (any dtype), plus the
    numeric `extras` (a user's own columns, after the price columns; missing values as for prices).

    `labels` names each raw row for error messages (default: "row <n>").
    """
    if raw.empty:
        raise TsarenaError("no data rows", where)
    raw = raw.reset_index(drop=True)
    labels = (
        pd.Series([f"row {i + 1}" for i in range(len(raw))]) if labels is None else labels.reset_index(drop=True)
    )
    frame = pd.DataFrame({"date": _parse_dates(raw["date"], labels, where)})
    frame["ticker"] = raw["ticker"].astype(str).str.strip()
    for column in CHECK_ORDER:
        frame[column] = _parse_numbers(raw[column], column, labels, where)
    for column in extras:
        if column not in raw:
            raise TsarenaError(f"missing column {column!r} named in data.csv.extra_columns (found {list(raw.columns)})",
                               where)
        frame[column] = _parse_numbers(raw[column], column, labels, where)
    frame["_label"] = labels
    frame = _check_order(frame, where, sort, sort_key)
    frame = _handle_missing(frame, where, nan_policy, max_nan_run, extras)
    for column in CHECK_ORDER[:4]:
        bad = frame[column] <= 0
        if bad.any():
            i = bad.idxmax()
            raise TsarenaError(
                f"non-positive price {frame.loc[i, column]:g}", _place(where, f"column {column}", frame.loc[i, "_label"])
            )
    bad = frame["volume"] < 0
    if bad.any():
        i = bad.idxmax()
        raise TsarenaError("negative volume", _place(where, "column volume", frame.loc[i, "_label"]))
    if frame.empty:
        raise TsarenaError("no rows left after removing missing values", where)
    return frame[[*COLUMNS, *extras]].reset_index(drop=True)


def check_contract(prices: pd.DataFrame) -> None:
    """The long-format contract every source must meet (a programming error if violated)."""
    assert list(prices.columns[: len(COLUMNS)]) == COLUMNS, prices.columns
    assert prices["date"].dtype == "datetime64[ns]"
    assert not prices.duplicated(["ticker", "date"]).any()
    assert prices.equals(prices.sort_values(["ticker", "date"], kind="stable"))
    assert (prices[PRICE_COLUMNS] > 0).all().all()
