"""The comparison table, the plain-language verdict, and the plots."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tsarena.evaluation import BUY_AND_HOLD, pvalue_text, skill_text  # noqa: E402, F401 (compare's p-values)
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


def _save(fig: plt.Figure, path: Path) -> plt.Figure:
    """Write the figure and close it; returned so a test can read what was drawn."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def _grid(n: int, width: float = 3.2, height: float = 2.6, ncols: int = 4, sharey: bool = False
          ) -> tuple[plt.Figure, np.ndarray]:
    """Small multiples: one panel per model, so a dozen models never overlap in one band."""
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(width * ncols + 0.6, 7.5), height * nrows + 0.9), squeeze=False,
                             sharey=sharey)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat[:n]


def plot_calibration(frame: pd.DataFrame, models: list[str], path: Path, bins: int = 10) -> plt.Figure:
    """Realised target by forecast decile, per model: a forecast with skill has bars that rise from left
    to right (and lie near the diagonal if it is calibrated); no skill is a flat, noisy row. Pooled over
    the test period; `frame` is wide (one column per model's forecast, mean over seeds, and `actual`).
    Error bars: ±1.96 standard errors of each decile's mean."""
    varying = [m for m in models if frame[m].nunique() > 1]
    fig, axes = _grid(max(len(varying), 1), sharey=True)
    for ax, name in zip(axes, varying):
        decile = pd.qcut(frame[name].rank(method="first"), bins, labels=False)
        group = frame.groupby(decile)
        forecast, realised = 100 * group[name].mean(), 100 * group["actual"].mean()
        error = 196 * group["actual"].std() / np.sqrt(group.size())
        ax.errorbar(forecast, realised, yerr=error, fmt="o", ms=3, capsize=2, color="tab:blue")
        edge = [forecast.min(), forecast.max()]
        ax.plot(edge, edge, color="tab:green", lw=1, ls="--")
        ax.axhline(100 * frame["actual"].mean(), color="0.5", lw=0.7)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("mean forecast, %", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[::4]:
        ax.set_ylabel("mean realised, %", fontsize=8)
    if not varying:
        axes[0].text(0.5, 0.5, "no model's forecast varies", ha="center", transform=axes[0].transAxes)
    skipped = [m for m in models if m not in varying]
    fig.suptitle(f"Realised target by forecast decile, test period (error bars ± 1.96 se; dashed: "
                 f"forecast = realised; grey: mean realised){'; constant forecast, not shown: ' if skipped else ''}"
                 f"{', '.join(skipped)}", fontsize=9, wrap=True)
    return _save(fig, path)


def plot_forecast_window(frame: pd.DataFrame, models: list[str], path: Path, days: int = 60) -> plt.Figure:
    """The last `days` test days of the first ticker: realised target as bars, the forecasts of `models`
    (the best-ranked first) as lines on their own axis, both centred on zero: a return forecast is an
    order of magnitude smaller than the return it forecasts, so one axis would show a flat line."""
    ticker = frame["ticker"].iloc[0]
    window = frame[frame["ticker"] == ticker].tail(days)
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.bar(window["date"], window["actual"], color="0.75", width=1.0, label="realised (left axis)")
    limit = float(window["actual"].abs().max()) or 1.0
    ax.set_ylim(-1.1 * limit, 1.1 * limit)
    ax.set_ylabel("realised")
    right = ax.twinx()
    for i, name in enumerate(models):
        right.plot(window["date"], window[name], lw=1.3, color=f"C{i}", label=f"{name} (right axis)",
                   ls="--" if name in BASELINES else "-")
    reach = float(window[models].abs().to_numpy().max()) if models else 0.0
    reach = reach or 1.0
    right.set_ylim(-1.1 * reach, 1.1 * reach)
    right.set_ylabel("forecast")
    ax.set_title(f"Last {len(window)} test days of {ticker}: realised (bars, left) and forecasts (lines, right; "
                 f"their axis is {limit / reach:.0f}x narrower)", fontsize=10)
    handles = [h for a in (ax, right) for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles, [h.get_label() for h in handles], ncol=4, fontsize=8, loc="upper left")
    fig.autofmt_xdate()
    return _save(fig, path)


def plot_equity(equity: pd.DataFrame, cost_bps: float, path: Path) -> plt.Figure:
    """Each model's long/short sign strategy after costs, and buy-and-hold (black) for scale."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    held = equity[BUY_AND_HOLD] if BUY_AND_HOLD in equity else None
    for i, name in enumerate(c for c in equity.columns if c not in ("date", BUY_AND_HOLD)):
        hidden = held is not None and np.allclose(equity[name], held)  # always long: under the black line
        ax.plot(equity["date"], equity[name], lw=1, color=f"C{i}", label=f"{name} (= buy and hold)" if hidden else name,
                ls="--" if name in BASELINES else "-")
    if BUY_AND_HOLD in equity:
        ax.plot(equity["date"], equity[BUY_AND_HOLD], color="black", lw=1.6, label="buy and hold")
    ax.axhline(1.0, color="0.5", lw=0.6)
    ax.set(title=f"Equity of each model's long/short sign strategy after {cost_bps:g} bps per unit turnover "
                 "(dashed: baselines)", xlabel="date", ylabel="equity (start = 1)")
    ax.legend(ncol=4, fontsize=8)
    return _save(fig, path)


def plot_losses(histories: dict[str, pd.DataFrame], path: Path) -> plt.Figure:
    """Per model, every fold's and seed's curves (one colour per fit): solid train, dashed validation,
    as a ratio to the random walk's loss, a dot at the best validation epoch (the weights kept). A first
    epoch far above the rest is left off the axis, and named, so it cannot flatten the useful epochs."""
    fig, axes = _grid(len(histories))
    for ax, (name, history) in zip(axes, histories.items()):
        losses = history[["train_loss", "val_loss"]]
        later = losses[history["epoch"] > history["epoch"].min()]
        low, high = float(np.nanmin(losses.to_numpy())), float(np.nanmax(later.to_numpy() if len(later) else losses))
        top = max(high, 1.0)
        if float(np.nanmax(losses.to_numpy())) - top <= 2 * (top - min(low, 1.0)):  # no outlier: show every point
            top = max(float(np.nanmax(losses.to_numpy())), 1.0)
        pad = max(top - min(low, 1.0), 1e-3) * 0.08
        for j, (_, fit) in enumerate(history.groupby(["fold", "seed"], sort=True)):
            ax.plot(fit["epoch"], fit["train_loss"], color=f"C{j}", lw=1)
            ax.plot(fit["epoch"], fit["val_loss"], color=f"C{j}", lw=1, ls="--")
            best = fit.loc[fit["val_loss"].idxmin()]
            ax.plot(best["epoch"], best["val_loss"], "o", color=f"C{j}", ms=4)
        ax.set_ylim(min(low, 1.0) - pad, top + pad)
        ax.axhline(1.0, color="black", lw=0.6)
        clipped = history[(losses > top + pad).any(axis=1)]
        if len(clipped):
            ax.text(0.98, 0.95, f"epoch {int(clipped['epoch'].min())} off scale ({float(losses.max().max()):.3g})",
                    ha="right", va="top", fontsize=7, transform=ax.transAxes)
        fits = history.groupby(["fold", "seed"]).ngroups
        ax.set_title(f"{name} ({fits} fit{'s' if fits > 1 else ''})", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle("Loss ÷ the random walk's loss on the same split (below 1: better than the random walk)\n"
                 "solid: train, dashed: validation, dot: the epoch whose weights are kept", fontsize=9)
    return _save(fig, path)


def plot_folds(folds: pd.DataFrame, table: pd.DataFrame, metric: str, path: Path) -> plt.Figure:
    """Each model's `metric` per walk-forward fold, relative to the random walk on the same fold (zero
    line), models in the table's order; error bars: std across seeds where there are several. The axis
    always includes zero, so a tiny spread stays tiny."""
    models = [m for m in table["model"] if m in folds and m != BENCHMARK]
    higher = metric in HIGHER_IS_BETTER
    benchmark = folds[BENCHMARK]
    fig, ax = plt.subplots(figsize=(max(7.5, 0.7 * len(models) + 2), 4.5))
    seeds = any(f"{m}_std" in folds for m in models)
    for k, (_, row) in enumerate(folds.iterrows()):
        offset = (k - (len(folds) - 1) / 2) * min(0.6 / max(len(folds), 1), 0.15)
        value = [(row[m] - row[BENCHMARK]) if higher else 100 * (1 - row[m] / row[BENCHMARK]) for m in models]
        spread = [row.get(f"{m}_std", np.nan) * (1 if higher else 100 / row[BENCHMARK]) for m in models]
        ax.errorbar(np.arange(len(models)) + offset, value, yerr=np.asarray(spread, dtype=float) if seeds else None, fmt="o",
                    capsize=3, ms=4, label=f"fold {int(row['fold'])}")
    ax.axhline(0, color="black", lw=0.8)
    low, high = ax.get_ylim()
    ax.set_ylim(min(low, 0), max(high, 0))
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=8)
    unit = f"{metric} minus the random walk's" if higher else f"{metric} skill vs the random walk, %"
    notes = [f"{len(folds)} folds" if len(folds) > 1 else "one fold: no spread across folds",
             "error bars: std across seeds" if seeds else "one seed: no error bars",
             "bootstrap intervals: skill.png"]
    ax.set_title(f"{unit}, per walk-forward fold\n({'; '.join(notes)})", fontsize=9)
    ax.set_ylabel(unit, fontsize=9)
    if len(folds) > 1:
        ax.legend(fontsize=8, ncol=min(len(folds), 6))
    return _save(fig, path)


def plot_skill(table: pd.DataFrame, path: Path) -> plt.Figure:
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
    ax.set_title("RMSE skill vs the random walk, %\n(95% stationary-bootstrap intervals; grey: baselines)", fontsize=10)
    ax.set_xlabel("skill % (> 0: lower error than the random walk)")
    return _save(fig, path)


def plot_cumulative_loss(losses: pd.DataFrame, path: Path) -> plt.Figure:
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
    return _save(fig, path)
