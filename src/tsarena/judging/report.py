"""The comparison table, the plain-language verdict and the markdown report (plots: judging.plots)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tsarena.judging.metrics import (DM_PVALUE, DM_PVALUE_HOLM, EVIDENCE, HIGHER_IS_BETTER, IN_MCS, MCS_PVALUE, MEAN_RANK,
                                     NEWS_DM_PVALUE_HOLM, NEWS_SKILL, RMSE, SHARE_OF_ORACLE, SKILL_VS_RW, TRADING, columns)
from tsarena.judging.scoring import pvalue_text
from tsarena.contestants.baselines import BENCHMARK
from tsarena.contestants.producers import BASELINE, ENSEMBLE, NEURAL, ORACLE, kind
from tsarena.judging.referee import in_confidence_set


# the report's two tables, the catalogue's groups in its order; timings are not here: the report is a DVC output,
# a pure function of its inputs; they are in MLflow
EVIDENCE_COLUMNS = ["model", "kind", *columns(EVIDENCE)]
COLUMNS = [*EVIDENCE_COLUMNS, *columns(TRADING)]


def comparison_table(metrics: dict[str, dict], select_by: str, alpha: float = 0.05,
                     ranks: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per contestant, best first by `select_by` (its mean over seeds), the oracle last and
    unranked. Skill = RMSE gain over the random walk (%); `share_of_oracle_pct` = the share of the
    oracle's skill; `in_mcs` = in the model confidence set at level 1 - alpha. A metric's spread
    across seeds, where there is one, is `<metric>_std`."""
    table = pd.DataFrame([{"model": name, **values} for name, values in metrics.items()])
    table["kind"] = table["model"].map(kind)
    rw_rmse = float(table.loc[table["model"] == BENCHMARK, RMSE].iloc[0])
    table[SKILL_VS_RW] = 100 * (1 - table[RMSE] / rw_rmse)
    if f"{RMSE}_std" in table:
        table[f"{SKILL_VS_RW}_std"] = 100 * table[f"{RMSE}_std"] / rw_rmse
    if ORACLE in set(table["model"]):
        attainable = float(table.loc[table["model"] == ORACLE, SKILL_VS_RW].iloc[0])
        table[SHARE_OF_ORACLE] = 100 * table[SKILL_VS_RW] / attainable if attainable > 0 else np.nan
    if MCS_PVALUE in table:
        table[IN_MCS] = table[MCS_PVALUE].map(lambda p: None if pd.isna(p) else bool(in_confidence_set(p, alpha)))
    if ranks:
        table[MEAN_RANK] = table["model"].map(ranks)
    ascending = select_by not in HIGHER_IS_BETTER
    table = table.sort_values(select_by, ascending=ascending, na_position="last", kind="stable")
    table = pd.concat([table[table["kind"] != ORACLE], table[table["kind"] == ORACLE]])
    columns = [c for name in COLUMNS for c in (name, f"{name}_std") if c in table]
    return table[columns].reset_index(drop=True)


def fold_table(details: dict, metric: str) -> pd.DataFrame:
    """`metric` per walk-forward fold (rows) and model (columns, mean over seeds; `<model>_std` beside)."""
    rows = []
    for fold, scores in details["per_fold"].items():
        row = {"fold": int(fold)}
        for name, score in scores.items():
            row[name] = score["summary"][metric]
            if f"{metric}_std" in score["summary"]:
                row[f"{name}_std"] = score["summary"][f"{metric}_std"]
        rows.append(row)
    return pd.DataFrame(rows).sort_values("fold").reset_index(drop=True)


def fold_wins(folds: pd.DataFrame, model: str, metric: str) -> int:
    """In how many folds `model` did better than the random walk on `metric`."""
    better = folds[model] > folds[BENCHMARK] if metric in HIGHER_IS_BETTER else folds[model] < folds[BENCHMARK]
    return int(better.sum())


def select_champion(table: pd.DataFrame) -> pd.Series | None:
    """The best trained model (network or ensemble) by the table's order; None if there is none."""
    trained = table[table["kind"].isin([NEURAL, ENSEMBLE])]
    return trained.iloc[0] if len(trained) else None


def is_member(value) -> bool:
    """An `in_mcs` cell as a plain bool: numpy's bool in a bool column, None or NaN (the oracle) is False."""
    return value is not None and not pd.isna(value) and bool(value)


def in_mcs(table: pd.DataFrame) -> pd.Series:
    """The `in_mcs` column as plain booleans (all False where no MCS was run)."""
    return table[IN_MCS].map(is_member).astype(bool) if IN_MCS in table else pd.Series(False, index=table.index)


def champion_failures(row: pd.Series, spa_pvalue: float | None, alpha: float) -> list[str]:
    """What keeps `row` from being champion, in plain words; empty when the evidence holds. Three tests,
    each corrected for the number of models tried: SPA rejects "nothing beats the random walk", the
    model is in the model confidence set, and its Holm-adjusted DM p-value is below alpha."""
    failures = []
    if spa_pvalue is None or not spa_pvalue < alpha:
        failures.append("the SPA test does not reject that no model beats the random walk "
                        f"(p = {pvalue_text(spa_pvalue)}, needs < {alpha})")
    if not is_member(row.get(IN_MCS)):
        failures.append(f"{row['model']} is not in the {1 - alpha:.0%} model confidence set "
                        f"(MCS p = {pvalue_text(row.get(MCS_PVALUE))})")
    holm = row.get(DM_PVALUE_HOLM)
    if holm is None or pd.isna(holm) or not holm < alpha:
        failures.append(f"its Holm-adjusted DM p-value is {pvalue_text(holm)} "
                        f"(raw {pvalue_text(row.get(DM_PVALUE))}; needs < {alpha})")
    return failures


def verdict(table: pd.DataFrame, alpha: float, select_by: str, folds: pd.DataFrame | None = None,
            spa_pvalue: float | None = None) -> str:
    """One paragraph a user can act on; says plainly when nothing beats the random walk once the
    number of models tried is accounted for."""
    ranked = table[table["kind"] != ORACLE]
    adjusted = DM_PVALUE_HOLM if DM_PVALUE_HOLM in ranked else DM_PVALUE
    significant = ranked[(ranked[adjusted].notna()) & (ranked[adjusted] < alpha)]
    best = ranked.iloc[0]
    n_models = int((ranked["model"] != BENCHMARK).sum())
    where = "the single split" if folds is None else f"the {len(folds)} walk-forward folds pooled"
    spread = f" ± {best[f'{select_by}_std']:.2g} across seeds" if pd.notna(best.get(f"{select_by}_std")) else ""
    lines = [f"Ranked by {select_by} on {where}, the best is **{best['model']}** "
             f"({select_by} = {best[select_by]:.6g}{spread})."]
    if spa_pvalue is not None:
        lines.append(f"SPA test over all {n_models} contestants: p = {pvalue_text(spa_pvalue)}, so "
                     + ("at least one beats the random walk even allowing for how many were tried."
                        if spa_pvalue < alpha else
                        "nothing beats the random walk once the number of models tried is accounted for."))
    test = "Diebold-Mariano, one-sided" + (f", Holm-adjusted for {n_models} models" if adjusted != DM_PVALUE else "")
    if significant.empty:
        lines.append(
            f"No model beats the random walk significantly ({test}, p < {alpha}): "
            "on this data and split the differences in forecast error are indistinguishable from noise, "
            "so no model here has shown forecasting skill."
        )
        lucky = ranked[(ranked[DM_PVALUE].notna()) & (ranked[DM_PVALUE] < alpha)]
        if adjusted != DM_PVALUE and len(lucky):
            lines.append(f"Raw DM p-values below {alpha} ({', '.join(lucky['model'])}) do not survive the correction: "
                         "with this many models, some pass by chance.")
    else:
        names = ", ".join(f"{row.model} (skill {row.skill_vs_rw_pct:+.2f}%, p = {getattr(row, adjusted):.3g})"
                          for row in significant.itertuples())
        lines.append(f"Models that beat the random walk significantly ({test}, p < {alpha}): {names}.")
        if significant[significant["kind"] != BASELINE].empty:
            lines.append("No trained model does; the significant skill comes from a baseline.")
    if IN_MCS in ranked:
        members = ranked.loc[in_mcs(ranked), "model"].tolist()
        lines.append(f"The {1 - alpha:.0%} model confidence set (models that cannot be told apart from the best): "
                     f"{', '.join(members)}" + ("; it includes the random walk." if BENCHMARK in members else "."))
    oracle = table[table["kind"] == ORACLE]
    if len(oracle):
        lines.append(f"The oracle (this synthetic source's known optimal forecast) has skill "
                     f"{oracle[SKILL_VS_RW].iloc[0]:+.2f}%: {SHARE_OF_ORACLE} is what each model captured.")
    if folds is not None:
        wins = ", ".join(f"{name} in {fold_wins(folds, name, select_by)}" for name in ranked["model"]
                         if name != BENCHMARK and name in folds)
        lines.append(f"Folds where a model beat the random walk on {select_by}: {wins} of {len(folds)}; "
                     "skill that shows in only some folds is not a stable edge.")
    lines.append(
        "Trading metrics (Sharpe, drawdown) are of a daily long/short sign strategy after costs and are "
        "far noisier than the error metrics: read them with their bootstrap intervals and break-even cost."
    )
    return " ".join(lines)


def _cell(value, spread=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        text = f"{value:.4g}"
        return f"{text} ± {spread:.2g}" if spread is not None and not pd.isna(spread) else text
    return str(value)


def markdown_table(table: pd.DataFrame) -> str:
    """A table with each `<column>_std` folded into its column as `mean ± std`."""
    columns = [c for c in table.columns if not (c.endswith("_std") and c[:-4] in table)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_cell(row[c], row.get(f"{c}_std")) for c in columns) + " |")
    return "\n".join(lines) + "\n"


INTERVALS_NOTE = (
    "Every producer's intervals come from its own forecasts: `conformal` adds the quantiles of its validation "
    "residuals (what a served model returns), `adaptive` updates them through the test period from outcomes already "
    "revealed (adaptive conformal inference). A calibrated interval covers its level; Kupiec's p tests the miss rate, "
    "Christoffersen's whether misses cluster (small p: they do). `crps_skill_pct` in the evidence table is the "
    "adaptive intervals' quantile CRPS against the random walk's (whose interval is the spread of past returns), "
    "with its Holm-adjusted DM p-value; the `sized_*` columns trade forecast / half-width of the "
    "interval instead of the sign.")


NEWS_NOTE = (
    "Each architecture trained twice on the same folds and seeds: with the news sentiment features and without "
    "them (`sentiment.ablate`). `news_skill_pct` is the RMSE skill of the fits with news over those without; the "
    "DM test is one-sided (with news better), Holm-adjusted over the architectures compared.")


def news_summary(news: dict[str, dict], alpha: float) -> str:
    """One sentence: which architectures the news made significantly better."""
    helped = [f"{m} ({v[NEWS_SKILL]:+.2f}%, p = {pvalue_text(v[NEWS_DM_PVALUE_HOLM])})" for m, v in news.items()
              if v[NEWS_DM_PVALUE_HOLM] is not None and v[NEWS_DM_PVALUE_HOLM] < alpha]
    return (f"News sentiment made {', '.join(helped)} significantly better (p < {alpha}, Holm over {len(news)})."
            if helped else f"News sentiment made no architecture significantly better (p < {alpha}, Holm over "
                           f"{len(news)}): on these data the headlines add nothing the prices did not already give.")


def news_table(news: dict[str, dict]) -> pd.DataFrame:
    """One row per architecture: its test RMSE with and without the news, the skill the news added and the p-values."""
    return pd.DataFrame([{"model": m, "rmse with news": math.sqrt(v["mse"]),
                          "rmse without news": math.sqrt(v["mse_without_news"]), NEWS_SKILL: v[NEWS_SKILL],
                          "news_dm_p": v["news_dm_p"], NEWS_DM_PVALUE_HOLM: v[NEWS_DM_PVALUE_HOLM]}
                         for m, v in news.items()])


EXPLAIN_OFF = "Off (`explain.enabled: false`): run `dvc exp run -S explain.enabled=true` to see it."


def to_markdown(table: pd.DataFrame, title: str, verdict_text: str, champion_note: str,
                folds: pd.DataFrame | None = None, metric: str = "", intervals: pd.DataFrame | None = None,
                explained: tuple[str, pd.DataFrame] | None = None, news: tuple[str, pd.DataFrame] | None = None) -> str:
    """The report: verdict, the ranking with its evidence, trading and compute (± is the std across
    seeds), the prediction intervals, what the news added (its summary and table; None: no news or no
    ablation), what each model looks at (its note and table; None: explain is off), the metric per fold,
    champion."""

    evidence = [c for c in table.columns if c.removesuffix("_std") in EVIDENCE_COLUMNS]
    rest = ["model", *[c for c in table.columns if c not in evidence]]
    parts = [f"# Model comparison\n\n{verdict_text}\n", f"## {title}: ranking and evidence\n\n{markdown_table(table[evidence])}",
             f"## {title}: trading and compute\n\n{markdown_table(table[rest])}"]
    if intervals is not None and len(intervals):
        parts.append(f"## How sure: prediction intervals (test)\n\n{INTERVALS_NOTE}\n\n{markdown_table(intervals)}")
    if news is not None:
        parts.append(f"## What the news added\n\n{news[0]} {NEWS_NOTE}\n\n{markdown_table(news[1])}")
    parts.append("## What each model looks at\n\n" + (EXPLAIN_OFF if explained is None else
                                                          f"{explained[0]}\n\n{markdown_table(explained[1])}"))
    if folds is not None:
        parts.append(f"## {metric} per walk-forward fold\n\n{markdown_table(folds)}")
    parts.append(f"## Champion\n\n{champion_note}\n")
    return "\n".join(parts)


def interval_table(metrics: dict[str, dict], models: list[str], levels: list[float]) -> pd.DataFrame:
    """One row per model and interval method: coverage at every level, and at the middle level the mean
    width, Winkler score and the two coverage tests' p-values, then the quantile CRPS (lower is better)."""
    from tsarena.judging.intervals import (CHRISTOFFERSEN_P, COVERAGE, CRPS, KUPIEC_P, METHODS, WIDTH, WINKLER, pct,
                                           score_name)

    middle = levels[len(levels) // 2]
    rows = []
    for name in models:
        for method in METHODS:
            if score_name(method, CRPS) not in metrics[name]:
                continue
            row = {"model": name, "method": method}
            row.update({f"cover {pct(level)}%": metrics[name][score_name(method, COVERAGE, level)] for level in levels})
            for score in (WIDTH, WINKLER, KUPIEC_P, CHRISTOFFERSEN_P):
                row[f"{score} {pct(middle)}%"] = metrics[name].get(score_name(method, score, middle))
            row[CRPS] = metrics[name][score_name(method, CRPS)]
            rows.append(row)
    return pd.DataFrame(rows)
