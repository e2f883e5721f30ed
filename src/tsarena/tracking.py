"""MLflow: tracking URI resolution, store creation, run tags, model logging.

Knows nothing of architectures: it logs what it is handed. Imported only by stages that log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import warnings

import numpy as np
import yaml
from filelock import FileLock

from tsarena.errors import StageInterrupted, TsarenaError

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line per event in stage logs
warnings.filterwarnings("ignore", ".*dataset source can be interpreted in multiple ways.*")
warnings.filterwarnings("ignore", ".*were assigned during export.*")  # nn.LSTM's flat weights: harmless
for _name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent", "mlflow.pyfunc", "mlflow.models.model"):
    logging.getLogger(_name).setLevel(logging.WARNING)

import mlflow  # noqa: E402  (after the env defaults above, which it reads at import)
from mlflow import MlflowClient  # noqa: E402


def repo_root() -> Path:
    """DVC_ROOT under `dvc repro`/`dvc exp run` (the parent repo even for --temp/--queue copies)."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True)
        return Path(out.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return Path.cwd()


def resolve_uri(param_uri: str | None) -> str:
    """`tracking.uri`, else $MLFLOW_TRACKING_URI, else sqlite:///<repo root>/mlflow.db (absolute)."""
    uri = param_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_absolute():  # relative stores vanish with dvc's temporary experiment copies
            uri = f"sqlite:///{(repo_root() / path).resolve()}"
    return uri


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _artifact_location(uri: str) -> str | None:
    """Beside a local store, artifacts go to <repo>/mlartifacts (not the cwd, which may be a temp copy)."""
    db = _sqlite_path(uri)
    return (db.parent / "mlartifacts").as_uri() if db else None


def _check_server(uri: str) -> None:
    import requests

    try:
        response = requests.get(uri.rstrip("/") + "/health", timeout=5)
        response.raise_for_status()
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise TsarenaError(f"MLflow tracking store {uri} unreachable ({reason})", "tracking.uri or MLFLOW_TRACKING_URI") from None


def connect(uri: str, experiment: str) -> str:
    """Check the store answers, create it once under a file lock, and return the experiment id.

    Fails in seconds, before any training, when the store is unreachable or unwritable.
    """
    mlflow.set_tracking_uri(uri)
    scheme = urlparse(uri).scheme
    try:
        if scheme in ("http", "https"):
            _check_server(uri)
            return _experiment_id(MlflowClient(uri), experiment, None)
        db = _sqlite_path(uri)
        if db is None:
            return _experiment_id(MlflowClient(uri), experiment, None)
        db.parent.mkdir(parents=True, exist_ok=True)
        # two processes creating a fresh SQLite store at once corrupt it: serialise creation
        with FileLock(f"{db}.lock", timeout=120):
            return _experiment_id(MlflowClient(uri), experiment, _artifact_location(uri))
    except TsarenaError:
        raise
    except Exception as exc:  # any failure to open the store is the same user-facing problem
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise TsarenaError(f"MLflow tracking store {uri} unreachable or unwritable: {reason}", "tracking.uri") from None


@contextlib.contextmanager
def run(experiment_id: str, name: str, tags: dict[str, str], nested: bool = False) -> Iterator[Any]:
    """An MLflow run that ends FINISHED, FAILED on error, or KILLED when the stage is interrupted.

    nested=True makes it a child of the active run (one per seed or fold under the stage's run).
    """
    with mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags, nested=nested) as active:
        try:
            yield active
        except StageInterrupted:
            mlflow.end_run("KILLED")
            raise


def _experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel stage
        return client.get_experiment_by_name(name).experiment_id


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
    }


def log_windows_input(matrix: np.ndarray, targets: np.ndarray, source: str, md5: str, name: str = "windows") -> None:
    """Dataset lineage with DVC's md5 as digest (MLflow's own digest hashes only 10,000 rows)."""
    dataset = mlflow.data.from_numpy(matrix, targets=targets, source=source, name=name, digest=md5[:36])
    mlflow.log_input(dataset, context="training")


def pip_requirements() -> list[str]:
    """Explicit, so MLflow does not spend seconds inferring them; tsarena itself travels as code."""
    from importlib.metadata import version

    packages = ["torch", "mlflow", "numpy", "pandas", "scikit-learn", "scipy", "pydantic", "pyyaml", "pyarrow"]
    return [f"{name}=={version(name).split('+')[0]}" for name in packages]


def log_bundle(folder: Path, example: Any, output: Any) -> str:
    """Log a self-contained model (serving.Bundle) as an MLflow pyfunc: models-from-code (no pickle),
    the bundle folder as its artifact, the tsarena package as its code. Raw prices in, forecasts out."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.utils import _infer_schema

    import tsarena

    inputs = Schema([ColSpec("string", "date"), ColSpec("string", "ticker", required=False),
                     *[ColSpec("double", c, required=c == "close") for c in ("open", "high", "low", "close", "volume")]])
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(__file__).with_name("pyfunc_model.py")),
        artifacts={"bundle": str(folder)},
        code_paths=[str(Path(tsarena.__file__).parent)],
        signature=ModelSignature(inputs=inputs, outputs=_infer_schema(output)),
        input_example=example,
        pip_requirements=pip_requirements(),
    )
    return info.model_uri


class StageRuns:
    """The MLflow runs of one stage execution: one parent, nested children (one per fit).

    `enabled=False` (a DDP worker process) makes every call a no-op, so the training loop is written
    once for rank 0 and the workers that train in step with it.
    """

    def __init__(self, stage: str, source: tuple[str, str], flat_params: dict[str, Any], tracking_params: Any,
                 enabled: bool = True):
        self.enabled, self.stage, self.flat = enabled, stage, flat_params
        self.source, self.md5 = source[1], dvc_out_md5(*source)
        if enabled:
            self.uri = resolve_uri(tracking_params.uri)
            self.experiment_id = connect(self.uri, tracking_params.experiment)  # fails fast, before training

    @contextlib.contextmanager
    def parent(self, name: str) -> Iterator[Any]:
        if not self.enabled:
            yield None
            return
        with run(self.experiment_id, name, run_tags(self.stage, self.md5, self.flat)) as active:
            mlflow.log_params(self.flat)
            yield active

    @contextlib.contextmanager
    def child(self, name: str, params: dict[str, Any], tags: dict[str, str], dataset: tuple[np.ndarray, np.ndarray]
              ) -> Iterator[Any]:
        """A nested run with the stage's params plus `params`, and the training data as its input."""
        if not self.enabled:
            yield None
            return
        with run(self.experiment_id, name, {**run_tags(self.stage, self.md5, self.flat), **tags}, nested=True) as active:
            mlflow.log_params({**self.flat, **params})
            log_windows_input(*dataset, self.source, self.md5, name=name)
            yield active

    def log_epoch(self, row: dict[str, float]) -> None:
        if self.enabled:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))

    def log_metrics(self, metrics: dict[str, float]) -> None:
        if self.enabled:
            mlflow.log_metrics(metrics)

    def run_info(self, active: Any, children: dict[str, str], **extra: Any) -> dict[str, Any]:
        return {"run_id": active.info.run_id, "experiment_id": self.experiment_id, "run_name": active.info.run_name,
                "tracking_uri": self.uri, "child_runs": children, **extra}


def log_test_metrics(run_info: dict[str, Any], summary: dict[str, Any], children: dict[str, dict[str, Any]],
                     tracking_params: Any) -> None:
    """Test metrics into a producer's training runs: the summary in its parent run, each fit's own
    metrics in that fit's nested run, so MLflow lines params up with results."""
    from mlflow.entities import Metric

    def scalars(metrics: dict) -> list:
        now = int(time.time() * 1000)
        return [Metric(k, float(v), now, 0) for k, v in metrics.items() if isinstance(v, (int, float))]

    connect(run_info["tracking_uri"], tracking_params.experiment)
    client = MlflowClient(run_info["tracking_uri"])
    client.log_batch(run_info["run_id"], metrics=scalars(summary))
    for key, run_id in run_info["child_runs"].items():
        client.log_batch(run_id, metrics=scalars(children[key]))
