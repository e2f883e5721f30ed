"""train@<model>: fit one registered architecture on every fold x seed; forecast validation and test.

Usage: python pipeline/train.py <model>. One MLflow parent run per execution (named after the model),
one nested run per fit (`lstm fold=1 seed=42`). The served model: the last fold's best seed on validation.
"""

import argparse
import time
from pathlib import Path

import pandas as pd

from tsarena import config
from tsarena.errors import TsarenaError, stage_main
from tsarena.fitting import check_batch, fit_one, served_fit
from tsarena.io import atomic_dir, atomic_file, read_json, write_json
from tsarena.models import architecture_names, n_parameters, save_checkpoint
from tsarena.layout import SPLIT, model_dir, predictions_path, tuned_path
from tsarena.windows import load_fold, read_meta


@stage_main
def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("model", choices=architecture_names())
    name = cli.parse_args().model
    params = config.load("train", "tracking")
    if not tuned_path(name).is_file():
        raise TsarenaError(f"no configuration for {name}: run `dvc repro tune@{name}` (or dvc repro)", str(tuned_path(name)))
    tuned = read_json(tuned_path(name))  # tune@<name>'s choice; params.yaml's section as it is with tune.trials 0
    train = params["train"].model_copy(update=tuned["train"])
    model_params, params[name] = tuned["params"], tuned["params"]
    params["train"] = train
    meta = read_meta(SPLIT)
    for fold in meta["folds"]:
        check_batch(fold["n_samples"]["train"], meta["seq_len"], train.batch_size, fold["fold"], meta["n_folds"])

    from tsarena import tracking as tr  # heavy imports only once params and data are known good
    from tsarena.serving import Bundle, Member, signature_example
    from tsarena.training import epoch_reporter, is_worker_process, progress

    runs = tr.StageRuns(f"train@{name}", ("split", str(SPLIT)), config.flatten(params), params["tracking"],
                        enabled=not is_worker_process())
    n_fits, fits, children, seconds = meta["n_folds"] * len(train.seeds), [], {}, {}
    with runs.parent(name) as parent:
        for k in range(1, meta["n_folds"] + 1):
            windows = load_fold(SPLIT, k)  # one fold's matrix in memory at a time
            for i, seed in enumerate(train.seeds):
                label = f"{name} fold={k} seed={seed}"
                progress(f"{name} fold {k}/{meta['n_folds']} seed {i + 1}/{len(train.seeds)} "
                         f"(fit {len(fits) + 1} of {n_fits})", runs.enabled)
                with runs.child(label, {"train.seed": seed, "fold": k}, {"seed": str(seed), "fold": str(k)},
                                (windows.matrix, windows.targets)) as child:
                    started = time.perf_counter()
                    fit = fit_one(name, model_params, windows, train, seed, epoch_reporter(label, runs.log_epoch))
                    seconds[label] = time.perf_counter() - started
                    best = min(fit.history, key=lambda row: row["val_loss"])
                    runs.log_metrics({"best_val_loss": best["val_loss"], "best_epoch": best["epoch"],
                                      "model.n_parameters": n_parameters(fit.model), "train_seconds": seconds[label]})
                fits.append(fit)
                children[f"{k}/{seed}"] = child.info.run_id if child else None
        if not runs.enabled:
            return  # a DDP worker trained in step with rank 0; rank 0 logs and writes
        served = served_fit(fits)  # the last fold's: `windows` is that fold
        compute = {"n_parameters": n_parameters(served.model), "train_seconds": sum(seconds.values()),
                   "infer_us": sum(f.infer_us for f in fits) / len(fits), "tune_trials": tuned["trials"],
                   "tune_cpu_seconds": tuned.get("cpu_seconds", 0.0)}
        runs.log_metrics({"model.n_parameters": compute["n_parameters"], "train_seconds": compute["train_seconds"],
                          "infer_us_per_window": compute["infer_us"]})
        with atomic_dir(model_dir(name)) as tmp:
            bundle = Bundle.from_split(windows.meta, windows.meta["scaler_state"],
                                       [Member(name, served.params, served.dims, 1.0, served.model)])
            bundle.save(tmp / "bundle")
            logged = tr.log_bundle(name, tmp / "bundle", *signature_example(bundle, SPLIT))
            write_json(tmp / "run.json", runs.run_info(parent, children, served={"fold": served.fold, "seed": served.seed},
                                                       **logged, **compute))
            save_checkpoint(tmp / "model.pt", name, served.params, served.dims, served.model)
            pd.concat([f.history_frame() for f in fits], ignore_index=True).to_csv(tmp / "histories.csv", index=False)
            with atomic_file(predictions_path(name)) as out:
                pd.concat([f.predictions for f in fits], ignore_index=True).to_parquet(out, index=False)
    print(f"train@{name}: {n_fits} fit(s); served: fold {served.fold} seed {served.seed} "
          f"(val_loss {served.best_val_loss:.5f}); run {parent.info.run_id}")


if __name__ == "__main__":
    main()
