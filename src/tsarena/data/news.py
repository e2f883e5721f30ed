"""News items in: a user's CSV or Parquet file (or a DataFrame sent to a served model) -> a validated table.

Columns, matched case-insensitively: `timestamp` (with a time zone, or in `data.news.timezone`; a date
without a time of day counts as published at the end of that day, the causal reading), `headline`, and
optionally `ticker` (none or empty: the item applies to every series) and `body`. Every rejection names
the file and the line a user sees in an editor; nothing downstream is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tsarena.core.errors import TsarenaError
from tsarena.data.sources import read_csv_text

NEWS_COLUMNS = ["timestamp", "ticker", "headline", "body"]  # the validated table; timestamp in UTC
_TIME_OF_DAY = re.compile(r"\d:\d\d")


def read_news_file(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """The file's rows as text, and each row's label (its line in a CSV, its row in a Parquet file)."""
    if path.suffix == ".parquet":
        if not path.is_file():
            raise TsarenaError("file not found", f"data.news.path: {path}")
        try:
            table = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise TsarenaError(f"not a readable Parquet file: {str(exc).splitlines()[0]}", str(path)) from None
        return table, pd.Series([f"row {i + 1}" for i in range(len(table))])
    try:
        return read_csv_text(path)
    except TsarenaError as exc:
        raise TsarenaError(exc.what, exc.where.replace("data.csv.path", "data.news.path")) from None


def _parse_timestamps(raw: pd.Series, labels: pd.Series, zone: str, where: str) -> pd.Series:
    """Each stamp as a UTC time: its own offset if it has one, else `zone`'s; a bare date -> the end of that day."""
    out = []
    for i, value in enumerate(raw):
        text = "" if pd.isna(value) else str(value).strip()
        if not text:
            raise TsarenaError("missing timestamp", f"{where}, column timestamp, {labels[i]}")
        try:
            stamp = value if isinstance(value, pd.Timestamp) else pd.Timestamp(text)
        except (ValueError, TypeError, OverflowError):
            stamp = pd.NaT
        if pd.isna(stamp):
            raise TsarenaError(f"unparseable timestamp {text!r}", f"{where}, column timestamp, {labels[i]}")
        if not isinstance(value, pd.Timestamp) and not _TIME_OF_DAY.search(text):
            stamp = stamp.normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)  # no time: the day's end
        if stamp.tzinfo is None:
            try:
                stamp = stamp.tz_localize(zone, ambiguous="raise", nonexistent="raise")
            except Exception:  # pandas raises its own types for a daylight-saving gap or fold
                raise TsarenaError(f"timestamp {text!r} does not exist or is ambiguous in {zone} (a daylight-saving "
                                   "change); write it with its UTC offset", f"{where}, column timestamp, {labels[i]}") from None
        out.append(stamp.tz_convert("UTC"))
    return pd.Series(pd.DatetimeIndex(out, tz="UTC") if out else pd.DatetimeIndex([], tz="UTC"))


def normalise_news(raw: pd.DataFrame, where: str, zone: str, tickers: Sequence[str],
                   labels: pd.Series | None = None) -> pd.DataFrame:
    """Validate raw news rows -> timestamp (UTC), ticker ("" = every series), headline, body; sorted by time.

    `tickers` are the price table's: an item naming another is a typo the user should hear about, not
    news that silently counts for nothing.
    """
    raw = raw.reset_index(drop=True)
    labels = pd.Series([f"row {i + 1}" for i in range(len(raw))]) if labels is None else labels.reset_index(drop=True)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    if raw.columns.duplicated().any():
        raise TsarenaError(f"duplicate column {raw.columns[raw.columns.duplicated()][0]!r}", where)
    for column in ("timestamp", "headline"):
        if column not in raw:
            raise TsarenaError(f"missing column {column!r} (found {list(raw.columns)})", where)
    unknown = [c for c in raw.columns if c not in NEWS_COLUMNS]
    if unknown:
        raise TsarenaError(f"unknown column {unknown[0]!r} (a news file has {', '.join(NEWS_COLUMNS)})", where)
    if raw.empty:
        raise TsarenaError("no news items below the header", where)
    text = {c: raw[c].astype("string").fillna("").str.strip() if c in raw else pd.Series([""] * len(raw), dtype="string")
            for c in ("ticker", "headline", "body")}
    empty = text["headline"] == ""
    if empty.any():
        raise TsarenaError("empty headline", f"{where}, column headline, {labels[int(empty.to_numpy().argmax())]}")
    known = set(tickers)
    stray = (text["ticker"] != "") & ~text["ticker"].isin(known)
    if stray.any():
        i = int(stray.to_numpy().argmax())
        raise TsarenaError(f"unknown ticker {text['ticker'][i]!r} (the prices have {', '.join(sorted(known))}; "
                           "a price table without a ticker column is one series: leave the news' ticker empty)", f"{where}, column ticker, {labels[i]}")
    news = pd.DataFrame({"timestamp": _parse_timestamps(raw["timestamp"], labels, zone, where),
                         "ticker": text["ticker"].astype(str), "headline": text["headline"].astype(str),
                         "body": text["body"].astype(str)})
    return news.sort_values("timestamp", kind="stable").reset_index(drop=True)


def load_news(path: Path, zone: str, tickers: Sequence[str]) -> pd.DataFrame:
    """The configured news file, validated (see normalise_news)."""
    raw, labels = read_news_file(path)
    return normalise_news(raw, str(path), zone, tickers, labels)


POSITIVE = ["{t} reports record profit", "{t} outperforms rivals as sales improve", "{t} achieves successful launch",
            "{t} profit rises on improved margins"]
NEGATIVE = ["{t} posts surprise loss", "{t} warns of weak demand", "Regulators probe {t} over losses",
            "{t} shares decline after downgrade"]
NEUTRAL = ["{t} schedules annual meeting", "{t} names new chief financial officer", "{t} to present at industry conference",
           "{t} updates product line"]


def synthetic_news(prices: pd.DataFrame, link: float, seed: int, per_day: float = 2.0, after_close: bool = False,
                   zone: str = "America/New_York") -> pd.DataFrame:
    """Made-up headlines for a price table, with a planted link: on each trading day t, each item's tone is the
    sign of the next day's return with probability `link` (else a coin flip; a third are neutral).

    Stamped before t's 16:00 close (`after_close=False`) the link is usable by the forecast made at that
    close; stamped after it (`after_close=True`, news that "knows" tomorrow) a correct dating puts it in
    t + 1's row, where it says nothing about t + 2: a planted leak that only a misdating can exploit.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for ticker, group in prices.groupby("ticker", sort=False):
        dates = pd.DatetimeIndex(group["date"])[:-1]
        up = np.diff(np.log(group["close"].to_numpy())) > 0  # day t -> t + 1
        counts = rng.poisson(per_day, len(dates))
        day = np.repeat(np.arange(len(dates)), counts)
        n = len(day)
        informed = rng.random(n) < link
        tone = np.where(informed, np.where(up[day], 1, -1), rng.choice([-1, 1], n))
        tone = np.where(~informed & (rng.random(n) < 1 / 3), 0, tone)
        hours = rng.uniform(16.05, 23.9, n) if after_close else rng.uniform(7.0, 15.95, n)
        local = (dates[day].tz_localize(zone) + pd.to_timedelta(hours, unit="h")).floor("min")
        pick = rng.integers(0, 4, n)
        headlines = [{1: POSITIVE, -1: NEGATIVE, 0: NEUTRAL}[int(s)][int(k)].format(t=ticker) for s, k in zip(tone, pick)]
        parts.append(pd.DataFrame({"timestamp": local.strftime("%Y-%m-%dT%H:%M%z"), "ticker": ticker,
                                   "headline": headlines}))
    return pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)
