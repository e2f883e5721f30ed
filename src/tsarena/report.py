"""The comparison table, the plain-language verdict, and the plots."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


BASELINES = ("random_walk", "drift", "linear")
HIGHER_IS_BETTER = {"test_dir_acc", "test_ic", "test_sharpe"}
COLUMNS = [
    "model", "kind", "test_rmse", "skill_vs_rw_pct", "dm_pvalue", "test_mae", "test_dir_acc", "test_dir_acc_lo",
    "test_dir_acc_hi", "test_ic", "test_sharpe", "test_max_drawdown", "test_total_return", "n_test", "n_seeds",
    "n_parameters", "train_seconds",
]


def comparison_table(metrics: dict[str, dict], select_by: str) -> pd.DataFrame:
    """One row per model and baseline, best first by `select_by` (its mean over seeds); skill = RMSE
    gain over random walk. A metric's spread across seeds, where there is one, is `<metric>_std`."""
    table = pd.DataFrame([{"model": name, **values} for name, values in metrics.items()])
    table["kind"] = np.select([table["model"].isin(BASELINES), table["model"] == "ensemble"], ["baseline", "ensemble"],
                              "neural")
    rw_rmse = float(table.loc[table["model"] == "random_walk", "test_rmse"].iloc[0])
    table["skill_vs_rw_pct"] = 100 * (1 - table["test_rmse"] / rw_rmse)
    if "test_rmse_std" in table:
        table["skill_vs_rw_pct_std"] = 100 * table["test_rmse_std"] / rw_rmse
    ascending = select_by not in HIGHER_IS_BETTER
    table = table.sort_values(select_by, ascending=ascending, na_position="last", kind="stable")
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
    neural = table[table["kind"] != "baseline"]
    return neural.iloc[0] if len(neural) else None


def verdict(table: pd.DataFrame, alpha: float, select_by: str, folds: pd.DataFrame | None = None) -> str:
    """One paragraph a user can act on; says plainly when nothing beats the random walk."""
    significant = table[(table["dm_pvalue"].notna()) & (table["dm_pvalue"] < alpha)]
    best = table.iloc[0]
    where = "the single split" if folds is None else f"the {len(folds)} walk-forward folds pooled"
    spread = f" ± {best[f'{select_by}_std']:.2g} across seeds" if pd.notna(best.get(f"{select_by}_std")) else ""
    lines = [f"Ranked by {select_by} on {where}, the best is **{best['model']}** "
             f"({select_by} = {best[select_by]:.6g}{spread})."]
    if significant.empty:
        lines.append(
            f"No model beats the random walk significantly (Diebold-Mariano, one-sided, p < {alpha}): "
            "on this data and split the differences in forecast error are indistinguishable from noise, "
            "so no model here has shown forecasting skill."
        )
    else:
        names = ", ".join(
            f"{row.model} (skill {row.skill_vs_rw_pct:+.2f}%, p = {row.dm_pvalue:.3g})" for row in significant.itertuples()
        )
        lines.append(f"Models that beat the random walk significantly at p < {alpha}: {names}.")
        neural = significant[significant["kind"] != "baseline"]
        if neural.empty:
            lines.append("No neural model does; the significant skill comes from a baseline.")
    if folds is not None:
        wins = ", ".join(f"{name} in {fold_wins(folds, name, select_by)}" for name in table["model"]
                         if name != "random_walk" and name in folds)
        lines.append(f"Folds where a model beat the random walk on {select_by}: {wins} of {len(folds)}; "
                     "skill that shows in only some folds is not a stable edge.")
    lines.append(
        "Trading metrics (Sharpe, drawdown) are of a daily long/short sign strategy after costs and are "
        "far noisier than the error metrics: read them with the DM p-value, not instead of it."
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
    """The report: verdict, the ranking (± is the std across seeds), the metric per fold, champion."""
    parts = [f"# Model comparison\n\n{verdict_text}\n", f"## {title}\n\n{markdown_table(table)}"]
    if folds is not None:
        parts.append(f"## {metric} per walk-forward fold\n\n{markdown_table(folds)}")
    parts.append(f"## Champion\n\n{champion_note}\n")
    return "\n".join(parts)


def metric_interval(name: str, forecasts: list[np.ndarray], actual: np.ndarray, metrics: dict) -> tuple[float, float]:
    """95% sampling interval for the bar chart: Wilson for accuracy, delta method / Fisher z otherwise.
    With several seeds the errors are the seed-averaged ones (as in the DM test)."""
    n = len(actual)
    value = metrics.get(name)
    if value is None:
        return (math.nan, math.nan)
    if name == "test_dir_acc":
        return metrics["test_dir_acc_lo"], metrics["test_dir_acc_hi"]
    if name == "test_rmse":
        squared = np.mean([(f - actual) ** 2 for f in forecasts], axis=0)
        half = 1.96 * squared.std(ddof=1) / math.sqrt(n)
        return math.sqrt(max(squared.mean() - half, 0)), math.sqrt(squared.mean() + half)
    if name == "test_mae":
        absolute = np.mean([np.abs(f - actual) for f in forecasts], axis=0)
        half = 1.96 * absolute.std(ddof=1) / math.sqrt(n)
        return value - half, value + half
    if name == "test_ic":
        half = 1.96 / math.sqrt(max(n - 3, 1))
        return math.tanh(math.atanh(value) - half), math.tanh(math.atanh(value) + half)
    if name == "test_sharpe":  # Lo (2002), iid returns
        daily = value / math.sqrt(252)
        half = 1.96 * math.sqrt((1 + daily**2 / 2) / n) * math.sqrt(252)
        return value - half, value + half
    return (value, value)


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


def plot_metric(table: pd.DataFrame, intervals: dict[str, tuple[float, float]], metric: str, path: Path,
                seed_values: dict[str, list[float]] | None = None) -> None:
    """Bars: mean over seeds with 95% sampling intervals; dots: each seed's own value."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    values = table[metric].astype(float).to_numpy()
    low = np.array([intervals[m][0] for m in table["model"]])
    high = np.array([intervals[m][1] for m in table["model"]])
    errors = np.vstack([values - low, high - values])
    colors = ["tab:blue" if k == "neural" else "tab:gray" for k in table["kind"]]
    ax.bar(table["model"], values, color=colors)
    ax.errorbar(table["model"], values, yerr=np.nan_to_num(errors), fmt="none", ecolor="black", capsize=4)
    seeds = [v for values_ in (seed_values or {}).values() for v in values_]
    for model, values_ in (seed_values or {}).items():
        ax.scatter([model] * len(values_), values_, color="black", s=12, zorder=3)
    finite = np.concatenate([values, low, high, np.array(seeds, dtype=float)])
    finite = finite[np.isfinite(finite)]
    if len(finite):
        pad = 0.1 * (finite.max() - finite.min() or abs(finite.max()) or 1)
        ax.set_ylim(finite.min() - pad, finite.max() + pad)
    ax.set(title=f"{metric} with 95% intervals (neural blue, baselines grey)", ylabel=metric)
    _save(fig, path)
