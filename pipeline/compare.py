"""compare: rank models and baselines, write the report and plots, register the champion."""

import contextlib
import io
import json
import sys
from pathlib import Path

import pandas as pd

from tsarena import config, report
from tsarena.errors import stage_main
from tsarena.evaluation import HEADLINE
from tsarena.io import atomic_dir
from tsarena.layout import BEST_RANKED, CHAMPION, ORACLE, model_dir, predictions_path, producing_stage, trained
from tsarena.referee import date_losses, mean_ranks

EVAL, OUT = Path("data/eval"), Path("data/reports")


CHATTER = ("Successfully registered model", "Registered model", "Created version")  # MLflow's, on stderr


def quietly(call, *args):
    """`call(*args)` without MLflow's registration chatter; anything else it writes to stderr still shows."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stderr(buffer):
            return call(*args)
    finally:
        kept = [line for line in buffer.getvalue().splitlines() if line and not line.startswith(CHATTER)]
        if kept:
            print("\n".join(kept), file=sys.stderr)


def register(champion, runs: dict, evidence: str, failures: list[str], params) -> tuple[str, str]:
    """Register the selected model (its served form) once per run, with tags and a description; alias
    `best_ranked` always, `champion` only if the corrected evidence holds (SPA, MCS, Holm-adjusted DM:
    `failures` empty). Returns the note for the report (no version number: the report is a DVC output,
    a pure function of its inputs) and the version it got."""
    from mlflow import MlflowClient, register_model

    if champion is None:
        return "No model was trained, so none is registered.", ""
    client, name = MlflowClient(), champion["model"]
    if name not in runs:
        return (f"{name} is not registered: no MLflow run in this store made its predictions (it was trained against "
                "another store)."), ""
    run = runs[name]
    existing = client.search_model_versions(f"name = '{params.registered_model}' and run_id = '{run['run_id']}'")
    if existing:  # the same run's model (a re-run of compare alone): never a second version of it
        version = existing[0].version
    else:
        version = quietly(register_model, run["model_uri"], params.registered_model).version
    served = run["served"]
    which = (f"fold {served['fold']}, seed {served['seed']}: the most recent data, and its seed with the lowest "
             "validation loss" if "seed" in served else f"its members' served models, weights {served['weights']}")
    what = f"**{name}** is registered as `{params.registered_model}` ({which})"
    tags = {"architecture": name, "data_md5": run.get("data_md5", ""), "params_hash": run.get("params_hash", ""),
            "git_commit": run.get("git_commit", ""), "dm_pvalue": report.pvalue_text(champion["dm_pvalue"]),
            "dm_pvalue_holm": report.pvalue_text(champion.get("dm_pvalue_holm")), "in_mcs": str(report.is_member(champion.get("in_mcs"))),
            "skill_vs_rw_pct": f"{champion['skill_vs_rw_pct']:.4g}"}
    for key, value in tags.items():
        client.set_model_version_tag(params.registered_model, version, key, value)
    client.set_registered_model_alias(params.registered_model, BEST_RANKED, version)
    if not failures:
        client.set_registered_model_alias(params.registered_model, CHAMPION, version)
        note = (f"{what} with alias `champion`: the SPA test rejects that nothing beats the random walk, {name} is in "
                f"the model confidence set, and its Holm-adjusted DM p-value is below {params.alpha}.")
    else:
        reason = "; ".join(failures)
        client.set_model_version_tag(params.registered_model, version, "champion_rejected", reason[:5000])
        note = (f"{what} with alias `{BEST_RANKED}`, but the `champion` alias was left where it was: {reason}. "
                f"To forecast with it anyway: `tsarena predict FILE --model {BEST_RANKED}`.")
    description = (f"{name}: raw OHLCV prices in, forecast per ticker out (tsarena self-contained model). "
                   f"{note} Evidence: {evidence}")
    client.update_model_version(params.registered_model, version, description=description[:5000])
    return note, f"version {version}" + (" (this run's model was already registered: no new version)" if existing else "")


@stage_main
def main() -> None:
    params = config.load("arena", "compare", "tracking")
    cmp = params["compare"]
    metrics = json.loads((EVAL / "scores.json").read_text())
    details = json.loads((EVAL / "details.json").read_text())
    forecasts = pd.read_parquet(EVAL / "forecasts.parquet").sort_values(["model", "seed", "fold", "row"], kind="stable")
    histories = {m: pd.read_csv(model_dir(m) / "histories.csv") for m in params["arena"].models}

    n_folds, judged = len(details["folds"]), [m for m in metrics if m != ORACLE]
    ranks = mean_ranks(details["per_fold"], judged, cmp.select_by, cmp.select_by in report.HIGHER_IS_BETTER)
    table = report.comparison_table(metrics, cmp.select_by, cmp.alpha, ranks)
    folds = report.fold_table(details, cmp.select_by)
    spa = details["referee"]["spa_pvalues"]["consistent"]
    text = report.verdict(table, cmp.alpha, cmp.select_by, folds if n_folds > 1 else None, spa)
    champion = report.select_champion(table)
    failures = [] if champion is None else report.champion_failures(champion, spa, cmp.alpha)
    title = f"Walk-forward, pooled over the {n_folds} folds" if n_folds > 1 else "Single split"
    mean = forecasts.groupby(["model", "fold", "row", "date", "ticker"], as_index=False)[["forecast", "actual"]].mean()
    wide = mean.pivot(index=["fold", "row", "date", "ticker"], columns="model", values="forecast").reset_index()
    wide["actual"] = mean[mean["model"] == "random_walk"].set_index(["fold", "row"])["actual"].to_numpy()

    import mlflow
    from tsarena import tracking as tr

    uri = tr.resolve_uri(params["tracking"].uri)
    experiment_id = tr.connect(uri, params["tracking"].experiment)
    tr.mark_dead_runs_failed(uri, experiment_id, "compare")
    found = {m: tr.producer_run(params["tracking"], producing_stage(m), m, predictions_path(m)) for m in table["model"]}
    runs = {m: run for m, run in found.items() if run is not None and m in trained(params["arena"])}
    # the verdict on every contestant's own run: the UI's runs list sorts and filters by it
    tr.log_verdicts({m: run["run_id"] for m, run in found.items() if run is not None}, table, uri)
    page = tr.set_runs_view(uri, experiment_id, ["rank", *HEADLINE.values(), "in_mcs", "train_seconds"])
    flat = config.flatten(params)
    with atomic_dir(OUT) as tmp:
        table.to_csv(tmp / "comparison.csv", index=False)
        folds.to_csv(tmp / "folds.csv", index=False)
        wide[["date", "ticker", "fold", "actual", *metrics]].to_csv(tmp / "predictions.csv", index=False)
        ranked = [m for m in table["model"] if m != "random_walk"]  # best first; the random walk forecasts 0
        report.plot_calibration(wide, ranked, tmp / "calibration.png")
        report.plot_forecast_window(wide, [m for m in ranked if m != ORACLE][:3], tmp / "forecast_window.png")
        report.plot_equity(pd.read_csv(EVAL / "equity.csv", parse_dates=["date"]), details["cost_bps"],
                           tmp / "equity.png")
        report.plot_losses(histories, tmp / "loss_curves.png")
        report.plot_skill(table, tmp / "skill.png")
        report.plot_cumulative_loss(date_losses(forecasts, judged), tmp / "cumulative_loss.png")
        report.plot_folds(folds, table, cmp.select_by, tmp / "folds.png")
        tags = {**tr.run_tags("compare", tr.dvc_out_md5("evaluate", "data/eval/forecasts.parquet"), flat),
                **{f"model_run.{name}": run["run_id"] for name, run in runs.items()}}
        with tr.run(experiment_id, "compare", tags) as run:
            mlflow.log_params(flat)
            note, version = register(champion, runs, text, failures, cmp)
            mlflow.log_metrics({"spa_pvalue": spa, "mcs_size": int(report.in_mcs(table).sum())})
            # the leaderboard as an MLflow table (the UI's artifact view), with the training time the report leaves out
            seconds = {m: run["metrics"].get("train_seconds") for m, run in found.items() if run is not None}
            mlflow.log_table(table.assign(train_seconds=table["model"].map(seconds)), artifact_file="leaderboard.json")
            (tmp / "comparison.md").write_text(report.to_markdown(table, title, text, note,
                                                                  folds if n_folds > 1 else None, cmp.select_by))
            mlflow.log_artifacts(str(tmp), artifact_path="report")
            mlflow.set_tag("verdict", text[:5000])
            mlflow.set_tag("mlflow.note.content", f"{text}\n\n{note} ({version})")  # the run's description in the UI
    print(text)
    print(f"{note} ({version})" if version else note)
    print(f"compare: report -> {OUT}/comparison.md, run {run.info.run_id}; every contestant side by side in the "
          f"MLflow UI: `tsarena ui` (or `mlflow ui`, then open http://127.0.0.1:5000/{page})")


if __name__ == "__main__":
    main()
