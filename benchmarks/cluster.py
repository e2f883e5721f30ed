"""Benchmark 11: the Ray backend against the local pool on this machine (issue #29).

A Ray cluster is started here with `ray start --head` (all cores as its CPUs) and used through
`train.ray_address`, as a team would use a real one; the local pool runs with `train.jobs: auto`. Both
have the same cores, so the difference is Ray's cost: scheduling, the object store, worker start-up.

- `--overhead`: one architecture, many short fits (`--fits` = folds x seeds, 1 epoch each), `dvc repro -f -s
  train@<model>` timed `--rounds` times per backend, alternating local and ray; the overhead per fit is the
  difference of the medians x the parallel fits / the fits.
- `--arena`: the whole arena cold (every architecture x 3 seeds x 4 folds, as benchmark 0/6), once per backend,
  in fresh copies; forecasts compared (the backend must never change a number).

    python benchmarks/cluster.py --overhead [--fits 16] [--rounds 3]
    python benchmarks/cluster.py --arena [--models lstm tcn ...]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

from common import edit_params, median, save, table
from pipeline import BIN, fresh_repo, sh
from tsarena.contestants.registry import architecture_names
from tsarena.fitting.pool import cores


class Head:
    """A one-node Ray cluster with every core, started with `ray start` for the benchmark."""

    def __init__(self, src: str):
        self.temp = tempfile.mkdtemp(prefix="rayb", dir="/tmp")
        self.address = "127.0.0.1:6391"
        env = {**os.environ, "PYTHONPATH": src}
        subprocess.run([str(BIN / "ray"), "start", "--head", "--port=6391", f"--num-cpus={cores()}",
                        "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={self.temp}"],
                       env=env, check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True)
        shutil.rmtree(self.temp, ignore_errors=True)


def forecast_md5(work) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted((work / "data/predictions").glob("*.parquet"))}


def overhead(fits: int, rounds: int) -> dict:
    folds = 4
    seeds = list(range(fits // folds))
    small = dict(features={"return_lags": [1, 5], "volatility_windows": [5], "ma_windows": [5, 10], "macd": None},
                 window={"seq_len": 10, "folds": folds})
    work = fresh_repo("tsarena-cluster-", arena={"models": ["lstm"]}, **small,
                      data={"source": "synthetic", "synthetic": {"kind": "ar1", "n_days": 3000, "seed": 3}},
                      train={"max_epochs": 1, "seeds": seeds, "jobs": "auto"},
                      lstm={"hidden_size": 16, "num_layers": 1}, explain={"enabled": False})
    sh(work, str(BIN / "dvc"), "repro", "train@lstm")
    head = Head(str(work / "src"))
    times: dict[str, list[float]] = {"local": [], "ray": []}
    md5 = {}
    try:
        for _ in range(rounds):
            for backend in ("local", "ray"):
                edit_params(work, train={"backend": backend, "ray_address": head.address})
                seconds, out = sh(work, str(BIN / "dvc"), "repro", "-f", "-s", "train@lstm")
                times[backend].append(seconds)
                md5[backend] = forecast_md5(work)
                print(backend, round(seconds, 1), re.findall(r"train@lstm: \d+ fit\(s\), [^\n]*", out), flush=True)
    finally:
        head.stop()
        shutil.rmtree(work, ignore_errors=True)
    local, ray = median(times["local"]), median(times["ray"])
    parallel = min(cores(), fits)
    row = {"fits": fits, "parallel": parallel, "local_s": round(local, 1), "ray_s": round(ray, 1),
           "ray_over_local": round(ray / local, 2), "overhead_per_fit_s": round((ray - local) * parallel / fits, 2)}
    print(table([row], list(row)))
    return {"rows": [row], "times": times, "forecasts_identical": md5["local"] == md5["ray"]}


def arena(models: list[str]) -> dict:
    rows, md5 = [], {}
    for backend in ("local", "ray"):
        work = fresh_repo("tsarena-arena-ray-", arena={"models": models}, window={"folds": 4},
                          train={"seeds": [0, 1, 2], "jobs": "auto", "backend": backend})
        head = Head(str(work / "src")) if backend == "ray" else None
        try:
            if head:
                edit_params(work, train={"ray_address": head.address})
            seconds, out = sh(work, str(BIN / "dvc"), "repro")
        finally:
            if head:
                head.stop()
        fits = sum(int(n) for n in re.findall(r"train@\w+: (\d+) fit\(s\), ", out))
        md5[backend] = forecast_md5(work)
        rows.append({"backend": backend, "models": len(models), "fits": fits, "seconds": round(seconds, 1),
                     "minutes": round(seconds / 60, 1)})
        print(rows[-1], flush=True)
        shutil.rmtree(work, ignore_errors=True)
    for row in rows:
        row["vs_local"] = round(row["seconds"] / rows[0]["seconds"], 2)
    print(table(rows, ["backend", "models", "fits", "seconds", "minutes", "vs_local"]))
    same = md5["local"] == md5["ray"]
    print(f"forecasts identical across backends: {same}")
    return {"rows": rows, "forecasts_identical": same, "forecast_md5": md5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--overhead", action="store_true")
    parser.add_argument("--arena", action="store_true")
    parser.add_argument("--fits", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=None)
    args = parser.parse_args()
    if args.overhead:
        print("->", save("cluster_overhead", overhead(args.fits, args.rounds)))
    if args.arena:
        models = args.models or architecture_names()
        print("->", save("cluster_arena" if not args.models else "cluster_arena_subset", {"models": models,
                                                                                           **arena(models)}))


if __name__ == "__main__":
    main()
