"""train_<model>: fit one registry architecture per seed on the windows; log the runs to MLflow.
walkforward_<model> (--walk-forward): the same, refit on every walk-forward fold, and forecast its test.

Usage: python pipeline/train.py <model> [--walk-forward]   (model: lstm | transformer)

One MLflow run per stage execution (named after the model), with one nested run per seed
(and fold). The single-split stage keeps every seed's checkpoint; `model.pt`, the registered
and served model, is the seed with the lowest validation loss (chosen on validation, never test).
"""

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.errors import TsarenaError, stage_main
from tsarena.io import atomic_dir, read_json, write_json
from tsarena.models import REGISTRY
from tsarena.windows import Windows, load_fold, load_windows, windows_at

WINDOWS, FOLDS = Path("data/windows"), Path("data/folds")


def model_config(name: str, section, meta: dict, n_features: int) -> dict:
    regression = meta["target_kind"] == "return"
    arch = section.model_dump()
    if name == "transformer":
        arch["dim_feedforward"] = section.feedforward
    return {**arch, "n_features": n_features, "seq_len": meta["seq_len"],
            "target_mean": meta["target_mean"] if regression else 0.0,
            "target_std": meta["target_std"] if regression else 1.0}


def check_batch(n_train: int, seq_len: int, batch_size: int, where: str) -> None:
    if n_train < batch_size:
        raise TsarenaError(f"window.seq_len={seq_len} leaves {n_train} training windows{where}, fewer than "
                           f"train.batch_size={batch_size}", "window.seq_len, train.batch_size")


@dataclass
class Trained:
    """One model trained on one split (fold None: the single split) with one seed."""

    fold: int | None
    seed: int
    model: Any
    cfg: dict
    history: list[dict]
    run_id: str
    forecast: pd.DataFrame | None = None

    @property
    def key(self) -> str:
        return str(self.seed) if self.fold is None else f"{self.fold}/{self.seed}"

    @property
    def best_val_loss(self) -> float:
        return min(row["val_loss"] for row in self.history)

    def history_frame(self) -> pd.DataFrame:
        keys = {"seed": self.seed} if self.fold is None else {"fold": self.fold, "seed": self.seed}
        return pd.DataFrame([{**keys, **row} for row in self.history])

    def forecast_test(self, windows: Windows, predict: Callable) -> None:
        """Raw forecasts for the fold's test windows, keyed by feature-table row."""
        ends = windows.ends["test"]
        self.forecast = pd.DataFrame({"fold": self.fold, "seed": self.seed, "row": ends,
                                      "forecast": predict(self.model, windows.matrix, ends, windows.seq_len)})


def empty_walk_forward(out: Path) -> None:
    """evaluate.folds = 1: the single split is the whole evaluation; nothing to refit."""
    with atomic_dir(out) as tmp:
        pd.DataFrame({"fold": [], "seed": [], "row": [], "forecast": []}).astype(
            {"fold": "int64", "seed": "int64", "row": "int64", "forecast": "float64"}).to_parquet(tmp / "predictions.parquet")
        pd.DataFrame(columns=["fold", "seed", "epoch", "train_loss", "val_loss", "lr"]).to_csv(tmp / "histories.csv", index=False)
        write_json(tmp / "run.json", {})


@stage_main
def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("model", choices=sorted(REGISTRY))
    cli.add_argument("--walk-forward", action="store_true", help="refit on every fold of data/folds")
    args = cli.parse_args()
    name = args.model
    params = config.load("train", name, "tracking")
    train, tracking = params["train"], params["tracking"]
    out = Path(f"data/walkforward/{name}" if args.walk_forward else f"data/models/{name}")
    if args.walk_forward:
        meta = read_json(FOLDS / "meta.json")
        if meta["n_folds"] == 1:
            empty_walk_forward(out)
            print(f"walkforward_{name}: evaluate.folds = 1, nothing to refit -> {out}")
            return
        for fold in meta["folds"]:
            check_batch(fold["n_samples"]["train"], meta["seq_len"], train.batch_size, f" in fold {fold['fold']}")
        folds = [fold["fold"] for fold in meta["folds"]]
        stage, source_stage, source = f"walkforward_{name}", "folds", "data/folds"
    else:
        single = load_windows(WINDOWS, mmap=False)
        check_batch(len(single.ends["train"]), single.seq_len, train.batch_size, "")
        folds = [None]
        stage, source_stage, source = f"train_{name}", "window", "data/windows"

    # heavy imports only once params and data are known good
    import mlflow
    from tsarena import tracking as tr
    from tsarena.models import build_model, save_checkpoint
    from tsarena.training import fit, interactive, is_worker_process, loss_function, predict, seed_all

    def build(windows: Windows, seed: int) -> tuple[dict, Any, Callable]:
        cfg = model_config(name, params[name], windows.meta, windows.n_features)
        seed_all(seed)  # before building: the initial weights are seeded too
        return cfg, build_model(name, cfg), loss_function(windows.meta["target_kind"], windows.meta["target_std"])

    if is_worker_process():  # a DDP worker Lightning started: train in step with rank 0, log and write nothing
        for fold in folds:
            windows = single if fold is None else load_fold(FOLDS, fold)
            for seed in train.seeds:
                _, model, loss = build(windows, seed)
                fit(model, windows.matrix, windows.targets, windows.ends, windows.seq_len, train, loss, seed)
        return

    uri = tr.resolve_uri(tracking.uri)
    experiment_id = tr.connect(uri, tracking.experiment)  # fails fast, before training
    flat = config.flatten(params)
    md5 = tr.dvc_out_md5(source_stage, source)

    def train_one(windows: Windows, seed: int, label: str) -> Trained:
        """One model on one split and seed, in its own nested MLflow run."""
        cfg, model, loss = build(windows, seed)

        def on_epoch(row: dict) -> None:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
            if not interactive():
                print(f"{label} epoch {row['epoch']:>3}: train_loss {row['train_loss']:.5f} "
                      f"val_loss {row['val_loss']:.5f} lr {row['lr']:.2e}", flush=True)

        fold = windows.meta.get("fold")
        tags = {**tr.run_tags(stage, md5, flat), "seed": str(seed), **({"fold": str(fold)} if fold else {})}
        with tr.run(experiment_id, label, tags, nested=True) as child:
            mlflow.log_params({**flat, "train.seed": seed, **({"fold": fold} if fold else {}),
                               "model.n_parameters": sum(p.numel() for p in model.parameters())})
            tr.log_windows_input(windows.matrix, windows.targets, source, md5,
                                 name=f"fold {fold}" if fold else "windows")
            history = fit(model, windows.matrix, windows.targets, windows.ends, windows.seq_len, train, loss, seed,
                          on_epoch)
            best = min(history, key=lambda row: row["val_loss"])
            mlflow.log_metrics({"best_val_loss": best["val_loss"], "best_epoch": best["epoch"]})
        return Trained(fold, seed, model, cfg, history, child.info.run_id)

    trained: list[Trained] = []
    run_name = f"{name} walk-forward" if args.walk_forward else name
    with tr.run(experiment_id, run_name, tr.run_tags(stage, md5, flat)) as parent:
        mlflow.log_params(flat)
        for fold in folds:
            windows = single if fold is None else load_fold(FOLDS, fold)  # one fold's matrix in memory at a time
            for seed in train.seeds:
                label = f"{name} seed={seed}" if fold is None else f"{name} fold={fold} seed={seed}"
                result = train_one(windows, seed, label)
                if fold is not None:
                    result.forecast_test(windows, predict)
                trained.append(result)
        histories = pd.concat([t.history_frame() for t in trained], ignore_index=True)
        best = pd.Series([t.best_val_loss for t in trained])
        mlflow.log_metrics({"best_val_loss_mean": float(best.mean()), "best_val_loss_std": float(best.std(ddof=0))})
        run_info = {"run_id": parent.info.run_id, "experiment_id": experiment_id, "run_name": run_name,
                    "tracking_uri": uri, "child_runs": {t.key: t.run_id for t in trained}}
        if args.walk_forward:
            with atomic_dir(out) as tmp:
                pd.concat([t.forecast for t in trained], ignore_index=True).to_parquet(tmp / "predictions.parquet",
                                                                                      index=False)
                histories.to_csv(tmp / "histories.csv", index=False)
                write_json(tmp / "run.json", run_info)
            print(f"walkforward_{name}: {len(folds)} folds x {len(train.seeds)} seed(s), run {parent.info.run_id} -> {out}")
            return
        chosen = min(trained, key=lambda t: t.best_val_loss)  # on validation: test is never looked at
        example = np.ascontiguousarray(windows_at(single.matrix, single.ends["val"][:2], single.seq_len))
        mlflow.set_tag("selected_seed", str(chosen.seed))
        run_info.update(model_uri=tr.log_torch_model(chosen.model, example), selected_seed=chosen.seed)
        with atomic_dir(out) as tmp:
            save_checkpoint(tmp / "model.pt", name, chosen.cfg, chosen.model)
            pd.DataFrame(chosen.history).to_csv(tmp / "history.csv", index=False)
            (tmp / "seeds").mkdir()
            for t in trained:
                save_checkpoint(tmp / "seeds" / f"{t.seed}.pt", name, t.cfg, t.model)
            histories.to_csv(tmp / "histories.csv", index=False)
            write_json(tmp / "run.json", run_info)
    print(f"train_{name}: {len(train.seeds)} seed(s); seed {chosen.seed} has the best val_loss "
          f"({chosen.best_val_loss:.5f}) and is model.pt; run {parent.info.run_id} -> {out}")

if __name__ == "__main__":
    main()
