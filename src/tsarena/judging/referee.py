"""A referee for many models: evidence that accounts for how many were tried.

With a dozen contestants, a one-sided DM test at 5% per model finds a "winner" on pure noise
about half the time. So the champion must also pass Hansen's SPA test (does *any* model beat the
random walk, given how many were tried), sit in the Model Confidence Set (Hansen, Lunde, Nason:
the models that cannot be told apart from the best), and keep its DM p-value after Holm's
correction. Intervals come from the stationary bootstrap: daily losses cluster in volatility, so
i.i.d. formulas are too narrow. All resampling is `arch.bootstrap`'s, seeded.

Every function takes per-date losses (one row per test date, several tickers averaged, the seeds
of an architecture averaged first, as in its DM test) and returns plain data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch.bootstrap import MCS, SPA, StationaryBootstrap, optimal_block_length
from statsmodels.stats.multitest import multipletests

from tsarena.contestants.baselines import BENCHMARK
from tsarena.contestants.producers import ORACLE
from tsarena.judging.intervals import JUDGED, bounds_of, row_crps
from tsarena.judging.metrics import (CRPS_DM_PVALUE_HOLM, CRPS_SKILL, DM_PVALUE, DM_PVALUE_HOLM, MCS_PVALUE,
                                     NEWS_DM_PVALUE_HOLM, NEWS_SKILL, SHARPE_OF_AVG, SKILL)
from tsarena.judging.significance import dm_versus
from tsarena.judging.scoring import score_models
from tsarena.judging.trading import TRADING_DAYS, neutral_forecast, strategy_returns



def date_losses(frame: pd.DataFrame, models: list[str], loss: np.ndarray | None = None) -> pd.DataFrame:
    """A loss per test date (columns: models), squared error unless `loss` gives one per row of `frame`:
    seeds averaged per row, tickers per date.

    `frame` is evaluate's long test table (model, fold, seed, row, date, forecast, actual).
    """
    loss = (frame["forecast"] - frame["actual"]).to_numpy() ** 2 if loss is None else loss
    keep = frame["model"].isin(models).to_numpy()
    frame, loss = frame[keep], loss[keep]
    per_row = (frame.assign(se=loss)
               .groupby(["model", "fold", "row", "date"], sort=False)["se"].mean().reset_index())
    table = per_row.groupby(["date", "model"])["se"].mean().unstack("model")
    return table[models].sort_index()


def block_size(losses: pd.DataFrame, given: int | None) -> int:
    """The stationary bootstrap's mean block length: the param, or Politis-White's automatic choice
    for the benchmark's losses (squared returns carry the volatility clustering)."""
    if given is not None:
        return given
    return max(1, int(round(float(optimal_block_length(losses[BENCHMARK].to_numpy())["stationary"].iloc[0]))))


def spa_test(losses: pd.DataFrame, block: int, reps: int, seed: int) -> dict[str, float]:
    """Hansen's SPA: H0 "no model beats the random walk". p-values (lower, consistent, upper);
    the consistent one is the test's."""
    models = losses.drop(columns=BENCHMARK)
    spa = SPA(losses[BENCHMARK].to_numpy(), models.to_numpy(), block_size=block, reps=reps, bootstrap="stationary",
              seed=seed)
    spa.compute()
    return {name: float(value) for name, value in spa.pvalues.items()}


def confidence_set_pvalues(losses: pd.DataFrame, block: int, reps: int, seed: int) -> dict[str, float]:
    """Each model's MCS p-value (Hansen, Lunde, Nason, range statistic; the random walk is a candidate
    like any model). The set at level 1 - alpha is the models whose p-value is above alpha, so the
    p-values are computed once here and the level is applied where the verdict is made."""
    mcs = MCS(losses, size=0.5, reps=reps, block_size=block, method="R", bootstrap="stationary", seed=seed)
    mcs.compute()
    return {str(m): float(p) for m, p in mcs.pvalues["Pvalue"].items()}


def in_confidence_set(pvalue: float, alpha: float) -> bool:
    """As `arch.bootstrap.MCS(size=alpha).included`: a model stays unless its p-value is at most alpha."""
    return pvalue > alpha


def holm(pvalues: dict[str, float | None]) -> dict[str, float | None]:
    """Holm's step-down adjustment over the family of DM tests (one per model against the random walk)."""
    known = {name: p for name, p in pvalues.items() if p is not None and np.isfinite(p)}
    adjusted = dict.fromkeys(pvalues)
    if known:
        _, values, _, _ = multipletests(list(known.values()), method="holm")
        adjusted.update(zip(known, (float(v) for v in values)))
    return adjusted


def _skill_and_sharpe(se_model: np.ndarray, se_rw: np.ndarray, pnl: np.ndarray) -> np.ndarray:
    skill = 100 * (1 - math.sqrt(se_model.mean()) / math.sqrt(se_rw.mean()))
    std = pnl.std(ddof=1)
    sharpe = pnl.mean() / std * math.sqrt(TRADING_DAYS) if std > 0 else np.nan
    return np.array([skill, sharpe])


def bootstrap_intervals(se_model: np.ndarray, se_rw: np.ndarray, pnl: np.ndarray, block: int, reps: int, seed: int,
                        level: float = 0.95) -> dict[str, float | None]:
    """Percentile intervals of RMSE skill vs the random walk (%) and the strategy's annualised Sharpe,
    resampling dates jointly (the stationary bootstrap keeps their volatility clusters), with the point
    values they are intervals of (`*_of_avg`: of the seed-averaged losses and forecast, which with
    several seeds differ from the mean of the seeds' values, Sharpe's most)."""
    bootstrap = StationaryBootstrap(block, se_model, se_rw, pnl, seed=seed)
    low, high = bootstrap.conf_int(_skill_and_sharpe, reps=reps, method="percentile", size=level)
    point = _skill_and_sharpe(se_model, se_rw, pnl)
    value = lambda x: None if not np.isfinite(x) else float(x)  # noqa: E731
    return {**dict(zip(SKILL.names(), map(value, (point[0], low[0], high[0])))),
            **dict(zip(SHARPE_OF_AVG.names(), map(value, (point[1], low[1], high[1]))))}


def mean_ranks(per_fold: dict[str, dict], models: list[str], metric: str, higher_is_better: bool) -> dict[str, float]:
    """Each model's rank (1 = best) on `metric` in every fold and seed, averaged. A producer with one
    seed (a baseline) takes its one value against every seed of the others."""
    ranks: list[pd.Series] = []
    for scores in per_fold.values():
        seeds = max((list(scores[m]["seeds"]) for m in models), key=len)  # the trained models' seeds
        for seed in seeds:
            values = pd.Series({m: scores[m]["seeds"].get(seed, next(iter(scores[m]["seeds"].values())))[metric]
                                for m in models}, dtype=float)
            ranks.append(values.rank(ascending=not higher_is_better, method="average"))
    return {m: float(v) for m, v in pd.concat(ranks, axis=1).mean(axis=1).items()}


def interval_verdicts(frame: pd.DataFrame, models: list[str], levels: list[float], horizon: int) -> dict[str, dict]:
    """Each model's intervals against the random walk's, by their quantile CRPS (intervals.JUDGED's bounds):
    skill in % and the one-sided DM p-value, Holm-adjusted over the family as the point forecasts' are."""
    by_level = bounds_of(frame, levels)[JUDGED]
    losses = date_losses(frame, models, row_crps(frame["forecast"].to_numpy(), frame["actual"].to_numpy(), by_level,
                                                 levels))
    rw = losses[BENCHMARK].to_numpy()
    pvalues = {m: dm_versus(losses[m].to_numpy(), rw, losses.index.to_numpy(), horizon)[1]
               for m in models if m != BENCHMARK}
    adjusted = holm(pvalues)
    return {m: {CRPS_SKILL: float(100 * (1 - losses[m].mean() / rw.mean())),
                CRPS_DM_PVALUE_HOLM: adjusted.get(m)} for m in models}


def referee(losses: pd.DataFrame, pnl: dict[str, pd.Series], dm_pvalues: dict[str, float | None],
            block: int | None, reps: int, seed: int) -> dict:
    """SPA over all contestants, MCS p-values, Holm-adjusted DM p-values, and bootstrap intervals per model.

    `losses` has the random walk and every contestant (never the oracle); `pnl` is each model's daily
    strategy return after costs on the same dates. Nothing here depends on the significance level.
    """
    block = block_size(losses, block)
    mcs_p = confidence_set_pvalues(losses, block, reps, seed)
    adjusted = holm({m: p for m, p in dm_pvalues.items() if m != BENCHMARK})
    per_model = {}
    for name in losses.columns:
        intervals = bootstrap_intervals(losses[name].to_numpy(), losses[BENCHMARK].to_numpy(),
                                        pnl[name].reindex(losses.index).fillna(0.0).to_numpy(), block, reps, seed)
        per_model[name] = {MCS_PVALUE: mcs_p[name], DM_PVALUE_HOLM: adjusted.get(name), **intervals}
    return {"block_size": block, "reps": reps, "seed": seed, "n_dates": len(losses),
            "spa_pvalues": spa_test(losses, block, reps, seed), "models": per_model}


def news_added(frame: pd.DataFrame, pairs: dict[str, str], horizon: int) -> dict[str, dict]:
    """What the news added to each architecture: `pairs` maps it to its fits without the sentiment features
    (same seeds, same test rows, in `frame`). Per architecture: both MSEs (seeds averaged per row, tickers
    per date, as every DM test here), the RMSE skill of the fits with news over those without (as `skill` over
    the random walk), and the one-sided DM p-value (H1: with news the loss is lower), Holm-adjusted over the
    architectures tested."""
    found, raw = {}, {}
    for model, blind in pairs.items():
        losses = date_losses(frame, [model, blind])
        with_news, without = losses[model].to_numpy(), losses[blind].to_numpy()
        _, raw[model] = dm_versus(with_news, without, losses.index.to_numpy(), horizon)
        found[model] = {"mse": float(with_news.mean()), "mse_without_news": float(without.mean()),
                        NEWS_SKILL: float(100 * (1 - math.sqrt(with_news.mean() / without.mean()))), "news_dm_p": raw[model]}
    for model, p in holm(raw).items():
        found[model][NEWS_DM_PVALUE_HOLM] = p
    return found


@dataclass(frozen=True)
class Judgement:
    """Evaluate's whole judgement of a test frame: scores pooled and per fold, each producer's forecast
    (the mean over seeds) and strategy returns, the referee's verdicts (also merged into `metrics`)."""

    pooled: dict
    per_fold: dict[str, dict]
    metrics: dict[str, dict]
    mean: pd.DataFrame
    pnl: dict[str, pd.Series]
    verdicts: dict

    @property
    def judged(self) -> list[str]:
        return _judged(self.metrics)


def _judged(names: Iterable[str]) -> list[str]:
    """The referee's family: every contestant, never the oracle."""
    return [m for m in names if m != ORACLE]


def judge(frame: pd.DataFrame, target_kind: str, horizon: int, cost_bps: float, block: int | None, reps: int,
          seed: int, levels: list[float] | None = None, size_level: float | None = None) -> Judgement:
    """Judge every producer, fold and seed in `frame` (with its intervals at `levels` where it has bounds);
    the oracle is scored but never judged."""
    levels = levels if levels and bounds_of(frame, levels) else []
    pooled = score_models(frame, target_kind, horizon, cost_bps, levels, size_level)
    per_fold = {str(k): score_models(part, target_kind, horizon, cost_bps, levels, size_level)
                for k, part in frame.groupby("fold")}
    metrics = {name: s["summary"] for name, s in pooled.items()}
    mean = frame.groupby(["model", "fold", "row"], sort=False, as_index=False).agg(
        forecast=("forecast", "mean"), date=("date", "first"), ticker=("ticker", "first"),
        next_return=("next_return", "first"))
    pnl = {name: strategy_returns(part["forecast"].to_numpy(), part["next_return"].to_numpy(), part["date"].to_numpy(),
                                  part["ticker"].to_numpy(), neutral_forecast(target_kind), cost_bps)
           for name, part in mean.groupby("model", sort=False)}
    judged = _judged(metrics)
    verdicts = referee(date_losses(frame, judged), pnl, {m: metrics[m][DM_PVALUE] for m in judged}, block, reps, seed)
    if levels:
        for name, verdict in interval_verdicts(frame, judged, levels, horizon).items():
            verdicts["models"][name].update(verdict)
    for name in judged:
        metrics[name].update(verdicts["models"][name])
    return Judgement(pooled, per_fold, metrics, mean, pnl, verdicts)
