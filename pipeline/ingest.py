"""ingest: load raw prices from the configured source, validate them, write the long table."""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

import pyarrow as pa
import pyarrow.parquet as pq

from tsarena import config
from tsarena.data.prices import load_prices
from tsarena.core.errors import stage_main
from tsarena.core.io import atomic_file

OUT = "data/raw/prices.parquet"


@stage_main
def main() -> None:
    params = config.load("data")["data"]
    prices = load_prices(params)
    table = pa.Table.from_pandas(prices, preserve_index=False)
    bounds = prices.groupby("ticker", sort=False).size().cumsum().to_numpy()
    with atomic_file(OUT) as tmp, pq.ParquetWriter(tmp, table.schema) as writer:
        for start, end in zip([0, *bounds[:-1]], bounds):  # one row group per ticker: feature reads one at a time
            writer.write_table(table.slice(start, end - start))
    print(f"ingest: {len(prices)} rows, {prices['ticker'].nunique()} tickers, "
          f"{prices['date'].min().date()} to {prices['date'].max().date()} -> {OUT}")


if __name__ == "__main__":
    main()
