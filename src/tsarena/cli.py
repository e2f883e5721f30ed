"""`tsarena predict`: next-step forecasts for a raw prices CSV, with the pipeline's own steps.

Applies the saved feature params and fitted scaler of this repo's pipeline run, then the
champion from the MLflow registry or a trained model from data/models/<name>.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.config import DataParams
from tsarena.data import load_prices
from tsarena.errors import TsarenaError
from tsarena.features import build_features
from tsarena.windows import check_lengths, scaler_from_dict, windows_at


def latest_windows(prices: pd.DataFrame, features: config.FeatureParams, windows_dir: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """The most recent full window of each ticker, scaled exactly as in training."""
    meta = json.loads((windows_dir / "meta.json").read_text())
    scaler = scaler_from_dict(json.loads((windows_dir / "scaler.json").read_text()))
    table, names = build_features(prices, features, labelled=False)
    if names != meta["features"]:
        raise TsarenaError("features differ from the trained pipeline's; run dvc repro first", "params.yaml: features")
    seq_len = meta["seq_len"]
    check_lengths(table.groupby("ticker", sort=False).size(), seq_len, "window.seq_len")
    values = table[names].to_numpy()
    matrix = (scaler.transform(values) if scaler is not None else values).astype(np.float32)
    ends = table.groupby("ticker", sort=False).tail(1).index.to_numpy()
    return np.ascontiguousarray(windows_at(matrix, ends, seq_len)), table.loc[ends, ["ticker", "date", "close"]]


def forecast(batch: np.ndarray, model: str, params: dict) -> np.ndarray:
    if model == "champion":
        import mlflow

        from tsarena import tracking

        uri = tracking.resolve_uri(params["tracking"].uri)
        tracking.connect(uri, params["tracking"].experiment)
        name = params["compare"].registered_model
        try:
            loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
        except mlflow.exceptions.MlflowException:
            raise TsarenaError(f"no model has alias 'champion' in registered model {name!r}",
                               "compare.registered_model") from None
        return np.asarray(loaded.predict(batch), dtype=float).ravel()
    import torch

    from tsarena.models import load_checkpoint

    path = Path("data/models") / model / "model.pt"
    if not path.is_file():
        raise TsarenaError(f"no trained model {model!r}; run dvc repro", str(path))
    _, _, net = load_checkpoint(str(path))
    with torch.no_grad():
        return net(torch.from_numpy(batch)).double().numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tsarena", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="next-step forecasts for a prices CSV")
    p.add_argument("csv", type=Path, help="prices CSV (same format as data.source: csv)")
    p.add_argument("--model", default="champion", help="'champion' (MLflow registry) or a model under data/models/")
    p.add_argument("--windows", type=Path, default=Path("data/windows"), help="the window stage's output")
    args = parser.parse_args(argv)
    try:
        params = config.load("features", "compare", "tracking")
        data = config.load("data")["data"]
        csv_params = DataParams(source="csv", csv={"path": str(args.csv.resolve())}, nan_policy=data.nan_policy,
                                max_nan_run=data.max_nan_run)
        prices = load_prices(csv_params, root=Path("/"))
        if not (args.windows / "meta.json").is_file():
            raise TsarenaError("no window stage output; run dvc repro first", str(args.windows))
        meta = json.loads((args.windows / "meta.json").read_text())
        batch, rows = latest_windows(prices, params["features"], args.windows)
        out = forecast(batch, args.model, params)
        if meta["target_kind"] == "direction":  # models output logits
            out = 1 / (1 + np.exp(-out))
    except TsarenaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    kind, horizon = meta["target_kind"], meta["horizon"]
    column = f"p_up_{horizon}d" if kind == "direction" else f"log_return_{horizon}d"
    result = rows.assign(**{column: out}).rename(columns={"date": "as_of"})
    if kind == "return":
        result[f"price_{horizon}d"] = result["close"] * np.exp(result[column])
    print(result.to_string(index=False))


if __name__ == "__main__":
    main()
