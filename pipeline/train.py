"""train@<model>: fit one registered architecture on every fold x seed; forecast validation and test.

Usage: python pipeline/train.py <model>. One MLflow parent run per execution (named after the model),
one nested run per fit (`lstm fold=1 seed=42`). The fits run in `train.jobs` processes, or as tasks on a Ray
cluster (train.backend ray), with results identical to running them one after another. The served model: the last fold's best seed on validation.
With news sentiment among the features (and sentiment.ablate), every fit runs a second time without the
sentiment columns: those forecasts (data/models/<model>/without_news.parquet) are what evaluate weighs the
news against; they are neither logged as runs nor served.
"""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.core.errors import StageInterrupted, TsarenaError, stage_main
from tsarena.fitting.cluster import Cluster, connect
from tsarena.fitting.pool import FitTask, resolve_jobs, run_tasks
from tsarena.fitting.fit import check_batch, served_fit
from tsarena.core.io import atomic_dir, atomic_file, read_json, scratch_dir, write_json
from tsarena.contestants.producers import (SPLIT, model_dir, predictions_path, tuned_path, without_news_name,
                                           without_news_path)
from tsarena.contestants.registry import architecture_names, n_parameters
from tsarena.contestants.predictions import N_PARAMETERS, TUNE_TRIALS, concat_tables
from tsarena.data.sentiment import SENTIMENT_COLUMNS
from tsarena.split.windows import load_fold, read_meta, write_scaled_fold, write_without_columns


@stage_main
def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("model", choices=architecture_names())
    name = cli.parse_args().model
    params = config.load("train", "uncertainty", "sentiment", "tracking")
    uncertainty = params.pop("uncertainty")  # intervals: the served model's and Monte Carlo dropout's
    ablate = params.pop("sentiment").ablate
    levels = uncertainty.levels
    if not tuned_path(name).is_file():
        raise TsarenaError(f"no configuration for {name}: run `dvc repro tune@{name}` (or dvc repro)", str(tuned_path(name)))
    tuned = read_json(tuned_path(name))  # tune@<name>'s choice; params.yaml's section as it is with tune.trials 0
    train = params["train"].model_copy(update=tuned["train"])
    model_params, params[name] = tuned["params"], tuned["params"]
    params["train"] = train
    meta = read_meta(SPLIT)
    for fold in meta["folds"]:
        check_batch(fold["n_samples"]["train"], meta["seq_len"], train.batch_size, fold["fold"], meta["n_folds"])
    news = [i for i, f in enumerate(meta["features"]) if f in SENTIMENT_COLUMNS] if ablate else []
    folds, n_fits = range(1, meta["n_folds"] + 1), meta["n_folds"] * len(train.seeds) * (2 if news else 1)
    jobs = resolve_jobs(train.jobs, train.threads, n_fits, train.devices, train.num_nodes)
    cluster = Cluster.from_params(train)

    from tsarena.serving.bundle import Bundle, Member, calibration  # heavy imports only once params and data are known good
    from tsarena.serving.mlflow_model import log_bundle, signature_example
    from tsarena.tracking.runs import StageRuns
    from tsarena.fitting.engine import epoch_reporter, is_worker_process, progress

    runs = StageRuns(f"train@{name}", ("split", str(SPLIT)), config.result_params(params), params["tracking"],
                        enabled=not is_worker_process())
    with runs.parent(name) as parent, scratch_dir(f"train-{name}") as scratch:
        matrices = {k: write_scaled_fold(SPLIT, k, Path(scratch) / f"fold_{k}.npy") for k in folds}
        tasks = [FitTask(name, k, seed, model_params, train.model_dump(mode="json"), str(SPLIT), str(matrices[k]),
                         str(Path(scratch) / f"forecasts_{k}_{seed}.parquet"), uncertainty.mc_samples, tuple(levels))
                 for k in folds for seed in train.seeds]
        # the same fits without the news (features less the sentiment columns): no MLflow run, only forecasts
        blind_matrices = {k: write_without_columns(matrices[k], news, Path(scratch) / f"blind_{k}.npy")
                          for k in folds} if news else {}
        blind = [replace(t, matrix=str(blind_matrices[t.fold]), variant="without news",
                         forecasts=str(Path(scratch) / f"blind_{t.fold}_{t.seed}.parquet")) for t in tasks if news]
        windows = load_fold(SPLIT, folds[-1], scaled=matrices[folds[-1]])  # the served model's fold
        run_ids = runs.open_children(parent, [(t.label, {"train.seed": t.seed, "fold": t.fold},
                                               {"seed": str(t.seed), "fold": str(t.fold)}) for t in tasks],
                                     (windows.matrix, windows.targets)) + [None] * len(blind)
        tasks_run = tasks + blind
        # side by side, there is no progress bar: a line per epoch
        reporters = [epoch_reporter(t.label, (lambda row, r=r: runs.log_epoch(r, row)) if r else (lambda row: None),
                                    lines=jobs > 1 or cluster is not None) for t, r in zip(tasks_run, run_ids)]
        where = f"on {connect(cluster)}" if cluster else f"{jobs} at a time"
        progress(f"train@{name}: {n_fits} fit(s), {where}, {train.threads} thread(s) each", runs.enabled)

        def done(i: int, result) -> None:
            best = min(result.fit.history, key=lambda row: row["val_loss"])
            if run_ids[i] is not None:
                runs.close_child(run_ids[i], {"best_val_loss": best["val_loss"], "best_epoch": best["epoch"],
                                              "kept_val_loss": result.fit.val_loss,
                                              "model.n_parameters": result.n_parameters, "train_seconds": result.seconds},
                                 {"ray.node_id": result.node} if result.node else None)
            node = f" on Ray node {result.node[:12]}" if result.node else ""
            progress(f"{tasks_run[i].label}: {len(result.fit.history)} epochs in {result.seconds:.1f} s{node}", runs.enabled)

        try:
            results = run_tasks(tasks_run, jobs, train.threads, lambda i, row: reporters[i](row), done, cluster)
        except StageInterrupted:
            runs.end_open_children("KILLED")
            raise
        except BaseException:
            runs.end_open_children("FAILED")
            raise
        if not runs.enabled:
            return  # a DDP worker trained in step with rank 0; rank 0 logs and writes
        results = results[:len(tasks)]  # the fits without news only left their forecasts
        fits = [result.fit for result in results]  # without models: only the served one is rebuilt
        chosen = served_fit(fits)
        served = next(r for r in results if r.fit is chosen).restore()
        # what the tracked outputs say is a pure function of the inputs; timings go to the MLflow run only
        described = {"served": {"fold": served.fold, "seed": served.seed}, N_PARAMETERS: n_parameters(served.model),
                     TUNE_TRIALS: tuned["trials"]}
        runs.log_metrics({"model.n_parameters": described[N_PARAMETERS], "train_seconds": sum(r.seconds for r in results),
                          "infer_us_per_window": sum(f.infer_us for f in fits) / len(fits)})
        served_forecasts = pd.read_parquet(next(t.forecasts for t, r in zip(tasks, results) if r.fit is chosen))
        calibrated = calibration(served_forecasts[served_forecasts["split"] == "val"], np.load(SPLIT / "targets.npy"),
                                 windows.meta["target_kind"], levels)
        with atomic_dir(model_dir(name)) as tmp:
            bundle = Bundle.from_split(windows.meta, windows.meta["scaler_state"],
                                       [Member(name, served.params, served.dims, 1.0, served.model)], calibrated)
            bundle.save(tmp / "bundle")
            logged = log_bundle(name, tmp / "bundle", *signature_example(bundle, SPLIT))
            write_json(tmp / "served.json", described)
            pd.concat([f.history_frame() for f in fits], ignore_index=True).to_csv(tmp / "histories.csv", index=False)
            if blind:
                concat_tables([Path(t.forecasts) for t in blind], tmp / without_news_path(name).name,
                              model=without_news_name(name))
            with atomic_file(predictions_path(name)) as out:
                concat_tables([Path(t.forecasts) for t in tasks], out)
                runs.link_outputs(out, served=described["served"], **logged)
    print(f"train@{name}: {n_fits} fit(s); served: fold {served.fold} seed {served.seed} "
          f"(val_loss {served.val_loss:.5f}); run {parent.info.run_id}")


if __name__ == "__main__":
    main()
