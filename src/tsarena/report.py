"""The comparison table, the plain-language verdict, and the plots."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tsarena.layout import BASELINES, ORACLE  # noqa: E402
from tsarena.referee import BENCHMARK, in_confidence_set  # noqa: E402


HIGHER_IS_BETTER = {"test_dir_acc", "test_ic", "test_sharpe"}
EVIDENCE = ["model", "kind", "mean_rank", "test_rmse", "skill_vs_rw_pct", "skill_of_avg", "skill_lo", "skill_hi",
            "share_of_oracle_pct", "dm_pvalue", "dm_pvalue_holm", "in_mcs", "mcs_pvalue"]
COLUMNS = [
    *EVIDENCE, "test_mae", "test_dir_acc", "test_dir_acc_lo", "test_dir_acc_hi", "test_ic", "test_sharpe",
    "sharpe_of_avg", "sharpe_lo", "sharpe_hi", "test_turnover", "break_even_bps", "test_max_drawdown",
    "test_total_return", "n_test", "n_seeds", "n_parameters", "tune_trials",
]  # timings are not here: the report is a DVC output, a pure function of its inputs; they are in MLflow


def comparison_table(metrics: dict[str, dict], select_by: str, alpha: float = 0.05,
                     ranks: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per contestant, best first by `select_by` (its mean over seeds), the oracle last and
    unranked. Skill = RMSE gain over the random walk (%); `share_of_oracle_pct` = the share of the
    oracle's skill; `in_mcs` = in the model confidence set at level 1 - alpha. A metric's spread
    across seeds, where there is one, is `<metric>_std`."""
    table = pd.DataFrame([{"model": name, **values} for name, values in metrics.items()])
    table["kind"] = np.select([table["model"].isin(BASELINES), table["model"] == "ensemble", table["model"] == ORACLE],
                              ["baseline", "ensemble", "oracle"], "neural")
    rw_rmse = float(table.loc[table["model"] == "random_walk", "test_rmse"].iloc[0])
    table["skill_vs_rw_pct"] = 100 * (1 - table["test_rmse"] / rw_rmse)
    if "test_rmse_std" in table:
        table["skill_vs_rw_pct_std"] = 100 * table["test_rmse_std"] / rw_rmse
    if ORACLE in set(table["model"]):
        attainable = float(table.loc[table["model"] == ORACLE, "skill_vs_rw_pct"].iloc[0])
        table["share_of_oracle_pct"] = 100 * table["skill_vs_rw_pct"] / attainable if attainable > 0 else np.nan
    if "mcs_pvalue" in table:
        table["in_mcs"] = table["mcs_pvalue"].map(lambda p: None if pd.isna(p) else bool(in_confidence_set(p, alpha)))
    if ranks:
        table["mean_rank"] = table["model"].map(ranks)
    ascending = select_by not in HIGHER_IS_BETTER
    table = table.sort_values(select_by, ascending=ascending, na_position="last", kind="stable")
    table = pd.concat([table[table["kind"] != "oracle"], table[table["kind"] == "oracle"]])
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
    better = folds[model] > folds["random_walk"] if metric in HIGHER_IS_BETTER else folds[model] < folds["random_walk"]
    return int(better.sum())


def select_champion(table: pd.DataFrame) -> pd.Series | None:
    """The best trained model (network or ensemble) by the table's order; None if there is none."""
    trained = table[table["kind"].isin(["neural", "ensemble"])]
    return trained.iloc[0] if len(trained) else None


def pvalue_text(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.3g}"


def is_member(value) -> bool:
    """An `in_mcs` cell as a plain bool: numpy's bool in a bool column, None or NaN (the oracle) is False."""
    return value is not None and not pd.isna(value) and bool(value)


def in_mcs(table: pd.DataFrame) -> pd.Series:
    """The `in_mcs` column as plain booleans (all False where no MCS was run)."""
    return table["in_mcs"].map(is_member).astype(bool) if "in_mcs" in table else pd.Series(False, index=table.index)


def champion_failures(row: pd.Series, spa_pvalue: float | None, alpha: float) -> list[str]:
    """What keeps `row` from being champion, in plain words; empty when the evidence holds. Three tests,
    each corrected for the number of models tried: SPA rejects "nothing beats the random walk", the
    model is in the model confidence set, and its Holm-adjusted DM p-value is below alpha."""
    failures = []
    if spa_pvalue is None or not spa_pvalue < alpha:
        failures.append("the SPA test does not reject that no model beats the random walk "
                        f"(p = {pvalue_text(spa_pvalue)}, needs < {alpha})")
    if not is_member(row.get("in_mcs")):
        failures.append(f"{row['model']} is not in the {1 - alpha:.0%} model confidence set "
                        f"(MCS p = {pvalue_text(row.get('mcs_pvalue'))})")
    holm = row.get("dm_pvalue_holm")
    if holm is None or pd.isna(holm) or not holm < alpha:
        failures.append(f"its Holm-adjusted DM p-value is {pvalue_text(holm)} "
                        f"(raw {pvalue_text(row.get('dm_pvalue'))}; needs < {alpha})")
    return failures


def verdict(table: pd.DataFrame, alpha: float, select_by: str, folds: pd.DataFrame | None = None,
            spa_pvalue: float | None = None) -> str:
    """One paragraph a user can act on; says plainly when nothing beats the random walk once the
    number of models tried is accounted for."""
    ranked = table[table["kind"] != "oracle"]
    adjusted = "dm_pvalue_holm" if "dm_pvalue_holm" in ranked else "dm_pvalue"
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
    test = "Diebold-Mariano, one-sided" + (f", Holm-adjusted for {n_models} models" if adjusted != "dm_pvalue" else "")
    if significant.empty:
        lines.append(
            f"No model beats the random walk significantly ({test}, p < {alpha}): "
            "on this data and split the differences in forecast error are indistinguishable from noise, "
            "so no model here has shown forecasting skill."
        )
        lucky = ranked[(ranked["dm_pvalue"].notna()) & (ranked["dm_pvalue"] < alpha)]
        if adjusted != "dm_pvalue" and len(lucky):
            lines.append(f"Raw DM p-values below {alpha} ({', '.join(lucky['model'])}) do not survive the correction: "
                         "with this many models, some pass by chance.")
    else:
        names = ", ".join(f"{row.model} (skill {row.skill_vs_rw_pct:+.2f}%, p = {getattr(row, adjusted):.3g})"
                          for row in significant.itertuples())
        lines.append(f"Models that beat the random walk significantly ({test}, p < {alpha}): {names}.")
        if significant[significant["kind"] != "baseline"].empty:
            lines.append("No trained model does; the significant skill comes from a baseline.")
    if "in_mcs" in ranked:
        members = ranked.loc[in_mcs(ranked), "model"].tolist()
        lines.append(f"The {1 - alpha:.0%} model confidence set (models that cannot be told apart from the best): "
                     f"{', '.join(members)}" + ("; it includes the random walk." if BENCHMARK in members else "."))
    oracle = table[table["kind"] == "oracle"]
    if len(oracle):
        lines.append(f"The oracle (this synthetic source's known optimal forecast) has skill "
                     f"{oracle['skill_vs_rw_pct'].iloc[0]:+.2f}%: share_of_oracle_pct is what each model captured.")
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


def to_markdown(table: pd.DataFrame, title: str, verdict_text: str, champion_note: str,
                folds: pd.DataFrame | None = None, metric: str = "") -> str:
    """The report: verdict, the ranking with its evidence, trading and compute (± is the std across
    seeds), the metric per fold, champion."""
    evidence = [c for c in table.columns if c.removesuffix("_std") in EVIDENCE]
    rest = ["model", *[c for c in table.columns if c not in evidence]]
    parts = [f"# Model comparison\n\n{verdict_text}\n", f"## {title}: ranking and evidence\n\n{markdown_table(table[evidence])}",
             f"## {title}: trading and compute\n\n{markdown_table(table[rest])}"]
    if folds is not None:
        parts.append(f"## {metric} per walk-forward fold\n\n{markdown_table(folds)}")
    parts.append(f"## Champion\n\n{champion_note}\n")
    return "\n".join(parts)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_predictions(predictions: pd.DataFrame, models: list[str], path: Path) -> None:
    ticker = predictions["ticker"].iloc[0]
    frame = predictions[predictions["ticker"] == ticker]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.plot(frame["date"], frame["actual"], color="0.6", lw=0.8, label="actual")
    for name in models:
        ax.plot(frame["date"], frame[name], lw=1.1, label=name)
    ax.set(title=f"Test period: forecast vs actual ({ticker})", xlabel="date", ylabel="target")
    ax.legend(ncol=4, fontsize=8)
    _save(fig, path)


def plot_equity(equity: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for name in equity.columns.drop("date"):
        ax.plot(equity["date"], equity[name], label=name)
    ax.axhline(1.0, color="0.5", lw=0.6)
    ax.set(title="Equity of long/short sign strategies after costs", xlabel="date", ylabel="equity")
    ax.legend(ncol=3, fontsize=8)
    _save(fig, path)


def plot_losses(histories: dict[str, pd.DataFrame], path: Path) -> None:
    """Every fold's and seed's curves; one colour per model, solid train, dashed validation."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (name, history) in enumerate(histories.items()):
        color = f"C{i}"
        for j, (_, seed) in enumerate(history.groupby(["fold", "seed"], sort=True)):
            label = j == 0
            ax.plot(seed["epoch"], seed["train_loss"], color=color, lw=1, label=f"{name} train" if label else None)
            ax.plot(seed["epoch"], seed["val_loss"], color=color, lw=1, ls="--", label=f"{name} val" if label else None)
    ax.set(title="Loss per fit ÷ the random walk's loss on the same split (1.0 = no better than the random walk)",
           xlabel="epoch", ylabel="loss / random walk's loss")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_folds(folds: pd.DataFrame, metric: str, path: Path) -> None:
    """`metric` per fold and model; error bars are the std across seeds."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    models = [c for c in folds.columns if c != "fold" and not c.endswith("_std")]
    for name in models:
        spread = folds[f"{name}_std"] if f"{name}_std" in folds else None
        ax.errorbar(folds["fold"], folds[name], yerr=spread, marker="o", capsize=3, label=name,
                    ls="--" if name in BASELINES else "-")
    ax.set(title=f"{metric} per walk-forward fold (error bars: std across seeds)", xlabel="fold", ylabel=metric,
           xticks=folds["fold"])
    ax.legend(ncol=3, fontsize=8)
    _save(fig, path)


def plot_skill(table: pd.DataFrame, path: Path) -> None:
    """Each model's RMSE skill vs the random walk (%) with its stationary-bootstrap 95% interval; the
    axis includes zero (no truncation flatters small differences), the oracle as a dashed line."""
    ranked = table[(table["kind"] != "oracle") & (table["model"] != BENCHMARK)].iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(ranked) + 1.5))
    value = ranked.get("skill_of_avg", ranked["skill_vs_rw_pct"]).to_numpy(dtype=float)  # what the interval is of
    low = ranked.get("skill_lo", pd.Series(value)).to_numpy(dtype=float)
    high = ranked.get("skill_hi", pd.Series(value)).to_numpy(dtype=float)
    colors = ["tab:gray" if k == "baseline" else "tab:blue" for k in ranked["kind"]]
    ax.errorbar(value, range(len(ranked)), xerr=np.nan_to_num(np.vstack([value - low, high - value])), fmt="none",
                ecolor="black", capsize=3)
    ax.scatter(value, range(len(ranked)), color=colors, zorder=3)
    ax.axvline(0, color="black", lw=0.8)
    oracle = table[table["kind"] == "oracle"]
    if len(oracle):
        ax.axvline(float(oracle["skill_vs_rw_pct"].iloc[0]), color="tab:green", ls="--", label="oracle")
        ax.legend(fontsize=8)
    ax.set_yticks(range(len(ranked)), ranked["model"])
    ax.set(title="RMSE skill vs the random walk, % (95% stationary-bootstrap intervals; grey: baselines)",
           xlabel="skill % (> 0: lower error than the random walk)")
    _save(fig, path)


def plot_cumulative_loss(losses: pd.DataFrame, path: Path) -> None:
    """Cumulative squared-error difference vs the random walk over the test period: a model with real
    skill drifts steadily below zero; one lucky stretch shows as a step."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    difference = losses.drop(columns=BENCHMARK).sub(losses[BENCHMARK], axis=0).cumsum()
    for name in difference.columns:
        ax.plot(difference.index, difference[name], lw=1, label=name, ls="--" if name in BASELINES else "-")
    ax.axhline(0, color="black", lw=0.6)
    ax.set(title="Cumulative squared error minus the random walk's (below 0: better than the random walk)",
           xlabel="date", ylabel="cumulative SE difference")
    ax.legend(ncol=4, fontsize=8)
    _save(fig, path)
