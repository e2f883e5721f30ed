"""Faults and typos, with the real tools: a real params file, a real file-size limit, a real kill -9."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import make_repo


def test_a_misspelt_top_level_section_fails_every_stage_before_any_work(tmp_path):
    repo = make_repo(tmp_path, {})
    text = (repo.path / "params.yaml").read_text()
    (repo.path / "params.yaml").write_text(text + "trainer:\n  max_epochs: 3\n")
    proc = repo.dvc("repro", check=False)
    assert proc.returncode != 0
    assert "error: unknown section 'trainer' (params.yaml)" in proc.stderr
    assert not (repo.path / "data/raw").exists()
    for script in ("pipeline/split.py", "pipeline/evaluate.py"):  # every stage, whatever sections it reads
        out = repo.run(sys.executable, script, check=False)
        assert out.returncode == 1 and out.stderr.strip() == "error: unknown section 'trainer' (params.yaml)"


@pytest.mark.e2e
@pytest.mark.system
def test_a_full_disk_leaves_the_previous_outputs_intact_with_one_error_line(tmp_path):
    """A file-size limit (`ulimit -f`) makes the write fail as a full disk does (EFBIG, like ENOSPC)."""
    repo = make_repo(tmp_path, {})
    repo.dvc("repro", "split")
    before = {p.relative_to(repo.path): p.read_bytes() for p in (repo.path / "data/split").rglob("*") if p.is_file()}
    repo.set_params({"window": {"seq_len": 12}})  # new outputs to write
    proc = subprocess.run(["bash", "-c", f"ulimit -f 64; exec {sys.executable} pipeline/split.py"], cwd=repo.path,
                          env=repo.env(), capture_output=True, text=True)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "written; no output was written, earlier outputs are left as they were (disk: free space, file-size limit" \
        in lines[0] or "File too large" in lines[0]
    after = {p.relative_to(repo.path): p.read_bytes() for p in (repo.path / "data/split").rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in (repo.path / "data").iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_runs_of_a_dead_process_are_marked_failed_and_live_ones_are_left_alone(tmp_path):
    from mlflow import MlflowClient

    import socket

    from tsarena.tracking import runs as tracking
    from tsarena.tracking.store import connect

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = connect(uri, "faults")
    client = MlflowClient(uri)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname()
        runs = {label: client.create_run(experiment_id, tags={"stage": "train@lstm", "host": h, "pid": str(pid)})
                for label, h, pid in [("dead", host, dead.pid), ("alive", host, alive.pid),
                                      ("elsewhere", "another-host", dead.pid)]}
        other = client.create_run(experiment_id, tags={"stage": "compare", "host": host, "pid": str(dead.pid)})
        failed = tracking.mark_dead_runs_failed(uri, experiment_id, "train@lstm")
    finally:
        alive.kill()
    assert failed == [runs["dead"].info.run_id]
    status = {label: client.get_run(r.info.run_id).info.status for label, r in runs.items()}
    assert status == {"dead": "FAILED", "alive": "RUNNING", "elsewhere": "RUNNING"}
    assert "marked FAILED by the next execution of stage train@lstm" in \
        client.get_run(runs["dead"].info.run_id).data.tags["failed_reason"]
    assert client.get_run(other.info.run_id).info.status == "RUNNING"  # another stage's run: not ours to judge


def test_scratch_folders_of_dead_processes_are_removed_and_live_ones_left_alone(tmp_path):
    from tsarena.core.io import scratch_dir

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead, alive = tmp_path / f"train-lstm-{gone.pid}-ab_1", tmp_path / f"tune-tft-{os.getppid()}-cd2"
    other = tmp_path / "not-ours"
    for folder in (dead, alive, other):
        folder.mkdir()
        (folder / "fold_1.npy").write_bytes(b"x")
    with scratch_dir("train-lstm", root=tmp_path) as mine:
        assert mine.is_dir() and mine.name.startswith(f"train-lstm-{os.getpid()}-")
        assert not dead.exists() and alive.is_dir() and other.is_dir()
    assert not mine.exists()


@pytest.mark.e2e
@pytest.mark.system
def test_kill_9_mid_training_leaves_runs_that_the_next_execution_marks_failed(tmp_path):
    repo = make_repo(tmp_path, {"train": {"max_epochs": 500, "patience": 500}})
    repo.dvc("repro", "tune@lstm")  # split, and the configuration train.py reads
    proc = subprocess.Popen([sys.executable, "pipeline/train.py", "lstm"], cwd=repo.path, env=repo.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if "epoch   1:" in line:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    scratch = Path(tempfile.gettempdir()) / f"tsarena-scratch-{os.getuid()}"
    assert list(scratch.glob(f"train-lstm-{proc.pid}-*"))  # a kill -9 leaves the stage's scratch behind
    from mlflow import MlflowClient

    client = MlflowClient(repo.mlflow_uri)
    experiment = client.get_experiment_by_name("tsarena")
    left = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    assert {r.info.run_name for r in left} == {"lstm", "lstm fold=1 seed=42"}
    assert not (repo.path / "data/models/lstm").exists()
    repo.set_params({"train": {"max_epochs": 1}})
    start = time.monotonic()
    repo.dvc("repro", "train@lstm")
    assert time.monotonic() - start < 120
    for run in left:
        after = client.get_run(run.info.run_id)
        assert after.info.status == "FAILED" and "ended without closing the run" in after.data.tags["failed_reason"]
    assert (repo.path / "data/models/lstm/bundle/members.json").is_file()
    assert not list(scratch.glob(f"train-lstm-{proc.pid}-*"))  # the killed stage's scaled matrix, removed by the next one


@pytest.mark.e2e
@pytest.mark.system
def test_tracking_server_restart_is_ridden_out_and_a_lasting_outage_is_one_line(tmp_path):
    """A real `mlflow server` stopped mid-training: back within seconds, the stage finishes; gone for
    good, the stage ends with one `error:` line naming the fit and epoch, and writes nothing; once the
    server is back, the next repro completes."""
    from conftest import free_port, mlflow_server, stop

    root = tmp_path / "server"
    root.mkdir()
    port = free_port()
    server, uri = mlflow_server(root, port)
    repo = make_repo(tmp_path / "repo", {"train": {"max_epochs": 4, "patience": 10}})
    repo.dvc("repro", "tune@lstm")  # split, and the configuration train.py reads

    def train_until_epoch(epoch: int, **env: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "pipeline/train.py", "lstm"], cwd=repo.path,
                                env=repo.env(MLFLOW_TRACKING_URI=uri, **env), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:
            if f"epoch   {epoch}:" in line:
                return proc
        raise AssertionError(f"training ended before epoch {epoch}: {proc.stderr.read()[-2000:]}")

    try:
        proc = train_until_epoch(0)
        stop(server)
        time.sleep(2)  # a restart: the retries (1 + 2 + 4 + 8 + 16 s apart) outlast it
        server, _ = mlflow_server(root, port)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        assert (repo.path / "data/models/lstm/bundle/members.json").is_file()

        repo.set_params({"train": {"max_epochs": 500, "patience": 500}})
        proc = train_until_epoch(1, MLFLOW_HTTP_REQUEST_MAX_RETRIES="2")  # the documented knob: give up sooner
        stop(server)  # for good
        start = time.monotonic()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 1 and time.monotonic() - start < 60
        lines = err.strip().splitlines()
        assert lines[-1].startswith(f"error: MLflow tracking store {uri} became unreachable during training of "
                                    "lstm fold=1 seed=42 (epoch ")
        assert lines[-1].endswith("; no output was written (tracking.uri or MLFLOW_TRACKING_URI)")
        assert "Traceback" not in err
        server, _ = mlflow_server(root, port)
        repo.set_params({"train": {"max_epochs": 2}})
        repo.dvc("repro", "train@lstm", MLFLOW_TRACKING_URI=uri)
        assert (repo.path / "data/predictions/lstm.parquet").is_file()
    finally:
        stop(server)


def test_a_signal_during_a_store_write_is_raised_when_the_write_has_finished():
    from tsarena.core import errors

    previous = signal.signal(signal.SIGTERM, errors._interrupt)
    finished = []
    try:
        with pytest.raises(errors.StageInterrupted) as raised:
            with errors.signals_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler has run by now: held back, not raised
                finished.append(True)
        assert finished == [True] and raised.value.signum == signal.SIGTERM
        with pytest.raises(errors.StageInterrupted):  # outside, a signal interrupts at once
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    finally:
        signal.signal(signal.SIGTERM, previous)
