"""Significance of one model against the benchmark: the Diebold-Mariano test and a binomial interval."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def diebold_mariano(loss_diff: np.ndarray, horizon: int) -> tuple[float, float]:
    """DM test with the Harvey-Leybourne-Newbold small-sample correction.

    `loss_diff` = loss(model) - loss(benchmark) per period. Returns (statistic, one-sided
    p-value) for H1: the model's expected loss is lower (statistic < 0 favours the model).
    The long-run variance uses autocovariances up to lag horizon-1, as h-step errors are MA(h-1).
    """
    d = np.asarray(loss_diff, dtype=float)
    n = len(d)
    centred = d - d.mean()
    gammas = [centred[k:] @ centred[: n - k] / n for k in range(horizon)]
    long_run_var = gammas[0] + 2 * sum(gammas[1:])
    if n < 3 or long_run_var <= 0:
        return float("nan"), float("nan")
    statistic = d.mean() / math.sqrt(long_run_var / n)
    correction = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic *= correction
    return float(statistic), float(stats.t.cdf(statistic, df=n - 1))


def dm_versus(loss: np.ndarray, benchmark_loss: np.ndarray, dates: np.ndarray, horizon: int
              ) -> tuple[float | None, float | None]:
    """DM (statistic, one-sided p) of per-row losses against the benchmark's; several tickers are
    averaged per date first, since their errors on one date are not independent. None when identical."""
    if np.array_equal(loss, benchmark_loss):
        return None, None
    loss_diff = pd.Series(loss - benchmark_loss).groupby(dates).mean()
    stat, pvalue = diebold_mariano(loss_diff.to_numpy(), horizon)
    return finite(stat), finite(pvalue)


def finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
