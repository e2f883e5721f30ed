"""Honest baselines, producers like any model: fit per fold on its training rows only.

Forecasts are in target units (log return, or probability of an up move), for the validation
and test windows of the fold.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import LinAlgWarning
from sklearn.linear_model import LogisticRegression, Ridge

from tsarena.windows import Windows, windows_at

NAMES = ("random_walk", "drift", "linear")


def random_walk(n: int, target_kind: str) -> np.ndarray:
    """Tomorrow's price is today's: zero log return (or a coin flip for direction)."""
    return np.full(n, 0.5 if target_kind == "direction" else 0.0)


def drift(train_targets: np.ndarray, n: int) -> np.ndarray:
    """The mean training target: mean return, or the base rate of up moves."""
    return np.full(n, float(np.mean(train_targets)))


def linear(windows: Windows, alphas: list[float]) -> tuple[dict[str, np.ndarray], float]:
    """Ridge (or L2 logistic) regression on the same flattened windows the networks see.

    The penalty is chosen on the validation split, as the networks use it for early stopping;
    the model is fit on the training split only. Returns ({split: forecasts}, chosen alpha).
    """
    kind, ends = windows.meta["target_kind"], windows.ends

    def flat(split: str) -> np.ndarray:
        return windows_at(windows.matrix, ends[split], windows.seq_len).reshape(len(ends[split]), -1)

    def fit(alpha: float):
        if kind == "direction":
            return LogisticRegression(C=1 / alpha, max_iter=2000).fit(x_train, y_train)
        return Ridge(alpha=alpha).fit(x_train, y_train)

    def forecast(model, x: np.ndarray) -> np.ndarray:
        return model.predict_proba(x)[:, 1] if kind == "direction" else model.predict(x)

    x_train, y_train, x_val, y_val = flat("train"), windows.targets[ends["train"]], flat("val"), windows.targets[ends["val"]]
    with warnings.catch_warnings():  # small penalties on ~1,000 correlated inputs: expected, and val decides
        warnings.simplefilter("ignore", LinAlgWarning)
        models = {alpha: fit(alpha) for alpha in alphas}
    best = min(alphas, key=lambda a: float(np.mean((forecast(models[a], x_val) - y_val) ** 2)))
    return {"val": forecast(models[best], x_val), "test": forecast(models[best], flat("test"))}, best


def forecast_all(windows: Windows, alphas: list[float]) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """{baseline: {split: forecasts}} for the fold's validation and test windows, and ridge's penalty."""
    kind, ends = windows.meta["target_kind"], windows.ends
    train_targets = windows.targets[ends["train"]]
    lin, alpha = linear(windows, alphas)
    return {"random_walk": {s: random_walk(len(ends[s]), kind) for s in ("val", "test")},
            "drift": {s: drift(train_targets, len(ends[s])) for s in ("val", "test")},
            "linear": lin}, alpha
