"""Benchmark 8: do the prediction intervals cover what they say, for every producer?

Gaussian AR(1) data (phi 0.3) and the `regime` source (volatility switching between 0.7% and 2% a
day), 5 data seeds each (from 1000: the tests use small seeds). Data, split, baselines and oracle come
from the real pipeline (benchmarks/skill.py's `prepare`); every architecture trains with the shipped
defaults, and the ensemble (inverse_mse) combines them; the intervals are evaluate's own (`judging.intervals.attach`). Per producer: test coverage of
the 90% interval, split conformal and adaptive, averaged over seeds (min and max beside); on the
regime data also per regime (the state the target's day was drawn in).

    python benchmarks/intervals.py [--days 2000] [--seeds 5] [--models mlp lstm] [--cache /tmp/skill-data]
        [--reuse-fits]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from common import save, table
from skill import FIRST_SEED, prepare, tasks_for
from tsarena.contestants.baselines import BASELINES
from tsarena.contestants.ensemble import combine
from tsarena.contestants.producers import ORACLE, SPLIT, predictions_path
from tsarena.contestants.registry import architecture_names
from tsarena.data.params import SyntheticParams
from tsarena.data.sources import regime_states
from tsarena.fitting.pool import run_tasks
from tsarena.judging.intervals import ADAPTIVE, STATIC, attach, bound_columns
from tsarena.judging.intervals import UncertaintyParams
from tsarena.split.windows import read_meta

LEVEL = 0.9


def coverage(work: Path, models: list[str], data: dict) -> dict:
    """Per producer and method: 90% coverage on test, overall and (regime data) per state."""
    unc, meta = UncertaintyParams(), read_meta(work / SPLIT)
    rows = pd.read_parquet(work / SPLIT / "rows.parquet")
    members = pd.concat([pd.read_parquet(work / f"{m}.parquet") for m in models], ignore_index=True)
    ensemble, _ = combine(members, models, rows["target"].to_numpy(dtype=float), "inverse_mse")
    tables = [pd.read_parquet(work / predictions_path(ORACLE)), members, ensemble]
    test = attach(pd.concat(tables, ignore_index=True), rows["target"].to_numpy(dtype=float), rows["ticker"].to_numpy(),
                  unc.levels, unc.gamma, unc.window, meta["horizon"])
    test["actual"] = rows["target"].to_numpy(dtype=float)[test["row"].to_numpy()]
    state = None
    if data["kind"] == "regime":  # the target at date t is the return into t + 1: that day's state drew it
        states = regime_states(SyntheticParams(kind="regime", n_days=data["n_days"], n_series=1, seed=data["seed"]))
        following = states.set_index("date")["state"].shift(-1)
        state = following.reindex(rows["date"].to_numpy()[test["row"].to_numpy()]).to_numpy()
    out = {}
    for name, part in test.groupby("model", sort=False):
        inside = {m: ((part["actual"] >= part[bound_columns(m, LEVEL)[0]])
                      & (part["actual"] <= part[bound_columns(m, LEVEL)[1]])).to_numpy() for m in (STATIC, ADAPTIVE)}
        out[name] = {m: float(v.mean()) for m, v in inside.items()}
        if state is not None:
            mine = state[part.index.to_numpy()]
            out[name].update({f"{m}_regime{k}": float(v[mine == k].mean()) for m, v in inside.items() for k in (0, 1)})
    return out


def summarise(results: list[dict], names: list[str], kind: str) -> list[dict]:
    rows = []
    for name in names:
        planted = [r["coverage"][name] for r in results if r["data"]["kind"] == kind and name in r["coverage"]]
        if not planted:
            continue
        row = {"producer": name}
        keys = [k for k in planted[0] if k in (STATIC, ADAPTIVE) or kind == "regime"]
        for key in keys:
            values = [100 * p[key] for p in planted]
            row[key] = f"{np.mean(values):.1f}% [{min(values):.0f}, {max(values):.0f}]"
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--name", default="intervals")
    parser.add_argument("--cache", type=Path, default=None, help="keep prepared data sets here and reuse them")
    parser.add_argument("--reuse-fits", action="store_true",
                        help="with --cache: score the fits a previous run left there (same code) instead of refitting")
    args = parser.parse_args()
    models = args.models or architecture_names()
    sets = [{"kind": kind, "phi": 0.3 if kind == "ar1" else 0.0, "n_days": args.days, "seed": FIRST_SEED + s}
            for kind in ("ar1", "regime") for s in range(args.seeds)]
    works = [prepare(d, args.cache) for d in sets]
    tasks = [t for w in works for t in tasks_for(w, models, {})]
    if not (args.reuse_fits and all(Path(t.forecasts).is_file() for t in tasks)):
        print(f"{len(sets)} data sets prepared; {len(tasks)} fits, {args.jobs} at a time", flush=True)
        run_tasks(tasks, args.jobs, 1)
    results = [{"data": d, "coverage": coverage(w, models, d)} for d, w in zip(sets, works)]
    names = [*models, "ensemble", *BASELINES, ORACLE]
    for kind in ("ar1", "regime"):
        rows = summarise(results, names, kind)
        print(f"\n{kind}: {LEVEL:.0%} interval coverage on test, mean [min, max] over {args.seeds} data seeds"
              + (" (regime0 calm, regime1 volatile)" if kind == "regime" else ""))
        print(table(rows, list(rows[0])))
    print("->", save(args.name, {"args": vars(args), "results": results}))


if __name__ == "__main__":
    main()
