"""The ensemble (the design documents' "fusion layer, weighted vote"): a producer whose inputs are
the members' forecasts (architectures, and baselines such as the news-only sentiment_ridge), with weights
fit per fold and seed on validation forecasts only.

- inverse_mse: weight_m proportional to 1 / validation MSE of member m (Bates & Granger 1969 style).
- stacking: weights minimising validation MSE subject to w >= 0, sum w = 1 (a constrained
  linear stack; no intercept, so the ensemble stays in target units and cannot add a drift).
Test forecasts are never read while weighting. The ensemble's own validation forecasts are
in-sample for its weights: do not compare validation losses of the ensemble with its members'.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from tsarena.core.errors import TsarenaError
from tsarena.contestants.predictions import fit_key, parse_fit_key, predictions_frame
from tsarena.contestants.producers import BASELINE, ENSEMBLE, kind


def inverse_mse_weights(x_val: np.ndarray, y_val: np.ndarray) -> np.ndarray:
    mse = np.mean((x_val - y_val[:, None]) ** 2, axis=0)
    inverse = 1 / np.maximum(mse, 1e-300)
    return inverse / inverse.sum()


def stacking_weights(x_val: np.ndarray, y_val: np.ndarray) -> np.ndarray:
    """argmin ||X w - y||^2 s.t. w >= 0, sum(w) = 1 (SLSQP from equal weights; deterministic)."""
    n = x_val.shape[1]
    scale = float(np.mean(y_val**2)) or 1.0  # conditioned objective: returns are ~1e-2

    def loss(w: np.ndarray) -> float:
        return float(np.mean((x_val @ w - y_val) ** 2)) / scale

    result = minimize(loss, np.full(n, 1 / n), method="SLSQP", bounds=[(0, 1)] * n,
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}])
    weights = np.clip(result.x, 0, None)
    return weights / weights.sum()


WEIGHTS = {"inverse_mse": inverse_mse_weights, "stacking": stacking_weights}


def _aligned(predictions: pd.DataFrame, members: list[str], fold: int, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, forecasts rows x members) of one fold, seed and split; every member must cover the same rows."""
    part = predictions[(predictions["fold"] == fold) & (predictions["seed"] == seed) & (predictions["split"] == split)]
    wide = part.pivot(index="row", columns="model", values="forecast")
    missing = [m for m in members if m not in wide]
    if missing or wide[members].isna().any().any():
        raise TsarenaError(f"member {missing[0] if missing else members} has no {split} forecasts for fold {fold} "
                           f"seed {seed}; run dvc repro", "arena.models")
    return wide.index.to_numpy(), wide[members].to_numpy()


def every_seed(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The members' predictions as one table, a baseline's (one deterministic fit per fold, seed 0) repeated for
    every seed of the trained members: each seed's ensemble combines that seed's networks with the same baseline."""
    seeds = sorted({s for name, t in tables.items() if kind(name) != BASELINE for s in t["seed"].unique()}) or [0]
    return pd.concat([part for name, t in tables.items()
                      for part in ([t.assign(seed=s) for s in seeds] if kind(name) == BASELINE else [t])],
                     ignore_index=True)


def combine(predictions: pd.DataFrame, members: list[str], targets: np.ndarray, method: str
            ) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """The ensemble's predictions table (one 'seed' per members' seed) and its weights per fold/seed."""
    tables, weights = [], {}
    for (fold, seed), _ in predictions.groupby(["fold", "seed"], sort=True):
        val_rows, x_val = _aligned(predictions, members, fold, seed, "val")
        test_rows, x_test = _aligned(predictions, members, fold, seed, "test")
        w = WEIGHTS[method](x_val, targets[val_rows])
        weights[fit_key(fold, seed)] = dict(zip(members, map(float, w)))
        tables.append(predictions_frame(ENSEMBLE, int(fold), int(seed),
                                        {"val": (val_rows, x_val @ w), "test": (test_rows, x_test @ w)}))
    return pd.concat(tables, ignore_index=True), weights


def served_weights(weights: dict[str, dict[str, float]]) -> dict[str, float]:
    """The served ensemble's weights: the last fold's, averaged over seeds (they sum to 1)."""
    last = max(parse_fit_key(key)[0] for key in weights)
    per_seed = [w for key, w in weights.items() if parse_fit_key(key)[0] == last]
    return {m: float(np.mean([w[m] for w in per_seed])) for m in per_seed[0]}


def served_validation(predictions: pd.DataFrame, fits: dict[str, dict], weights: dict[str, float]) -> pd.DataFrame:
    """The served ensemble's validation forecasts (row, forecast): each member's served fit (`fits`:
    {member: {fold, seed}}, its served.json) combined with the served weights; what its interval is
    calibrated on."""
    parts = [predictions[(predictions["model"] == m) & (predictions["fold"] == fit["fold"])
                         & (predictions["seed"] == fit["seed"]) & (predictions["split"] == "val")]
             .set_index("row")["forecast"] * weights[m] for m, fit in fits.items()]
    combined = pd.concat(parts, axis=1).sum(axis=1, min_count=len(parts)).dropna()
    return combined.rename("forecast").reset_index()
