"""compare: rank models and baselines, write the report and plots, register the champion."""

import json
from pathlib import Path

import pandas as pd

from tsarena import config, report
from tsarena.errors import stage_main
from tsarena.io import atomic_dir

EVAL, MODELS, OUT = Path("data/eval"), Path("data/models"), Path("data/reports")


def register(champion, runs: dict, params) -> str:
    """Register the selected neural model; move alias `champion` only if it beats random walk."""
    import mlflow
    from mlflow import MlflowClient

    if champion is None:
        return "No neural model was trained, so none is registered."
    run = runs[champion["model"]]
    version = mlflow.register_model(run["model_uri"], params.registered_model).version
    client = MlflowClient()
    pvalue = champion["dm_pvalue"]
    if pd.notna(pvalue) and pvalue < params.alpha:
        client.set_registered_model_alias(params.registered_model, "champion", version)
        return (f"**{champion['model']}** is registered as `{params.registered_model}` version {version} "
                f"with alias `champion`: it beats the random walk (DM p = {pvalue:.3g} < {params.alpha}).")
    reason = (f"{champion['model']} does not beat the random walk significantly "
              f"(DM p = {pvalue if pd.isna(pvalue) else round(float(pvalue), 4)}, needs < {params.alpha})")
    client.set_model_version_tag(params.registered_model, version, "champion_rejected", reason)
    return (f"**{champion['model']}** is registered as `{params.registered_model}` version {version}, "
            f"but the `champion` alias was left where it was: {reason}.")


@stage_main
def main() -> None:
    params = config.load("compare", "tracking")
    cmp, tracking = params["compare"], params["tracking"]
    metrics = json.loads((EVAL / "metrics.json").read_text())
    predictions = pd.read_parquet(EVAL / "predictions.parquet")
    runs = {p.parent.name: json.loads(p.read_text()) for p in sorted(MODELS.glob("*/run.json"))}
    histories = {name: pd.read_csv(MODELS / name / "history.csv") for name in runs}
    models = list(metrics)

    table = report.comparison_table(metrics, cmp.select_by)
    text = report.verdict(table, cmp.alpha, cmp.select_by)
    champion = report.select_champion(table)

    import mlflow
    from tsarena import tracking as tr

    uri = tr.resolve_uri(tracking.uri)
    experiment_id = tr.connect(uri, tracking.experiment)
    flat = config.flatten(params)
    with atomic_dir(OUT) as tmp:
        table.to_csv(tmp / "comparison.csv", index=False)
        predictions[["date", "ticker", "actual", *models]].to_csv(tmp / "predictions.csv", index=False)
        intervals = {m: report.metric_interval(cmp.select_by, predictions[m].to_numpy(),
                                               predictions["actual"].to_numpy(), metrics[m]) for m in models}
        report.plot_predictions(predictions, [m for m in models if m != "random_walk"], tmp / "predictions.png")
        report.plot_equity(pd.read_csv(EVAL / "equity.csv", parse_dates=["date"]), tmp / "equity.png")
        report.plot_losses(histories, tmp / "loss_curves.png")
        report.plot_metric(table, intervals, cmp.select_by, tmp / f"{cmp.select_by}.png")
        tags = {**tr.run_tags("compare", tr.dvc_out_md5("evaluate", "data/eval/predictions.parquet"), flat),
                **{f"model_run.{name}": run["run_id"] for name, run in runs.items()}}
        with tr.run(experiment_id, "compare", tags) as run:
            mlflow.log_params(flat)
            note = register(champion, runs, cmp)
            (tmp / "comparison.md").write_text(report.to_markdown(table, text, note))
            mlflow.log_artifacts(str(tmp), artifact_path="report")
            mlflow.set_tag("verdict", text[:5000])
    print(text)
    print(note)
    print(f"compare: report -> {OUT}/comparison.md, run {run.info.run_id}")


if __name__ == "__main__":
    main()
