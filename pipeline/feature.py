"""feature: causal technical features and the forward target, per ticker."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tsarena import config
from tsarena.errors import TsarenaError, stage_main
from tsarena.features import feature_names, ticker_table
from tsarena.io import atomic_dir, write_json

IN, OUT = "data/raw/prices.parquet", "data/features"


@stage_main
def main() -> None:
    params = config.load("features")["features"]
    names = feature_names(params)
    schema = {"features": names, "target": "target", "target_kind": params.target.kind,
              "horizon": params.target.horizon}
    n_rows = 0
    with atomic_dir(OUT) as tmp:
        writer = None
        # one ticker at a time, straight to Parquet: memory stays at the raw prices plus one ticker
        for _, group in pd.read_parquet(IN).groupby("ticker", sort=False):
            part = pa.Table.from_pandas(ticker_table(group, params), preserve_index=False)
            writer = writer or pq.ParquetWriter(tmp / "features.parquet", part.schema)
            writer.write_table(part)
            n_rows += part.num_rows
        writer.close()
        if n_rows == 0:
            raise TsarenaError("no rows left once every feature is defined: the series are shorter than the "
                               "longest feature window", "features")
        write_json(tmp / "schema.json", schema)
    print(f"feature: {n_rows} rows x {len(names)} features, target {params.target.kind} "
          f"over {params.target.horizon}d -> {OUT}")


if __name__ == "__main__":
    main()
