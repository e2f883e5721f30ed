"""The referee for many models against its references: statsmodels' DM, arch's SPA and MCS called
directly, Holm by hand; the baselines a referee accepts; the champion's three conditions."""

import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import MCS, SPA
from statsmodels.tsa.stattools import diebold_mariano_test

from tsarena.judging.significance import diebold_mariano
from tsarena.judging.trading import break_even_bps, strategy_legs
from tsarena.contestants.baselines import (BASELINES, WHEN_APPLICABLE, ar1_oracle, autoregression, fit_all, forecast_all,
                                           split_windows)
from tsarena.data.sentiment import SENTIMENT_COLUMNS
from tsarena.contestants.params import BaselineParams
from tsarena.judging.referee import (bootstrap_intervals, confidence_set_pvalues, date_losses, holm, in_confidence_set,
                             mean_ranks, spa_test)
from tsarena.judging.report import champion_failures, comparison_table, verdict
from tsarena.split.windows import Windows


def losses(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Per-date squared errors: one good model, one useless, one slightly worse than the random walk."""
    rng = np.random.default_rng(seed)
    actual = np.zeros(n)
    for t in range(1, n):
        actual[t] = 0.4 * actual[t - 1] + 0.01 * rng.standard_normal()
    signal = 0.4 * np.r_[0, actual[:-1]]
    return pd.DataFrame({"random_walk": actual**2, "good": (signal - actual) ** 2,
                         "noise": (rng.normal(0, 0.002, n) - actual) ** 2, "bad": (0.004 - actual) ** 2},
                        index=pd.bdate_range("2020-01-01", periods=n))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dm_statistic_equals_statsmodels_for_horizon_one(seed):
    rng = np.random.default_rng(seed)
    actual = rng.normal(0, 1, 250)
    model, benchmark = 0.3 * actual + rng.normal(0, 1, 250), np.zeros(250)
    reference = diebold_mariano_test(actual, model, benchmark, harvey_adj=True, lags=0)
    stat, p_one_sided = diebold_mariano((model - actual) ** 2 - (benchmark - actual) ** 2, horizon=1)
    assert stat == pytest.approx(reference.statistic, rel=1e-10)
    # statsmodels is two-sided; ours asks "is the model's loss lower"
    assert min(p_one_sided, 1 - p_one_sided) == pytest.approx(reference.pvalue / 2, rel=1e-9)


def test_spa_and_mcs_equal_arch_called_directly_with_the_same_seed():
    table = losses()
    ours = spa_test(table, block=5, reps=500, seed=3)
    spa = SPA(table["random_walk"].to_numpy(), table.drop(columns="random_walk").to_numpy(), block_size=5, reps=500,
              bootstrap="stationary", seed=3)
    spa.compute()
    assert ours == {k: float(v) for k, v in spa.pvalues.items()}
    assert ours["consistent"] < 0.05  # `good` beats the random walk
    pvalues = confidence_set_pvalues(table, block=5, reps=500, seed=3)
    for alpha in (0.05, 0.1, 0.25):
        mcs = MCS(table, size=alpha, reps=500, block_size=5, method="R", bootstrap="stationary", seed=3)
        mcs.compute()
        assert sorted(m for m, p in pvalues.items() if in_confidence_set(p, alpha)) == sorted(mcs.included)
        assert pvalues == {m: float(p) for m, p in mcs.pvalues["Pvalue"].items()}
    assert in_confidence_set(pvalues["good"], 0.05) and not in_confidence_set(pvalues["random_walk"], 0.05)


def test_spa_does_not_reject_when_no_model_has_skill():
    rng = np.random.default_rng(5)
    actual = rng.normal(0, 0.01, 500)
    table = pd.DataFrame({"random_walk": actual**2, **{f"m{i}": (rng.normal(0, 0.001, 500) - actual) ** 2
                                                       for i in range(12)}})
    assert spa_test(table, block=3, reps=500, seed=0)["consistent"] > 0.05


def test_holm_by_hand():
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": None})
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1, made monotone
    assert adjusted == {"a": pytest.approx(0.03), "c": pytest.approx(0.06), "b": pytest.approx(0.06), "d": None}


def test_bootstrap_intervals_cover_the_estimate_and_are_seeded():
    table = losses()
    pnl = np.random.default_rng(1).normal(0.0005, 0.01, len(table))
    first = bootstrap_intervals(table["good"].to_numpy(), table["random_walk"].to_numpy(), pnl, 5, 300, seed=0)
    assert first == bootstrap_intervals(table["good"].to_numpy(), table["random_walk"].to_numpy(), pnl, 5, 300, seed=0)
    skill = 100 * (1 - np.sqrt(table["good"].mean() / table["random_walk"].mean()))
    assert first["skill_lo"] < skill < first["skill_hi"] and first["skill_lo"] > 0
    sharpe = pnl.mean() / pnl.std(ddof=1) * np.sqrt(252)
    assert first["sharpe_lo"] < sharpe < first["sharpe_hi"]
    assert (first["skill_of_avg"], first["sharpe_of_avg"]) == (pytest.approx(skill), pytest.approx(sharpe))


def test_break_even_cost_makes_the_mean_return_after_costs_zero():
    rng = np.random.default_rng(0)
    n = 300
    next_return = rng.normal(0, 0.01, n)
    forecast = np.where(rng.random(n) < 0.6, next_return, -next_return)  # right 60% of the time
    legs = strategy_legs(forecast, next_return, pd.bdate_range("2020-01-01", periods=n).to_numpy(), np.array(["A"] * n), 0.0)
    cost = break_even_bps(legs)
    assert cost > 0
    assert (legs["gross"] - cost / 1e4 * legs["turnover"]).mean() == pytest.approx(0, abs=1e-15)


def test_date_losses_average_seeds_per_row_then_tickers_per_date():
    dates = pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-02", "2020-01-02"])
    frame = pd.DataFrame({"model": ["m"] * 4, "fold": 1, "seed": [0, 1, 0, 1], "row": [1, 1, 2, 2], "date": dates,
                          "forecast": [1.0, 3.0, 0.0, 0.0], "actual": [0.0, 0.0, 1.0, 1.0]})
    # row 1: seeds' squared errors 1 and 9 -> 5; row 2: 1
    assert date_losses(frame, ["m"])["m"].tolist() == [5.0, 1.0]


def test_mean_rank_over_folds_and_seeds_with_single_seed_baselines():
    def fold(a: dict, b: float) -> dict:
        return {"net": {"seeds": {s: {"test_rmse": v} for s, v in a.items()}}, "base": {"seeds": {"0": {"test_rmse": b}}}}

    per_fold = {"1": fold({"1": 1.0, "2": 3.0}, 2.0), "2": fold({"1": 1.0, "2": 1.0}, 2.0)}
    ranks = mean_ranks(per_fold, ["net", "base"], "test_rmse", higher_is_better=False)
    assert ranks == {"net": pytest.approx((1 + 2 + 1 + 1) / 4), "base": pytest.approx((2 + 1 + 2 + 2) / 4)}


def _windows(returns: np.ndarray, seq_len: int = 20) -> Windows:
    n = len(returns)
    ends = np.arange(seq_len - 1, n - 1)
    targets = np.r_[returns[1:], np.nan]
    cut1, cut2 = int(len(ends) * 0.6), int(len(ends) * 0.8)
    matrix = np.column_stack([returns, np.random.default_rng(9).normal(size=n)]).astype(np.float32)
    meta = {"target_kind": "return", "features": ["log_return", "noise"], "seq_len": seq_len, "horizon": 1}
    return Windows(matrix, targets, {"train": ends[:cut1], "val": ends[cut1:cut2], "test": ends[cut2:]}, meta, None)


def test_ar_baseline_finds_the_ar1_coefficient_and_nears_the_oracle():
    rng = np.random.default_rng(0)
    returns = np.zeros(4000)
    for t in range(1, 4000):
        returns[t] = 0.3 * returns[t - 1] + 0.01 * rng.standard_normal()
    windows = _windows(returns)
    fit = autoregression(windows, max_lag=5)
    best = ar1_oracle(returns[windows.ends["test"]], 0.3, 1)
    assert 1 <= fit.chose["lag"] <= 5
    assert np.corrcoef(fit.predict(split_windows(windows, "test")), best)[0, 1] > 0.97
    made = fit_all(windows, BaselineParams(ridge_alphas=[1.0, 100.0], ar_max_lag=5))
    assert set(made) == set(BASELINES) - WHEN_APPLICABLE and made["ar"].chose == fit.chose  # no news: no sentiment_ridge
    assert set(forecast_all(made, windows)["ar"]) == {"val", "test"}


@pytest.mark.parametrize("kind", ["return", "direction"])
def test_every_baseline_served_as_its_affine_map_forecasts_what_was_scored(kind):
    """A served model runs a baseline as WindowAffine(coef, intercept): for every baseline in the registry (news
    columns included), on either target, that module gives the forecast evaluate scored (to float32's precision:
    sklearn fits and predicts the float32 scaled windows in float32, the served map sums in float64)."""
    import torch

    from tsarena.contestants.predictions import target_units
    from tsarena.serving.bundle import Member

    rng = np.random.default_rng(1)
    returns = 0.01 * rng.standard_normal(1500)
    windows = _windows(returns)
    matrix = np.column_stack([windows.matrix, rng.normal(size=(len(returns), 3))]).astype(np.float32)
    targets = (windows.targets > 0).astype(float) if kind == "direction" else windows.targets
    meta = {**windows.meta, "target_kind": kind, "features": [*windows.meta["features"], *SENTIMENT_COLUMNS]}
    windows = Windows(matrix, targets, windows.ends, meta, None)
    made = fit_all(windows, BaselineParams(ridge_alphas=[1.0, 100.0], ar_max_lag=5))
    assert set(made) == set(BASELINES)
    x = split_windows(windows, "test")
    for name, fit in made.items():
        module = Member.affine(name, fit.coef, fit.intercept).model
        with torch.no_grad():
            served = target_units(module(torch.from_numpy(np.ascontiguousarray(x))).numpy(), kind)
        scored = fit.predict(x)
        np.testing.assert_allclose(served, scored, rtol=1e-6, atol=1e-6 * np.abs(scored).max(), err_msg=name)


def test_ar1_oracle_sums_the_expected_path_over_the_horizon():
    assert ar1_oracle(np.array([0.01]), 0.5, 3)[0] == pytest.approx(0.01 * (0.5 + 0.25 + 0.125))


def _table(spa_ok: bool, mcs_p: float, holm_p: float):
    metrics = {"random_walk": {"test_rmse": 1.0, "dm_pvalue": None, "mcs_pvalue": 0.0, "dm_pvalue_holm": None},
               "lstm": {"test_rmse": 0.9, "dm_pvalue": holm_p / 2, "mcs_pvalue": mcs_p, "dm_pvalue_holm": holm_p},
               "oracle": {"test_rmse": 0.5, "dm_pvalue": 0.0}}
    return comparison_table(metrics, "test_rmse", alpha=0.05), (0.01 if spa_ok else 0.4)


def test_champion_needs_spa_mcs_and_holm_and_the_report_names_what_failed():
    table, spa = _table(True, 0.5, 0.01)
    assert table["model"].tolist() == ["lstm", "random_walk", "oracle"]  # the oracle last, never ranked
    assert champion_failures(table.iloc[0], spa, 0.05) == []
    no_oracle = table[table["kind"] != "oracle"].assign(in_mcs=lambda t: t["in_mcs"].astype(bool))  # numpy bools
    assert champion_failures(no_oracle.iloc[0], spa, 0.05) == []
    for args, words in [((False, 0.5, 0.01), "SPA test does not reject"),
                        ((True, 0.01, 0.01), "not in the 95% model confidence set"),
                        ((True, 0.5, 0.2), "Holm-adjusted DM p-value is 0.2")]:
        table, spa = _table(*args)
        failures = champion_failures(table.iloc[0], spa, 0.05)
        assert len(failures) == 1 and words in failures[0]


def test_verdict_says_when_raw_significance_does_not_survive_holm():
    metrics = {"random_walk": {"test_rmse": 1.0, "dm_pvalue": None, "dm_pvalue_holm": None, "mcs_pvalue": 1.0},
               **{f"m{i}": {"test_rmse": 0.99, "dm_pvalue": 0.03, "dm_pvalue_holm": 0.3, "mcs_pvalue": 0.9}
                  for i in range(10)}}
    text = verdict(comparison_table(metrics, "test_rmse"), 0.05, "test_rmse", spa_pvalue=0.3)
    assert "No model beats the random walk significantly" in text and "do not survive the correction" in text
    assert "nothing beats the random walk once the number of models tried is accounted for" in text
    assert "it includes the random walk" in text
