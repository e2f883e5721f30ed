"""Prediction intervals (judging.intervals): they cover what they say, the adaptive one through a
volatility regime change, no interval reads an outcome before it is revealed, and the scores and
coverage tests answer what they claim."""

import numpy as np
import pandas as pd
import pytest

from tsarena.judging.intervals import (ADAPTIVE, STATIC, adaptive_bounds, attach, bound_columns, christoffersen_pvalue,
                                       conformal_offsets, interval_scores, kupiec_pvalue)
from tsarena.judging.intervals import UncertaintyParams
from tsarena.judging.trading import sized_positions

PARAMS = UncertaintyParams()


def table_of(forecasts: dict[str, np.ndarray], n_val: int, n_test: int, start: int = 0) -> pd.DataFrame:
    """A predictions table over one ticker: rows start..start+n_val-1 validation, then n_test test rows."""
    rows = np.arange(start, start + n_val + n_test)
    split = np.array(["val"] * n_val + ["test"] * n_test)
    return pd.concat([pd.DataFrame({"model": name, "fold": 1, "seed": 0, "split": split, "row": rows,
                                    "forecast": f[rows]}) for name, f in forecasts.items()], ignore_index=True)


def covered(test: pd.DataFrame, targets: np.ndarray, method: str, level: float) -> np.ndarray:
    lower, upper = bound_columns(method, level)
    actual = targets[test["row"].to_numpy()]
    return ((actual >= test[lower]) & (actual <= test[upper])).to_numpy()


def ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = np.empty(n)
    r[0] = rng.standard_normal() * 0.01
    for t in range(1, n):
        r[t] = phi * r[t - 1] + 0.01 * rng.standard_normal()
    return r


def test_split_conformal_covers_its_level_on_gaussian_ar1_for_any_forecast():
    """90% intervals cover 88-92% of test rows averaged over 5 data seeds, for a forecast with skill, the
    random walk's zero, and a biased one (the residual quantiles absorb the bias); each level in order."""
    shares = {}
    for seed in range(5):
        returns = ar1(1300, 0.3, seed)
        targets = np.append(returns[1:], np.nan)  # row t's target: the return into t + 1
        forecasts = {"oracle": 0.3 * returns, "random_walk": np.zeros_like(returns), "biased": 0.3 * returns + 0.004}
        test = attach(table_of(forecasts, 500, 700, start=99), targets, np.zeros(len(targets), int), PARAMS.levels,
                      PARAMS.gamma, PARAMS.window, 1)
        for name, part in test.groupby("model"):
            for level in PARAMS.levels:
                shares.setdefault((name, level), []).append(covered(part, targets, STATIC, level).mean())
    for (name, level), values in shares.items():
        assert abs(np.mean(values) - level) <= 0.02, (name, level, np.mean(values))
    widths = {name: np.mean(shares[(name, 0.9)]) for name in ("oracle", "biased")}
    assert widths  # every producer's interval was scored


def regime_data(seed: int, n_days: int = 3000):
    from tsarena.data.params import SyntheticParams
    from tsarena.data.sources import regime_states, synthetic_prices

    params = SyntheticParams(kind="regime", n_days=n_days, n_series=1, seed=seed)
    close = synthetic_prices(params, None)["close"].to_numpy()
    returns = np.diff(np.log(close), prepend=np.log(close[0]))
    targets = np.append(returns[1:], np.nan)
    state = np.append(regime_states(params)["state"].to_numpy()[1:], -1)  # the state that drew row t's target
    return returns, targets, state


def test_adaptive_intervals_keep_coverage_through_volatility_regimes_where_static_ones_drift():
    """On the regime source the static interval over-covers calm days and under-covers volatile ones; the
    adaptive one's overall coverage is within 2 points of 90% and in each regime closer to it."""
    static, adaptive = {0: [], 1: [], "all": []}, {0: [], 1: [], "all": []}
    for seed in range(5):
        returns, targets, state = regime_data(seed)
        trailing = pd.Series(returns).rolling(21, min_periods=1).mean().to_numpy()
        test = attach(table_of({"random_walk": np.zeros_like(returns), "trend": trailing}, 600, 1800, start=300),
                      targets, np.zeros(len(targets), int), [0.9], PARAMS.gamma, PARAMS.window, 1)
        for _, part in test.groupby("model"):
            mine = state[part["row"].to_numpy()]
            for method, into in ((STATIC, static), (ADAPTIVE, adaptive)):
                inside = covered(part, targets, method, 0.9)
                into["all"].append(inside.mean())
                for k in (0, 1):
                    into[k].append(inside[mine == k].mean())
    calm, volatile = np.mean(static[0]), np.mean(static[1])
    assert calm > 0.95 and volatile < 0.85, (calm, volatile)  # the static interval drifts by regime
    assert abs(np.mean(adaptive["all"]) - 0.9) <= 0.02, np.mean(adaptive["all"])
    for k in (0, 1):
        assert abs(np.mean(adaptive[k]) - 0.9) < abs(np.mean(static[k]) - 0.9), (k, adaptive[k], static[k])


@pytest.mark.parametrize("horizon", [1, 5])
def test_no_interval_reads_an_outcome_before_it_is_revealed(horizon):
    """Perturb one test outcome: no interval of a row whose date comes before that outcome is revealed
    (row k's outcome, at row k + horizon) changes; the static intervals never change; a training row's
    target (not a validation row) changes nothing at all."""
    returns = ar1(900, 0.3, 7)
    targets = np.append(returns[1:], np.nan)
    forecasts = {"oracle": 0.3 * returns}
    base = attach(table_of(forecasts, 300, 400, start=150), targets, np.zeros(len(targets), int), PARAMS.levels,
                  PARAMS.gamma, PARAMS.window, horizon)
    k = 600  # a test row
    shocked = targets.copy()
    shocked[k] += 0.5
    moved = attach(table_of(forecasts, 300, 400, start=150), shocked, np.zeros(len(targets), int), PARAMS.levels,
                   PARAMS.gamma, PARAMS.window, horizon)
    before = base["row"].to_numpy() < k + horizon
    for level in PARAMS.levels:
        for method in (STATIC, ADAPTIVE):
            for column in bound_columns(method, level):
                unchanged = base[column].to_numpy() == moved[column].to_numpy()
                assert unchanged[before].all(), (method, level, column)
                if method == STATIC:
                    assert unchanged.all()
        changed = base[bound_columns(ADAPTIVE, level)[1]].to_numpy() != moved[bound_columns(ADAPTIVE, level)[1]].to_numpy()
        assert changed[~before].any()  # the outcome is used once revealed
    training = targets.copy()
    training[20] += 0.5
    again = attach(table_of(forecasts, 300, 400, start=150), training, np.zeros(len(targets), int), PARAMS.levels,
                   PARAMS.gamma, PARAMS.window, horizon)
    pd.testing.assert_frame_equal(base, again)


def test_adaptive_calibrates_each_ticker_on_its_own_residuals():
    """Two tickers, one three times as volatile: each one's adaptive interval covers about its level."""
    rng = np.random.default_rng(3)
    n = 1000
    targets = np.concatenate([0.01 * rng.standard_normal(n), 0.03 * rng.standard_normal(n)])
    tickers = np.repeat([0, 1], n)
    table = pd.concat([table_of({"rw": np.zeros(2 * n)}, 300, 700, start=0),
                       table_of({"rw": np.zeros(2 * n)}, 300, 700, start=n)], ignore_index=True)
    test = attach(table, targets, tickers, [0.9], PARAMS.gamma, PARAMS.window, 1)
    for ticker in (0, 1):
        part = test[tickers[test["row"].to_numpy()] == ticker]
        assert abs(covered(part, targets, ADAPTIVE, 0.9).mean() - 0.9) < 0.03
        assert covered(part, targets, STATIC, 0.9).mean() == pytest.approx(1 if ticker == 0 else 0.7, abs=0.15)


def test_conformal_offsets_use_the_finite_sample_ranks():
    residuals = np.arange(1.0, 20.0)  # n = 19: ranks floor(20 x 0.05) = 1 and ceil(20 x 0.95) = 19
    assert conformal_offsets(residuals, 0.9) == (1.0, 19.0)
    assert conformal_offsets(residuals, 0.5) == (5.0, 15.0)
    lower, upper = adaptive_bounds(np.zeros(3), np.full(3, 10.0), residuals, 0.9, 0.0, 19, 1)
    assert (lower[0], upper[0]) == (1.0, 19.0)  # before any outcome is revealed: the static interval
    assert (lower[1], upper[1]) == (2.0, 19.0)  # then the window of 19 slides: 1 out, row 0's residual 10 in


def test_coverage_tests_reject_a_wrong_miss_rate_and_clustered_misses():
    rng = np.random.default_rng(0)
    right = rng.random(2000) < 0.1
    assert kupiec_pvalue(right, 0.1) > 0.05 and kupiec_pvalue(rng.random(2000) < 0.2, 0.1) < 1e-6
    tickers = np.zeros(2000, int)
    assert christoffersen_pvalue(right, tickers) > 0.01
    clustered = np.repeat(rng.random(200) < 0.1, 10)  # misses in runs of ten
    assert christoffersen_pvalue(clustered, tickers) < 1e-6
    assert christoffersen_pvalue(np.zeros(50, bool), tickers[:50]) is None  # no miss: nothing to test


def test_interval_scores_are_the_textbook_ones():
    actual = np.array([0.0, 1.0, -3.0])
    lower, upper = np.full(3, -1.0), np.full(3, 2.0)
    scores = interval_scores(np.zeros(3), actual, {STATIC: {0.9: (lower, upper)}}, np.zeros(3, int))
    assert scores["conformal_90_coverage"] == pytest.approx(2 / 3)
    assert scores["conformal_90_width"] == 3.0
    assert scores["conformal_90_winkler"] == pytest.approx(3 + (2 / 0.1) * 2 / 3)  # one miss by 2, averaged
    # CRPS from quantiles is twice the mean pinball loss over them
    assert scores["conformal_crps"] == pytest.approx(2 * scores["conformal_pinball"])


def test_the_sized_rule_trades_forecast_over_half_width_capped():
    positions = sized_positions(np.array([0.01, -0.05, 0.02, 0.01]), np.array([-0.02, -0.02, 0.0, 0.0]),
                                np.array([0.02, 0.02, 0.0, 0.01]))
    assert positions.tolist() == [0.5, -1.0, 0.0, 1.0]
