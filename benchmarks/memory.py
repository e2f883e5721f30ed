"""Benchmark 4: memory at scale. A synthetic panel of 200 series x 5,000 days (1M rows) through
ingest, feature, split and one training epoch of the default LSTM, each stage in its own
process. Reports peak RSS and wall time per stage.

What a stage needs whatever the data size (interpreter, torch, Lightning, MLflow, the lazy
imports of torch.export when the model is logged) is measured by running the same stage on a
2-series panel; the data-proportional part, peak(1M rows) - peak(2 series), must stay below
2 x (feature matrix + model) for feature, split and training (no samples x L x features copy).

    python benchmarks/memory.py [--series 200] [--days 5000]
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

from common import save, table

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
    args = parser.parse_args()
    work = setup(args.days, args.series)

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

    model_bytes = torch.load(work / "data/models/lstm/model.pt", weights_only=True)
    model_bytes = sum(t.numel() * t.element_size() for t in model_bytes["state_dict"].values())
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


if __name__ == "__main__":
    main()
