"""MLflow: tracking URI resolution, store creation, run tags, model logging.

Knows nothing of architectures: it logs what it is handed. Imported only by stages that log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
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
from tsarena.io import git_root

# a server restart is ridden out (5 retries, 1+2+4+8+16 s apart); a lasting outage ends the stage in ~1 min
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line per event in stage logs
os.environ.setdefault("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "2")  # fits last seconds, not hours
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
    return git_root() or Path.cwd()


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
        if any(code in str(exc) for code in ("401", "Unauthorized", "403", "Permission denied")):
            raise TsarenaError(f"MLflow tracking store {uri} rejected the credentials ({reason})",
                               "MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD") from None
        raise TsarenaError(f"MLflow tracking store {uri} unreachable or unwritable: {reason}", "tracking.uri") from None


@contextlib.contextmanager
def run(experiment_id: str, name: str, tags: dict[str, str], nested: bool = False) -> Iterator[Any]:
    """An MLflow run that ends FINISHED, FAILED on error, or KILLED when the stage is interrupted.

    nested=True makes it a child of the active run (one per fold and seed under the stage's run);
    System metrics (CPU, memory) stay off the comparison: sampled only where the user sets
    MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true. When the stage is already failing and
    the store cannot even take the final status, the run stays RUNNING (the next execution of the
    stage on this host marks it FAILED) rather than burying the first error under a second one.
    """
    active = mlflow.start_run(experiment_id=experiment_id, run_name=name, tags=tags, nested=nested)
    status, store_lost = "FINISHED", False
    try:
        yield active
    except StageInterrupted:
        status = "KILLED"
        raise
    except BaseException as exc:
        status, store_lost = "FAILED", getattr(exc, "store_lost", False)
        raise
    finally:
        try:
            if store_lost:  # no status can reach a lost store; stop the run's system-metrics thread at least
                mlflow.tracking.fluent._active_run_stack.get().pop()
            else:
                mlflow.end_run(status)
        except Exception:
            if status == "FINISHED":
                raise


def store_fault(uri: str, what: str, exc: BaseException) -> TsarenaError:
    """One line for a tracking store that failed mid-stage (after the bounded retries)."""
    text = " ".join(str(exc).split())
    lost = any(marker in text for marker in ("Max retries exceeded", "Connection refused", "ConnectionError",
                                            "Failed to establish", "Read timed out", "RemoteDisconnected"))
    reason = "became unreachable" if lost else f"failed ({text[:160]})"
    error = TsarenaError(f"MLflow tracking store {uri} {reason} during {what}; no output was written",
                         "tracking.uri or MLFLOW_TRACKING_URI")
    error.store_lost = True
    return error


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
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
    }


def pip_requirements() -> list[str]:
    """Explicit, so MLflow does not spend seconds inferring them; tsarena itself travels as code."""
    from importlib.metadata import version

    packages = ["torch", "mlflow", "numpy", "pandas", "scikit-learn", "scipy", "pydantic", "pyyaml", "pyarrow"]
    return [f"{name}=={version(name).split('+')[0]}" for name in packages]


def log_bundle(name: str, folder: Path, example: Any, output: Any) -> dict[str, str]:
    """Log a self-contained model (serving.Bundle) as an MLflow pyfunc: models-from-code (no pickle),
    the bundle folder as its artifact, the tsarena package as its code. Raw prices in, forecasts out.

    The signature declares the output only: the input contract is `serving.input_prices` (any column
    case, Adj Close, text or datetime dates, integer volume), which an MLflow input schema would
    narrow by dropping or rejecting columns before tsarena sees them."""
    import mlflow.pyfunc
    from mlflow.models import ModelSignature
    from mlflow.types.utils import _infer_schema

    import tsarena

    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=str(Path(__file__).with_name("pyfunc_model.py")),
        artifacts={"bundle": str(folder)},
        code_paths=[str(Path(tsarena.__file__).parent)],
        signature=ModelSignature(inputs=None, outputs=_infer_schema(output)),
        input_example=example,
        pip_requirements=pip_requirements(),
    )
    return {"model_uri": info.model_uri, "model_id": info.model_id}


def mark_dead_runs_failed(uri: str, experiment_id: str, stage: str) -> list[str]:
    """Runs of `stage` left RUNNING by an execution that died (kill -9, power loss) become FAILED,
    tagged with why. Only runs started on this host whose process is gone: a live worker of a
    queued sweep, or a run from another machine, is never touched."""
    import psutil

    client, host, failed = MlflowClient(uri), socket.gethostname(), []
    stale = client.search_runs([experiment_id], f"tags.stage = '{stage}' and attributes.status = 'RUNNING'")
    for found in stale:
        tags = found.data.tags
        pid = int(tags.get("pid", "0") or 0)
        if tags.get("host") != host or not pid or pid == os.getpid() or psutil.pid_exists(pid):
            continue
        client.set_tag(found.info.run_id, "failed_reason",
                       f"its process ({host}, pid {pid}) ended without closing the run; marked FAILED by the next "
                       f"execution of stage {stage}")
        client.set_terminated(found.info.run_id, "FAILED")
        failed.append(found.info.run_id)
    return failed


class StageRuns:
    """The MLflow runs of one stage execution: one parent, nested children (one per fit).

    `enabled=False` (a DDP worker process) makes every call a no-op, so the training loop is written
    once for rank 0 and the workers that train in step with it.
    """

    def __init__(self, stage: str, source: tuple[str, str], flat_params: dict[str, Any], tracking_params: Any,
                 enabled: bool = True):
        self.enabled, self.stage, self.flat = enabled, stage, flat_params
        self.open_runs: dict[str, str] = {}  # fit runs not yet closed: id -> name
        self.source, self.md5 = source[1], dvc_out_md5(*source)
        if enabled:
            self.uri = resolve_uri(tracking_params.uri)
            self.experiment_id = connect(self.uri, tracking_params.experiment)  # fails fast, before training
            self.client = MlflowClient(self.uri)  # one per stage: per-epoch logging reuses it
            mark_dead_runs_failed(self.uri, self.experiment_id, stage)

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Any failure of the store inside becomes one `error:` line naming what was being done."""
        try:
            yield
        except (TsarenaError, StageInterrupted):
            raise
        except Exception as exc:
            if not isinstance(exc, mlflow.exceptions.MlflowException) and "requests" not in type(exc).__module__:
                raise  # not the store's fault: a bug, shown as such
            raise store_fault(self.uri, what, exc) from None

    @contextlib.contextmanager
    def parent(self, name: str) -> Iterator[Any]:
        if not self.enabled:
            yield None
            return
        with self.guard(f"starting the {name} run"):
            stack = contextlib.ExitStack()
            active = stack.enter_context(run(self.experiment_id, name, run_tags(self.stage, self.md5, self.flat)))
            mlflow.log_params(self.flat)
        with self.guard(f"the {name} run"), stack:
            yield active

    def open_children(self, parent: Any, fits: list[tuple[str, dict[str, Any], dict[str, str]]],
                      dataset: tuple[np.ndarray, np.ndarray]) -> list[str | None]:
        """One nested run per fit (name, extra params, extra tags), all created now and in this order, RUNNING
        until close_child: with fits running side by side, the store is written by this process alone."""
        if not self.enabled:
            return [None] * len(fits)
        from mlflow.entities import DatasetInput, InputTag, Param

        client, ids = self.client, []
        for name, params, tags in fits:
            with self.guard(f"starting run {name}"):
                run_ = client.create_run(self.experiment_id, run_name=name, tags={
                    **run_tags(self.stage, self.md5, self.flat), **tags, "mlflow.parentRunId": parent.info.run_id})
                ids.append(run_.info.run_id)
                client.log_batch(run_.info.run_id, params=[Param(k, str(v)) for k, v in {**self.flat, **params}.items()])
                # lineage with DVC's md5 as digest (MLflow's own digest hashes only 10,000 rows)
                data = mlflow.data.from_numpy(dataset[0], targets=dataset[1], source=self.source, name=name,
                                              digest=self.md5[:36])
                client.log_inputs(run_.info.run_id, datasets=[DatasetInput(
                    data._to_mlflow_entity(), [InputTag("mlflow.data.context", "training")])])
        self.open_runs = dict(zip(ids, (name for name, _, _ in fits)))
        return ids

    def log_epoch(self, run_id: str | None, row: dict[str, float]) -> None:
        if self.enabled:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            with self.guard(f"training of {self.open_runs[run_id]} (epoch {int(row['epoch'])})"):
                self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, int(row["epoch"]))
                                                       for k, v in row.items() if k != "epoch"])

    def close_child(self, run_id: str | None, metrics: dict[str, float]) -> None:
        """A fit's final metrics, and its run FINISHED."""
        if self.enabled:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            with self.guard(f"closing run {self.open_runs[run_id]}"):
                self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
                self.client.set_terminated(run_id, "FINISHED")
            del self.open_runs[run_id]

    def end_open_children(self, status: str) -> None:
        """On failure or interruption: every fit run not yet closed ends FAILED or KILLED (best effort: the
        store may be what failed; the next execution marks what is left)."""
        if self.enabled:
            for run_id in list(self.open_runs):
                with contextlib.suppress(Exception):
                    self.client.set_terminated(run_id, status)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        if self.enabled:
            with self.guard("logging metrics"):
                mlflow.log_metrics(metrics)

    def log_tags(self, tags: dict[str, str]) -> None:
        if self.enabled:
            with self.guard("setting tags"):
                mlflow.set_tags(tags)

    def log_trials(self, parent: Any, prefix: str, trials: list[dict[str, Any]]) -> None:
        """Tuning trials as nested runs of `parent`, written by this one process after the search (so
        worker processes never write to the store): params, the validation curve, the final value and
        the state (COMPLETE or PRUNED, a tag), with the trial's own start and end times."""
        if not self.enabled:
            return
        from mlflow.entities import Metric, Param, RunTag

        client = self.client
        with self.guard(f"logging {len(trials)} tuning trials"):
            for trial in trials:
                name = f"{prefix} trial={trial['number']}"
                tags = {**run_tags(self.stage, self.md5, self.flat), "mlflow.parentRunId": parent.info.run_id,
                        "trial.state": trial["state"], **({"trial.note": trial["note"]} if trial.get("note") else {})}
                child = client.create_run(self.experiment_id, start_time=trial["start_ms"], tags=tags, run_name=name)
                metrics = [Metric("val_loss", v, trial["start_ms"], step) for step, v in trial["curve"].items()]
                if trial["value"] is not None:
                    metrics.append(Metric("best_val_loss", trial["value"], trial["end_ms"], 0))
                client.log_batch(child.info.run_id, metrics=metrics,
                                 params=[Param(k, str(v)) for k, v in trial["params"].items()],
                                 tags=[RunTag("trial.number", str(trial["number"]))])
                client.set_terminated(child.info.run_id, "FINISHED" if trial["state"] != "FAIL" else "FAILED",
                                      end_time=trial["end_ms"])

    def link_outputs(self, predictions: Path, **tags: Any) -> None:
        """Tag the parent run with its predictions file's md5 (and what later stages need of it): evaluate and
        compare find the run from the file's content, so no DVC output holds a run id, and outputs restored
        from DVC's cache find the run that made those bytes."""
        if self.enabled:
            with self.guard("tagging the run with its outputs"):
                mlflow.set_tags({OUTPUT_TAG: file_md5(predictions), **{k: json.dumps(v) for k, v in tags.items()}})


OUTPUT_TAG = "predictions_md5"


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def producer_run(tracking_params: Any, stage: str, name: str, predictions: Path) -> dict[str, Any] | None:
    """The newest parent run of `stage` named `name` whose predictions file had exactly these bytes (a
    re-run with identical results made the same file: either run made it), with its fits' runs and the
    tags link_outputs set; None when this store has no such run (it was made against another store)."""
    uri = resolve_uri(tracking_params.uri)
    experiment_id = connect(uri, tracking_params.experiment)
    client = MlflowClient(uri)
    found = client.search_runs([experiment_id], f"tags.stage = '{stage}' and tags.{OUTPUT_TAG} = '{file_md5(predictions)}' "
                               f"and attributes.run_name = '{name}'", order_by=["attributes.start_time DESC"], max_results=1)
    if not found:
        return None
    run_ = found[0]
    children = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{run_.info.run_id}'")
    tags = run_.data.tags
    return {"run_id": run_.info.run_id, "tracking_uri": uri, "metrics": run_.data.metrics,
            "child_runs": {f"{c.data.tags['fold']}/{c.data.tags['seed']}": c.info.run_id for c in children
                           if "fold" in c.data.tags and "seed" in c.data.tags},
            "data_md5": tags.get("data_md5", ""), "params_hash": tags.get("params_hash", ""),
            "git_commit": tags.get("git_commit", ""),
            **{k: json.loads(tags[k]) for k in ("model_uri", "model_id", "served") if k in tags}}


def log_verdicts(run_ids: dict[str, str], table: Any, uri: str) -> None:
    """compare's verdict per contestant on its parent run: its place in the ranking (`rank`, 1 = best; the
    oracle has none) and whether it is in the model confidence set (`in_mcs` 1/0), so the runs list
    carries the leaderboard."""
    from mlflow.entities import Metric

    client, now = MlflowClient(uri), int(time.time() * 1000)
    for position, row in enumerate(table.to_dict(orient="records"), start=1):
        if row["model"] not in run_ids:
            continue
        values = {"in_mcs": row.get("in_mcs"), "rank": position if row.get("kind") != "oracle" else None}
        client.log_batch(run_ids[row["model"]], metrics=[Metric(k, float(v), now, 0) for k, v in values.items()
                                                         if v is not None and v == v])


VIEW = "tsarena"  # the runs list's shared view: #/experiments/<id>/runs?viewStateShareKey=tsarena
VIEW_NAME = "tsarena: every contestant"


def runs_page(experiment_id: str, shared_view: bool = True) -> str:
    """The address (after host:port/) of the experiment's runs list as model training, in tsarena's shared
    view: MLflow 3 opens an experiment in its GenAI view unless the address says otherwise."""
    page = f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    return f"{page}&viewStateShareKey={VIEW}" if shared_view else page


def set_runs_view(uri: str, experiment_id: str, columns: list[str]) -> str:
    """Make the experiment open as what it is: a model-training experiment (its kind tag), and a shared view
    of the runs list (MLflow's `mlflow.sharedViewState.<key>` experiment tag, read by the UI for
    `?viewStateShareKey=<key>`) with one row per contestant and the headline metrics as the first columns,
    newest first, the compare runs filtered out. Returns the page's path for a printed link."""
    keys = [f"metrics.`{name}`" for name in columns]
    state = {"selectedColumns": keys, "columnOrder": keys, "columnWidths": {k: 120 for k in keys},
             "orderByKey": "attributes.start_time", "orderByAsc": False, "searchFilter": "tags.stage != 'compare'"}
    client = MlflowClient(uri)
    client.set_experiment_tag(experiment_id, "mlflow.experimentKind", "custom_model_development")
    tag = f"mlflow.sharedViewState.{VIEW}"
    now = int(time.time() * 1000)
    old = client.get_experiment(experiment_id).tags.get(tag)
    created = json.loads(old).get("createdAt", now) if old and old.startswith("{") else now
    # the UI's saved-view envelope: listed by name under the runs page's "Views" menu
    client.set_experiment_tag(experiment_id, tag, json.dumps({"name": VIEW_NAME, "createdAt": created, "updatedAt": now,
                                                              "state": json.dumps(state)}))
    return runs_page(experiment_id)


def log_test_metrics(run_info: dict[str, Any], summary: dict[str, Any], children: dict[str, dict[str, Any]],
                     tracking_params: Any, test_data: Any, digest: str) -> None:
    """Test metrics into a producer's runs: the summary in its parent run, linked to its logged
    model and to the test dataset (logged as the run's input with context `testing`), so MLflow 3's
    model views rank models by them; each fit's own metrics in that fit's nested run."""
    from mlflow.entities import DatasetInput, InputTag, LoggedModelInput, Metric

    dataset = mlflow.data.from_pandas(test_data, source="data/split", name="test", digest=digest[:36])
    model_id = run_info.get("model_id")

    def scalars(metrics: dict, **link: Any) -> list:
        now = int(time.time() * 1000)
        return [Metric(k, float(v), now, 0, **link) for k, v in metrics.items() if isinstance(v, (int, float))]

    connect(run_info["tracking_uri"], tracking_params.experiment)
    client = MlflowClient(run_info["tracking_uri"])
    client.log_inputs(run_info["run_id"], datasets=[DatasetInput(dataset._to_mlflow_entity(),
                                                                 [InputTag("mlflow.data.context", "testing")])],
                      models=[LoggedModelInput(model_id)] if model_id else None)
    client.log_batch(run_info["run_id"], metrics=scalars(summary, model_id=model_id, dataset_name=dataset.name,
                                                         dataset_digest=dataset.digest))
    for key, run_id in run_info["child_runs"].items():
        client.log_batch(run_id, metrics=scalars(children[key]))
