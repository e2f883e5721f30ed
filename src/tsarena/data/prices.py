"""Raw prices from any source, in the long format of DESIGN.md."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tsarena.data.params import DataParams
from tsarena.data.sources import arch_prices, read_csv, synthetic_prices, yfinance_prices
from tsarena.data.validate import check_contract, normalise_prices
from tsarena.core.errors import TsarenaError

__all__ = ["load_prices", "normalise_prices"]


def load_prices(params: DataParams, root: Path = Path(".")) -> pd.DataFrame:
    """Load, validate and date-filter prices; raises TsarenaError naming what and where."""
    labels = None
    if params.source == "csv":
        path = root / params.csv.path
        raw, labels = read_csv(path)
        where = params.csv.path
    elif params.source == "arch":
        raw, where = arch_prices(params.series), f"arch {', '.join(params.series)}"
    elif params.source == "synthetic":
        raw, where = synthetic_prices(params.synthetic, params.start), f"synthetic {params.synthetic.kind}"
    else:
        raw, where = yfinance_prices(params.yfinance.tickers, params.start, params.end), "yfinance"
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
