"""compare: rank models and baselines, write the report and plots, register the champion."""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

import json
from pathlib import Path

import pandas as pd

from tsarena import config
from tsarena.judging import plots, report
from tsarena.core.errors import stage_main
from tsarena.judging.metrics import HEADLINE, HIGHER_IS_BETTER, IN_MCS, RANK
from tsarena.core.io import atomic_dir
from tsarena.contestants.baselines import BENCHMARK
from tsarena.contestants.producers import ORACLE, model_dir, predictions_path, producing_stage, trained
from tsarena.judging.attributions import EXPLAIN_NOTE, explain_table
from tsarena.judging.referee import date_losses, mean_ranks

EVAL, EXPLAIN, OUT = Path("data/eval"), Path("data/explain"), Path("data/reports")


@stage_main
def main() -> None:
    params = config.load("arena", "compare", "tracking")
    cmp = params["compare"]
    metrics = json.loads((EVAL / "scores.json").read_text())
    details = json.loads((EVAL / "details.json").read_text())
    forecasts = pd.read_parquet(EVAL / "forecasts.parquet").sort_values(["model", "seed", "fold", "row"], kind="stable")
    histories = {m: pd.read_csv(model_dir(m) / "histories.csv") for m in params["arena"].models}

    n_folds, judged = len(details["folds"]), [m for m in metrics if m != ORACLE]
    ranks = mean_ranks(details["per_fold"], judged, cmp.select_by, cmp.select_by in HIGHER_IS_BETTER)
    table = report.comparison_table(metrics, cmp.select_by, cmp.alpha, ranks)
    folds = report.fold_table(details, cmp.select_by)
    spa = details["referee"]["spa_pvalues"]["consistent"]
    text = report.verdict(table, cmp.alpha, cmp.select_by, folds if n_folds > 1 else None, spa)
    champion = report.select_champion(table)
    failures = [] if champion is None else report.champion_failures(champion, spa, cmp.alpha)
    title = f"Walk-forward, pooled over the {n_folds} folds" if n_folds > 1 else "Single split"
    mean = forecasts.groupby(["model", "fold", "row", "date", "ticker"], as_index=False)[["forecast", "actual"]].mean()
    wide = mean.pivot(index=["fold", "row", "date", "ticker"], columns="model", values="forecast").reset_index()
    wide["actual"] = mean[mean["model"] == BENCHMARK].set_index(["fold", "row"])["actual"].to_numpy()

    import mlflow

    from tsarena.tracking.registry import log_verdicts, register, set_runs_view
    from tsarena.tracking.runs import StageRuns, producer_run

    stage = StageRuns("compare", ("evaluate", str(EVAL / "forecasts.parquet")), config.flatten(params), params["tracking"])
    found = {m: producer_run(params["tracking"], producing_stage(m), m, predictions_path(m)) for m in table["model"]}
    runs = {m: run for m, run in found.items() if run is not None and m in trained(params["arena"])}
    # the verdict on every contestant's own run: the UI's runs list sorts and filters by it
    log_verdicts({m: run["run_id"] for m, run in found.items() if run is not None}, table, stage.uri)
    headline = [k for k in HEADLINE.values() if any(k in m for m in metrics.values())]  # the news' only with news
    page = set_runs_view(stage.uri, stage.experiment_id, [RANK, *headline, IN_MCS, "train_seconds"])
    with atomic_dir(OUT) as tmp:
        table.to_csv(tmp / "comparison.csv", index=False)
        folds.to_csv(tmp / "folds.csv", index=False)
        wide[["date", "ticker", "fold", "actual", *metrics]].to_csv(tmp / "predictions.csv", index=False)
        ranked = [m for m in table["model"] if m != BENCHMARK]  # best first; the random walk forecasts 0
        plots.plot_calibration(wide, ranked, tmp / "calibration.png")
        plots.plot_forecast_window(wide, [m for m in ranked if m != ORACLE][:3], tmp / "forecast_window.png")
        plots.plot_equity(pd.read_csv(EVAL / "equity.csv", parse_dates=["date"]), details["cost_bps"],
                           tmp / "equity.png")
        plots.plot_losses(histories, tmp / "loss_curves.png")
        plots.plot_skill(table, tmp / "skill.png")
        plots.plot_cumulative_loss(date_losses(forecasts, judged), tmp / "cumulative_loss.png")
        plots.plot_folds(folds, table, cmp.select_by, tmp / "folds.png")
        uncertainty, intervals = details["uncertainty"], None
        if uncertainty:  # a return target: every producer has intervals
            levels, shown = uncertainty["levels"], [m for m in table["model"] if m != ORACLE]
            intervals = report.interval_table(metrics, shown, levels)
            plots.plot_coverage(metrics, shown, levels, tmp / "coverage.png")
            best = next((m for m in ranked if m != ORACLE), BENCHMARK)
            first = forecasts[(forecasts["model"] == best) & (forecasts["fold"] == n_folds)]
            plots.plot_interval_band(first[first["seed"] == first["seed"].min()], best, levels, tmp / "intervals.png")
        news = details.get("news")  # with news and sentiment.ablate: each architecture against itself without
        news = (report.news_summary(news, cmp.alpha), report.news_table(news)) if news else None
        explained = None
        summary = json.loads((EXPLAIN / "summary.json").read_text())
        if summary:
            shown = [m for m in table["model"] if m in summary["producers"]]
            rankings = {m: pd.read_csv(EXPLAIN / m / "permutation.csv") for m in shown}
            explained = EXPLAIN_NOTE, explain_table(summary["producers"], shown, rankings)
            plots.plot_importance_grid(rankings, tmp / "importance.png")
        with stage.parent("compare") as run:
            stage.log_tags({f"model_run.{name}": found_run["run_id"] for name, found_run in runs.items()})
            note, version = register(champion, runs, text, failures, cmp)
            mlflow.log_metrics({"spa_pvalue": spa, "mcs_size": int(report.in_mcs(table).sum())})
            # the leaderboard as an MLflow table (the UI's artifact view), with the training time the report leaves out
            seconds = {m: run["metrics"].get("train_seconds") for m, run in found.items() if run is not None}
            mlflow.log_table(table.assign(train_seconds=table["model"].map(seconds)), artifact_file="leaderboard.json")
            (tmp / "comparison.md").write_text(report.to_markdown(table, title, text, note,
                                                                  folds if n_folds > 1 else None, cmp.select_by,
                                                                  intervals, explained, news))
            mlflow.log_artifacts(str(tmp), artifact_path="report")
            mlflow.set_tag("verdict", text[:5000])
            mlflow.set_tag("mlflow.note.content", f"{text}\n\n{note} ({version})")  # the run's description in the UI
    print(text)
    if news:
        print(news[0])
    print(f"{note} ({version})" if version else note)
    print(f"compare: report -> {OUT}/comparison.md, run {run.info.run_id}; every contestant side by side in the "
          f"MLflow UI: `tsarena ui` (or `mlflow ui`, then open http://127.0.0.1:5000/{page})")


if __name__ == "__main__":
    main()
