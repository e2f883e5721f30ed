"""Benchmark 10: does every architecture that finds a planted AR(1) say so in its attributions?

The issue's check, on the whole zoo and data seeds the tests never use: AR(1) returns (only the last
row's one-day return carries the signal), the feature set without other names for that return (as in
tests/test_explain.py), the real pipeline (`dvc repro` in a fresh copy of this repo per data seed, the
explain stage on). Per contestant with significant skill (Holm-adjusted DM p < 0.05): the share of its
total |integrated gradients| on the last row's `log_return` (networks; the bar is 50%), whether
permutation ranks `log_return` first, and the completeness error.

    python benchmarks/attributions.py [--seeds 1000 1001] [--days 4000] [--epochs 8] [--models lstm tcn]

`--linear` instead asks what the bar asks of a model that is exactly what integrated gradients
credits (a linear one: attribution = coefficient x input, completeness exact): least squares and
ridge (penalty chosen on validation, as the `linear` baseline) on the last L rows of the same windows.
Only the pipeline's split runs; seconds per data seed.
"""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pandas as pd

from common import save, table
from pipeline import BIN, fresh_repo, sh
from tsarena.contestants.baselines import choose_on_validation
from tsarena.contestants.params import BaselineParams
from tsarena.contestants.registry import architecture_names
from tsarena.split.windows import load_fold, windows_at

FEATURES = {"return_lags": [1, 21], "volatility_windows": [5], "ma_windows": [], "rsi_window": None, "macd": None,
            "volume_window": 10, "high_low_range": False}


def one_seed(seed: int, days: int, epochs: int, models: list[str]) -> list[dict]:
    work = fresh_repo(f"tsarena-bench-attr-{seed}-",
                      data={"source": "synthetic", "synthetic": {"kind": "ar1", "n_days": days, "phi": 0.3,
                                                                 "n_series": 1, "seed": seed}},
                      features=FEATURES, arena={"models": models, "ensemble": "inverse_mse"},
                      train={"max_epochs": epochs, "jobs": 2}, explain={"enabled": True, "windows": 300})
    try:
        sh(work, str(BIN / "dvc"), "repro")
        scores = json.loads((work / "data/eval/scores.json").read_text())
        summary = json.loads((work / "data/explain/summary.json").read_text())["producers"]
        rows = []
        for name, found in summary.items():
            p = scores.get(name, {}).get("dm_pvalue_holm")
            row = {"seed": seed, "model": name, "dm_p_holm": f"{p:.2g}" if p is not None else "-",
                   "skill": p is not None and p < 0.05, "perm_top": found["top_feature"], "last_return_share": "-",
                   "top_cell": "-", "ig_top_feature": "-", "completeness_pct": "-"}
            lag_map_path = work / f"data/explain/{name}/lag_map.csv"
            if lag_map_path.exists():
                lag_map = pd.read_csv(lag_map_path)
                cells = lag_map.drop(columns="lag")
                share = cells.loc[lag_map["lag"] == 0, "log_return"].iloc[0] / cells.to_numpy().sum()
                lag, feature = np.unravel_index(np.argmax(cells.to_numpy()), cells.shape)
                row.update(last_return_share=round(float(share), 3),
                           top_cell=f"{cells.columns[feature]}@lag{lag_map['lag'].iloc[lag]}",
                           ig_top_feature=cells.sum(axis=0).idxmax(),
                           completeness_pct=f"{100 * found['ig_completeness_error']:.2g}")
            rows.append(row)
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def linear_shares(seed: int, days: int, lookbacks: list[int]) -> list[dict]:
    """Least squares and validation-chosen ridge on each lookback: their share of total |coef x input| over
    the test windows on the last row's log_return, and their RMSE skill over the zero forecast there."""
    work = fresh_repo(f"tsarena-bench-attr-linear-{seed}-",
                      data={"source": "synthetic", "synthetic": {"kind": "ar1", "n_days": days, "phi": 0.3,
                                                                 "n_series": 1, "seed": seed}}, features=FEATURES)
    try:
        sh(work, str(BIN / "dvc"), "repro", "split")
        windows = load_fold(work / "data/split", 1)
        features = windows.meta["features"]
        x = windows_at(windows.matrix, windows.ends["test"], windows.seq_len).astype(float)
        y = windows.targets[windows.ends["test"]]
        rows = []
        for lookback in lookbacks:
            for label, alphas in (("least squares", [1e-8]), ("ridge (val)", BaselineParams().ridge_alphas)):
                fit = choose_on_validation([(None, a) for a in alphas],
                                           lambda _, w, lb=lookback: w[:, -lb:].reshape(len(w), -1), windows)
                cells = np.abs(fit.coef * x).mean(axis=0)  # mean |attribution| per (row, feature), as lag_map
                share = cells[-1, features.index("log_return")] / cells.sum()
                skill = 1 - np.sqrt(np.mean((fit.predict(x) - y) ** 2) / np.mean(y**2))
                rows.append({"seed": seed, "lookback": lookback, "fit": label, "inputs": lookback * len(features),
                             "chose": fit.chose.get("alpha"), "skill_pct": round(100 * float(skill), 2),
                             "last_return_share": round(float(share), 3)})
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000, 1001])
    parser.add_argument("--days", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=architecture_names())
    parser.add_argument("--linear", action="store_true", help="the linear reference only (no networks)")
    parser.add_argument("--lookbacks", type=int, nargs="+", default=[1, 2, 3, 5, 20, 60])
    args = parser.parse_args()
    if args.linear:
        rows = [row for seed in args.seeds for row in linear_shares(seed, args.days, args.lookbacks)]
        print(table(rows, list(rows[0])))
        print("->", save("attributions_linear", {"args": vars(args), "rows": rows}))
        return
    rows = [row for seed in args.seeds for row in one_seed(seed, args.days, args.epochs, args.models)]
    print(table(rows, ["seed", "model", "dm_p_holm", "skill", "perm_top", "last_return_share", "top_cell",
                       "ig_top_feature", "completeness_pct"]))
    networks = [r for r in rows if r["skill"] and r["last_return_share"] != "-"]
    met = [r for r in networks if r["last_return_share"] >= 0.5]
    first = [r for r in rows if r["skill"] and r["perm_top"] == "log_return"]
    top = [r for r in networks if r["top_cell"] == "log_return@lag0" and r["ig_top_feature"] == "log_return"]
    print(f"networks with skill whose largest cell is the last log_return and whose top feature by |IG| is "
          f"log_return: {len(top)} of {len(networks)}")
    print(f"networks with skill holding >= 50% on the last log_return: {len(met)} of {len(networks)}; "
          f"contestants with skill ranking log_return first by permutation: {len(first)} of "
          f"{sum(r['skill'] for r in rows)}")
    print("->", save("attributions", {"args": vars(args), "rows": rows}))


if __name__ == "__main__":
    main()
