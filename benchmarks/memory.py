"""Benchmark 4: memory at scale. A synthetic panel of 200 series x 5,000 days (1M rows) through
ingest, feature, window and one training epoch of the default LSTM, each stage in its own
process. Reports peak RSS and wall time per stage, and checks that what each stage adds over
its import baseline (interpreter + libraries) stays below 2 x (feature matrix + model).

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
                               "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db", "HOME": str(Path.home())})
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{args} failed:\n{proc.stderr[-3000:]}")
    return seconds, float(re.findall(r"peak_rss_mib ([\d.]+)", proc.stderr)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--days", type=int, default=5000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tsarena-mem-"))
    shutil.copytree(ROOT / "pipeline", work / "pipeline")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(source="synthetic", synthetic={**params["data"]["synthetic"], "kind": "gbm",
                                                          "n_series": args.series, "n_days": args.days})
    params["train"].update(max_epochs=1, accelerator="cpu")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    baselines = {kind: run(work, "--imports-only", kind)[1] for kind in ("data", "train")}
    rows = []
    for stage, script, kind in [("ingest", ["pipeline/ingest.py"], "data"), ("feature", ["pipeline/feature.py"], "data"),
                                ("window", ["pipeline/window.py"], "data"),
                                ("train_lstm (1 epoch)", ["pipeline/train.py", "lstm"], "train")]:
        seconds, peak = run(work, *script)
        rows.append({"stage": stage, "seconds": round(seconds, 1), "peak_rss_mib": round(peak),
                     "baseline_mib": round(baselines[kind]), "added_mib": round(peak - baselines[kind])})

    matrix = np.load(work / "data/windows/matrix.npy", mmap_mode="r")
    import torch

    model_bytes = torch.load(work / "data/models/lstm/model.pt", weights_only=True)
    model_bytes = sum(t.numel() * t.element_size() for t in model_bytes["state_dict"].values())
    bound = 2 * (matrix.nbytes + model_bytes) / MIB
    for row in rows:
        row["within_bound"] = row["added_mib"] < bound
    print(table(rows, ["stage", "seconds", "peak_rss_mib", "baseline_mib", "added_mib", "within_bound"]))
    print(f"rows {matrix.shape[0]:,}, features {matrix.shape[1]}, feature matrix {matrix.nbytes / MIB:.1f} MiB, "
          f"model {model_bytes / MIB:.2f} MiB, bound 2 x (matrix + model) = {bound:.1f} MiB")
    print("->", save("memory", {"series": args.series, "days": args.days, "rows": rows, "matrix_mib": matrix.nbytes / MIB,
                                "model_mib": model_bytes / MIB, "bound_mib": bound}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
