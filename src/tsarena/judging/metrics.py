"""The metric catalogue: every score tsarena reports, defined once, with what the rest needs of it.

A metric *is* its name (a `str`: a dict key, a column, an MLflow metric), carrying its direction, the
report table it sits in, its interval's bounds, its short name in metrics.json and, for a point
metric, how one seed's test forecasts give it. evaluate, the report, `compare.select_by`'s validation
and metrics.json all read this list; nothing else spells a metric's name. Adding a point metric is one
entry here (`per_seed=`); the others are filled by the stage that knows them (the referee's, the
report's, evaluate's) and named here.

Every forecast is in target units: a log return for `kind: return`, the probability of an up move for
`kind: direction`. Errors are forecast - actual in those units, so RMSE, MAE and the Diebold-Mariano test
apply to both (for direction, RMSE^2 is the Brier score).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

import numpy as np
import pandas as pd

from tsarena.contestants import predictions
from tsarena.judging import intervals
from tsarena.judging.significance import dm_versus, finite, wilson_interval
from tsarena.judging.trading import (after_costs, break_even_bps, max_drawdown, neutral_forecast, sharpe_ratio,
                                    sized_positions, strategy_legs)

EVIDENCE, TRADING = "evidence", "trading"  # the report's two tables; None: scores.json and MLflow only


@dataclass
class Sample:
    """One seed's test forecasts and what scoring them needs; the shared pieces computed once."""

    forecast: np.ndarray
    actual: np.ndarray
    frame: pd.DataFrame  # date, ticker, close, next_return per test row
    benchmark: np.ndarray
    target_kind: str
    horizon: int
    cost_bps: float
    bounds: dict = field(default_factory=dict)  # {method: {level: (lower, upper)}}: intervals.bounds_of; {} without
    size_level: float | None = None  # the sized rule's level (uncertainty.size_level)

    @cached_property
    def sized_legs(self) -> pd.DataFrame:
        f = self.frame
        position = sized_positions(self.forecast, *self.bounds[intervals.ADAPTIVE][self.size_level])
        return strategy_legs(self.forecast, f["next_return"].to_numpy(), f["date"].to_numpy(), f["ticker"].to_numpy(),
                             self.neutral, position)

    @cached_property
    def neutral(self) -> float:
        return neutral_forecast(self.target_kind)

    @cached_property
    def error(self) -> np.ndarray:
        return self.forecast - self.actual

    @cached_property
    def makes_calls(self) -> bool:
        """A constant neutral forecast (the random walk) makes no directional call."""
        return bool(np.any(self.forecast != self.neutral))

    @cached_property
    def legs(self) -> pd.DataFrame:
        f = self.frame
        return strategy_legs(self.forecast, f["next_return"].to_numpy(), f["date"].to_numpy(), f["ticker"].to_numpy(),
                             self.neutral)

    @cached_property
    def pnl(self) -> pd.Series:
        return after_costs(self.legs, self.cost_bps)

    @cached_property
    def dm(self) -> tuple[float | None, float | None]:
        return dm_versus(self.error**2, (self.benchmark - self.actual) ** 2, self.frame["date"].to_numpy(), self.horizon)

    @cached_property
    def calls(self) -> np.ndarray:
        return (self.forecast > 0.5).astype(int)

    @cached_property
    def truth(self) -> np.ndarray:
        return self.actual.astype(int)


class Metric(str):
    """A metric's name, with: `better` (higher | lower | None: not a ranking), `group` (its report table),
    `interval` (the names of its bounds), `headline` (its name in metrics.json; True: its own), `selectable` (a valid
    compare.select_by), `per_seed` (one seed's value from a Sample, or (value, low, high) with an interval),
    `when` (whether a Sample has it at all; absent, not None, where it does not apply), `expands` (per_seed
    returns {name: value} of several scores named by their own rule: the interval scores)."""

    better: str | None
    group: str | None
    interval: tuple[str, str] | None
    headline: str | None
    selectable: bool
    per_seed: Callable[[Sample], Any] | None
    when: Callable[[Sample], bool] | None
    expands: bool

    def __new__(cls, name: str, *, better: str | None = None, group: str | None = None,
                interval: tuple[str, str] | None = None, headline: str | bool | None = None, selectable: bool = False,
                per_seed: Callable[[Sample], Any] | None = None, when: Callable[[Sample], bool] | None = None,
                expands: bool = False) -> Metric:
        self = super().__new__(cls, name)
        self.better, self.group, self.interval = better, group, interval
        self.headline = name if headline is True else headline
        self.selectable, self.per_seed, self.when, self.expands = selectable, per_seed, when, expands
        return self

    def names(self) -> list[str]:
        """Its column and its interval's, in that order."""
        return [self, *(self.interval or ())]


def _dir_acc(s: Sample) -> tuple[float | None, float | None, float | None]:
    if not s.makes_calls:
        return None, None, None
    hits = int(np.sum((s.forecast > s.neutral) == (s.actual > s.neutral)))
    return (hits / len(s.actual), *wilson_interval(hits, len(s.actual)))


def _price_rmse(s: Sample) -> float:
    from sklearn import metrics as skm

    close = s.frame["close"].to_numpy()
    return float(skm.root_mean_squared_error(close * np.exp(s.actual), close * np.exp(s.forecast)))


def _ic(s: Sample) -> float | None:
    from scipy import stats

    return finite(stats.spearmanr(s.forecast, s.actual).statistic) if np.ptp(s.forecast) > 0 else None


def _classification(score: str) -> Callable[[Sample], Any]:
    """sklearn's classification scores of the calls (forecast > 0.5) of a direction target."""
    def compute(s: Sample) -> Any:
        from sklearn import metrics as skm

        if score == "confusion":
            tn, fp, fn, tp = skm.confusion_matrix(s.truth, s.calls, labels=[0, 1]).ravel()
            return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}
        if score == "roc_auc":
            two = len(set(s.truth)) == 2 and np.ptp(s.forecast) > 0
            return finite(skm.roc_auc_score(s.truth, s.forecast)) if two else None
        if score == "f1":
            return float(skm.f1_score(s.truth, s.calls, zero_division=0))
        return float(skm.accuracy_score(s.truth, s.calls))
    return compute


RANK = Metric("rank", better="lower")  # compare's place for each contestant (1 = best), on its MLflow run
def _has_intervals(s: Sample) -> bool:
    return bool(s.bounds)


MEAN_RANK = Metric("mean_rank", better="lower", group=EVIDENCE)
RMSE = Metric("test_rmse", better="lower", group=EVIDENCE, headline="rmse", selectable=True,
              per_seed=lambda s: float(np.sqrt(np.mean(s.error**2))))
SKILL_VS_RW = Metric("skill_vs_rw_pct", better="higher", group=EVIDENCE)
SKILL = Metric("skill_of_avg", better="higher", group=EVIDENCE, interval=("skill_lo", "skill_hi"), headline="skill")
SHARE_OF_ORACLE = Metric("share_of_oracle_pct", better="higher", group=EVIDENCE)
DM_PVALUE = Metric("dm_pvalue", better="lower", group=EVIDENCE, selectable=True, per_seed=lambda s: s.dm[1])
DM_PVALUE_HOLM = Metric("dm_pvalue_holm", better="lower", group=EVIDENCE, headline="dm_p_holm")
# the referee's by the intervals' quantile CRPS (intervals.JUDGED) against the random walk's intervals
CRPS_SKILL = Metric("crps_skill_pct", better="higher", group=EVIDENCE, headline="crps_skill")
CRPS_DM_PVALUE_HOLM = Metric("crps_dm_p_holm", better="lower", group=EVIDENCE)
# what the news added to an architecture (sentiment.ablate): 100 * (1 - RMSE with / RMSE of the same fits without the
# sentiment features), and its one-sided DM p-value, Holm-adjusted over the architectures; the report's own section
NEWS_SKILL = Metric("news_skill_pct", better="higher", headline="news_skill")
NEWS_DM_PVALUE_HOLM = Metric("news_dm_p_holm", better="lower", headline="news_p")
IN_MCS = Metric("in_mcs", group=EVIDENCE)
MCS_PVALUE = Metric("mcs_pvalue", better="higher", group=EVIDENCE, headline="mcs_p")
MAE = Metric("test_mae", better="lower", group=TRADING, selectable=True,
             per_seed=lambda s: float(np.mean(np.abs(s.error))))
DIR_ACC = Metric("test_dir_acc", better="higher", group=TRADING, interval=("test_dir_acc_lo", "test_dir_acc_hi"),
                 selectable=True, per_seed=_dir_acc)
IC = Metric("test_ic", better="higher", group=TRADING, selectable=True, per_seed=_ic)
SHARPE = Metric("test_sharpe", better="higher", group=TRADING, headline="sharpe", selectable=True,
                per_seed=lambda s: finite(sharpe_ratio(s.pnl)))
SHARPE_OF_AVG = Metric("sharpe_of_avg", better="higher", group=TRADING, interval=("sharpe_lo", "sharpe_hi"))
TURNOVER = Metric("test_turnover", group=TRADING, per_seed=lambda s: float(s.legs["turnover"].mean()))
BREAK_EVEN = Metric("break_even_bps", better="higher", group=TRADING, headline=True,
                    per_seed=lambda s: break_even_bps(s.legs) if s.makes_calls else None)
MAX_DRAWDOWN = Metric("test_max_drawdown", better="higher", group=TRADING, per_seed=lambda s: max_drawdown(s.pnl))
TOTAL_RETURN = Metric("test_total_return", better="higher", group=TRADING,
                      per_seed=lambda s: float((1 + s.pnl).prod() - 1))
SIZED_SHARPE = Metric("sized_sharpe", better="higher", group=TRADING, when=_has_intervals,
                      per_seed=lambda s: finite(sharpe_ratio(after_costs(s.sized_legs, s.cost_bps))))
SIZED_BREAK_EVEN = Metric("sized_break_even_bps", better="higher", group=TRADING, when=_has_intervals,
                          per_seed=lambda s: break_even_bps(s.sized_legs) if s.makes_calls else None)
SIZED_TURNOVER = Metric("sized_turnover", group=TRADING, when=_has_intervals,
                        per_seed=lambda s: float(s.sized_legs["turnover"].mean()))
N_TEST = Metric("n_test", group=TRADING, per_seed=lambda s: len(s.actual))
N_SEEDS = Metric("n_seeds", group=TRADING)
N_PARAMETERS = Metric(predictions.N_PARAMETERS, group=TRADING, headline=True)  # from train@'s served.json
TUNE_TRIALS = Metric(predictions.TUNE_TRIALS, group=TRADING)
PRICE_RMSE = Metric("test_price_rmse", better="lower", per_seed=_price_rmse, when=lambda s: s.target_kind == "return")
DM_STAT = Metric("dm_stat", better="lower", per_seed=lambda s: s.dm[0])
def _calls_on_direction(s: Sample) -> bool:
    return s.target_kind == "direction" and s.makes_calls


ACCURACY = Metric("test_accuracy", better="higher", per_seed=_classification("accuracy"), when=_calls_on_direction)
F1 = Metric("test_f1", better="higher", per_seed=_classification("f1"), when=_calls_on_direction)
ROC_AUC = Metric("test_roc_auc", better="higher", per_seed=_classification("roc_auc"), when=_calls_on_direction)
CONFUSION = Metric("test_confusion", per_seed=_classification("confusion"), when=_calls_on_direction)

# coverage, width, Winkler score, Kupiec and Christoffersen p per method and level; pinball and CRPS per method
INTERVAL_SCORES = Metric("interval_scores", expands=True, when=_has_intervals,
                         per_seed=lambda s: intervals.interval_scores(s.forecast, s.actual, s.bounds,
                                                                      s.frame["ticker"].to_numpy()))

# in the report's column order
CATALOGUE: list[Metric] = [m for m in list(globals().values()) if isinstance(m, Metric)]
BY_NAME: dict[str, Metric] = {name: m for m in CATALOGUE for name in m.names()}
HIGHER_IS_BETTER = {m for m in CATALOGUE if m.better == "higher"}
SELECTABLE = [m for m in CATALOGUE if m.selectable]
# the headline per contestant, {name in data/eval/metrics.json: score}: what `dvc exp show` and `dvc metrics diff`
# show (short names, all on the test split, so a row of every contestant fits a 150-column terminal) and, by
# the scores' own names, the MLflow runs list's columns; every score is in scores.json, the report and each run
HEADLINE = {short: name for m in CATALOGUE if m.headline
            for short, name in zip([m.headline, *(m.interval or ())], m.names())}
PER_SEED_UNAVERAGED = {N_TEST, DM_STAT, DM_PVALUE}  # computed once per architecture, not averaged over seeds


def columns(group: str) -> list[str]:
    """The report table `group`'s metric columns, in catalogue order."""
    return [name for m in CATALOGUE if m.group == group for name in m.names()]


def model_metrics(forecast: np.ndarray, actual: np.ndarray, frame: pd.DataFrame, benchmark: np.ndarray,
                  target_kind: str, horizon: int, cost_bps: float, bounds: dict | None = None,
                  size_level: float | None = None) -> dict[str, Any]:
    """Every metric of one seed's test forecasts (and its intervals' `bounds`, intervals.bounds_of).
    `frame` has date, ticker, close, next_return per test row."""
    sample = Sample(forecast, actual, frame, benchmark, target_kind, horizon, cost_bps, bounds or {}, size_level)
    out: dict[str, Any] = {}
    for metric in CATALOGUE:
        if metric.per_seed is None or (metric.when is not None and not metric.when(sample)):
            continue
        value = metric.per_seed(sample)
        out.update(value if metric.expands else zip(metric.names(), value) if metric.interval else [(metric, value)])
    return out
