"""evaluate: forecast the test split with every trained model and the baselines; score them all."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.errors import stage_main
from tsarena.evaluation import equity_curves, model_metrics
from tsarena.io import atomic_file, write_json
from tsarena.models import baselines, load_checkpoint
from tsarena.training import predict
from tsarena.windows import load_windows

WINDOWS, MODELS, OUT = Path("data/windows"), Path("data/models"), Path("data/eval")


def forecasts(windows, params) -> dict[str, np.ndarray]:
    """Test-split forecasts in target units, one entry per model, in test-row order."""
    kind, ends, seq_len = windows.meta["target_kind"], windows.ends["test"], windows.seq_len
    out = {}
    for path in sorted(MODELS.glob("*/model.pt")):
        name, _, model = load_checkpoint(str(path))
        raw = predict(model, windows.matrix, ends, seq_len, params.batch_size)
        out[name] = 1 / (1 + np.exp(-raw)) if kind == "direction" else raw  # logits -> probability
    out["random_walk"] = baselines.random_walk(len(ends), kind)
    out["drift"] = baselines.drift(windows.targets[windows.ends["train"]], len(ends))
    out["linear"], alpha = baselines.linear(windows.matrix, windows.targets, windows.ends, seq_len,
                                            params.ridge_alphas, kind)
    print(f"evaluate: linear baseline penalty {alpha:g} (chosen on the validation split)")
    return out


def log_to_model_runs(metrics: dict, tracking_params) -> None:
    """Test metrics into each model's own training run, so MLflow lines params up with results."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from tsarena import tracking as tr

    for run_file in sorted(MODELS.glob("*/run.json")):
        run = json.loads(run_file.read_text())
        tr.connect(run["tracking_uri"], tracking_params.experiment)
        scalars = {k: v for k, v in metrics[run_file.parent.name].items() if isinstance(v, (int, float))}
        now = int(pd.Timestamp.now().timestamp() * 1000)
        MlflowClient(run["tracking_uri"]).log_batch(
            run["run_id"], metrics=[Metric(k, float(v), now, 0) for k, v in scalars.items()])


@stage_main
def main() -> None:
    params = config.load("evaluate", "tracking")
    windows = load_windows(WINDOWS)
    ends = windows.ends["test"]
    rows = windows.rows.iloc[ends].reset_index(drop=True)
    actual = windows.targets[ends].astype(float)
    predicted = forecasts(windows, params["evaluate"])
    kind, horizon = windows.meta["target_kind"], windows.meta["horizon"]
    metrics = {name: model_metrics(forecast, actual, rows, predicted["random_walk"], kind, horizon,
                                   params["evaluate"].cost_bps)
               for name, forecast in predicted.items()}
    table = pd.DataFrame({"date": rows["date"], "ticker": rows["ticker"], "actual": actual,
                          "close": rows["close"], "next_return": rows["next_return"], **predicted})
    log_to_model_runs(metrics, params["tracking"])
    OUT.mkdir(parents=True, exist_ok=True)
    with atomic_file(OUT / "predictions.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    equity = equity_curves(table, [m for m in predicted if m != "random_walk"], kind, params["evaluate"].cost_bps)
    with atomic_file(OUT / "equity.csv") as tmp:
        equity.to_csv(tmp, index=False)
    write_json(OUT / "metrics.json", metrics)
    for name, m in metrics.items():
        print(f"evaluate: {name:<12} rmse {m['test_rmse']:.6f}  dm_p {m['dm_pvalue']}  n {m['n_test']}")


if __name__ == "__main__":
    main()
