"""Honest baselines, producers like any model: fit per fold on its training rows only.

Forecasts are in target units (log return, or probability of an up move), for the validation
and test windows of the fold. A weak linear baseline flatters every network, so there are three
linear ones: an AR(p) on the series' own returns, a ridge on the last row's features, and a ridge
on the whole flattened window (the networks' input); each picks its order or penalty on validation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from tsarena.contestants.predictions import FORECAST_SPLITS
from tsarena.data.sentiment import SENTIMENT_COLUMNS
from tsarena.split.windows import Windows, windows_at

RETURN_FEATURE = "log_return"  # the one-day log return: the AR baseline's and the oracle's input


Predictor = Callable[[np.ndarray], np.ndarray]  # windows (n, seq_len, n_features), scaled -> forecasts (n,)


@dataclass(frozen=True)
class BaselineFit:
    """A baseline fit on a fold: its forecast of any scaled windows (what evaluate scores; explain permutes
    its inputs), what it chose on validation, and the same fit as the affine map of the window it is
    (`coef`: seq_len x n_features, `intercept`), in a network's output units (a log return, or the logit of
    P(up)): what a served model runs for it (contestants.layers.WindowAffine)."""

    predict: Predictor
    chose: dict
    coef: np.ndarray
    intercept: float


def split_windows(windows: Windows, split: str) -> np.ndarray:
    """A split's windows as one strided view (no copy): what every predictor takes."""
    return windows_at(windows.matrix, windows.ends[split], windows.seq_len)


def constant(windows: Windows, value: float) -> BaselineFit:
    """A forecast that reads no input: `value` in target units (a probability's served form is its logit)."""
    if windows.meta["target_kind"] == "direction":
        p = float(np.clip(value, 1e-12, 1 - 1e-12))
        served = np.log(p / (1 - p))
    else:
        served = value
    return BaselineFit(lambda x: np.full(len(x), value), {}, np.zeros((windows.seq_len, windows.n_features)),
                       float(served))


def choose_on_validation(grid: list[tuple[object, float]], design: Callable[[object, np.ndarray], np.ndarray],
                         windows: Windows) -> BaselineFit:
    """Fit a penalised linear model per grid point (design key, penalty) on train; keep the best on validation.

    `design(key, x)` is the design matrix of windows `x` (the key: a lag order, or None for fixed inputs): a
    selection of the window's entries, so the fit is affine in the window. Ridge for returns, L2 logistic
    regression for direction. Returns the chosen fit; it reports choosing the key (as `lag`) where the grid
    varies it, else the penalty (`alpha`).
    """
    from scipy.linalg import LinAlgWarning
    from sklearn.linear_model import LogisticRegression, Ridge

    kind, ends, targets = windows.meta["target_kind"], windows.ends, windows.targets
    built: dict[tuple[object, str], np.ndarray] = {}

    def split_design(key, split: str) -> np.ndarray:  # once per (key, split): a whole-window matrix is large
        if (key, split) not in built:
            built[key, split] = design(key, split_windows(windows, split))
        return built[key, split]

    def fit(key, alpha: float):
        x, y = split_design(key, "train"), targets[ends["train"]]
        if kind == "direction":
            return LogisticRegression(C=1 / alpha, max_iter=2000).fit(x, y)
        return Ridge(alpha=alpha).fit(x, y)

    def forecast(model, x: np.ndarray) -> np.ndarray:
        return model.predict_proba(x)[:, 1] if kind == "direction" else model.predict(x)

    with warnings.catch_warnings():  # small penalties on many correlated inputs: expected, and val decides
        warnings.simplefilter("ignore", LinAlgWarning)
        models = [fit(key, alpha) for key, alpha in grid]
    val_mse = [float(np.mean((forecast(m, split_design(key, "val")) - targets[ends["val"]]) ** 2))
               for m, (key, _) in zip(models, grid)]
    best = int(np.argmin(val_mse))
    chosen, (key, alpha) = models[best], grid[best]
    # the window entries each design column reads, from the design of the window's unit vectors
    shape = (windows.seq_len, windows.n_features)
    reads = design(key, np.eye(shape[0] * shape[1]).reshape(-1, *shape))
    coef = (reads @ np.ravel(chosen.coef_)).reshape(shape)
    chose = {"alpha": float(alpha)} if key is None else {"lag": int(key)}
    return BaselineFit(lambda x: forecast(chosen, design(key, x)), chose, coef, float(np.ravel(chosen.intercept_)[0]))


def ridge(windows: Windows, alphas: list[float], last_row_only: bool) -> BaselineFit:
    """Ridge (or L2 logistic) on the flattened window the networks see, or on its last row only."""

    def design(_, x: np.ndarray) -> np.ndarray:
        return (x[:, -1:] if last_row_only else x).reshape(len(x), -1)

    return choose_on_validation([(None, a) for a in alphas], design, windows)


def autoregression(windows: Windows, max_lag: int) -> BaselineFit:
    """AR(p) on the series' own one-day returns (the last p of the window), p in 1..max_lag chosen on
    validation; least squares with an intercept (a vanishing ridge), pooled over tickers. The return
    feature is scaled, which the intercept and free coefficients undo: these are raw returns' forecasts."""
    column = windows.meta["features"].index(RETURN_FEATURE)

    def design(p: int, x: np.ndarray) -> np.ndarray:
        return x[:, -p:, column].reshape(len(x), p)

    grid = [(p, 1e-8) for p in range(1, min(max_lag, windows.seq_len) + 1)]
    return choose_on_validation(grid, design, windows)


def ar1_oracle(raw_last_return: np.ndarray, phi: float, horizon: int) -> np.ndarray:
    """The optimal forecast of an AR(1) (mean zero) with known phi: E[r_{t+1} + ... + r_{t+h} | r_t]."""
    return raw_last_return * sum(phi**i for i in range(1, horizon + 1))


def _random_walk(windows: Windows, _params: Any) -> BaselineFit:
    """Tomorrow's price is today's: zero log return (or a coin flip for direction)."""
    return constant(windows, 0.5 if windows.meta["target_kind"] == "direction" else 0.0)


def _drift(windows: Windows, _params: Any) -> BaselineFit:
    """The mean training target: mean return, or the base rate of up moves."""
    return constant(windows, float(np.mean(windows.targets[windows.ends["train"]])))


def _ar(windows: Windows, params: Any) -> BaselineFit:
    return autoregression(windows, params.ar_max_lag)


def _ridge_last(windows: Windows, params: Any) -> BaselineFit:
    return ridge(windows, params.ridge_alphas, last_row_only=True)


def _linear(windows: Windows, params: Any) -> BaselineFit:
    return ridge(windows, params.ridge_alphas, last_row_only=False)


def _sentiment_ridge(windows: Windows, params: Any) -> BaselineFit | None:
    """The design's sentiment model as a producer: ridge on the last row's news sentiment alone (none without
    news). Beside the price models it says what the news knows by itself."""
    names = windows.meta["features"]
    columns = [names.index(c) for c in SENTIMENT_COLUMNS if c in names]
    if not columns:
        return None

    def design(_, x: np.ndarray) -> np.ndarray:
        return x[:, -1, columns]

    return choose_on_validation([(None, a) for a in params.ridge_alphas], design, windows)


BENCHMARK = "random_walk"  # what every contestant is judged against
SENTIMENT_ONLY = "sentiment_ridge"  # the news alone: present only where the features hold news sentiment
# Every baseline: name -> (fold's windows, the `baselines` params) -> its BaselineFit. Adding one is adding its entry
# here; stages, report and tests read this table.
# A baseline that returns None does not apply to these data (sentiment_ridge without news): it is then absent
# everywhere, which only the ones in WHEN_APPLICABLE may be.
BASELINES: dict[str, Callable[[Windows, Any], BaselineFit | None]] = {
    BENCHMARK: _random_walk, "drift": _drift, "ar": _ar, "ridge_last": _ridge_last, "linear": _linear,
    SENTIMENT_ONLY: _sentiment_ridge}
WHEN_APPLICABLE = {SENTIMENT_ONLY}


def fit_all(windows: Windows, params: Any) -> dict[str, BaselineFit]:
    """Every baseline that applies, fit on the fold's training rows (choices made on its validation rows)."""
    made = {name: make(windows, params) for name, make in BASELINES.items()}
    assert all(made[name] is not None for name in set(BASELINES) - WHEN_APPLICABLE)
    return {name: fit for name, fit in made.items() if fit is not None}


def forecast_all(made: dict[str, BaselineFit], windows: Windows) -> dict[str, dict[str, np.ndarray]]:
    """{baseline: {split: forecasts}} of fits (fit_all's) for the fold's validation and test windows."""
    views = {s: split_windows(windows, s) for s in FORECAST_SPLITS}
    return {name: {s: fit.predict(views[s]) for s in FORECAST_SPLITS} for name, fit in made.items()}
