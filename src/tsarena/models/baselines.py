"""Honest baselines, computed in the evaluate stage beside the neural models.

Forecasts are in target units (log return, or probability of an up move).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import LinAlgWarning
from sklearn.linear_model import LogisticRegression, Ridge

from tsarena.windows import windows_at


def random_walk(n: int, target_kind: str) -> np.ndarray:
    """Tomorrow's price is today's: zero log return (or a coin flip for direction)."""
    return np.full(n, 0.5 if target_kind == "direction" else 0.0)


def drift(train_targets: np.ndarray, n: int) -> np.ndarray:
    """The mean training target: mean return, or the base rate of up moves."""
    return np.full(n, float(np.mean(train_targets)))


def linear(
    matrix: np.ndarray,
    targets: np.ndarray,
    ends: dict[str, np.ndarray],
    seq_len: int,
    alphas: list[float],
    target_kind: str,
) -> tuple[np.ndarray, float]:
    """Ridge (or L2 logistic) regression on the same flattened windows the networks see.

    The penalty is chosen on the validation split, as the networks use it for early stopping;
    the model is fit on the training split only. Returns (test forecasts, chosen alpha).
    """

    def flat(split: str) -> np.ndarray:
        return windows_at(matrix, ends[split], seq_len).reshape(len(ends[split]), -1)

    def fit(alpha: float):
        if target_kind == "direction":
            return LogisticRegression(C=1 / alpha, max_iter=2000).fit(x_train, y_train)
        return Ridge(alpha=alpha).fit(x_train, y_train)

    def forecast(model, x: np.ndarray) -> np.ndarray:
        return model.predict_proba(x)[:, 1] if target_kind == "direction" else model.predict(x)

    x_train, y_train, x_val, y_val = flat("train"), targets[ends["train"]], flat("val"), targets[ends["val"]]
    with warnings.catch_warnings():  # small penalties on ~1,000 correlated inputs: expected, and val decides
        warnings.simplefilter("ignore", LinAlgWarning)
        models = {alpha: fit(alpha) for alpha in alphas}
    best = min(alphas, key=lambda a: float(np.mean((forecast(models[a], x_val) - y_val) ** 2)))
    return forecast(models[best], flat("test")), best
