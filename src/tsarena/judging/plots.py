"""The report's plots: each one a question a quant asks of the comparison, each model in it."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tsarena.contestants.baselines import BASELINES, BENCHMARK  # noqa: E402
from tsarena.contestants.producers import BASELINE, ORACLE  # noqa: E402
from tsarena.judging.metrics import HIGHER_IS_BETTER, SKILL, SKILL_VS_RW  # noqa: E402
from tsarena.judging.trading import BUY_AND_HOLD  # noqa: E402


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
    as a ratio to the random walk's loss, dots at the epochs whose weights the model keeps (their average,
    with train.average_best > 1; a history without the `kept` column: the best epoch). A first
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
            kept = fit[fit["kept"].astype(bool)] if "kept" in fit else fit.loc[[fit["val_loss"].idxmin()]]
            ax.plot(kept["epoch"], kept["val_loss"], "o", color=f"C{j}", ms=4)
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
                 "solid: train, dashed: validation, dots: the epochs whose weights are kept (averaged when several)", fontsize=9)
    return _save(fig, path)


def plot_folds(folds: pd.DataFrame, table: pd.DataFrame, metric: str, path: Path) -> plt.Figure:
    """Each model's `metric` per walk-forward fold, relative to the random walk on the same fold (zero
    line), models in the table's order; error bars: std across seeds where there are several. The axis
    always includes zero, so a tiny spread stays tiny."""
    models = [m for m in table["model"] if m in folds and m != BENCHMARK]
    higher = metric in HIGHER_IS_BETTER
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
    ranked = table[(table["kind"] != ORACLE) & (table["model"] != BENCHMARK)].iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(ranked) + 1.5))
    value = ranked.get(SKILL, ranked[SKILL_VS_RW]).to_numpy(dtype=float)  # what the interval is of
    low = ranked.get(SKILL.interval[0], pd.Series(value)).to_numpy(dtype=float)
    high = ranked.get(SKILL.interval[1], pd.Series(value)).to_numpy(dtype=float)
    colors = ["tab:gray" if k == BASELINE else "tab:blue" for k in ranked["kind"]]
    ax.errorbar(value, range(len(ranked)), xerr=np.nan_to_num(np.vstack([value - low, high - value])), fmt="none",
                ecolor="black", capsize=3)
    ax.scatter(value, range(len(ranked)), color=colors, zorder=3)
    ax.axvline(0, color="black", lw=0.8)
    oracle = table[table["kind"] == ORACLE]
    if len(oracle):
        ax.axvline(float(oracle[SKILL_VS_RW].iloc[0]), color="tab:green", ls="--", label=ORACLE)
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


def plot_coverage(metrics: dict[str, dict], models: list[str], levels: list[float], path: Path) -> plt.Figure:
    """Reliability of the intervals: empirical coverage on test against nominal, per model, one panel
    per method (split conformal, adaptive, Monte Carlo dropout where on), each on its own scale (dropout's
    can be far below). On the diagonal = calibrated; below = too narrow. One legend for all panels."""
    from tsarena.judging.intervals import COVERAGE, METHODS, score_name

    methods = [m for m in METHODS if any(score_name(m, COVERAGE, levels[0]) in metrics[n] for n in models)]
    fig, axes = plt.subplots(1, len(methods), figsize=(4.6 * len(methods) + 1.8, 4.4), squeeze=False)
    nominal = 100 * np.array(levels)
    handles = {}
    for ax, method in zip(axes[0], methods):
        low = nominal[0] - 10
        for i, name in enumerate(models):
            got = [metrics[name].get(score_name(method, COVERAGE, level)) for level in levels]
            if None in got:
                continue
            (line,) = ax.plot(nominal, 100 * np.array(got), marker="o", ms=4, lw=1.2, color=f"C{i % 10}", label=name,
                              ls="--" if name in BASELINES else "-")
            handles.setdefault(name, line)
            low = min(low, 100 * min(got) - 5)
        ax.plot([low, 100], [low, 100], color="0.4", lw=1, ls=":")
        ax.set_title(method, fontsize=10)
        ax.set_xlabel("nominal coverage, %")
        ax.set_xlim(nominal[0] - 5, 100)
        ax.set_ylim(max(low, 0), 100)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test coverage, %")
    fig.legend(list(handles.values()), list(handles), fontsize=8, loc="center right", frameon=False)
    fig.suptitle("Prediction intervals: share of test outcomes inside the interval, against its level "
                 "(dotted: nominal; below it: too narrow)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def plot_interval_band(frame: pd.DataFrame, model: str, levels: list[float], path: Path, days: int = 120
                       ) -> plt.Figure:
    """One model's last `days` test forecasts for the first ticker with their adaptive intervals (a band
    per level, the widest lightest) and the realised target as dots; a dot outside a band is a miss.
    `frame` is evaluate's forecasts of one seed of `model` (intervals.attach's columns)."""
    from tsarena.judging.intervals import ADAPTIVE, bound_columns, pct

    ticker = frame["ticker"].iloc[0]
    window = frame[frame["ticker"] == ticker].sort_values("date").tail(days)
    fig, ax = plt.subplots(figsize=(11, 4.4))
    for i, level in enumerate(sorted(levels, reverse=True)):
        lower, upper = bound_columns(ADAPTIVE, level)
        ax.fill_between(window["date"], 100 * window[lower], 100 * window[upper], step="mid",
                        color="tab:blue", alpha=0.12 + 0.12 * i, lw=0, label=f"{pct(level)}% interval")
    ax.plot(window["date"], 100 * window["forecast"], color="tab:blue", lw=1.2, label="forecast")
    widest = bound_columns(ADAPTIVE, max(levels))
    outside = (window["actual"] < window[widest[0]]) | (window["actual"] > window[widest[1]])
    ax.scatter(window["date"], 100 * window["actual"], s=9, color=np.where(outside, "tab:red", "0.2"), zorder=3,
               label=f"realised (red: outside the {pct(max(levels))}%)")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_ylabel("log return, %")
    ax.set_title(f"{model}: forecast and adaptive intervals, last {len(window)} test days of {ticker}", fontsize=10)
    ax.legend(fontsize=8, ncol=5, loc="upper left")
    fig.autofmt_xdate()
    return _save(fig, path)


def plot_importance_grid(rankings: dict[str, pd.DataFrame], path: Path, top: int = 8) -> plt.Figure:
    """What each model looks at: per model its permutation importance (rise in test loss when a feature
    is shuffled, % of the loss) for its top features, one panel per model in leaderboard order, so a
    model that "wins" on a spurious input stands out beside the others."""
    fig, axes = _grid(len(rankings), width=3.4, height=0.22 * top + 1.3)
    for ax, (name, table) in zip(axes, rankings.items()):
        shown = table.head(top).iloc[::-1]
        ax.barh(range(len(shown)), shown["rise_pct"], xerr=np.nan_to_num(shown["rise_pct_std"].to_numpy(dtype=float)),
                color="tab:blue", ecolor="grey", capsize=2)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_yticks(range(len(shown)), shown["feature"], fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(name, fontsize=9)
    fig.suptitle("Permutation importance: rise in test loss when a feature is shuffled\n(% of the loss; "
                 "bars ± std over shuffles; ≤ 0: not used)", fontsize=10)
    return _save(fig, path)


def plot_explanation(name: str, lag_map: pd.DataFrame, totals: pd.DataFrame, ranking: pd.DataFrame, path: Path,
                     max_lags: int = 20) -> plt.Figure:
    """One network's explanation: the lag x feature map of mean |integrated gradient| (lag 0 = the
    window's last row), its per-feature totals, and the permutation ranking beside them."""
    read = lag_map["lag"][lag_map.drop(columns="lag").sum(axis=1) > 0]  # a lookback reads only the last rows
    shown = lag_map[lag_map["lag"] < min(max_lags, max(int(read.max()) + 3 if len(read) else 5, 5))]
    cells = shown.drop(columns="lag")
    fig, (heat, bars, perm) = plt.subplots(1, 3, figsize=(14, 0.28 * cells.shape[1] + 2.6),
                                           gridspec_kw={"width_ratios": [2.2, 1, 1]})
    image = heat.imshow(cells.to_numpy().T, aspect="auto", cmap="viridis")
    heat.set_yticks(range(cells.shape[1]), cells.columns, fontsize=7)
    heat.set_xticks(range(len(shown)), shown["lag"], fontsize=7)
    heat.set_xlabel("lag (rows before the forecast's date; 0 = its last row)")
    heat.set_title(f"{name}: mean |integrated gradient| per lag and feature", fontsize=9)
    fig.colorbar(image, ax=heat, fraction=0.04)
    ordered = totals.iloc[::-1]
    bars.barh(range(len(ordered)), 100 * ordered["share"], color="tab:purple")
    bars.set_yticks(range(len(ordered)), ordered["feature"], fontsize=7)
    bars.set_title("share of total |attribution|, %", fontsize=9)
    ranked = ranking.iloc[::-1]
    perm.barh(range(len(ranked)), ranked["rise_pct"], color="tab:blue")
    perm.axvline(0, color="black", lw=0.6)
    perm.set_yticks(range(len(ranked)), ranked["feature"], fontsize=7)
    perm.set_title("permutation: loss rise when shuffled, %", fontsize=9)
    return _save(fig, path)
