"""Forecast, trading and significance metrics.

Every model's forecast is in target units: a log return for `kind: return`, the probability
of an up move for `kind: direction`. Errors are forecast - actual in those units, so RMSE, MAE
and the Diebold-Mariano test apply to both (for direction, RMSE^2 is the Brier score).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

from tsarena.errors import TsarenaError

TRADING_DAYS = 252

# the headline per contestant, {name in data/eval/metrics.json: score}: what `dvc exp show` and `dvc metrics diff`
# show (short names, all on the test split, so a row of every contestant fits a 150-column terminal) and, by
# the scores' own names, the MLflow runs list's columns; every score is in scores.json, the report and each run
HEADLINE = {"rmse": "test_rmse", "skill": "skill_of_avg", "skill_lo": "skill_lo", "skill_hi": "skill_hi",
            "dm_p_holm": "dm_pvalue_holm", "mcs_p": "mcs_pvalue", "sharpe": "test_sharpe",
            "break_even_bps": "break_even_bps", "n_parameters": "n_parameters"}
BUY_AND_HOLD = "buy_and_hold"  # the equity plot's yardstick: long every ticker all along, the same costs


def pvalue_text(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.3g}"


def skill_text(scores: dict) -> str:
    """RMSE skill vs the random walk with its bootstrap interval, e.g. `+0.098% [-0.22, +0.51]`."""
    if scores.get("skill_of_avg") is None:
        return "n/a"
    bounds = [scores.get(k) for k in ("skill_lo", "skill_hi")]
    interval = "" if None in bounds else f" [{bounds[0]:+.2g}, {bounds[1]:+.2g}]"
    return f"{scores['skill_of_avg']:+.3f}%{interval}"


def neutral_forecast(target_kind: str) -> float:
    """The no-information forecast: zero log return (random walk), or a coin flip."""
    return 0.5 if target_kind == "direction" else 0.0


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


def strategy_legs(forecast: np.ndarray, next_return: np.ndarray, dates: np.ndarray, tickers: np.ndarray, neutral: float
                  ) -> pd.DataFrame:
    """Per date, a long/short sign strategy equal-weighted across tickers: `gross` simple return before
    costs and `turnover` (a flip long->short is 2 units). Position at t = sign(forecast - neutral)."""
    frame = pd.DataFrame(
        {"date": dates, "ticker": tickers, "position": np.sign(forecast - neutral), "ret": np.expm1(next_return)}
    ).sort_values(["ticker", "date"], kind="stable")
    frame["turnover"] = frame.groupby("ticker", sort=False)["position"].diff().fillna(frame["position"]).abs()
    frame["gross"] = frame["position"] * frame["ret"]
    return frame.groupby("date")[["gross", "turnover"]].mean()


def strategy_returns(
    forecast: np.ndarray, next_return: np.ndarray, dates: np.ndarray, tickers: np.ndarray, neutral: float, cost_bps: float
) -> pd.Series:
    """Daily simple returns of the sign strategy after costs of `cost_bps` per unit turnover."""
    return after_costs(strategy_legs(forecast, next_return, dates, tickers, neutral), cost_bps)


def after_costs(legs: pd.DataFrame, cost_bps: float) -> pd.Series:
    """A strategy's daily returns (strategy_legs) after `cost_bps` per unit of turnover."""
    return legs["gross"] - cost_bps / 1e4 * legs["turnover"]


def break_even_bps(legs: pd.DataFrame) -> float | None:
    """The cost per unit turnover (bps) at which the strategy's mean return after costs is zero."""
    turnover = legs["turnover"].mean()
    return float(1e4 * legs["gross"].mean() / turnover) if turnover > 0 else None


def sharpe_ratio(returns: pd.Series) -> float | None:
    std = returns.std()
    return float(returns.mean() / std * math.sqrt(TRADING_DAYS)) if std > 0 else None


def max_drawdown(returns: pd.Series) -> float:
    equity = (1 + returns).cumprod()
    return float((equity / equity.cummax() - 1).min())


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def model_metrics(
    forecast: np.ndarray,
    actual: np.ndarray,
    frame: pd.DataFrame,
    benchmark: np.ndarray,
    target_kind: str,
    horizon: int,
    cost_bps: float,
) -> dict[str, float | int | None | dict]:
    """All test metrics of one model. `frame` has date, ticker, close, next_return per test row."""
    neutral = neutral_forecast(target_kind)
    error = forecast - actual
    out: dict[str, float | int | None | dict] = {
        "n_test": len(actual),
        "test_rmse": float(np.sqrt(np.mean(error**2))),
        "test_mae": float(np.mean(np.abs(error))),
    }
    if target_kind == "return":
        close = frame["close"].to_numpy()
        out["test_price_rmse"] = float(skm.root_mean_squared_error(close * np.exp(actual), close * np.exp(forecast)))
    makes_calls = bool(np.any(forecast != neutral))
    actual_up = actual > neutral
    if makes_calls:
        hits = int(np.sum((forecast > neutral) == actual_up))
        out["test_dir_acc"] = hits / len(actual)
        out["test_dir_acc_lo"], out["test_dir_acc_hi"] = wilson_interval(hits, len(actual))
    else:  # a constant neutral forecast makes no directional call
        out["test_dir_acc"] = out["test_dir_acc_lo"] = out["test_dir_acc_hi"] = None
    out["test_ic"] = _finite(stats.spearmanr(forecast, actual).statistic) if np.ptp(forecast) > 0 else None
    legs = strategy_legs(forecast, frame["next_return"].to_numpy(), frame["date"].to_numpy(), frame["ticker"].to_numpy(),
                         neutral)
    pnl = after_costs(legs, cost_bps)
    out["test_turnover"] = float(legs["turnover"].mean())
    out["break_even_bps"] = break_even_bps(legs) if makes_calls else None
    out["test_sharpe"] = _finite(sharpe_ratio(pnl))
    out["test_max_drawdown"] = max_drawdown(pnl)
    out["test_total_return"] = float((1 + pnl).prod() - 1)
    out["dm_stat"], out["dm_pvalue"] = dm_versus(error**2, (benchmark - actual) ** 2, frame["date"].to_numpy(), horizon)
    if target_kind == "direction" and makes_calls:
        calls = (forecast > 0.5).astype(int)
        truth = actual.astype(int)
        out["test_accuracy"] = float(skm.accuracy_score(truth, calls))
        out["test_f1"] = float(skm.f1_score(truth, calls, zero_division=0))
        out["test_roc_auc"] = _finite(skm.roc_auc_score(truth, forecast)) if len(set(truth)) == 2 and np.ptp(forecast) > 0 else None
        tn, fp, fn, tp = skm.confusion_matrix(truth, calls, labels=[0, 1]).ravel()
        out["test_confusion"] = {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}
    return out


def dm_versus(loss: np.ndarray, benchmark_loss: np.ndarray, dates: np.ndarray, horizon: int
              ) -> tuple[float | None, float | None]:
    """DM (statistic, one-sided p) of per-row losses against the benchmark's; several tickers are
    averaged per date first, since their errors on one date are not independent. None when identical."""
    if np.array_equal(loss, benchmark_loss):
        return None, None
    loss_diff = pd.Series(loss - benchmark_loss).groupby(dates).mean()
    stat, pvalue = diebold_mariano(loss_diff.to_numpy(), horizon)
    return _finite(stat), _finite(pvalue)


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
) -> dict:
    """One model over several seeds: per-seed metrics, their spread, and a summary row.

    The summary is the mean of each metric across seeds (`<metric>_std` beside it when there
    are several), except the DM test: it is run once on the seed-averaged squared errors, so its
    p-value asks whether the architecture, not one lucky seed, beats the benchmark.
    """
    per_seed = {seed: model_metrics(f, actual, frame, benchmark, target_kind, horizon, cost_bps)
                for seed, f in forecasts.items()}
    spread = seed_spread(per_seed)
    summary: dict = {"n_seeds": len(forecasts)}
    for name, values in spread.items():
        summary[name] = values["mean"]
        if len(forecasts) > 1 and name not in ("n_test", "dm_stat", "dm_pvalue"):
            summary[f"{name}_std"] = values["std"]
    summary["n_test"] = len(actual)
    if len(forecasts) == 1:
        summary.update(next(iter(per_seed.values())))  # exactly the one model's metrics, sub-dicts too
    else:
        mean_loss = np.mean([(f - actual) ** 2 for f in forecasts.values()], axis=0)
        summary["dm_stat"], summary["dm_pvalue"] = dm_versus(mean_loss, (benchmark - actual) ** 2,
                                                             frame["date"].to_numpy(), horizon)
    return {"summary": summary, "seeds": per_seed, "spread": spread}


def equity_curves(pnl: dict[str, pd.Series], models: list[str]) -> pd.DataFrame:
    """Equity (start 1.0) by date of each of `models`' strategies, from their daily returns after costs."""
    columns = {name: (1 + returns).cumprod() for name, returns in pnl.items() if name in models}
    return pd.DataFrame(columns).rename_axis("date").reset_index()


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


def score_models(frame: pd.DataFrame, target_kind: str, horizon: int, cost_bps: float) -> dict[str, dict]:
    """seed_summary of every model in `frame` (long test forecasts, one fold or several pooled)."""
    frame = frame.sort_values(["fold", "row"], kind="stable")
    benchmark_rows = frame[frame["model"] == "random_walk"]
    base = benchmark_rows[["fold", "row", "date", "ticker", "close", "next_return", "actual"]].reset_index(drop=True)
    benchmark = benchmark_rows["forecast"].to_numpy()
    out = {}
    for model, part in frame.groupby("model", sort=False):
        by_seed = {str(seed): s["forecast"].to_numpy() for seed, s in part.groupby("seed", sort=True)}
        out[model] = seed_summary(by_seed, base["actual"].to_numpy(), base, benchmark, target_kind, horizon, cost_bps)
    return out
