"""Benchmark 6: the whole arena, cold, on the default data: every registered architecture x 3 seeds
x 4 walk-forward folds (tuning off: tune.trials 0), `dvc repro` from nothing, once per train.jobs
value, each in its own fresh copy of this repo (git + DVC + its own MLflow store). The forecasts of
the runs are compared: train.jobs must change the time, never a number.

    python benchmarks/arena.py [--jobs 1 auto] [--models lstm tcn ...] [--seeds 0 1 2] [--folds 4]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil

from common import save, table
from pipeline import BIN, fresh_repo, sh
from tsarena.contestants.registry import architecture_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", nargs="+", default=["1", "auto"])
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()
    models = args.models or architecture_names()
    rows, digests = [], {}
    for jobs in args.jobs:
        work = fresh_repo("tsarena-arena-", arena={"models": models}, window={"folds": args.folds},
                          train={"seeds": args.seeds, "jobs": jobs if jobs == "auto" else int(jobs)})
        seconds, out = sh(work, str(BIN / "dvc"), "repro")
        fits = sum(int(n) for n in re.findall(r"train@\w+: (\d+) fit\(s\), ", out))
        in_parallel = sorted(set(re.findall(r"fit\(s\), (\d+) at a time", out)))
        digests[jobs] = {p.name: hashlib.md5(p.read_bytes()).hexdigest()
                         for p in sorted((work / "data/predictions").glob("*.parquet"))}
        rows.append({"train.jobs": jobs, "processes": ",".join(in_parallel), "models": len(models), "fits": fits,
                     "seconds": round(seconds, 1), "minutes": round(seconds / 60, 1)})
        print(rows[-1], flush=True)
        shutil.rmtree(work, ignore_errors=True)
    same = all(d == digests[args.jobs[0]] for d in digests.values())
    for row in rows:
        row["speedup"] = round(rows[0]["seconds"] / row["seconds"], 2)
    print(table(rows, ["train.jobs", "processes", "models", "fits", "seconds", "minutes", "speedup"]))
    print(f"forecasts identical across train.jobs values: {same}")
    print("->", save("arena" if not args.models else "arena_subset",
                     {"models": models, "seeds": args.seeds, "folds": args.folds, "rows": rows,
                      "forecasts_identical": same, "forecast_md5": digests}))


if __name__ == "__main__":
    main()
