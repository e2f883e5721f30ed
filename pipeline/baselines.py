"""baselines: random walk, drift and ridge, refit per fold; the same predictions table as any model."""

import pandas as pd

from tsarena import config
from tsarena.errors import stage_main
from tsarena.predictions import predictions_frame
from tsarena.io import atomic_file
from tsarena.models.baselines import forecast_all
from tsarena.layout import SPLIT, predictions_path
from tsarena.windows import load_fold, read_meta

OUT = predictions_path("linear")


@stage_main
def main() -> None:
    alphas = config.load("baselines")["baselines"].ridge_alphas
    parts = []
    for k in range(1, read_meta(SPLIT)["n_folds"] + 1):
        windows = load_fold(SPLIT, k)
        forecasts, alpha = forecast_all(windows, alphas)
        parts += [predictions_frame(name, k, 0, {s: (windows.ends[s], f) for s, f in by_split.items()})
                  for name, by_split in forecasts.items()]
        print(f"baselines: fold {k}: ridge penalty {alpha:g} (chosen on the fold's validation split)")
    with atomic_file(OUT) as tmp:
        pd.concat(parts, ignore_index=True).to_parquet(tmp, index=False)


if __name__ == "__main__":
    main()
