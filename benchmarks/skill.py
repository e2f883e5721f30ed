"""Benchmark 7: do the shipped defaults find a planted signal, and only where there is one?

Planted: AR(1) returns (phi, several lengths, 5 data seeds each); noise: gbm prices. Every architecture
trains with the defaults (tuning off), one training seed, on the single split; the data, the
features, the split, the baselines and the oracle come from the real pipeline (`dvc repro baselines`
in a fresh copy of this repo per data set) and the scoring is evaluate's own (`judging.referee.judge`).
Data seeds start at 1000: the tests use small seeds, so nothing here is tuned on what they check.

Per architecture: share of the oracle's skill (mean, min and max over data seeds), how many seeds
show a significant DM test (p < 0.05, one-sided, against the random walk), and on noise how often
its Holm-adjusted p is below 0.05 (false skill); and per noise seed whether SPA rejects.

    python benchmarks/skill.py [--days 2000 4000] [--phi 0.3] [--seeds 5] [--noise-seeds 5]
        [--models mlp nbeats] [--set mlp.dropout=0.3 --set train.weight_decay=0.01] [--name skill]
        [--cache /tmp/skill-data]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from common import save, table
from pipeline import BIN, fresh_repo, sh
from tsarena.contestants.baselines import BENCHMARK
from tsarena.contestants.producers import ORACLE, SPLIT, predictions_path
from tsarena.contestants.registry import architecture_names, params_class
from tsarena.fitting.params import TrainParams
from tsarena.fitting.pool import FitTask, run_tasks
from tsarena.judging.metrics import DM_PVALUE, DM_PVALUE_HOLM, RMSE, SHARE_OF_ORACLE, SKILL_VS_RW
from tsarena.judging.referee import judge
from tsarena.judging.report import comparison_table
from tsarena.judging.scoring import test_frame
from tsarena.split.windows import read_meta, write_scaled_fold

FIRST_SEED = 1000
LEVEL = 0.05


def overrides(pairs: list[str]) -> dict[str, dict]:
    """`section.key=value` (value as YAML) into {section: {key: value}}."""
    out: dict[str, dict] = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = yaml.safe_load(value)
    return out


def data_sets(days: list[int], phis: list[float], seeds: int, noise_seeds: int, noise_days: int,
              first_seed: int = FIRST_SEED) -> list[dict]:
    planted = [{"kind": "ar1", "phi": phi, "n_days": n, "seed": first_seed + s}
               for phi in phis for n in days for s in range(seeds)]
    noise = [{"kind": "gbm", "phi": 0.0, "n_days": noise_days, "seed": first_seed + s} for s in range(noise_seeds)]
    return planted + noise


def prepare(data: dict, cache: Path | None) -> Path:
    """A fresh repo with this data set; the pipeline up to the baselines (and oracle), run by DVC.
    With `cache`, a data set prepared before (same data, same code) is reused: probes compare
    training settings on identical data without paying for the pipeline again."""
    if cache is not None:
        kept = cache / "-".join(f"{k}{v}" for k, v in data.items())
        if (kept / SPLIT).exists():
            return kept
    work = fresh_repo("tsarena-skill-", data={"source": "synthetic", "synthetic": {**data, "n_series": 1}})
    sh(work, str(BIN / "dvc"), "repro", "baselines")
    if cache is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(kept, ignore_errors=True)
        shutil.move(work, kept)
        return kept
    return work


def tasks_for(work: Path, models: list[str], set_: dict[str, dict]) -> list[FitTask]:
    split = work / SPLIT
    matrix = write_scaled_fold(split, 1, work / "fold_1.npy")
    train = TrainParams.model_validate(set_.get("train", {})).model_dump(mode="json")
    seed = train["seeds"][0]
    return [FitTask(name, 1, seed, params_class(name).model_validate(set_.get(name, {})).model_dump(mode="json"),
                    train, str(split), str(matrix), str(work / f"{name}.parquet")) for name in models]


def score(work: Path, models: list[str]) -> dict:
    """evaluate's judgement and the report's table (skill and share of the oracle's, as comparison.md)."""
    meta = read_meta(work / SPLIT)
    tables = [pd.read_parquet(work / predictions_path(ORACLE))] + [pd.read_parquet(work / f"{m}.parquet")
                                                                   for m in models]
    frame = test_frame(pd.concat(tables, ignore_index=True), pd.read_parquet(work / SPLIT / "rows.parquet"))
    judged = judge(frame, meta["target_kind"], meta["horizon"], 1.0, None, 1000, 0)
    rows = comparison_table(judged.metrics, RMSE).set_index("model")
    oracle = rows[SKILL_VS_RW].get(ORACLE)
    share = rows[SHARE_OF_ORACLE] / 100 if SHARE_OF_ORACLE in rows else pd.Series(dtype=float)

    def value(series: pd.Series, name: str) -> float | None:
        return None if name not in series or pd.isna(series[name]) else float(series[name])

    return {"oracle_skill": None if oracle is None else float(oracle), "spa": judged.verdicts["spa_pvalues"]["consistent"],
            "models": {m: {"skill": value(rows[SKILL_VS_RW], m), "dm": value(rows[DM_PVALUE], m),
                           "holm": value(rows[DM_PVALUE_HOLM], m), "share": value(share, m)}
                       for m in [*models, BENCHMARK, "ar", "ridge_last", "linear"] if m in rows.index}}


def summarise(results: list[dict], models: list[str]) -> list[dict]:
    rows = []
    for name in [*models, "ar", "ridge_last", "linear"]:
        row = {"model": name}
        for n_days in sorted({r["data"]["n_days"] for r in results if r["data"]["kind"] == "ar1"}):
            planted = [r for r in results if r["data"]["kind"] == "ar1" and r["data"]["n_days"] == n_days]
            shares = [100 * r["models"][name]["share"] for r in planted]
            hits = sum(r["models"][name]["dm"] is not None and r["models"][name]["dm"] < LEVEL for r in planted)
            row[f"share_{n_days}"] = f"{np.mean(shares):.0f}% [{min(shares):.0f}, {max(shares):.0f}]"
            row[f"dm<.05_{n_days}"] = f"{hits}/{len(planted)}"
        noise = [r for r in results if r["data"]["kind"] == "gbm"]
        if noise:
            false = sum(r["models"][name]["holm"] is not None and r["models"][name]["holm"] < LEVEL for r in noise)
            row["false_skill"] = f"{false}/{len(noise)}"
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", nargs="+", type=int, default=[2000, 4000])
    parser.add_argument("--phi", nargs="+", type=float, default=[0.3])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--noise-seeds", type=int, default=5)
    parser.add_argument("--noise-days", type=int, default=2000)
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--set", nargs="*", default=[], help="section.key=value: a default changed for this run")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--name", default="skill")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED,
                        help="data seeds from here: another value checks defaults on data they were not chosen on")
    parser.add_argument("--cache", type=Path, default=None, help="keep prepared data sets here and reuse them")
    args = parser.parse_args()
    models, set_ = args.models or architecture_names(), overrides(args.set)
    sets = data_sets(args.days, args.phi, args.seeds, args.noise_seeds, args.noise_days, args.first_seed)
    works = [prepare(d, args.cache) for d in sets]
    print(f"{len(sets)} data sets prepared; {len(sets) * len(models)} fits, {args.jobs} at a time", flush=True)
    tasks = [t for w in works for t in tasks_for(w, models, set_)]
    done = [0]

    def progress(i: int, result) -> None:
        done[0] += 1
        if done[0] % len(models) == 0:
            print(f"  {done[0]}/{len(tasks)} fits", flush=True)

    run_tasks(tasks, args.jobs, 1, on_done=progress)
    results = [{"data": d, **score(w, models)} for d, w in zip(sets, works)]
    for work in works:
        if args.cache is None:
            shutil.rmtree(work, ignore_errors=True)
    rows = summarise(results, models)
    columns = list(rows[0])
    print(table(rows, columns))
    noise = [r for r in results if r["data"]["kind"] == "gbm"]
    if noise:
        print(f"SPA rejects (p < {LEVEL}) on {sum(r['spa'] < LEVEL for r in noise)}/{len(noise)} noise data sets")
    oracle = [r["oracle_skill"] for r in results if r["oracle_skill"] is not None]
    if oracle:
        print(f"oracle skill: {np.mean(oracle):+.2f}% mean over planted data sets")
    print("->", save(args.name, {"args": vars(args), "rows": rows, "results": results}))


if __name__ == "__main__":
    main()
