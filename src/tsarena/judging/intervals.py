"""Prediction intervals for every producer, built from its own point forecasts, and their scores.

Two conformal methods, at each of `uncertainty.levels`, per fold and seed:

- `conformal` (split conformal): the interval is forecast + the (alpha/2, 1 - alpha/2) empirical quantiles
  of the producer's own validation residuals (actual - forecast), with the finite-sample rank
  ceil((n + 1)(1 - alpha/2)). Signed residuals, so an interval may be asymmetric; the random walk's
  interval is then the empirical quantiles of past (validation) returns. Never test or training rows.
  This is the interval a served model gives.
- `mc_dropout` (networks with dropout, `uncertainty.mc_samples` > 0): the quantiles of that many
  forecasts with dropout sampling (fitting.engine.predict_samples), made by the fit itself; the
  model's uncertainty about its weights only, so it shows beside conformal how much it under-covers.
- `adaptive`: adaptive conformal inference (Gibbs & Candes 2021) through the test period, per ticker:
  the quantiles are of the latest `uncertainty.window` residuals observed so far (the validation
  residuals to start with), at a miscoverage alpha_t that steps by gamma (alpha - miss) each time an
  outcome is revealed. A forecast's outcome is revealed `horizon` rows after its date, so the interval at
  row i reads outcomes of rows <= i - horizon only. Returns are not exchangeable and volatility
  clusters: this is the one that keeps its coverage when the regime changes. alpha_t <= 0 gives the
  window's extremes (the paper's infinite interval, kept finite so every score is defined).

Hand-written, not MAPIE: MAPIE's time-series regressor wraps and refits an estimator on X, while
every producer here (networks, baselines, the ensemble) is a table of forecasts already made.
Scores are scoringrules' (interval score, quantile score, quantile CRPS); the coverage tests are
Kupiec's unconditional and Christoffersen's independence likelihood ratios (scipy's chi-square).
For a direction target (a probability) there are no intervals.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from tsarena.contestants.predictions import MC_DROPOUT, bound_columns, pct
from tsarena.core.params import Section


# the section lives beside the calibration it parametrises: training imports it without the scoring of judging
class UncertaintyParams(Section):
    """Prediction intervals (judging.intervals): the levels every producer's intervals are built, scored and
    served at; the adaptive method's step and window; the level the sized trading rule divides by."""

    levels: list[Annotated[float, Field(gt=0, lt=1)]] = [0.8, 0.9, 0.95]
    gamma: Annotated[float, Field(ge=0, le=1)] = 0.02  # adaptive: alpha_t += gamma * (alpha - miss) per outcome
    window: Annotated[int, Field(ge=10, le=100_000)] = 60  # adaptive: quantiles of the latest `window` residuals
    size_level: Annotated[float, Field(gt=0, lt=1)] = 0.8  # sized rule: position = forecast / half-width at this level
    mc_samples: Annotated[int, Field(ge=0, le=10_000)] = 0  # Monte Carlo dropout passes per test window (0 = off)

    @model_validator(mode="after")
    def _levels(self) -> UncertaintyParams:
        if not self.levels:
            raise ValueError("levels: give at least one level, e.g. [0.8, 0.9, 0.95]")
        if sorted(set(self.levels)) != list(self.levels):
            raise ValueError(f"levels: list distinct levels in ascending order, got {self.levels}")
        if self.size_level not in self.levels:
            raise ValueError(f"size_level: {self.size_level} is not one of levels {self.levels}")
        return self


STATIC, ADAPTIVE = "conformal", "adaptive"
METHODS = (STATIC, ADAPTIVE, MC_DROPOUT)  # mc_dropout: written by a network's fit (uncertainty.mc_samples), not here
JUDGED = ADAPTIVE  # the method the referee compares with the random walk's (its quantile CRPS)
# per (method, level) and per method: the score names (a metric is `<method>_<pct>_<score>` or `<method>_<score>`)
COVERAGE, WIDTH, WINKLER, KUPIEC_P, CHRISTOFFERSEN_P = "coverage", "width", "winkler", "kupiec_p", "christoffersen_p"
PINBALL, CRPS = "pinball", "crps"
LEVEL_SCORES = (COVERAGE, WIDTH, WINKLER, KUPIEC_P, CHRISTOFFERSEN_P)
METHOD_SCORES = (PINBALL, CRPS)
LOWER_IS_BETTER = {WIDTH, WINKLER, PINBALL, CRPS}


def score_name(method: str, score: str, level: float | None = None) -> str:
    return f"{method}_{score}" if level is None else f"{method}_{pct(level)}_{score}"


def _ranks(n: int, alpha: float) -> tuple[int, int]:
    """0-based order statistics of n sorted residuals bounding a 1 - alpha interval (split conformal's
    finite-sample ranks floor((n+1) alpha/2) and ceil((n+1)(1 - alpha/2)), kept inside the sample)."""
    if alpha <= 0:
        return 0, n - 1
    low = int(np.floor((n + 1) * alpha / 2))
    high = int(np.ceil((n + 1) * (1 - alpha / 2)))
    return min(max(low, 1), n) - 1, min(max(high, 1), n) - 1


def conformal_offsets(residuals: np.ndarray, level: float) -> tuple[float, float]:
    """(lower, upper) to add to a forecast: split conformal from calibration residuals (actual - forecast)."""
    ordered = np.sort(np.asarray(residuals, dtype=float))
    low, high = _ranks(len(ordered), 1 - level)
    return float(ordered[low]), float(ordered[high])


def adaptive_bounds(forecast: np.ndarray, actual: np.ndarray, calibration: np.ndarray, level: float, gamma: float,
                    window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """One ticker's test rows in date order -> (lower, upper). Row i's interval reads the outcomes of
    rows <= i - horizon only (and the calibration residuals, all observed before the test period)."""
    n, target = len(forecast), 1 - level
    residual = np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float)
    scores = list(np.asarray(calibration, dtype=float)[-window:])
    lower, upper = np.empty(n), np.empty(n)
    alpha = target
    for i in range(n):
        j = i - horizon
        if j >= 0:  # row j's outcome is revealed at row i
            miss = not (lower[j] <= actual[j] <= upper[j])
            alpha += gamma * (target - miss)
            scores.append(residual[j])
            del scores[:-window]
        ordered = np.sort(scores)
        low, high = _ranks(len(ordered), min(alpha, 1.0))
        lower[i], upper[i] = forecast[i] + ordered[low], forecast[i] + ordered[high]
    return lower, upper


def attach(table: pd.DataFrame, targets: np.ndarray, tickers: np.ndarray, levels: list[float], gamma: float,
           window: int, horizon: int) -> pd.DataFrame:
    """A predictions table (val and test rows) -> its test rows with both methods' bounds at every level,
    each fit (model, fold, seed) calibrated on its own validation rows. `targets` and `tickers` are per
    feature-table row; rows of one ticker are in date order."""
    parts = []
    for _, fit in table.groupby(["model", "fold", "seed"], sort=False):
        val, test = fit[fit["split"] == "val"], fit[fit["split"] == "test"].copy()
        residuals = targets[val["row"].to_numpy()] - val["forecast"].to_numpy()
        forecast, rows = test["forecast"].to_numpy(), test["row"].to_numpy()
        val_tickers = tickers[val["row"].to_numpy()]
        per_ticker = []  # (its test positions in date order, its validation residuals), the same at every level
        for ticker in pd.unique(tickers[rows]):
            mine = np.flatnonzero(tickers[rows] == ticker)
            per_ticker.append((mine[np.argsort(rows[mine], kind="stable")], residuals[val_tickers == ticker]))
        for level in levels:
            low, high = conformal_offsets(residuals, level)
            columns = bound_columns(STATIC, level)
            test[columns[0]], test[columns[1]] = forecast + low, forecast + high
            lower, upper = np.empty(len(test)), np.empty(len(test))
            for mine, calibration in per_ticker:
                lower[mine], upper[mine] = adaptive_bounds(forecast[mine], targets[rows[mine]], calibration, level,
                                                           gamma, window, horizon)
            columns = bound_columns(ADAPTIVE, level)
            test[columns[0]], test[columns[1]] = lower, upper
        parts.append(test)
    return pd.concat(parts, ignore_index=True)


def quantile_set(levels: list[float]) -> np.ndarray:
    """The quantile levels the bounds at `levels` are (alpha/2, 1 - alpha/2 each), with the median (the
    point forecast), ascending: what pinball and CRPS average over."""
    return np.array(sorted({0.5, *(q for level in levels for q in ((1 - level) / 2, (1 + level) / 2))}))


def quantile_matrix(forecast: np.ndarray, bounds: dict[float, tuple[np.ndarray, np.ndarray]], levels: list[float]
                    ) -> np.ndarray:
    """rows x quantile_set(levels): each level's bounds and the forecast as the median, sorted per row."""
    columns = {0.5: forecast}
    for level in levels:
        columns[(1 - level) / 2], columns[(1 + level) / 2] = bounds[level]
    return np.sort(np.column_stack([columns[q] for q in quantile_set(levels)]), axis=1)


def row_crps(forecast: np.ndarray, actual: np.ndarray, bounds: dict[float, tuple[np.ndarray, np.ndarray]],
             levels: list[float]) -> np.ndarray:
    """The quantile CRPS of each row (2 x mean pinball over quantile_set): the referee's interval loss."""
    import scoringrules as sr

    return np.asarray(sr.crps_quantile(actual, quantile_matrix(forecast, bounds, levels), quantile_set(levels),
                                       backend="numpy"), dtype=float)


def kupiec_pvalue(misses: np.ndarray, alpha: float) -> float:
    """Kupiec's unconditional coverage LR test: is the miss rate alpha?"""
    from scipy import stats
    from scipy.special import xlogy

    n, x = len(misses), int(np.sum(misses))
    rate = x / n
    ll_null = xlogy(n - x, 1 - alpha) + xlogy(x, alpha)
    ll_alt = xlogy(n - x, 1 - rate) + xlogy(x, rate)
    return float(stats.chi2.sf(max(-2 * (ll_null - ll_alt), 0.0), 1))


def christoffersen_pvalue(misses: np.ndarray, tickers: np.ndarray) -> float | None:
    """Christoffersen's independence LR test: does a miss make the next miss likelier? Transitions are
    counted within each ticker's sequence (rows in date order). None without both kinds of transition."""
    from scipy import stats
    from scipy.special import xlogy

    counts = np.zeros((2, 2))
    for ticker in pd.unique(tickers):
        seq = misses[tickers == ticker].astype(int)
        np.add.at(counts, (seq[:-1], seq[1:]), 1)
    (n00, n01), (n10, n11) = counts
    if n00 + n01 == 0 or n10 + n11 == 0:
        return None
    p01, p11, p = n01 / (n00 + n01), n11 / (n10 + n11), (n01 + n11) / counts.sum()
    ll_null = xlogy(n00 + n10, 1 - p) + xlogy(n01 + n11, p)
    ll_alt = xlogy(n00, 1 - p01) + xlogy(n01, p01) + xlogy(n10, 1 - p11) + xlogy(n11, p11)
    return float(stats.chi2.sf(max(-2 * (ll_null - ll_alt), 0.0), 1))


def interval_scores(forecast: np.ndarray, actual: np.ndarray, bounds: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]],
                    tickers: np.ndarray) -> dict[str, float | None]:
    """One seed's test rows: per method and level coverage, mean width, Winkler (interval) score and the
    two coverage tests' p-values; per method the mean pinball loss and the quantile CRPS."""
    import scoringrules as sr

    out: dict[str, float | None] = {}
    for method, by_level in bounds.items():
        levels = sorted(by_level)
        for level in levels:
            lower, upper = by_level[level]
            misses = (actual < lower) | (actual > upper)
            out[score_name(method, COVERAGE, level)] = float(1 - misses.mean())
            out[score_name(method, WIDTH, level)] = float(np.mean(upper - lower))
            out[score_name(method, WINKLER, level)] = float(np.mean(
                sr.interval_score(actual, lower, upper, 1 - level, backend="numpy")))
            out[score_name(method, KUPIEC_P, level)] = kupiec_pvalue(misses, 1 - level)
            out[score_name(method, CHRISTOFFERSEN_P, level)] = christoffersen_pvalue(misses, tickers)
        quantiles = quantile_matrix(forecast, by_level, levels)
        out[score_name(method, PINBALL)] = float(np.mean(
            sr.quantile_score(actual[:, None], quantiles, quantile_set(levels)[None, :], backend="numpy")))
        out[score_name(method, CRPS)] = float(np.mean(row_crps(forecast, actual, by_level, levels)))
    return out


def bounds_of(frame: pd.DataFrame, levels: list[float]) -> dict[str, dict[float, tuple[np.ndarray, np.ndarray]]]:
    """{method: {level: (lower, upper)}} from a frame with attach's columns (none for a direction target)."""
    def present(method: str) -> bool:  # a producer without mc_dropout has NaN bounds beside one that has them
        return all(c in frame and frame[c].notna().all() for level in levels for c in bound_columns(method, level))

    return {method: {level: tuple(frame[c].to_numpy() for c in bound_columns(method, level)) for level in levels}
            for method in METHODS if present(method)} if levels else {}
