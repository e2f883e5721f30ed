"""One architecture on every fold x seed: the fits, their forecasts, and the model that is served.

Knows nothing of DVC or MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tsarena.core.errors import TsarenaError
from tsarena.contestants.predictions import FORECAST_SPLITS, MC_DROPOUT, bound_columns, predictions_frame, target_units
from tsarena.split.windows import Windows

# what the served.json a train@ stage writes says of its model: the metric catalogue reports both beside skill


def model_dims(windows: Windows) -> dict[str, Any]:
    """What a model needs besides its params: input shape and the training target's scale."""
    regression = windows.meta["target_kind"] == "return"
    return {"n_features": windows.n_features, "seq_len": windows.seq_len,
            "target_mean": windows.meta["target_mean"] if regression else 0.0,
            "target_std": windows.meta["target_std"] if regression else 1.0}


def check_batch(n_train: int, seq_len: int, batch_size: int, fold: int, n_folds: int) -> None:
    where = f" in fold {fold}" if n_folds > 1 else ""
    if n_train < batch_size:
        raise TsarenaError(f"window.seq_len={seq_len} leaves {n_train} training windows{where}, fewer than "
                           f"train.batch_size={batch_size}", "window.seq_len, train.batch_size")


@dataclass
class Fit:
    """One architecture trained on one fold with one seed."""

    name: str
    fold: int
    seed: int
    model: Any
    params: dict
    dims: dict
    history: list[dict]
    predictions: pd.DataFrame | None  # None once written to a file (fitpool)
    infer_us: float  # microseconds per test window (batched forecast, CPU or the fit's device)
    # the kept weights' validation loss (÷ the random walk's): with train.average_best > 1 the model is
    # an average of epochs, whose loss no single epoch's row shows; tuning and the served seed use it
    val_loss: float

    @property
    def best_val_loss(self) -> float:
        """The lowest epoch's validation loss (the early-stopping curve's minimum)."""
        return min(row["val_loss"] for row in self.history)

    def history_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"fold": self.fold, "seed": self.seed, **row} for row in self.history])


def fit_one(name: str, params: dict, windows: Windows, train, seed: int,
            on_epoch: Callable[[dict], None] | None = None, callbacks: list | None = None, mc_samples: int = 0,
            levels: tuple[float, ...] = ()) -> Fit:
    """Build (seeded), train with early stopping on validation, forecast validation and test (those of
    them `windows` has: a tuning trial's have no test windows). With `mc_samples`, a model with dropout
    also gives Monte Carlo dropout intervals at `levels` for its test rows (the samples' quantiles)."""
    from tsarena.contestants.registry import build_model
    from tsarena.fitting.engine import fit, has_dropout, loss_function, no_skill_loss, predict, predict_samples, seed_all

    dims = model_dims(windows)
    seed_all(seed)  # before building: the initial weights are seeded too
    model = build_model(name, params, dims)
    kind = windows.meta["target_kind"]
    scales = {s: no_skill_loss(kind, windows.targets[windows.ends[s]]) for s in ("train", "val")}
    history = fit(model, windows.matrix, windows.targets, windows.ends, windows.seq_len, train, loss_function(kind),
                  seed, on_epoch, scales, callbacks)
    import torch

    raw, infer_us = {}, 0.0
    for split in (s for s in FORECAST_SPLITS if s in windows.ends):
        started = time.perf_counter()
        raw[split] = predict(model, windows.matrix, windows.ends[split], windows.seq_len)
        infer_us = 1e6 * (time.perf_counter() - started) / max(len(windows.ends[split]), 1)  # the last: test
    val_targets = torch.as_tensor(windows.targets[windows.ends["val"]], dtype=torch.float64)
    val_loss = float(loss_function(kind)(torch.as_tensor(raw["val"]), val_targets)) / scales["val"]
    forecasts = {split: (windows.ends[split], target_units(out, kind)) for split, out in raw.items()}
    table = predictions_frame(name, int(windows.meta["fold"]), seed, forecasts)
    if mc_samples and levels and kind == "return" and "test" in windows.ends and has_dropout(model):
        draws = predict_samples(model, windows.matrix, windows.ends["test"], windows.seq_len, mc_samples, seed)
        test = (table["split"] == "test").to_numpy()
        for level in levels:
            for column, q in zip(bound_columns(MC_DROPOUT, level), ((1 - level) / 2, (1 + level) / 2)):
                table[column] = np.nan
                table.loc[test, column] = np.quantile(draws, q, axis=0)
    return Fit(name, int(windows.meta["fold"]), seed, model, params, dims, history, table, infer_us, val_loss)


def served_fit(fits: list[Fit]) -> Fit:
    """The model to register and serve: trained on the most recent data (the last fold), the seed
    with the lowest validation loss. Chosen on validation: test is never looked at."""
    last = max(f.fold for f in fits)
    return min((f for f in fits if f.fold == last), key=lambda f: f.val_loss)
