"""The ensemble's weights are fit on validation forecasts only: test forecasts and test targets may be
anything, and neither the weights nor the validation forecasts move; the test forecasts are the weighted
members'. (The fast tier's guard; test_robust.py checks the same on a real walk-forward arena.)"""

import numpy as np
import pandas as pd
import pytest

from tsarena.contestants.ensemble import combine
from tsarena.contestants.predictions import predictions_frame

VAL, TEST = np.arange(100, 160), np.arange(160, 220)
MEMBERS = ["good", "noisy"]


def arena(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two members on one fold: `good` tracks the target closely, `noisy` loosely."""
    rng = np.random.default_rng(seed)
    targets = rng.normal(0, 0.01, 300)
    tables = []
    for name, noise in zip(MEMBERS, (0.002, 0.02)):
        forecasts = {split: (rows, targets[rows] + rng.normal(0, noise, len(rows))) for split, rows in
                     (("val", VAL), ("test", TEST))}
        tables.append(predictions_frame(name, 1, 42, forecasts))
    return pd.concat(tables, ignore_index=True), targets


@pytest.mark.parametrize("method", ["inverse_mse", "stacking"])
def test_weights_are_fit_on_validation_forecasts_only(method):
    table, targets = arena()
    combined, weights = combine(table, MEMBERS, targets, method)
    assert weights["1/42"]["good"] > weights["1/42"]["noisy"] and sum(weights["1/42"].values()) == pytest.approx(1)
    # any test forecasts and test targets: the same weights, the same validation forecasts
    scrambled, moved = table.copy(), targets.copy()
    test = scrambled["split"] == "test"
    scrambled.loc[test, "forecast"] = np.random.default_rng(1).normal(0, 1, int(test.sum()))
    moved[TEST] = -moved[TEST] * 100
    again, same = combine(scrambled, MEMBERS, moved, method)
    assert same == weights
    val = combined["split"] == "val"
    assert np.array_equal(again.loc[val, "forecast"], combined.loc[val, "forecast"])
    # the ensemble's test forecast is the weighted members' test forecasts, every test row once
    test_rows = again[again["split"] == "test"]
    assert np.array_equal(test_rows["row"], TEST)
    wide = scrambled[scrambled["split"] == "test"].pivot(index="row", columns="model", values="forecast")
    expected = sum(wide[m] * w for m, w in same["1/42"].items())
    assert np.allclose(test_rows["forecast"], expected.loc[TEST])
    # and the validation targets do move the weights: the test above could fail
    flipped = targets.copy()
    flipped[VAL] = table[(table["model"] == "noisy") & (table["split"] == "val")]["forecast"].to_numpy()
    assert combine(table, MEMBERS, flipped, method)[1]["1/42"]["noisy"] > weights["1/42"]["noisy"]
