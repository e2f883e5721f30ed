"""Tracking URI resolution and store checks (real MLflow SQLite stores, no server)."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tsarena.tracking import lineage
from tsarena.tracking import store as tracking
from tsarena.core.errors import TsarenaError


def test_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.resolve_uri(None) == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.resolve_uri(None) == "http://127.0.0.1:5999"
    assert tracking.resolve_uri("sqlite:////x/y.db") == "sqlite:////x/y.db"


def test_relative_sqlite_uri_is_anchored_at_the_repo_root(monkeypatch, tmp_path):
    """dvc exp --temp/--queue run in a copy that is deleted: a relative store would vanish with it."""
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert tracking.resolve_uri("sqlite:///stores/m.db") == f"sqlite:///{tmp_path}/stores/m.db"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_fast_with_a_clear_error():
    uri = f"http://127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with pytest.raises(TsarenaError, match="MLflow tracking store .* unreachable"):
        tracking.connect(uri, "x")
    assert time.monotonic() - start < 10


def test_unwritable_store_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TsarenaError, match="unreachable or unwritable"):
        tracking.connect(f"sqlite:///{blocker}/mlflow.db", "x")


def test_store_and_experiment_created_once_by_parallel_processes(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = "import sys; from tsarena.tracking import store; print(store.connect(sys.argv[1], 'exp'))"
    procs = [subprocess.Popen([sys.executable, "-c", code, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1][-500:] for r in results]
    assert len({out.strip() for out, _ in results}) == 1  # one experiment id for all


def test_experiment_artifacts_live_beside_the_store_not_in_the_cwd(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = tracking.connect(uri, "artifacts")
    location = MlflowClient(uri).get_experiment(experiment_id).artifact_location
    assert location == (tmp_path / "mlartifacts").as_uri()


def test_dvc_out_md5_reads_the_lock(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text("schema: '2.0'\nstages:\n  window:\n    cmd: x\n    outs:\n    - path: data/windows\n      md5: abc.dir\n")
    assert lineage.dvc_out_md5("window", "data/windows", str(lock)) == "abc.dir"
    assert lineage.dvc_out_md5("feature", "data/windows", str(lock)).startswith("unknown")


@pytest.mark.parametrize("method", tracking.SHARED_WRITES)
def test_a_write_another_process_just_made_is_retried_not_failed(monkeypatch, tmp_path, method):
    """Two queued experiments log the same MLflow dataset, tag the same shared run or set the same alias at
    the same moment; the one that loses MLflow's unguarded check-then-insert retries (and finds the row);
    any other error is raised."""
    from mlflow.exceptions import MlflowException

    errors, calls = [], []

    def write(self, *args, **kwargs):
        calls.append(args)
        if errors:
            raise MlflowException(errors.pop(0))

    monkeypatch.setattr(tracking.mlflow.MlflowClient, method, write)
    client = tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    errors.append("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name")
    getattr(client, method)("run", [])
    assert len(calls) == 2
    calls.clear()
    errors.append("RESOURCE_DOES_NOT_EXIST: run 'run' not found")
    with pytest.raises(MlflowException):
        getattr(client, method)("run", [])
    assert len(calls) == 1


RACE = """
import sys, time
from tsarena.tracking.store import MlflowClient
client = MlflowClient(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # every process starts writing at the same instant
for i in range(15):
    client.set_registered_model_alias("m", f"alias{i}", "1")
    client.set_experiment_tag("0", f"tag{i}", sys.argv[3])
"""


@pytest.mark.system
def test_writers_setting_the_same_alias_and_experiment_tag_at_once_all_succeed(tmp_path):
    """Two queued experiments' compare stages set the registry's aliases and the runs view's experiment tag
    at the same moment; MLflow's SQL store reads then inserts, so unguarded one in ~15 such calls failed
    with a UNIQUE constraint (4 processes x 30 calls on a real SQLite store)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    client.create_registered_model("m")
    client.create_model_version("m", "file:///model", run_id=None)
    start = str(time.time() + 8)
    procs = [subprocess.Popen([sys.executable, "-c", RACE, uri, start, str(i)], stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-800:] for e in errors]
    assert set(client.get_registered_model("m").aliases) == {f"alias{i}" for i in range(15)}
    assert client.get_experiment("0").tags["tag14"] in {"0", "1", "2", "3"}


SHARED_RUN = """
import json, sys, time
from types import SimpleNamespace
import pandas as pd
from tsarena.judging.metrics import DM_PVALUE, DM_PVALUE_HOLM, IN_MCS, SKILL_VS_RW
from tsarena.tracking.registry import log_verdicts, register
start, rounds = float(sys.argv[1]), json.loads(sys.argv[2])
params = SimpleNamespace(registered_model="m", alpha=0.05)
table = pd.DataFrame([{"model": "ar", "kind": "baseline", IN_MCS: 1.0}])
for i, (run_id, model_uri) in enumerate(rounds):  # each round a fresh run: a row races only when first written
    champion = {"model": "ar", DM_PVALUE: 0.01, DM_PVALUE_HOLM: 0.02, IN_MCS: 1.0, SKILL_VS_RW: 1.5}
    runs = {"ar": {"run_id": run_id, "model_uri": model_uri, "served": {"fold": 1, "seed": 0}}}
    time.sleep(max(0.0, start + i - time.time()))  # every process starts the round at the same instant
    register(champion, runs, "evidence", [] if i % 2 else ["SPA p 0.2"], params)
    log_verdicts({"ar": run_id}, table, None)
"""


@pytest.mark.system
def test_compares_registering_and_ranking_the_same_run_at_once_all_succeed(tmp_path):
    """A baseline's run is every experiment's when DVC restores its stage from the run cache, so two queued
    experiments' compare stages register it, tag its version and log its rank at the same moment (CI saw
    `UNIQUE constraint failed: model_version_tags`). Every writer succeeds, and each run has one version."""
    from mlflow import MlflowClient

    from tsarena.judging.metrics import DM_PVALUE_HOLM, RANK

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    client.create_registered_model("m")
    run_ids = [client.create_run("0").info.run_id for _ in range(8)]
    model_uris = [f"models:/{client.create_logged_model('0', source_run_id=r).model_id}" for r in run_ids]
    for run_id in run_ids[4:]:  # registered already: only the tags race
        client.create_model_version("m", "file:///model", run_id=run_id)
    start = str(time.time() + 8)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    rounds = json.dumps(list(zip(run_ids, model_uris)))
    procs = [subprocess.Popen([sys.executable, "-c", SHARED_RUN, start, rounds], stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(4)]
    errors = [p.communicate(timeout=180)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-800:] for e in errors]
    versions = client.search_model_versions("name = 'm'")
    assert sorted(v.run_id for v in versions) == sorted(run_ids)  # one version per run
    assert all(v.tags["architecture"] == "ar" and v.tags[DM_PVALUE_HOLM] == "0.02" for v in versions)
    assert all(client.get_run(run_id).data.metrics[RANK] == 1.0 for run_id in run_ids)
