"""Fits side by side (`train.jobs`): the same bytes and MLflow runs as one after another, one writer to
the store, and an interrupt that stops every worker. In a temporary git repo with a real SQLite store."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import make_repo, processes
from tsarena.core.errors import TsarenaError
from tsarena.fitting.pool import cores, resolve_jobs

OUTPUTS = ("data/predictions/tcn.parquet", "data/models/tcn/bundle/member_0.pt", "data/models/tcn/histories.csv",
           "data/models/tcn/bundle/members.json")


@pytest.mark.parametrize("jobs, threads, n_fits, devices, expected", [
    (1, 1, 8, 1, 1), (4, 1, 8, 1, 4), (4, 1, 2, 1, 2), ("auto", 1, 1, 1, 1), ("auto", 1, 64, 1, cores()),
    ("auto", 2 * cores(), 64, 1, 1), ("auto", 1, 64, 2, 1)])
def test_jobs_fill_the_machine_never_beyond_the_fits(jobs, threads, n_fits, devices, expected):
    assert resolve_jobs(jobs, threads, n_fits, devices) == expected


def test_jobs_with_several_devices_is_one_clear_error():
    with pytest.raises(TsarenaError, match="train.jobs=2 with train.devices=2"):
        resolve_jobs(2, 1, 8, devices=2)


def test_forecasts_join_a_table_at_a_time_into_what_one_concat_gives(tmp_path):
    """Workers' forecast files become the stage's table without the stage holding them all."""
    import numpy as np
    import pandas as pd

    from tsarena.contestants.predictions import concat_tables, predictions_frame

    rng = np.random.default_rng(0)
    frames = [predictions_frame("tcn", fold, seed, {s: (np.arange(n) + 7 * fold, rng.normal(size=n))
                                                    for s, n in (("val", 5), ("test", 3 + seed))})
              for fold in (1, 2) for seed in (0, 1)]
    for i, frame in enumerate(frames):
        frame.to_parquet(tmp_path / f"{i}.parquet", index=False)
    concat_tables([tmp_path / f"{i}.parquet" for i in range(len(frames))], tmp_path / "all.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "all.parquet"), pd.concat(frames, ignore_index=True))


def digests(repo) -> dict[str, str]:
    return {path: hashlib.md5((repo.path / path).read_bytes()).hexdigest() for path in OUTPUTS}


def fit_runs(client, parent) -> dict[str, dict]:
    """Each fit's run by name: params, final metrics, the val_loss curve, status, worker-visible tags."""
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return {run.info.run_name: {"params": run.data.params, "status": run.info.status,
                                "best": (run.data.metrics["best_val_loss"], run.data.metrics["best_epoch"]),
                                "curve": [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_loss")],
                                "input": run.inputs.dataset_inputs[0].dataset.digest}
            for run in children}


@pytest.mark.e2e
@pytest.mark.system
def test_fits_in_two_processes_equal_fits_one_after_another(tmp_path):
    repo = make_repo(tmp_path, {"arena": {"models": ["tcn"]}, "window": {"folds": 2},
                                "train": {"max_epochs": 2, "seeds": [0, 1], "jobs": 1}})
    serial = repo.dvc("repro", "train@tcn").stdout
    assert "4 fit(s), 1 at a time, 1 thread(s) each" in serial
    first = digests(repo)
    repo.set_params({"train": {"jobs": 2}})
    knob = repo.dvc("repro", "train@tcn").stdout  # a speed knob: validated by check, every other stage cached
    assert "Running stage 'check'" in knob and knob.count("Running stage") == 1
    parallel = repo.dvc("repro", "--force", "train@tcn").stdout
    assert "4 fit(s), 2 at a time, 1 thread(s) each" in parallel
    assert digests(repo) == first

    from mlflow import MlflowClient

    client = MlflowClient(repo.mlflow_uri)
    experiment = client.get_experiment_by_name("tsarena")
    parents = client.search_runs([experiment.experiment_id], "attributes.run_name = 'tcn'", order_by=["start_time"])
    assert [p.info.status for p in parents] == ["FINISHED", "FINISHED"]
    one, two = (fit_runs(client, p) for p in parents)
    assert sorted(one) == [f"tcn fold={k} seed={s}" for k in (1, 2) for s in (0, 1)]
    assert one == two  # same params, metrics, curves and lineage: only the wall-clock differs
    assert "train.jobs" not in parents[1].data.params


def worker_pids(pid: int) -> set[int]:
    """The live children of process `pid`."""
    return {child for child, (parent, _) in processes().items() if parent == pid}


@pytest.mark.e2e
@pytest.mark.system
def test_sigterm_stops_every_worker_leaves_no_output_and_marks_every_run_killed(tmp_path):
    repo = make_repo(tmp_path, {"arena": {"models": ["tcn"]},
                                "train": {"max_epochs": 500, "patience": 500, "seeds": [0, 1], "jobs": 2}})
    repo.dvc("repro", "tune@tcn")
    proc = subprocess.Popen([sys.executable, "pipeline/train.py", "tcn"], cwd=repo.path, env=repo.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if "epoch   1:" in line:
            break
    workers = worker_pids(proc.pid)
    assert len(workers) >= 2  # the two fit workers (and multiprocessing's resource tracker)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "error: interrupted by SIGTERM; no output was written"
    time.sleep(1)
    assert not workers & processes().keys()  # none left alive (a zombie is dead)
    assert not (repo.path / "data/models/tcn").exists() and not (repo.path / "data/predictions/tcn.parquet").exists()

    from mlflow import MlflowClient

    client = MlflowClient(repo.mlflow_uri)
    experiment = client.get_experiment_by_name("tsarena")
    status = {r.info.run_name: r.info.status for r in client.search_runs([experiment.experiment_id])}
    assert status == {"tcn": "KILLED", "tcn fold=1 seed=0": "KILLED", "tcn fold=1 seed=1": "KILLED"}
