"""The params of data in: `data` (sources, news), `sentiment` (how news is scored and dated) and `features`."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from tsarena.core.params import Date, PositiveInt, Section
from tsarena.data.sources import SOURCES

ColumnName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
RESERVED_COLUMNS = {"date", "ticker", "open", "high", "low", "close", "adj_close", "volume"}


class CsvParams(Section):
    path: str = "data/input/prices.csv"
    sort: bool = False  # opt in to sorting out-of-order dates instead of rejecting them
    # numeric columns of the user's own (a daily sentiment score, ...): causal features, see features.extra_lag
    extra_columns: list[ColumnName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _extras_are_new(self) -> CsvParams:
        clash = [c for c in self.extra_columns if c in RESERVED_COLUMNS]
        if clash:
            raise ValueError(f"extra_columns: {clash[0]!r} is already a price column")
        if len(set(self.extra_columns)) != len(self.extra_columns):
            raise ValueError(f"extra_columns: each column once, got {self.extra_columns}")
        return self


class YfinanceParams(Section):
    tickers: list[str] = Field(default_factory=lambda: ["SPY"], min_length=1)


class SyntheticParams(Section):
    kind: Literal["gbm", "ar1", "sine", "regime"] = "gbm"
    n_days: Annotated[int, Field(ge=100)] = 2000
    n_series: PositiveInt = 1
    phi: Annotated[float, Field(gt=-1, lt=1)] = 0.3
    seed: int = 0


def _timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as America/New_York or UTC)") from None
    return name


NEWS_FOLDER = "data/input/"  # DVC tracks this folder for every stage that reads user files


class NewsParams(Section):
    # a CSV or Parquet of news items: timestamp, headline, optional ticker (none: every series) and body
    path: str | None = None
    timezone: str = "America/New_York"  # the zone of timestamps written without one

    _zone = field_validator("timezone")(_timezone)

    @field_validator("path")
    @classmethod
    def _tracked(cls, path: str | None) -> str | None:
        if path is not None and not (path.startswith(NEWS_FOLDER) and path.endswith((".csv", ".parquet"))):
            raise ValueError(f"a .csv or .parquet file under {NEWS_FOLDER} (DVC tracks that folder), got {path!r}")
        return path


class DataParams(Section):
    source: Literal[tuple(SOURCES)] = "arch"  # data.sources.SOURCES
    series: list[Literal["sp500", "nasdaq", "wti", "vix"]] = Field(default_factory=lambda: ["sp500"], min_length=1)
    start: Date = None
    end: Date = None
    nan_policy: Literal["error", "drop", "ffill"] = "ffill"
    max_nan_run: Annotated[int, Field(ge=0)] = 3
    csv: CsvParams = CsvParams()
    yfinance: YfinanceParams = YfinanceParams()
    synthetic: SyntheticParams = SyntheticParams()
    news: NewsParams = NewsParams()

    @model_validator(mode="after")
    def _dates_ordered(self) -> DataParams:
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"end: start {self.start} must be before end {self.end}")
        if self.csv.extra_columns and self.source != "csv":
            raise ValueError(f"csv: extra_columns {self.csv.extra_columns} come from a CSV; data.source is {self.source}")
        return self


class TargetParams(Section):
    kind: Literal["return", "direction"] = "return"
    horizon: Annotated[int, Field(ge=1, le=63)] = 1


Windows = list[Annotated[int, Field(ge=2, le=252)]]


class FeatureParams(Section):
    return_lags: list[Annotated[int, Field(ge=1, le=252)]] = Field(default_factory=lambda: [1, 5, 21])
    volatility_windows: Windows = Field(default_factory=lambda: [5, 21])
    ma_windows: Windows = Field(default_factory=lambda: [5, 21, 63])
    rsi_window: Annotated[int, Field(ge=2, le=252)] | None = 14
    macd: Annotated[list[PositiveInt], Field(min_length=3, max_length=3)] | None = Field(
        default_factory=lambda: [12, 26, 9]
    )  # fast, slow, signal spans
    volume_window: Annotated[int, Field(ge=2, le=252)] | None = 21
    high_low_range: bool = True
    # a CSV's extra column dated t enters the feature row of t + extra_lag: 1 (default) = first used for the
    # forecast made the next day, safe for a value published after the close; 0 = known at t's close
    extra_lag: Annotated[int, Field(ge=0, le=21)] = 1
    # a trading day's news scores (dated by sentiment.close_time: known at that day's close) enter the feature
    # row of t + sentiment_lag
    sentiment_lag: Annotated[int, Field(ge=0, le=21)] = 0
    target: TargetParams = TargetParams()

    @model_validator(mode="after")
    def _macd_order(self) -> FeatureParams:
        if self.macd and self.macd[0] >= self.macd[1]:
            raise ValueError(f"macd: fast span {self.macd[0]} must be below slow span {self.macd[1]}")
        return self




class SentimentParams(Section):
    """How news items become daily scores: the scorer, and the close that dates each item."""

    scorer: Literal["lexicon", "transformers"] = "lexicon"  # Loughran-McDonald dictionary | a local HF model
    model_path: str | None = None  # transformers: a local directory (a sequence-classification model)
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 32  # transformers: items per forward pass
    # an item stamped at or after the close counts for the next trading day
    close_time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "16:00"
    timezone: str = "America/New_York"  # the market's, where close_time is read
    # with news: every architecture also fits without the sentiment features (twice the fits), and the
    # report tests what the news added to each on the same test rows
    ablate: bool = True

    _zone = field_validator("timezone")(_timezone)

    @field_validator("close_time", mode="before")
    @classmethod
    def _sexagesimal(cls, value: object) -> object:
        """`close_time: 16:00` unquoted (as `dvc exp run -S` writes it back) is YAML 1.1's base-60 integer 960."""
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return f"{value // 60:02d}:{value % 60:02d}"
        return value

    @property
    def close(self) -> dt.time:
        return dt.time.fromisoformat(self.close_time)

    @model_validator(mode="after")
    def _model_given(self) -> SentimentParams:
        if self.scorer == "transformers" and not self.model_path:
            raise ValueError("model_path: scorer transformers reads a local model directory; set "
                             "sentiment.model_path (tsarena never downloads one)")
        return self
