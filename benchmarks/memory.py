"""Benchmark 4: memory at scale. A synthetic panel of 200 series x 5,000 days (1M rows) through
ingest, feature, split and one training epoch of the default LSTM, each stage in its own
process. Reports peak RSS and wall time per stage.

What a stage needs whatever the data size (interpreter, torch, Lightning, MLflow, the lazy
imports of torch.export when the model is logged) is measured by running the same stage on a
2-series panel; the data-proportional part, peak(1M rows) - peak(2 series), must stay below
2 x (feature matrix + model) for feature, split and training (no samples x L x features copy).

With --architectures, instead of the stages after split: one fit of every registered
architecture on that 1M-row fold, as a train@ worker runs it (benchmarks/fit_memory.py), against
the same fit on the 2-series panel. With --jobs, train@dlinear (2 seeds, 1 epoch) with
train.jobs 1 and 2: the peak of the whole process tree's proportional set size (PSS: a page shared
by k processes counts 1/k in each), sampled every 0.1 s, so the matrix mapped by both workers
counts once.

    python benchmarks/memory.py [--series 200] [--days 5000] [--architectures] [--jobs]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from common import edit_params, save, table

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024


def run(cwd: Path, *args: str) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(HERE / "peak_rss.py"), *args], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "CI": "true",
                               "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db", "HOME": str(Path.home()),
                               "PYTHONPATH": str(ROOT / "src")})  # this checkout, whatever is installed
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{args} failed:\n{proc.stderr[-3000:]}")
    return seconds, float(re.findall(r"peak_rss_mib ([\d.]+)", proc.stderr)[-1])


def tree_pss_mib(root: int) -> float:
    """PSS of `root` and every descendant (Linux /proc), MiB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))
    return total / 1024


def peak_tree_pss(cwd: Path, *args: str) -> tuple[float, float]:
    """Run a stage script; its wall time and the peak PSS of its process tree."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "CI": "true", "HOME": str(Path.home()),
           "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db", "PYTHONPATH": str(ROOT / "src")}
    start, peak = time.perf_counter(), 0.0
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    while proc.poll() is None:
        peak = max(peak, tree_pss_mib(proc.pid))
        time.sleep(0.1)
    if proc.returncode:
        raise SystemExit(f"{args} failed:\n{proc.stderr.read()[-3000:]}")
    return time.perf_counter() - start, peak


def setup(days: int, series: int) -> Path:
    work = Path(tempfile.mkdtemp(prefix="tsarena-mem-"))
    shutil.copytree(ROOT / "pipeline", work / "pipeline")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(source="synthetic", synthetic={**params["data"]["synthetic"], "kind": "gbm",
                                                          "n_series": series, "n_days": days})
    params["train"].update(max_epochs=1, accelerator="cpu")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--days", type=int, default=5000)
    parser.add_argument("--architectures", action="store_true")
    parser.add_argument("--jobs", action="store_true")
    args = parser.parse_args()
    work = setup(args.days, args.series)
    if args.architectures or args.jobs:
        return per_fit(work, setup(args.days, 2), args)

    stages = [("ingest", ["pipeline/ingest.py"]), ("feature", ["pipeline/feature.py"]),
              ("split", ["pipeline/split.py"]), ("train@lstm (1 epoch)", ["pipeline/train.py", "lstm"])]
    small = setup(args.days, 2)
    baseline = {stage: run(small, *script)[1] for stage, script in stages}
    rows = []
    for stage, script in stages:
        seconds, peak = run(work, *script)
        rows.append({"stage": stage, "seconds": round(seconds, 1), "peak_rss_mib": round(peak),
                     "two_series_mib": round(baseline[stage]), "added_mib": round(peak - baseline[stage])})

    matrix = np.load(work / "data/split/features.npy", mmap_mode="r")
    import torch

    model_bytes = torch.load(work / "data/models/lstm/bundle/member_0.pt", weights_only=True)
    model_bytes = sum(t.numel() * t.element_size() for t in model_bytes.values())
    bound = 2 * (matrix.nbytes + model_bytes) / MIB
    for row in rows:
        row["within_bound"] = "n/a (not bounded)" if row["stage"] == "ingest" else row["added_mib"] < bound
    print(table(rows, ["stage", "seconds", "peak_rss_mib", "two_series_mib", "added_mib", "within_bound"]))
    print(f"rows {matrix.shape[0]:,}, features {matrix.shape[1]}, feature matrix {matrix.nbytes / MIB:.1f} MiB, "
          f"model {model_bytes / MIB:.2f} MiB, bound 2 x (matrix + model) = {bound:.1f} MiB")
    print("->", save("memory", {"series": args.series, "days": args.days, "rows": rows, "matrix_mib": matrix.nbytes / MIB,
                                "model_mib": model_bytes / MIB, "bound_mib": bound}))
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(small, ignore_errors=True)


def per_fit(work: Path, small: Path, args) -> None:
    """Every architecture's fit at 1M rows (--architectures) and a stage's workers (--jobs)."""
    for folder in (work, small):
        for script in ("pipeline/ingest.py", "pipeline/feature.py", "pipeline/split.py"):
            run(folder, script)
    matrix = np.load(work / "data/split/features.npy", mmap_mode="r")
    matrix_mib = matrix.nbytes / MIB
    payload = {"series": args.series, "days": args.days, "rows": matrix.shape[0], "matrix_mib": matrix_mib}
    if args.architectures:
        from tsarena.contestants.registry import architecture_names

        rows = []
        for name in architecture_names():
            seconds, peak = run(work, str(HERE / "fit_memory.py"), "data/split", name)
            base = run(small, str(HERE / "fit_memory.py"), "data/split", name)[1]
            rows.append({"model": name, "seconds": round(seconds, 1), "peak_rss_mib": round(peak),
                         "two_series_mib": round(base), "added_mib": round(peak - base),
                         "added_beyond_matrix_mib": round(peak - base - matrix_mib),
                         "within_2x_matrix": peak - base < 2 * matrix_mib})
            print(rows[-1], flush=True)
        print(table(rows, ["model", "seconds", "peak_rss_mib", "two_series_mib", "added_mib",
                           "added_beyond_matrix_mib", "within_2x_matrix"]))
        payload["architectures"] = rows
        print("->", save("memory_fits", payload))
    if args.jobs:
        rows = []
        for folder in (work, small):
            run(folder, "pipeline/tune.py", "dlinear")
        for jobs in (1, 2):
            for label, folder in (("1M rows", work), ("2 series", small)):
                edit_params(folder, train={"seeds": [0, 1], "jobs": jobs, "max_epochs": 1})
                seconds, peak = peak_tree_pss(folder, "pipeline/train.py", "dlinear")
                rows.append({"train.jobs": jobs, "data": label, "seconds": round(seconds, 1), "peak_pss_mib": round(peak)})
                print(rows[-1], flush=True)
        print(table(rows, ["train.jobs", "data", "seconds", "peak_pss_mib"]))
        peak = {(r["train.jobs"], r["data"]): r["peak_pss_mib"] for r in rows}
        # what one fit adds with the data: the 1-job stage at 1M rows over 2 series, less the matrix it maps
        one_fit = peak[1, "1M rows"] - peak[1, "2 series"] - matrix_mib
        bound = peak[2, "2 series"] + 2 * one_fit + matrix_mib
        print(f"one fit adds {one_fit:.0f} MiB beyond the matrix; bound for 2 jobs = 2-job stage on 2 series "
              f"{peak[2, '2 series']} + 2 x {one_fit:.0f} + matrix {matrix_mib:.1f} = {bound:.0f} MiB; "
              f"measured {peak[2, '1M rows']} MiB")
        payload["jobs"], payload["one_fit_adds_mib"], payload["bound_mib"] = rows, one_fit, bound
        print("->", save("memory_jobs", {k: v for k, v in payload.items() if k != "architectures"}))
    print(f"rows {matrix.shape[0]:,}, features {matrix.shape[1]}, feature matrix {matrix_mib:.1f} MiB")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(small, ignore_errors=True)


if __name__ == "__main__":
    main()
