"""`tsarena predict`: forecasts for a raw prices CSV from a self-contained model.

The model carries its own preprocessing (feature params, fitted scaler, window length), so this
reads nothing from the workspace: it works from any directory, and a later change to params.yaml
or `dvc repro` cannot change what a registered model predicts. It never creates a tracking store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from tsarena.errors import TsarenaError
from tsarena.io import git_root

REGISTERED_MODEL = "tsarena-forecaster"


def local_bundle(model: str) -> Path | None:
    """A trained model on disk: a path (a model folder or its bundle), or a name under <repo>/data/models."""
    root = git_root()
    candidates = [Path(model), Path(model) / "bundle"]
    if root is not None and "/" not in model:
        from tsarena.layout import model_dir

        candidates.append(root / model_dir(model) / "bundle")
    return next((c for c in candidates if (c / "members.json").is_file()), None)


def tracking_uri(given: str | None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else this repo's mlflow.db if it exists; never created."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    root = git_root()
    if root is not None and (root / "mlflow.db").is_file():
        return f"sqlite:///{root / 'mlflow.db'}"
    raise TsarenaError("no MLflow tracking store to read the model from (no mlflow.db in this repo)",
                       "--tracking-uri or MLFLOW_TRACKING_URI")


def load_model(model: str, registered: str, uri: str | None):
    """(a callable raw prices -> forecasts, the extra columns its input needs): a local bundle, or an
    MLflow model (alias, version, run)."""
    from tsarena.features import PRICE_INPUTS, raw_extras

    found = None if ":/" in model else local_bundle(model)
    if found is not None:
        from tsarena.serving import Bundle

        bundle = Bundle.load(found)
        return bundle.forecast, raw_extras(bundle.preprocess["features"])
    target = model if ":/" in model else f"models:/{registered}@{model}"
    uri = tracking_uri(uri)
    sqlite = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else None
    if sqlite and not Path(sqlite).is_file():
        raise TsarenaError(f"MLflow tracking store {uri} does not exist", "--tracking-uri or MLFLOW_TRACKING_URI")
    import mlflow

    mlflow.set_tracking_uri(uri)
    try:
        loaded = mlflow.pyfunc.load_model(target)
    except Exception as exc:  # MLflow raises many types for "not there": one line names what was asked for
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise TsarenaError(f"cannot load model {target!r} from {uri}: {reason}", "--model") from None
    schema = loaded.metadata.get_input_schema()
    extras = [n for n in (schema.input_names() if schema else []) if n not in PRICE_INPUTS]
    return (lambda prices: loaded.predict(prices)), extras


def read_prices(path: Path, extras: list[str]) -> pd.DataFrame:
    """The CSV with the checks of `data.source: csv` (errors name the line), dates as text for the model;
    `extras`: the user's own columns the model was trained with."""
    from tsarena.data.sources import read_csv
    from tsarena.data.validate import normalise_prices
    from tsarena.serving import INPUT_MAX_NAN_RUN, INPUT_NAN_POLICY

    table, lines = read_csv(path)
    prices = normalise_prices(table, str(path), labels=lines, nan_policy=INPUT_NAN_POLICY,
                              max_nan_run=INPUT_MAX_NAN_RUN, sort=True, extras=extras)
    return prices.assign(date=prices["date"].dt.strftime("%Y-%m-%d"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tsarena", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"tsarena {version('tsarena')}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="forecasts for a prices CSV (same format as data.source: csv)")
    p.add_argument("csv", type=Path, help="prices CSV: date, close, optional open/high/low/volume/ticker")
    p.add_argument("--model", default="champion",
                   help="a registry alias (default: champion), an MLflow URI (models:/NAME/3, runs:/ID/model), "
                        "or a trained model: a name under data/models/ or a model folder")
    p.add_argument("--registered-model", default=REGISTERED_MODEL, help="registered model the alias belongs to")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else this repo's mlflow.db")
    p.add_argument("--output", choices=["table", "csv", "json"], default="table")
    args = parser.parse_args(argv)
    try:
        if not args.csv.is_file():  # before contacting any store
            raise TsarenaError("file not found", str(args.csv))
        forecast, extras = load_model(args.model, args.registered_model, args.tracking_uri)
        result = pd.DataFrame(forecast(read_prices(args.csv, extras)))
    except TsarenaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    if args.output == "csv":
        print(result.to_csv(index=False), end="")
    elif args.output == "json":
        print(json.dumps(result.to_dict(orient="records")))  # exact floats (pandas' writer rounds)
    else:
        print(result.to_string(index=False))


if __name__ == "__main__":
    main()
