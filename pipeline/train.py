"""train_<model>: fit one registry architecture on the windows, log the run to MLflow.

Usage: python pipeline/train.py <model>   (lstm | transformer; params under the same name)
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.errors import TsarenaError, stage_main
from tsarena.io import atomic_dir, write_json
from tsarena.windows import load_windows, windows_at

WINDOWS = "data/windows"


def model_config(name: str, section, meta: dict, n_features: int) -> dict:
    regression = meta["target_kind"] == "return"
    arch = section.model_dump()
    if name == "transformer":
        arch["dim_feedforward"] = section.feedforward
    return {**arch, "n_features": n_features, "seq_len": meta["seq_len"],
            "target_mean": meta["target_mean"] if regression else 0.0,
            "target_std": meta["target_std"] if regression else 1.0}


@stage_main
def main() -> None:
    name = sys.argv[1]
    params = config.load("seed", "train", name, "tracking")
    train, tracking = params["train"], params["tracking"]
    windows = load_windows(Path(WINDOWS), mmap=False)
    n_train = len(windows.ends["train"])
    if n_train < train.batch_size:
        raise TsarenaError(f"window.seq_len={windows.seq_len} leaves {n_train} training windows, fewer than "
                           f"train.batch_size={train.batch_size}", "window.seq_len, train.batch_size")

    # heavy imports only once params and data are known good
    import mlflow
    from tsarena import tracking as tr
    from tsarena.models import build_model, save_checkpoint
    from tsarena.training import fit, interactive, loss_function, seed_all

    uri = tr.resolve_uri(tracking.uri)
    experiment_id = tr.connect(uri, tracking.experiment)  # fails fast, before training
    flat = config.flatten(params)
    md5 = tr.dvc_out_md5("window", WINDOWS)
    cfg = model_config(name, params[name], windows.meta, windows.n_features)
    seed_all(params["seed"])
    model = build_model(name, cfg)
    loss = loss_function(windows.meta["target_kind"], windows.meta["target_std"])

    def on_epoch(row: dict) -> None:
        mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
        if not interactive():
            print(f"{name} epoch {row['epoch']:>3}: train_loss {row['train_loss']:.5f} "
                  f"val_loss {row['val_loss']:.5f} lr {row['lr']:.2e}", flush=True)

    with tr.run(experiment_id, name, tr.run_tags(f"train_{name}", md5, flat)) as run:
        mlflow.log_params(flat)
        mlflow.log_param("model.n_parameters", sum(p.numel() for p in model.parameters()))
        tr.log_windows_input(windows.matrix, windows.targets, WINDOWS, md5)
        history = fit(model, windows.matrix, windows.targets, windows.ends, windows.seq_len, train, loss,
                      params["seed"], on_epoch)
        best = min(history, key=lambda row: row["val_loss"])
        mlflow.log_metrics({"best_val_loss": best["val_loss"], "best_epoch": best["epoch"]})
        example = np.ascontiguousarray(windows_at(windows.matrix, windows.ends["val"][:2], windows.seq_len))
        model_uri = tr.log_torch_model(model, example)
        run_info = {"run_id": run.info.run_id, "experiment_id": experiment_id, "run_name": name,
                    "model_uri": model_uri, "tracking_uri": uri}
        out = Path(f"data/models/{name}")
        with atomic_dir(out) as tmp:
            save_checkpoint(tmp / "model.pt", name, cfg, model)
            pd.DataFrame(history).to_csv(tmp / "history.csv", index=False)
            write_json(tmp / "run.json", run_info)
    print(f"train_{name}: best val_loss {best['val_loss']:.5f} at epoch {best['epoch']}, "
          f"run {run.info.run_id} -> {out}")


if __name__ == "__main__":
    main()
