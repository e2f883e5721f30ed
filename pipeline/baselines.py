"""baselines: every baseline in contestants.baselines.BASELINES (random walk, drift, AR(p), ridge on the last
row and on the whole window, with news the sentiment ridge), refit per fold; the same predictions table as
any model. Each baseline's last-fold fit is also a self-contained model like a network's (its affine map of
the window in a bundle, with its interval calibration): what an ensemble with a baseline member serves,
and `tsarena predict --model <baseline>`. On a synthetic source whose optimal forecast is known (ar1), also
the oracle: a reader sees what share of the attainable skill each model captured."""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.contestants.baselines import RETURN_FEATURE, ar1_oracle, fit_all, forecast_all
from tsarena.contestants.predictions import FORECAST_SPLITS, predictions_frame
from tsarena.contestants.producers import ORACLE, SPLIT, kind, model_dir, predictions_path
from tsarena.core.errors import stage_main
from tsarena.core.io import atomic_dir, write_json
from tsarena.split.windows import Windows, load_fold, read_meta

OUT = predictions_path(ORACLE)  # every baseline's and the oracle's: one file


def oracle(windows: Windows, data) -> dict[str, np.ndarray] | None:
    """phi-weighted last raw return, where the source is ar1 and the target a return; else None."""
    if data.source != "synthetic" or data.synthetic.kind != "ar1" or windows.meta["target_kind"] != "return":
        return None
    raw = np.load(windows.path / "features.npy", mmap_mode="r")[:, windows.meta["features"].index(RETURN_FEATURE)]
    return {s: ar1_oracle(raw[windows.ends[s]].astype(float), data.synthetic.phi, windows.meta["horizon"])
            for s in FORECAST_SPLITS}


@stage_main
def main() -> None:
    params = config.load("baselines", "data", "uncertainty", "tracking")
    parts, picked, n_folds = [], {}, read_meta(SPLIT)["n_folds"]
    for k in range(1, n_folds + 1):
        windows = load_fold(SPLIT, k)
        made = fit_all(windows, params["baselines"])
        forecasts, picked[k] = forecast_all(made, windows), {name: fit.chose for name, fit in made.items() if fit.chose}
        if (best := oracle(windows, params["data"])) is not None:
            forecasts[ORACLE] = best
        parts += [predictions_frame(name, k, 0, {s: (windows.ends[s], f) for s, f in by_split.items()})
                  for name, by_split in forecasts.items()]
        chosen = ", ".join(f"{name} {key} {value:g}" for name, chose in picked[k].items() for key, value in chose.items())
        print(f"baselines: fold {k}: {chosen}; chosen on the fold's validation split")
    table = pd.concat(parts, ignore_index=True)

    from tsarena.serving.bundle import Bundle, Member, calibration
    from tsarena.tracking.runs import StageRuns

    # one MLflow run per baseline, like a trained model's: the UI's runs list shows every contestant
    runs = StageRuns("baselines", ("split", str(SPLIT)), config.flatten(params), params["tracking"])
    with atomic_dir(OUT.parent) as tmp:
        table.to_parquet(tmp / OUT.name, index=False)
        for name, fit in made.items():  # the last fold's fits: the served ones
            folder = tmp / model_dir(name).relative_to(OUT.parent)
            served = table[(table["model"] == name) & (table["fold"] == n_folds) & (table["split"] == "val")]
            calibrated = calibration(served, windows.targets, windows.meta["target_kind"], params["uncertainty"].levels)
            Bundle.from_split(windows.meta, windows.meta["scaler_state"], [Member.affine(name, fit.coef, fit.intercept)],
                              calibrated).save(folder / "bundle")
            write_json(folder / "served.json", {"served": {"fold": n_folds, "seed": 0}})
        for name in table["model"].unique():
            with runs.parent(name):
                runs.log_tags({"kind": kind(name), "chosen_per_fold": str(picked)})
                runs.link_outputs(tmp / OUT.name)


if __name__ == "__main__":
    main()
