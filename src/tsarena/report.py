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
    "test_dir_acc_hi", "test_ic", "test_sharpe", "test_max_drawdown", "test_total_return", "n_test",
]


def comparison_table(metrics: dict[str, dict], select_by: str) -> pd.DataFrame:
    """One row per model and baseline, best first by `select_by`; skill = RMSE gain over random walk."""
    table = pd.DataFrame([{"model": name, **values} for name, values in metrics.items()])
    table["kind"] = np.where(table["model"].isin(BASELINES), "baseline", "neural")
    rw_rmse = float(table.loc[table["model"] == "random_walk", "test_rmse"].iloc[0])
    table["skill_vs_rw_pct"] = 100 * (1 - table["test_rmse"] / rw_rmse)
    ascending = select_by not in HIGHER_IS_BETTER
    table = table.sort_values(select_by, ascending=ascending, na_position="last", kind="stable")
    return table[[c for c in COLUMNS if c in table]].reset_index(drop=True)


def select_champion(table: pd.DataFrame) -> pd.Series | None:
    """The best neural model by the table's order (None if no neural model was trained)."""
    neural = table[table["kind"] == "neural"]
    return neural.iloc[0] if len(neural) else None


def verdict(table: pd.DataFrame, alpha: float, select_by: str) -> str:
    """One paragraph a user can act on; says plainly when nothing beats the random walk."""
    significant = table[(table["dm_pvalue"].notna()) & (table["dm_pvalue"] < alpha)]
    best = table.iloc[0]
    lines = [f"Ranked by {select_by}, the best is **{best['model']}** ({select_by} = {best[select_by]:.6g})."]
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
        neural = significant[significant["kind"] == "neural"]
        if neural.empty:
            lines.append("No neural model does; the significant skill comes from a baseline.")
    lines.append(
        "Trading metrics (Sharpe, drawdown) are of a daily long/short sign strategy after costs and are "
        "far noisier than the error metrics: read them with the DM p-value, not instead of it."
    )
    return " ".join(lines)


def to_markdown(table: pd.DataFrame, verdict_text: str, champion_note: str) -> str:
    shown = table.copy()
    for column in shown.columns:
        if shown[column].dtype.kind == "f":
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    header = "| " + " | ".join(shown.columns) + " |\n|" + "---|" * len(shown.columns) + "\n"
    rows = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in shown.itertuples(index=False))
    return f"# Model comparison\n\n{verdict_text}\n\n{header}{rows}\n## Champion\n\n{champion_note}\n"


def metric_interval(name: str, forecast: np.ndarray, actual: np.ndarray, metrics: dict) -> tuple[float, float]:
    """95% interval for the bar chart: Wilson for accuracy, delta method / Fisher z otherwise."""
    n = len(actual)
    value = metrics.get(name)
    if value is None:
        return (math.nan, math.nan)
    if name == "test_dir_acc":
        return metrics["test_dir_acc_lo"], metrics["test_dir_acc_hi"]
    if name == "test_rmse":
        squared = (forecast - actual) ** 2
        half = 1.96 * squared.std(ddof=1) / math.sqrt(n)
        return math.sqrt(max(squared.mean() - half, 0)), math.sqrt(squared.mean() + half)
    if name == "test_mae":
        absolute = np.abs(forecast - actual)
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
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, history in histories.items():
        line = ax.plot(history["epoch"], history["train_loss"], label=f"{name} train")[0]
        ax.plot(history["epoch"], history["val_loss"], ls="--", color=line.get_color(), label=f"{name} val")
    ax.set(title="Training and validation loss (standardised: 1.0 = no skill)", xlabel="epoch", ylabel="loss")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_metric(table: pd.DataFrame, intervals: dict[str, tuple[float, float]], metric: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    values = table[metric].astype(float).to_numpy()
    low = np.array([intervals[m][0] for m in table["model"]])
    high = np.array([intervals[m][1] for m in table["model"]])
    errors = np.vstack([values - low, high - values])
    colors = ["tab:blue" if k == "neural" else "tab:gray" for k in table["kind"]]
    ax.bar(table["model"], values, color=colors)
    ax.errorbar(table["model"], values, yerr=np.nan_to_num(errors), fmt="none", ecolor="black", capsize=4)
    finite = np.concatenate([values, low, high])
    finite = finite[np.isfinite(finite)]
    if len(finite):
        pad = 0.1 * (finite.max() - finite.min() or abs(finite.max()) or 1)
        ax.set_ylim(finite.min() - pad, finite.max() + pad)
    ax.set(title=f"{metric} with 95% intervals (neural blue, baselines grey)", ylabel=metric)
    _save(fig, path)
