"""ingest: load raw prices from the configured source, validate them, write the long table."""

from tsarena import config
from tsarena.data import load_prices
from tsarena.errors import stage_main
from tsarena.io import atomic_file

OUT = "data/raw/prices.parquet"


@stage_main
def main() -> None:
    params = config.load("data")["data"]
    prices = load_prices(params)
    with atomic_file(OUT) as tmp:
        prices.to_parquet(tmp, index=False)
    print(f"ingest: {len(prices)} rows, {prices['ticker'].nunique()} tickers, "
          f"{prices['date'].min().date()} to {prices['date'].max().date()} -> {OUT}")


if __name__ == "__main__":
    main()
