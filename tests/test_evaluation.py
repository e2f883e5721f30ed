"""Metrics against hand-computed values, and the verdict a user reads."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tsarena.judging.metrics import model_metrics
from tsarena.judging.scoring import seed_summary
from tsarena.judging.significance import diebold_mariano, wilson_interval
from tsarena.judging.trading import max_drawdown, sharpe_ratio, strategy_returns
from tsarena.judging.report import comparison_table, select_champion, verdict


def test_diebold_mariano_hand_computed_horizon_one():
    # d = loss(model) - loss(benchmark); mean -2, gamma0 = 10/5 = 2, HLN factor sqrt((n - 1)/n)
    d = np.array([-2.0, -1.0, 0.0, -3.0, -4.0])
    stat, p = diebold_mariano(d, horizon=1)
    expected = -2 / math.sqrt(2 / 5) * math.sqrt(4 / 5)
    assert stat == pytest.approx(expected) == pytest.approx(-2 * math.sqrt(2))
    assert p == pytest.approx(stats.t.cdf(expected, df=4))
    assert p < 0.05  # the model's loss is clearly lower


def test_diebold_mariano_hand_computed_horizon_two():
    # adds gamma1 = (0*1 + 1*2 + 2*-1 + -1*-2) / 5 = 0.4, so long-run var = 2 + 2 * 0.4 = 2.8
    d = np.array([-2.0, -1.0, 0.0, -3.0, -4.0])
    stat, _ = diebold_mariano(d, horizon=2)
    assert stat == pytest.approx(-2 / math.sqrt(2.8 / 5) * math.sqrt((5 + 1 - 4 + 2 / 5) / 5))


def test_diebold_mariano_is_one_sided_in_favour_of_the_model():
    rng = np.random.default_rng(0)
    worse = np.abs(rng.standard_normal(500)) + 0.2
    assert diebold_mariano(worse, 1)[1] > 0.99
    assert diebold_mariano(-worse, 1)[1] < 0.01


def test_wilson_interval_hand_computed():
    z = stats.norm.ppf(0.975)
    centre = (0.5 + z**2 / 200) / (1 + z**2 / 100)
    half = z * math.sqrt(0.25 / 100 + z**2 / 40000) / (1 + z**2 / 100)
    assert wilson_interval(50, 100) == pytest.approx((centre - half, centre + half), abs=1e-9)
    assert wilson_interval(50, 100) == pytest.approx((0.40383, 0.59617), abs=1e-5)


def test_strategy_returns_charge_costs_per_unit_turnover():
    forecast = np.array([1.0, 1.0, -1.0, 0.0])
    next_return = np.log([1.10, 0.90, 1.05, 1.0])
    dates = pd.date_range("2020-01-01", periods=4).to_numpy()
    pnl = strategy_returns(forecast, next_return, dates, np.array(["A"] * 4), neutral=0.0, cost_bps=10)
    np.testing.assert_allclose(pnl.to_numpy(), [0.1 - 0.001, -0.1, -0.05 - 0.002, -0.001])


def test_sharpe_and_drawdown_hand_computed():
    returns = pd.Series([0.01, -0.02, 0.01, 0.03])
    assert sharpe_ratio(returns) == pytest.approx(0.0075 / returns.std() * math.sqrt(252))
    # equity 1.01, 0.9898, 0.999698, 1.02969: worst drop from 1.01 to 0.9898
    assert max_drawdown(returns) == pytest.approx(0.9898 / 1.01 - 1)
    assert sharpe_ratio(pd.Series([0.0, 0.0])) is None


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=n), "ticker": "A",
                         "close": 100.0, "next_return": 0.01 * rng.standard_normal(n)})


def test_model_metrics_for_perfect_and_neutral_forecasts():
    frame = _frame(200)
    actual = frame["next_return"].to_numpy()
    rw = np.zeros(200)
    perfect = model_metrics(actual.copy(), actual, frame, rw, "return", 1, cost_bps=0)
    assert perfect["test_rmse"] == 0 and perfect["test_dir_acc"] == 1.0 and perfect["test_ic"] == pytest.approx(1)
    assert perfect["dm_pvalue"] < 1e-6 and perfect["n_test"] == 200 and perfect["test_price_rmse"] == 0
    neutral = model_metrics(rw, actual, frame, rw, "return", 1, cost_bps=0)
    assert neutral["test_dir_acc"] is None and neutral["dm_pvalue"] is None and neutral["test_total_return"] == 0
    assert neutral["test_rmse"] == pytest.approx(np.sqrt(np.mean(actual**2)))


def test_direction_metrics_include_classification_scores():
    frame = _frame(100)
    actual = (frame["next_return"] > 0).astype(float).to_numpy()
    prob = np.clip(actual * 0.8 + 0.1, 0, 1)
    m = model_metrics(prob, actual, frame, np.full(100, 0.5), "direction", 1, cost_bps=0)
    assert m["test_accuracy"] == 1.0 and m["test_f1"] == 1.0 and m["test_roc_auc"] == 1.0
    assert m["test_confusion"]["tp"] == int(actual.sum())
    assert m["test_rmse"] == pytest.approx(0.1)  # sqrt(Brier)


def _metrics(pvalues: dict) -> dict:
    return {name: {"test_rmse": 0.01 - 0.0001 * i, "dm_pvalue": p, "test_dir_acc": 0.5, "n_test": 100}
            for i, (name, p) in enumerate(pvalues.items())}


def test_verdict_says_plainly_when_nothing_beats_random_walk():
    table = comparison_table(_metrics({"random_walk": None, "drift": 0.4, "linear": 0.3, "lstm": 0.2, "transformer": 0.6}), "test_rmse")
    text = verdict(table, 0.05, "test_rmse")
    assert "No model beats the random walk significantly" in text
    assert table["model"].iloc[0] == "transformer"  # lowest rmse first
    assert select_champion(table)["model"] == "transformer"
    assert table.loc[table["model"] == "random_walk", "skill_vs_rw_pct"].iloc[0] == 0


def test_verdict_names_significant_models():
    table = comparison_table(_metrics({"random_walk": None, "drift": 0.4, "linear": 0.3, "lstm": 0.001}), "test_rmse")
    text = verdict(table, 0.05, "test_rmse")
    assert "lstm" in text and "No model beats" not in text


def test_seed_summary_is_the_mean_across_seeds_with_spread_and_a_dm_on_the_seed_averaged_loss():
    rng = np.random.default_rng(0)
    actual = rng.normal(0, 0.01, 300)
    frame = _frame(300).assign(next_return=actual)
    forecasts = {str(s): 0.5 * actual + rng.normal(0, 0.01, 300) for s in range(3)}
    rw = np.zeros(300)
    result = seed_summary(forecasts, actual, frame, rw, "return", 1, 0.0)
    rmses = [model_metrics(f, actual, frame, rw, "return", 1, 0.0)["test_rmse"] for f in forecasts.values()]
    summary = result["summary"]
    assert summary["n_seeds"] == 3 and summary["test_rmse"] == pytest.approx(np.mean(rmses))
    assert summary["test_rmse_std"] == pytest.approx(np.std(rmses, ddof=1)) and summary["test_rmse_std"] > 0
    assert result["spread"]["test_rmse"]["min"] == min(rmses) and result["spread"]["test_rmse"]["max"] == max(rmses)
    mean_loss = np.mean([(f - actual) ** 2 for f in forecasts.values()], axis=0)
    assert summary["dm_pvalue"] == pytest.approx(diebold_mariano(mean_loss - actual**2, 1)[1])
    # one seed: exactly that model's metrics
    one = seed_summary({"7": forecasts["0"]}, actual, frame, rw, "return", 1, 0.0)["summary"]
    assert {k: v for k, v in one.items() if k != "n_seeds"} == model_metrics(forecasts["0"], actual, frame, rw, "return", 1, 0.0)
