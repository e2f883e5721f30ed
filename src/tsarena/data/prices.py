"""Raw prices from any source, in one long format: date, ticker, open, high, low, close, volume (sorted by
ticker and date, unique, prices > 0), plus any extra columns named in data.csv.extra_columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tsarena.data.params import DataParams
from tsarena.data.sources import SOURCES
from tsarena.data.validate import check_contract, normalise_prices
from tsarena.core.errors import TsarenaError

__all__ = ["load_prices", "normalise_prices"]


def load_prices(params: DataParams, root: Path = Path(".")) -> pd.DataFrame:
    """Load, validate and date-filter prices; raises TsarenaError naming what and where."""
    raw, where, labels = SOURCES[params.source](params, root)
    prices = normalise_prices(
        raw, where, labels=labels, nan_policy=params.nan_policy, max_nan_run=params.max_nan_run, sort=params.csv.sort,
        extras=params.csv.extra_columns,
    )
    if params.start:
        prices = prices[prices["date"] >= pd.Timestamp(params.start)]
    if params.end:
        prices = prices[prices["date"] <= pd.Timestamp(params.end)]
    if prices.empty:
        raise TsarenaError(f"no rows between {params.start} and {params.end}", "data.start, data.end")
    prices = prices.reset_index(drop=True)
    check_contract(prices)
    return prices
