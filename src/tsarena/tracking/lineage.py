"""Lineage: what made a run, from git (commit, dirty flag) and dvc.lock (an upstream output's md5), and
the digests that tie an output file to the run that made it. Reads files and git; no MLflow."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import yaml

def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def dvc_out_md5(stage: str, out: str, lock_file: str = "dvc.lock") -> str:
    """The md5 DVC recorded for an upstream output (a stage's own lock entry is written after it)."""
    try:
        lock = yaml.safe_load(Path(lock_file).read_text()) or {}
        for entry in lock["stages"][stage]["outs"]:
            if entry["path"] == out:
                return entry["md5"]
    except (OSError, KeyError, TypeError):
        pass
    return "unknown (not run by dvc repro)"


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_tags(stage: str, data_md5: str, flat_params: dict[str, Any]) -> dict[str, str]:
    commit = _git("rev-parse", "HEAD")
    # dvc.lock is rewritten by the run itself; anything else uncommitted makes the commit insufficient
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)dvc.lock"))
    return {
        "git_commit": commit or "unknown",
        "mlflow.source.git.commit": commit or "unknown",
        "git_dirty": str(dirty).lower(),
        "dvc_exp_name": os.environ.get("DVC_EXP_NAME", ""),
        "stage": stage,
        "data_md5": data_md5,
        "params_hash": params_hash(flat_params),
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
    }


OUTPUT_TAG = "predictions_md5"


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


