"""compare: rank models and baselines, write the report and plots, register the champion."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tsarena import config, report
from tsarena.errors import stage_main
from tsarena.io import atomic_dir

EVAL, MODELS, OUT = Path("data/eval"), Path("data/models"), Path("data/reports")


def register(champion, tables: dict[str, pd.DataFrame], runs: dict, params) -> str:
    """Register the selected neural model (its seed with the best validation loss); move alias
    `champion` only if the architecture beats random walk in every evaluation that was run."""
    import mlflow
    from mlflow import MlflowClient

    if champion is None:
        return "No neural model was trained, so none is registered."
    name, run = champion["model"], runs[champion["model"]]
    version = mlflow.register_model(run["model_uri"], params.registered_model).version
    client = MlflowClient()
    pvalues = {report.SECTIONS[section].lower(): table.set_index("model").at[name, "dm_pvalue"]
               for section, table in tables.items()}
    shown = ", ".join(f"{where} p = {'n/a' if pd.isna(p) else f'{p:.3g}'}" for where, p in pvalues.items())
    what = (f"**{name}** is registered as `{params.registered_model}` version {version} (seed {run['selected_seed']}, "
            "its seed with the lowest validation loss)")
    if all(pd.notna(p) and p < params.alpha for p in pvalues.values()):
        client.set_registered_model_alias(params.registered_model, "champion", version)
        return f"{what} with alias `champion`: it beats the random walk (DM {shown}; all < {params.alpha})."
    reason = f"{name} does not beat the random walk significantly (DM {shown}; needs < {params.alpha} in each)"
    client.set_model_version_tag(params.registered_model, version, "champion_rejected", reason)
    return f"{what}, but the `champion` alias was left where it was: {reason}."


def seed_columns(predictions: pd.DataFrame, model: str) -> list[np.ndarray]:
    """Every seed's forecasts of a neural model (`<model>@<seed>`), or the baseline's one column."""
    columns = [c for c in predictions if c.startswith(f"{model}@")] or [model]
    return [predictions[c].to_numpy() for c in columns]


@stage_main
def main() -> None:
    params = config.load("compare", "tracking")
    cmp, tracking = params["compare"], params["tracking"]
    metrics = json.loads((EVAL / "metrics.json").read_text())
    details = json.loads((EVAL / "details.json").read_text())
    predictions = pd.read_parquet(EVAL / "predictions.parquet")
    runs = {p.parent.name: json.loads(p.read_text()) for p in sorted(MODELS.glob("*/run.json"))}
    histories = {name: pd.read_csv(MODELS / name / "histories.csv") for name in runs}

    # the walk-forward (when run) is the headline: it refits like a live model would
    sections = [s for s in report.SECTIONS if s in metrics]
    tables = {s: report.comparison_table(metrics[s], cmp.select_by) for s in sections}
    primary = tables[sections[0]]
    if "walk_forward" in details:
        folds = report.fold_table(details["walk_forward"], cmp.select_by)
    else:  # one fold: the single split
        folds = pd.DataFrame([{"fold": 1, **{n: s["summary"][cmp.select_by] for n, s in details["single_split"].items()}}])
    text = report.verdict(primary, cmp.alpha, cmp.select_by, folds if len(folds) > 1 else None)
    champion = report.select_champion(primary)

    import mlflow
    from tsarena import tracking as tr

    uri = tr.resolve_uri(tracking.uri)
    experiment_id = tr.connect(uri, tracking.experiment)
    flat = config.flatten(params)
    models = list(metrics["single_split"])
    with atomic_dir(OUT) as tmp:
        tables[sections[0]].to_csv(tmp / "comparison.csv", index=False)
        if "walk_forward" in tables:
            tables["single_split"].to_csv(tmp / "comparison_single_split.csv", index=False)
        folds.to_csv(tmp / "folds.csv", index=False)
        predictions[["date", "ticker", "actual", *models]].to_csv(tmp / "predictions.csv", index=False)
        scores = details[sections[0]] if sections[0] == "single_split" else details["walk_forward"]["pooled"]
        source = predictions if sections[0] == "single_split" else pd.read_parquet(EVAL / "walkforward.parquet")
        intervals = {m: report.metric_interval(cmp.select_by, seed_columns(source, m), source["actual"].to_numpy(),
                                               metrics[sections[0]][m]) for m in models}
        seed_values = {m: list(s["spread"][cmp.select_by]["values"].values())
                       for m, s in scores.items() if s["summary"]["n_seeds"] > 1}
        report.plot_predictions(predictions, [m for m in models if m != "random_walk"], tmp / "predictions.png")
        report.plot_equity(pd.read_csv(EVAL / "equity.csv", parse_dates=["date"]), tmp / "equity.png")
        report.plot_losses(histories, tmp / "loss_curves.png")
        report.plot_metric(primary, intervals, cmp.select_by, tmp / f"{cmp.select_by}.png", seed_values)
        report.plot_folds(folds, cmp.select_by, tmp / "folds.png")
        tags = {**tr.run_tags("compare", tr.dvc_out_md5("evaluate", "data/eval/predictions.parquet"), flat),
                **{f"model_run.{name}": run["run_id"] for name, run in runs.items()}}
        with tr.run(experiment_id, "compare", tags) as run:
            mlflow.log_params(flat)
            note = register(champion, tables, runs, cmp)
            (tmp / "comparison.md").write_text(report.to_markdown(
                tables, text, note, folds if len(folds) > 1 else None, cmp.select_by))
            mlflow.log_artifacts(str(tmp), artifact_path="report")
            mlflow.set_tag("verdict", text[:5000])
    print(text)
    print(note)
    print(f"compare: report -> {OUT}/comparison.md, run {run.info.run_id}")


if __name__ == "__main__":
    main()
