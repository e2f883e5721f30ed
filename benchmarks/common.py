"""Shared helpers for the benchmark scripts: default-shaped data, timing, result files."""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

RESULTS = Path(__file__).parent / "results"


def default_shaped_data(n_rows: int = 4968, n_features: int = 15, seq_len: int = 60, seed: int = 0):
    """Same shape as the default S&P 500 windows: rows x features, 70/15/15 chronological split."""
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((n_rows, n_features)).astype(np.float32)
    targets = (0.01 * rng.standard_normal(n_rows)).astype(np.float32)
    ends = np.arange(seq_len - 1, n_rows)
    a, b = int(len(ends) * 0.7), int(len(ends) * 0.85)
    return matrix, targets, {"train": ends[:a], "val": ends[a:b], "test": ends[b:]}


def edit_params(work: Path, **sections: dict[str, Any]) -> None:
    """Update params.yaml in a benchmark's copy of the repo: edit_params(work, train={"jobs": 2})."""
    import yaml

    params = yaml.safe_load((work / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict[str, str]:
    import torch

    import os

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str) + "\n")
    return path


def table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(f"{r[c]}") for r in rows)) for c in columns]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    body = ["  ".join(f"{r[c]}".ljust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join([line, "-" * len(line), *body])
