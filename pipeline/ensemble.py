"""ensemble: combine its members' forecasts (arena.ensemble_members: by default the architectures in
arena.models; baselines may join, e.g. sentiment_ridge: price models fused with the news model) with weights
fit on validation only (arena.ensemble: inverse_mse | stacking); with arena.ensemble null it writes an empty
table.

Its served form runs the members' served models (each network the last fold's best seed, each baseline its
last-fold fit) with the last fold's weights averaged over seeds, logged like any model in an MLflow run
`ensemble`."""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.core.errors import TsarenaError, stage_main
from tsarena.contestants.predictions import empty_predictions
from tsarena.core.io import atomic_dir, read_json, write_json
from tsarena.contestants.producers import ENSEMBLE, SPLIT, model_dir, predictions_path
from tsarena.contestants.ensemble import combine, every_seed, served_validation, served_weights
from tsarena.split.windows import read_meta

OUT = model_dir(ENSEMBLE)


@stage_main
def main() -> None:
    params = config.load("arena", "uncertainty", "tracking")
    arena, levels = params["arena"], params.pop("uncertainty").levels
    with atomic_dir(OUT) as tmp:
        if not arena.ensemble:
            empty_predictions().to_parquet(tmp / "predictions.parquet", index=False)
            print("ensemble: off (arena.ensemble is null)")
            return
        names = arena.members
        own = {m: pd.read_parquet(predictions_path(m)).query("model == @m") for m in names}
        for m, part in own.items():
            if part.empty:  # a baseline that does not apply to these data
                raise TsarenaError(f"{m} has no forecasts on these data; leave it out", "arena.ensemble_members")
        members = pd.concat(own.values(), ignore_index=True)
        targets = np.load(SPLIT / "targets.npy")
        table, weights = combine(every_seed(own), names, targets, arena.ensemble)
        table.to_parquet(tmp / "predictions.parquet", index=False)
        write_json(tmp / "weights.json", weights)

        from tsarena.serving.bundle import Bundle, calibration
        from tsarena.serving.mlflow_model import log_bundle, signature_example
        from tsarena.tracking.runs import StageRuns

        served = served_weights(weights)
        fits = {m: read_json(model_dir(m) / "served.json")["served"] for m in names}
        calibrated = calibration(served_validation(members, fits, served), targets, read_meta(SPLIT)["target_kind"],
                                 levels)
        Bundle.combine({m: model_dir(m) / "bundle" for m in names}, served, tmp / "bundle", calibrated)
        runs = StageRuns(ENSEMBLE, ("split", str(SPLIT)), config.flatten(params), params["tracking"])
        with runs.parent(ENSEMBLE):
            logged = log_bundle(ENSEMBLE, tmp / "bundle", *signature_example(Bundle.load(tmp / "bundle"), SPLIT))
            runs.log_metrics({f"weight.{m}": w for m, w in served.items()})
            write_json(tmp / "served.json", {"served": {"weights": served}})
            runs.link_outputs(tmp / "predictions.parquet", served={"weights": served}, **logged)
    print(f"ensemble: {arena.ensemble} of {names}; served weights {served}")


if __name__ == "__main__":
    main()
