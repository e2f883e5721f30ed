"""Team scale, end to end with the real tools: queued sweeps, faults, a real `mlflow server`,
serving the champion over HTTP, and the `tsarena predict` command."""

import json
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest

from tsarena.contestants.producers import BASELINES, ORACLE
from tsarena.contestants.baselines import WHEN_APPLICABLE

from conftest import BIN, ROOT, free_port, make_repo, mlflow_server, stop, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.system]


def runs_named(uri: str, name: str):
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tsarena")
    return client.search_runs([experiment.experiment_id], f"attributes.run_name = '{name}'")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_killed_training_leaves_no_output_marks_the_run_killed_and_repro_recovers(tmp_path, signum):
    repo = make_repo(tmp_path, {"train": {"max_epochs": 500, "patience": 500}})
    repo.dvc("repro", "tune@lstm")  # split, and the configuration train.py reads
    proc = subprocess.Popen(["python", "pipeline/train.py", "lstm"], cwd=repo.path, env=repo.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # line logs (CI=true): wait until an epoch is done, then kill mid-epoch
        if "epoch   1:" in line:
            break
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum
    assert err.strip().splitlines()[-1] == f"error: interrupted by {signum.name}; no output was written"
    models = repo.path / "data/models"
    assert not (models / "lstm").exists() and not list(models.glob(".*")) if models.exists() else True
    assert not (repo.path / "data/predictions").exists() or not list((repo.path / "data/predictions").iterdir())
    (run,) = runs_named(repo.mlflow_uri, "lstm")
    assert run.info.status == "KILLED"
    repo.set_params({"train": {"max_epochs": 2}})
    out = repo.dvc("repro", "train@lstm").stdout
    assert "Running stage 'train@lstm'" in out and (models / "lstm/bundle/members.json").is_file()
    assert {r.info.status for r in runs_named(repo.mlflow_uri, "lstm")} == {"KILLED", "FINISHED"}


def test_queued_sweep_with_two_jobs_logs_every_experiment_into_the_users_store(tmp_path):
    repo = make_repo(tmp_path, {"data": {"synthetic": {"n_days": 1200}}, "train": {"max_epochs": 2}})
    assert not (repo.path / "mlflow.db").exists()  # a fresh store, created by two workers at once
    repo.dvc("exp", "run", "--queue", "-S", "lstm.hidden_size=8,12")
    repo.dvc("queue", "start", "--jobs", "2")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = repo.dvc("queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    if status.count("Success") != 2:  # say why: the failed experiments' own logs and DVC's worker logs
        failed = [line.split()[0] for line in status.splitlines() if "Failed" in line]
        logs = [repo.dvc("queue", "logs", task, check=False) for task in failed]
        workers = [f"{p.name}:\n{p.read_text()[-3000:]}" for p in (repo.path / ".dvc/tmp/exps/celery").glob("*.out")]
        pytest.fail("\n".join([status, *(p.stdout[-3000:] + p.stderr[-1000:] for p in logs), *workers]))
    names = set(repo.dvc("exp", "ls", "--name-only").stdout.split()) - {"master:", "main:"}
    names = {n for n in names if not n.endswith(":")}
    for name in names:
        log = repo.dvc("queue", "logs", name).stdout
        assert "database is locked" not in log and "Traceback" not in log
    assert len(names) == 2
    lstm = runs_named(repo.mlflow_uri, "lstm")
    assert {r.data.tags["dvc_exp_name"] for r in lstm} == names
    assert sorted(r.data.params["lstm.hidden_size"] for r in lstm) == ["12", "8"]
    assert {r.data.tags["dvc_exp_name"] for r in runs_named(repo.mlflow_uri, "compare")} == names
    # the experiments' artifacts live beside the user's store, not in the deleted temp copies
    assert list((repo.path / "mlartifacts").rglob("members.json"))
    # README's command compares them side by side: every contestant's test RMSE within 150 columns
    (command,) = [line.split("  #")[0] for line in (ROOT / "README.md").read_text().splitlines()
                  if line.startswith("dvc exp show")]
    table = repo.dvc(*shlex.split(command)[1:], COLUMNS="150").stdout
    oracle = {ORACLE} if repo.params["data"]["synthetic"]["kind"] == "ar1" else set()  # the known optimum
    contestants = {"lstm", "transformer", *(set(BASELINES) - WHEN_APPLICABLE), *oracle}  # no news here
    assert max(map(len, table.splitlines())) <= 150, table
    header = next(line for line in table.splitlines() if "Experiment" in line).split()
    assert set(header) == {"Experiment", *(f"{m}.rmse" for m in contestants)}, table
    rows = [line for line in table.splitlines() if any(f"[{n}]" in line for n in names)]
    assert len(rows) == 2 and all(len(re.findall(r"0\.\d{4,}", row)) == len(contestants) for row in rows), table


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `mlflow server` (SQLite backend, served artifacts) on a free loopback port."""
    root = tmp_path_factory.mktemp("server")
    port = free_port()
    proc, uri = mlflow_server(root, port)
    try:
        yield uri, root
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def served_repo(tmp_path_factory, server):
    uri, _ = server
    repo = make_repo(tmp_path_factory.mktemp("served"), {})
    repo.dvc("repro", MLFLOW_TRACKING_URI=uri)
    return repo


def test_pipeline_logs_to_a_real_tracking_server(served_repo, server):
    uri, root = server
    assert not (served_repo.path / "mlflow.db").exists() and not (served_repo.path / "mlartifacts").exists()
    for name in ("lstm", "transformer", "compare"):
        (run,) = runs_named(uri, name)
        assert run.info.status == "FINISHED"
    (lstm,) = runs_named(uri, "lstm")
    assert "test_rmse" in lstm.data.metrics and lstm.data.params["lstm.hidden_size"] == "16"
    assert "train_seconds" in lstm.data.metrics and "predictions_md5" in lstm.data.tags
    assert list((root / "artifacts").rglob("members.json"))  # artifacts went through the server


def test_champion_served_over_http_takes_raw_prices_and_answers_as_tsarena_predict(served_repo, server, tmp_path):
    """`mlflow models serve` of the registered champion: raw OHLCV rows in (no scaling, no windows on
    the client), forecasts out, exactly what `tsarena predict` prints for the same CSV."""
    uri, _ = server
    metrics = json.loads((served_repo.path / "data/eval/scores.json").read_text())
    report = (served_repo.path / "data/reports/comparison.md").read_text()
    champion = next(name for name in ("lstm", "transformer") if f"**{name}** is registered" in report)
    assert metrics[champion]["dm_pvalue"] < 0.05 and "alias `champion`" in report
    raw = pd.read_parquet(served_repo.path / "data/raw/prices.parquet").tail(300)
    csv = tmp_path / "prices.csv"
    raw.to_csv(csv, index=False)
    predicted = json.loads(served_repo.run(str(BIN / "tsarena"), "predict", str(csv), "--output", "json",
                                           MLFLOW_TRACKING_URI=uri).stdout)
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "models", "serve", "-m", "models:/tsarena-forecaster@champion", "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=served_repo.env(MLFLOW_TRACKING_URI=uri), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", proc)
        body = {"dataframe_split": json.loads(pd.read_csv(csv).to_json(orient="split", index=False))}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        served = json.loads(urllib.request.urlopen(request, timeout=60).read())["predictions"]
    finally:
        stop(proc)
    assert len(served) == 1 and served[0]["as_of"] == predicted[0]["as_of"] == str(raw["date"].iloc[-1].date())
    assert served[0]["log_return_1d"] == predicted[0]["log_return_1d"]


def test_ddp_on_two_cpu_processes_trains_once_and_logs_once(tmp_path):
    """Lightning's DDP (gloo on CPU here; NCCL on GPUs): the stage's command is re-run as rank 1,
    which trains in step with rank 0 and must log and write nothing of its own."""
    repo = make_repo(tmp_path, {"train": {"devices": 2, "strategy": "ddp", "max_epochs": 2, "seeds": [0, 1]}})
    out = repo.dvc("repro", "train@lstm").stdout
    history = pd.read_csv(repo.path / "data/models/lstm/histories.csv")
    assert len(history) == 4 and history["val_loss"].notna().all()
    assert out.count("lstm fold=1 seed=0 epoch   1:") == 1  # only rank 0 reports
    (parent,) = runs_named(repo.mlflow_uri, "lstm")
    assert parent.data.params["train.devices"] == "2" and parent.data.params["train.strategy"] == "ddp"
    for seed in (0, 1):
        (run,) = runs_named(repo.mlflow_uri, f"lstm fold=1 seed={seed}")
        from mlflow import MlflowClient

        curve = MlflowClient(repo.mlflow_uri).get_metric_history(run.info.run_id, "val_loss")
        assert np.allclose([m.value for m in curve], history.loc[history["seed"] == seed, "val_loss"])
    assert (repo.path / "data/models/lstm/bundle/member_0.pt").is_file() and (repo.path / "data/predictions/lstm.parquet").is_file()


def test_pipeline_against_a_server_with_a_login(tmp_path, monkeypatch):
    """MLflow's basic-auth app: the standard MLFLOW_TRACKING_USERNAME/PASSWORD log; wrong ones fail the
    stage in seconds with one `error:` line, before training."""
    from mlflow import MlflowClient

    root = tmp_path / "server"
    root.mkdir()
    proc, uri = mlflow_server(root, free_port(), admin_password="s3cret-Arena")
    try:
        repo = make_repo(tmp_path / "repo", {"train": {"max_epochs": 2}})
        repo.dvc("repro", "tune@lstm")  # split, and the configuration train.py reads
        start = time.monotonic()
        bad = repo.run("python", "pipeline/train.py", "lstm", check=False, MLFLOW_TRACKING_URI=uri,
                       MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD="wrong")
        assert bad.returncode == 1 and time.monotonic() - start < 30
        assert bad.stderr.strip().splitlines()[-1].startswith(f"error: MLflow tracking store {uri} rejected the "
                                                              "credentials")
        assert "epoch" not in bad.stdout and not (repo.path / "data/models/lstm").exists()
        repo.run("python", "pipeline/train.py", "lstm", MLFLOW_TRACKING_URI=uri, MLFLOW_TRACKING_USERNAME="admin",
                 MLFLOW_TRACKING_PASSWORD="s3cret-Arena")
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-Arena")
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("tsarena")
        (run,) = client.search_runs([experiment.experiment_id], "attributes.run_name = 'lstm'")
        assert run.info.status == "FINISHED" and run.data.params["lstm.hidden_size"] == "16"
    finally:
        stop(proc)
