"""`tsarena predict`: forecasts for a raw prices CSV from a self-contained model; `tsarena serve`: the same
model over HTTP (`mlflow models serve`, checked first); `tsarena ui`: the MLflow UI on this repo's store,
with the link to the page that compares every contestant.

The model carries its own preprocessing (feature params, fitted scaler, window length), so this
reads nothing from the workspace: it works from any directory, and a later change to params.yaml
or `dvc repro` cannot change what a registered model predicts. It never creates a tracking store.
"""

from __future__ import annotations

import tsarena.core.pinned  # noqa: F401  first: the served model's kernels as the stages' (params numerics; portable)
import argparse
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tsarena.core.errors import TsarenaError
from tsarena.core.io import git_root
from tsarena.contestants.producers import model_dir
from tsarena.tracking.registry import BEST_RANKED, CHAMPION

if TYPE_CHECKING:
    from tsarena.serving.bundle import Bundle

REGISTERED_MODEL = "tsarena-forecaster"


def local_bundle(model: str) -> Path | None:
    """A trained model on disk: a path (a model folder or its bundle), or a name under <repo>/data/models."""
    root = git_root()
    candidates = [Path(model), Path(model) / "bundle"]
    if root is not None and "/" not in model and model_dir(model) is not None:
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


def open_store(given: str | None) -> str:
    """The tracking URI to read models from, checked to exist (a missing SQLite file is never created)."""
    uri = tracking_uri(given)
    sqlite = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else None
    if sqlite and not Path(sqlite).is_file():
        raise TsarenaError(f"MLflow tracking store {uri} does not exist", "--tracking-uri or MLFLOW_TRACKING_URI")
    import mlflow

    mlflow.set_tracking_uri(uri)
    return uri


def alias_problem(registered: str, alias: str, uri: str) -> TsarenaError | None:
    """Why `models:/<registered>@<alias>` does not exist, in one line that says what to run instead."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(uri)
    try:
        model = client.get_registered_model(registered)
    except MlflowException:
        return TsarenaError(f"no registered model {registered!r} in {uri}: run `dvc repro` (compare registers it)",
                            "--registered-model")
    if alias in model.aliases:
        return None
    if alias == CHAMPION and BEST_RANKED in model.aliases:
        best = client.get_model_version(registered, model.aliases[BEST_RANKED])
        reason = best.tags.get("champion_rejected", "the corrected evidence did not hold")
        return TsarenaError(
            f"{registered} has no champion: the last comparison found no model that beats the random walk on "
            f"corrected evidence ({reason}); to use its best-ranked model anyway "
            f"({best.tags.get('architecture', '?')}, version {best.version}) pass --model {BEST_RANKED}", "--model")
    return TsarenaError(f"{registered} has no alias {alias!r} (its aliases: {', '.join(sorted(model.aliases)) or 'none'})",
                        "--model")


def model_uri(model: str, registered: str, uri: str) -> str:
    """An MLflow model URI for --model: a URI as given, an alias resolved to its version or explained."""
    if ":/" in model:
        return model
    problem = alias_problem(registered, model, uri)
    if problem is not None:
        raise problem
    from mlflow import MlflowClient

    return f"models:/{registered}/{MlflowClient(uri).get_model_version_by_alias(registered, model).version}"


def load_bundle(model: str, registered: str, uri: str | None) -> Bundle:
    """The model behind --model: a trained model on disk, or an MLflow model (alias, version, run) whose
    pyfunc is tsarena's, so this runs the `Bundle.forecast` that MLflow's predict and its server run."""
    from tsarena.serving.bundle import Bundle

    found = None if ":/" in model else local_bundle(model)
    if found is not None:
        return Bundle.load(found)
    store = open_store(uri)
    target = model_uri(model, registered, store)
    import mlflow

    try:
        loaded = mlflow.pyfunc.load_model(target)
    except Exception as exc:  # MLflow raises many types for "not there": one line names what was asked for
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise TsarenaError(f"cannot load model {target!r} from {store}: {reason}", "--model") from None
    bundle = getattr(loaded.unwrap_python_model(), "bundle", None)
    if bundle is None:
        raise TsarenaError(f"{target} is not a tsarena model", "--model")
    return bundle


def predict(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The forecasts, and with --explain the inputs behind each ticker's (None without)."""
    from tsarena.data.news import read_news_file
    from tsarena.data.sources import read_csv_text
    from tsarena.serving.explain import explain_latest

    if args.explain and args.output == "csv":
        raise TsarenaError("--explain prints a second table: use --output table or json", "--output")
    for given in (args.csv, args.news):
        if given is not None and not given.is_file():  # before contacting any store
            raise TsarenaError("file not found", str(given))
    bundle = load_bundle(args.model, args.registered_model, args.tracking_uri)
    table, lines = read_csv_text(args.csv)
    news, news_lines = read_news_file(args.news) if args.news else (None, None)
    forecasts = bundle.forecast(table, str(args.csv), lines, news, news_lines, str(args.news))
    return forecasts, (explain_latest(bundle, table, str(args.csv), lines, news=news, news_labels=news_lines,
                                      news_where=str(args.news)) if args.explain else None)


def diff(args: argparse.Namespace) -> int:
    """Print how run b differs from run a; the exit status says whether a verdict changed."""
    from tsarena.judging.difference import Run, describe, differ

    found = differ(Run.read(args.a), Run.read(args.b), args.alpha)
    print("\n".join(describe(found, args.tolerance)))
    return 3 if found.verdicts else 0 if found.within(args.tolerance) else 2


def serve(args: argparse.Namespace) -> None:
    """`mlflow models serve` of the resolved model with this environment's tools on PATH (MLflow starts
    `uvicorn` by name): a missing alias is one line here, not MLflow's traceback."""
    store = open_store(args.tracking_uri)
    target = model_uri(args.model, args.registered_model, store)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])}
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", target, "--env-manager", "local",
               "-h", args.host, "-p", str(args.port)]
    print(f"serving {target} from {store} at http://{args.host}:{args.port}/invocations", file=sys.stderr, flush=True)
    os.execve(command[0], command, env)


def ui(args: argparse.Namespace) -> None:
    """`mlflow ui` on the store, printing the link to the experiment's runs list in tsarena's shared view
    (model training, one row per contestant, the headline columns)."""
    from mlflow import MlflowClient

    from tsarena.tracking.registry import VIEW, runs_page

    store = open_store(args.tracking_uri)
    experiment = MlflowClient(store).get_experiment_by_name(args.experiment)
    if experiment is None:
        raise TsarenaError(f"no experiment {args.experiment!r} in {store}; run dvc repro first", "--experiment")
    page = runs_page(experiment.experiment_id, f"mlflow.sharedViewState.{VIEW}" in experiment.tags)
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "mlflow"), "ui", "--backend-store-uri", store, "--host", args.host, "--port", str(args.port)]
    print(f"every contestant side by side: http://{args.host}:{args.port}/{page}", file=sys.stderr, flush=True)
    os.execv(command[0], command)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tsarena", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"tsarena {version('tsarena')}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="forecasts for a prices CSV (what data.source: csv accepts)")
    p.add_argument("csv", type=Path, help="prices CSV: date, close, optional open/high/low/volume/adj close/ticker")
    s = sub.add_parser("serve", help="serve a registered model over HTTP (mlflow models serve), checked first")
    s.add_argument("--port", type=int, default=5001)
    s.add_argument("--host", default="127.0.0.1")
    u = sub.add_parser("ui", help="the MLflow UI on this repo's store; prints the link that compares every contestant")
    u.add_argument("--port", type=int, default=5000)
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--experiment", default="tsarena", help="the MLflow experiment (tracking.experiment)")
    u.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else this repo's mlflow.db")
    for command in (p, s):
        command.add_argument(
            "--model", default=CHAMPION,
            help=f"a registry alias (default: champion; {BEST_RANKED}: the last comparison's best-ranked trained model, "
                 "evidence or not), an MLflow URI (models:/NAME/3, runs:/ID/model)"
                 + (", or a trained model: a name under data/models/ or a model folder" if command is p else ""))
        command.add_argument("--registered-model", default=REGISTERED_MODEL, help="registered model the alias belongs to")
        command.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else this repo's mlflow.db")
    p.add_argument("--news", type=Path, default=None,
                   help="news items (CSV or Parquet: timestamp, headline, optional ticker, body) for a model trained "
                        "with news sentiment: scored and dated as in training")
    p.add_argument("--output", choices=["table", "csv", "json"], default="table")
    p.add_argument("--explain", action="store_true",
                   help="also the inputs behind each forecast: the top (feature, lag) cells of its integrated gradients")
    d = sub.add_parser("diff", help="how two runs' forecasts and headline numbers differ, and whether a verdict does "
                                    "(exit 0: within the tolerance; 2: numbers beyond it, verdicts unchanged; "
                                    "3: a rank, significance call or the champion changed)")
    d.add_argument("a", type=Path, help="a workspace after dvc repro (its data/eval and data/reports)")
    d.add_argument("b", type=Path, help="another, e.g. the same commit run on another machine")
    d.add_argument("--tolerance", type=float, default=0.0, help="largest |forecast difference| that counts as equal")
    d.add_argument("--alpha", type=float, default=0.05, help="significance level of the calls compared (compare.alpha)")
    args = parser.parse_args(argv)
    try:
        if args.command == "diff":
            sys.exit(diff(args))
        if args.command == "serve":
            serve(args)
        if args.command == "ui":
            ui(args)
        result, why = predict(args)
    except TsarenaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    if args.output == "csv":
        print(result.to_csv(index=False), end="")
    elif args.output == "json":  # exact floats (pandas' writer rounds)
        records = result.to_dict(orient="records")
        print(json.dumps(records if why is None else {"forecasts": records, "explain": why.to_dict(orient="records")}))
    else:
        print(readable(result).to_string(index=False))
        if why is not None:
            print(f"\nwhy: the inputs that moved each forecast most from an ordinary day's (integrated gradients; "
                  f"lag 0 = the as_of row)\n{readable_why(why).to_string(index=False)}")


def readable(result: pd.DataFrame) -> pd.DataFrame:
    """The table output: each level's interval as one `[lower, upper]` column in % log return beside the
    forecast (csv and json keep every bound as its own exact number)."""
    out = result.copy()
    for column in [c for c in result.columns if c.startswith("lower_conformal_")]:
        level = column.removeprefix("lower_conformal_")
        upper = f"upper_conformal_{level}"
        out[f"{level}% interval, %"] = [f"[{100 * lo:+.2f}, {100 * hi:+.2f}]" for lo, hi in zip(result[column], result[upper])]
        out = out.drop(columns=[column, upper])
    return out


def readable_why(why: pd.DataFrame) -> pd.DataFrame:
    """--explain's table: each cell's part of the forecast in % (log return or probability points)."""
    out = why.drop(columns="completeness_error").copy()
    out["attribution"] = [f"{100 * a:+.3f}%" for a in why["attribution"]]
    return out


if __name__ == "__main__":
    main()
