"""evaluate: score every producer's predictions table (networks, baselines, ensemble): per fold,
and pooled over the folds (with one fold: the single split). Reads tables only; loads no model."""

from pathlib import Path

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.errors import stage_main
from tsarena.evaluation import check_predictions, equity_curves, score_models, test_frame
from tsarena.io import atomic_file, read_json, write_json
from tsarena.layout import SPLIT, model_dir, producers, trained
from tsarena.windows import read_meta

OUT = Path("data/eval")


@stage_main
def main() -> None:
    params = config.load("arena", "evaluate", "tracking")
    cost = params["evaluate"].cost_bps
    meta, rows = read_meta(SPLIT), pd.read_parquet(SPLIT / "rows.parquet")
    fold_ends = {k: np.load(SPLIT / f"fold_{k}/test_ends.npy") for k in range(1, meta["n_folds"] + 1)}
    cache, tables = {}, []
    for name, path in producers(params["arena"]).items():
        table = cache.setdefault(path, pd.read_parquet(path))
        check_predictions(table, name, fold_ends, str(path))
        tables.append(table[table["model"] == name])
    frame = test_frame(pd.concat(tables, ignore_index=True), rows)
    kind, horizon = meta["target_kind"], meta["horizon"]
    pooled = score_models(frame, kind, horizon, cost)
    per_fold = {str(k): score_models(part, kind, horizon, cost) for k, part in frame.groupby("fold")}
    metrics = {name: s["summary"] for name, s in pooled.items()}

    from tsarena.tracking import dvc_out_md5, log_test_metrics

    test_data = frame[frame["model"] == "random_walk"][["date", "ticker", "actual"]]
    digest = dvc_out_md5("split", str(SPLIT))
    for name in trained(params["arena"]):
        run = read_json(model_dir(name) / "run.json")
        metrics[name].update({k: run[k] for k in ("n_parameters", "train_seconds") if k in run})  # compute
        log_test_metrics(run, metrics[name], {key: per_fold[key.split("/")[0]][name]["seeds"][key.split("/")[1]]
                                              for key in run["child_runs"]}, params["tracking"], test_data, digest)
    mean = frame.groupby(["model", "fold", "row"], sort=False, as_index=False).agg(
        forecast=("forecast", "mean"), date=("date", "first"), ticker=("ticker", "first"),
        next_return=("next_return", "first"))  # the architecture's forecast: mean over seeds
    with atomic_file(OUT / "forecasts.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    with atomic_file(OUT / "equity.csv") as tmp:
        equity_curves(mean, [m for m in metrics if m != "random_walk"], kind, cost).to_csv(tmp, index=False)
    write_json(OUT / "details.json", {"folds": meta["folds"], "pooled": pooled, "per_fold": per_fold})
    write_json(OUT / "metrics.json", metrics)
    for name, m in metrics.items():
        spread = f" ± {m['test_rmse_std']:.6f}" if "test_rmse_std" in m else ""
        print(f"evaluate: {name:<12} rmse {m['test_rmse']:.6f}{spread}  dm_p {m['dm_pvalue']}  n {m['n_test']}")


if __name__ == "__main__":
    main()
