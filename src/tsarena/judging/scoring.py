"""Scoring producers: each seed's point metrics, their spread across seeds, one summary per architecture,
and the contract check that every fold and seed forecast exactly its fold's test rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsarena.contestants.baselines import BENCHMARK
from tsarena.core.errors import TsarenaError
from tsarena.judging.intervals import bounds_of
from tsarena.judging.metrics import DM_PVALUE, DM_STAT, N_SEEDS, N_TEST, PER_SEED_UNAVERAGED, SKILL, model_metrics
from tsarena.judging.significance import dm_versus


def pvalue_text(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.3g}"


def skill_text(scores: dict) -> str:
    """RMSE skill vs the random walk with its bootstrap interval, e.g. `+0.098% [-0.22, +0.51]`."""
    if scores.get(SKILL) is None:
        return "n/a"
    bounds = [scores.get(k) for k in SKILL.interval]
    interval = "" if None in bounds else f" [{bounds[0]:+.2g}, {bounds[1]:+.2g}]"
    return f"{scores[SKILL]:+.3f}%{interval}"


def _scalars(metrics: dict) -> dict[str, float | None]:
    return {k: v for k, v in metrics.items() if not isinstance(v, dict)}


def seed_spread(per_seed: dict[str, dict]) -> dict[str, dict]:
    """Mean, standard deviation (ddof=1), min, max and the values of every scalar metric across seeds."""
    out = {}
    for name in _scalars(next(iter(per_seed.values()))):
        values = {seed: metrics[name] for seed, metrics in per_seed.items()}
        known = np.array([v for v in values.values() if v is not None], dtype=float)
        stats_ = {"mean": float(known.mean()), "std": float(known.std(ddof=1)) if len(known) > 1 else None,
                  "min": float(known.min()), "max": float(known.max())} if len(known) else dict.fromkeys(("mean", "std", "min", "max"))
        out[name] = {**stats_, "values": values}
    return out


def seed_summary(
    forecasts: dict[str, np.ndarray],
    actual: np.ndarray,
    frame: pd.DataFrame,
    benchmark: np.ndarray,
    target_kind: str,
    horizon: int,
    cost_bps: float,
    bounds: dict[str, dict] | None = None,
    size_level: float | None = None,
) -> dict:
    """One model over several seeds: per-seed metrics, their spread, and a summary row.

    The summary is the mean of each metric across seeds (`<metric>_std` beside it when there
    are several), except the DM test: it is run once on the seed-averaged squared errors, so its
    p-value asks whether the architecture, not one lucky seed, beats the benchmark.
    """
    bounds = bounds or {}
    per_seed = {seed: model_metrics(f, actual, frame, benchmark, target_kind, horizon, cost_bps, bounds.get(seed),
                                    size_level) for seed, f in forecasts.items()}
    spread = seed_spread(per_seed)
    summary: dict = {N_SEEDS: len(forecasts)}
    for name, values in spread.items():
        summary[name] = values["mean"]
        if len(forecasts) > 1 and name not in PER_SEED_UNAVERAGED:
            summary[f"{name}_std"] = values["std"]
    summary[N_TEST] = len(actual)
    if len(forecasts) == 1:
        summary.update(next(iter(per_seed.values())))  # exactly the one model's metrics, sub-dicts too
    else:
        mean_loss = np.mean([(f - actual) ** 2 for f in forecasts.values()], axis=0)
        summary[DM_STAT], summary[DM_PVALUE] = dm_versus(mean_loss, (benchmark - actual) ** 2,
                                                             frame["date"].to_numpy(), horizon)
    return {"summary": summary, "seeds": per_seed, "spread": spread}


def check_predictions(table: pd.DataFrame, model: str, fold_ends: dict[int, np.ndarray], where: str) -> None:
    """The contract: every fold and seed of `model` forecasts exactly its fold's test rows, in order."""
    mine = table[(table["model"] == model) & (table["split"] == "test")]
    if mine.empty:
        raise TsarenaError(f"no test forecasts for {model}; run dvc repro", where)
    for (fold, seed), part in mine.groupby(["fold", "seed"], sort=True):
        expected = fold_ends.get(int(fold))
        if expected is None or not np.array_equal(part["row"].to_numpy(), expected):
            raise TsarenaError(f"forecasts of {model} for fold {fold}, seed {seed} do not match that fold's test rows; "
                               "data/split changed since they were made (run dvc repro)", where)
    if set(mine["fold"]) != set(fold_ends):
        raise TsarenaError(f"{model} has forecasts for folds {sorted(set(mine['fold']))}, the split has "
                           f"{sorted(fold_ends)} (run dvc repro)", where)


def test_frame(table: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Test forecasts joined with what scoring needs (date, ticker, actual, close, next_return), long format."""
    test = table[table["split"] == "test"].drop(columns="split")
    keys = rows.iloc[test["row"].to_numpy()][["date", "ticker", "close", "next_return"]].reset_index(drop=True)
    return pd.concat([test.reset_index(drop=True), keys], axis=1).assign(
        actual=rows["target"].to_numpy(dtype=float)[test["row"].to_numpy()])


def score_models(frame: pd.DataFrame, target_kind: str, horizon: int, cost_bps: float, levels: list[float] | None = None,
                 size_level: float | None = None) -> dict[str, dict]:
    """seed_summary of every model in `frame` (long test forecasts, one fold or several pooled), with its
    intervals' scores where `frame` has bounds at `levels` (intervals.attach)."""
    frame = frame.sort_values(["fold", "row"], kind="stable")
    benchmark_rows = frame[frame["model"] == BENCHMARK]
    base = benchmark_rows[["fold", "row", "date", "ticker", "close", "next_return", "actual"]].reset_index(drop=True)
    benchmark = benchmark_rows["forecast"].to_numpy()
    out = {}
    for model, part in frame.groupby("model", sort=False):
        seeds = dict(list(part.groupby("seed", sort=True)))
        by_seed = {str(seed): s["forecast"].to_numpy() for seed, s in seeds.items()}
        bounds = {str(seed): bounds_of(s, levels or []) for seed, s in seeds.items()}
        out[model] = seed_summary(by_seed, base["actual"].to_numpy(), base, benchmark, target_kind, horizon, cost_bps,
                                  bounds, size_level)
    return out
