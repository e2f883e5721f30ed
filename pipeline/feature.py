"""feature: causal technical features and the forward target, per ticker."""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

import pandas as pd
import pyarrow.parquet as pq

from tsarena import config
from tsarena.core.errors import TsarenaError, stage_main
from tsarena.data.feature_table import FeatureWriter, raw_tickers
from tsarena.data.features import extra_columns, feature_names, ticker_table
from tsarena.core.io import atomic_dir, read_json, write_json
from tsarena.data.sentiment import join_sentiment

IN, SENTIMENT, OUT = "data/raw/prices.parquet", "data/sentiment", "data/features"


@stage_main
def main() -> None:
    params = config.load("features")["features"]
    sentiment = read_json(f"{SENTIMENT}/meta.json")  # the sentiment stage's daily scores, when news is on
    news = sentiment["news"]
    daily = pd.read_parquet(f"{SENTIMENT}/daily.parquet") if news else None
    names = feature_names(params, extra_columns(pq.read_schema(IN).empty_table().to_pandas()), news is not None)
    tickers = []
    with atomic_dir(OUT) as tmp:
        # one ticker at a time, straight to disk: memory stays at one ticker's prices and features
        writer = FeatureWriter(tmp, names)
        try:
            for group in raw_tickers(IN):
                group = group if daily is None else join_sentiment(group, daily)
                writer.write(ticker_table(group, params), len(tickers))
                tickers.append(str(group["ticker"].iloc[0]))
        finally:
            writer.close()
        if writer.n_rows == 0:
            raise TsarenaError("no rows left once every feature is defined: the series are shorter than the "
                               "longest feature window", "features")
        write_json(tmp / "schema.json", {"features": names, "target": "target", "target_kind": params.target.kind,
                                         "horizon": params.target.horizon, "n_rows": writer.n_rows,
                                         "params": params.model_dump(mode="json"), "sentiment": sentiment["scoring"],
                                         "tickers": tickers})
    print(f"feature: {writer.n_rows} rows x {len(names)} features{', news sentiment among them' if news else ''}, "
          f"target {params.target.kind} over {params.target.horizon}d -> {OUT}")


if __name__ == "__main__":
    main()
