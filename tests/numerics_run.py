"""Run by test_numerics.py in a subprocess, as a stage runs: the pin first (params.yaml in the working
directory), then the numbers tsarena tracks, from data to fit: synthetic prices (numpy's exp) and their
features, the linear baseline's least squares (OpenBLAS), and an LSTM and a Transformer fit through
the real engine in the worker pool's two processes (PyTorch, MKL, oneDNN). Prints each one's md5 as JSON.

Usage: python numerics_run.py <split folder> <scratch folder>
"""

import tsarena.core.pinned  # noqa: F401  first, as in every pipeline/<stage>.py

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.contestants.baselines import ridge
from tsarena.data.features import build_features
from tsarena.data.params import SyntheticParams
from tsarena.data.sources import synthetic_prices
from tsarena.fitting.pool import FitTask, run_tasks
from tsarena.split.windows import load_fold, write_scaled_fold


def md5(array: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(array).tobytes()).hexdigest()


def main(split: str, scratch: Path) -> dict[str, str]:
    params = config.load("features", "train", "lstm", "transformer")
    prices = synthetic_prices(SyntheticParams(kind="ar1", n_days=600, seed=3), None)
    table, names = build_features(prices, params["features"])
    matrix = write_scaled_fold(split, 1, scratch / "fold_1.npy")
    linear = ridge(load_fold(split, 1, scaled=matrix), [0.1, 10.0], last_row_only=False)
    train = params["train"].model_dump(mode="json")
    tasks = [FitTask(name, 1, 42, params[name].model_dump(mode="json"), train, split, str(matrix),
                     str(scratch / f"{name}.parquet")) for name in ("lstm", "transformer")]
    results = run_tasks(tasks, 2, 1)
    out = {"mode": os.environ["TSARENA_NUMERICS"], "prices": md5(prices[["open", "high", "low", "close"]].to_numpy()),
           "features": md5(table[names].to_numpy()),
           "linear": md5(np.append(linear.coef, linear.intercept))}
    for task, result in zip(tasks, results):
        out[task.name] = md5(pd.read_parquet(task.forecasts)["forecast"].to_numpy())
        out[f"{task.name} weights"] = hashlib.md5(result.state).hexdigest()
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], Path(sys.argv[2]))))
