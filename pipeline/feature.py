"""feature: causal technical features and the forward target, per ticker."""

import pandas as pd

from tsarena import config
from tsarena.errors import stage_main
from tsarena.features import build_features
from tsarena.io import atomic_dir, write_json

IN, OUT = "data/raw/prices.parquet", "data/features"


@stage_main
def main() -> None:
    params = config.load("features")["features"]
    table, names = build_features(pd.read_parquet(IN), params)
    schema = {"features": names, "target": "target", "target_kind": params.target.kind,
              "horizon": params.target.horizon}
    with atomic_dir(OUT) as tmp:
        table.to_parquet(tmp / "features.parquet", index=False)
        write_json(tmp / "schema.json", schema)
    print(f"feature: {len(table)} rows x {len(names)} features, target {params.target.kind} "
          f"over {params.target.horizon}d -> {OUT}")


if __name__ == "__main__":
    main()
