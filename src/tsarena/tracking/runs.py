"""The MLflow runs of a stage: one parent per contestant, nested runs per fit or trial, written by the
stage's own process; finding a producer's run from its output's bytes; test metrics into them."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tsarena.contestants.predictions import fit_key
from tsarena.core.errors import StageInterrupted, TsarenaError, signals_deferred
from tsarena.tracking.lineage import OUTPUT_TAG, dvc_out_md5, file_md5, run_tags
from tsarena.tracking.store import MlflowClient, connect, mlflow, resolve_uri, run, store_fault

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
    def guard(self, what: str, write: bool = True) -> Iterator[None]:
        """Any failure of the store inside becomes one `error:` line naming what was being done; a write
        (`write`) finishes before an interruption is raised."""
        try:
            with signals_deferred() if write else contextlib.nullcontext():
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
        with self.guard(f"the {name} run", write=False), stack:
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
                client.log_inputs(run_.info.run_id, [DatasetInput(data._to_mlflow_entity(),
                                                                  [InputTag("mlflow.data.context", "training")])])
        self.open_runs = dict(zip(ids, (name for name, _, _ in fits)))
        return ids

    def log_epoch(self, run_id: str | None, row: dict[str, float]) -> None:
        if self.enabled:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            with self.guard(f"training of {self.open_runs[run_id]} (epoch {int(row['epoch'])})"):
                self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, int(row["epoch"]))
                                                       for k, v in row.items() if k != "epoch"])

    def close_child(self, run_id: str | None, metrics: dict[str, float], tags: dict[str, str] | None = None) -> None:
        """A fit's final metrics (and tags: where it ran), and its run FINISHED."""
        if self.enabled:
            from mlflow.entities import Metric, RunTag

            now = int(time.time() * 1000)
            with self.guard(f"closing run {self.open_runs[run_id]}"):
                self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                                      tags=[RunTag(k, v) for k, v in (tags or {}).items()])
                self.client.set_terminated(run_id, "FINISHED")
            del self.open_runs[run_id]

    def end_open_children(self, status: str) -> None:
        """On failure or interruption: every fit run not yet closed ends FAILED or KILLED (best effort: the
        store may be what failed; the next execution marks what is left)."""
        if self.enabled:
            with signals_deferred():  # a second signal does not cut the cleanup short
                for run_id in list(self.open_runs):
                    try:
                        self.client.set_terminated(run_id, status)
                    except Exception:  # once more, on a fresh connection
                        self.client = MlflowClient(self.uri)
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
            "child_runs": {fit_key(c.data.tags["fold"], c.data.tags["seed"]): c.info.run_id for c in children
                           if "fold" in c.data.tags and "seed" in c.data.tags},
            "data_md5": tags.get("data_md5", ""), "params_hash": tags.get("params_hash", ""),
            "git_commit": tags.get("git_commit", ""),
            **{k: json.loads(tags[k]) for k in ("model_uri", "model_id", "served") if k in tags}}


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
    client.log_inputs(run_info["run_id"], [DatasetInput(dataset._to_mlflow_entity(),
                                                        [InputTag("mlflow.data.context", "testing")])],
                      [LoggedModelInput(model_id)] if model_id else None)
    client.log_batch(run_info["run_id"], metrics=scalars(summary, model_id=model_id, dataset_name=dataset.name,
                                                         dataset_digest=dataset.digest))
    for key, run_id in run_info["child_runs"].items():
        client.log_batch(run_id, metrics=scalars(children[key]))


def log_explanation(run_info: dict[str, Any], folder: Path, metrics: dict[str, float], tags: dict[str, str],
                    tracking_params: Any) -> None:
    """What a producer looks at, onto its own run: the explain stage's files under `explain/` (tables and
    figure), its scalar summary as metrics and its top feature as a tag (the runs list can show it)."""
    from mlflow.entities import Metric, RunTag

    connect(run_info["tracking_uri"], tracking_params.experiment)
    client = MlflowClient(run_info["tracking_uri"])
    now = int(time.time() * 1000)
    with signals_deferred():
        client.log_artifacts(run_info["run_id"], str(folder), artifact_path="explain")
        client.log_batch(run_info["run_id"], metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                         tags=[RunTag(k, v) for k, v in tags.items()])
