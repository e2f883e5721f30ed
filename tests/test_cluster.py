"""Fits and tuning trials on a real Ray cluster (train.backend: ray): a head and a second node started with
`ray start` on this machine, one CPU each. The forecasts equal the local pool's bit for bit, fits run on both
nodes, a node killed mid-stage is survived with the same bytes, the budget of a tuning search is counted
exactly, Ctrl-C stops the cluster's tasks, and a lost head is one error line with nothing written."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import BIN, free_port, make_repo, processes

pytest.importorskip("ray", reason="Ray is the optional extra .[ray]; make test installs it with .[dev]")
pytestmark = [pytest.mark.e2e, pytest.mark.system]

OUTPUTS = ("data/predictions/lstm.parquet", "data/models/lstm/bundle/member_0.pt", "data/models/lstm/histories.csv")


def digests(repo) -> dict[str, str]:
    return {path: hashlib.md5((repo.path / path).read_bytes()).hexdigest() for path in OUTPUTS}


class Nodes:
    """A Ray cluster of nodes on this machine, each started with `ray start` and one CPU; a node is its raylet
    (found by its node-manager port) and the worker processes it spawned."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.raylets: dict[str, int] = {}  # "head" | "node2" -> node-manager port

    def ray(self, *args: str) -> None:
        subprocess.run([str(BIN / "ray"), *args], env=self.env, check=True, capture_output=True, text=True, timeout=120)

    def start(self, name: str) -> None:
        self.raylets[name] = free_port()
        common = ["--num-cpus=1", f"--node-manager-port={self.raylets[name]}", "--disable-usage-stats"]
        if name == "head":
            self.ray("start", "--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={self.temp}",
                     *common)
        else:
            self.ray("start", f"--address={self.address}", *common)
        self.wait_nodes(len(self.raylets))

    def wait_nodes(self, n: int) -> None:
        code = ("import ray,time\nray.init(address='%s', logging_level='ERROR')\nt=time.time()\n"
                "while len([x for x in ray.nodes() if x['Alive']]) != %d and time.time() - t < 60: time.sleep(0.5)\n"
                "print(len([x for x in ray.nodes() if x['Alive']]))" % (self.address, n))
        out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=120)
        # the last line: Ray may first print that the killed node was marked dead
        assert out.stdout.strip().splitlines()[-1:] == [str(n)], out.stdout[-2000:] + out.stderr[-2000:]

    def raylet(self, name: str) -> int:
        (pid,) = [pid for pid, (_, cmd) in processes().items()
                  if "raylet" in cmd and f"--node_manager_port={self.raylets[name]}" in cmd]
        return pid

    def running(self, name: str) -> list[int]:
        """The node's worker processes executing a task now (Ray titles them `ray::_remote`)."""
        raylet = self.raylet(name)
        return [pid for pid, (parent, cmd) in processes().items() if parent == raylet and cmd.startswith("ray::_remote")]

    def kill(self, name: str) -> None:
        """The node dies at once: its raylet and its workers (and for the head, the GCS), SIGKILL."""
        raylet = self.raylet(name)
        doomed = [raylet, *(pid for pid, (parent, _) in processes().items() if parent == raylet)]
        if name == "head":
            doomed += [pid for pid, (_, cmd) in processes().items() if "gcs_server" in cmd and self.temp in cmd]
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        del self.raylets[name]

    def stop(self) -> None:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=self.env, capture_output=True, timeout=120)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout} s")


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    """A small arena trained by the local pool (the reference bytes), and a two-node cluster beside it."""
    repo = make_repo(tmp_path_factory.mktemp("cluster") / "repo",
                     {"arena": {"models": ["lstm"]}, "window": {"folds": 2},
                      "train": {"max_epochs": 3, "seeds": [0, 1], "jobs": 1}})
    repo.dvc("repro", "train@lstm")
    local = digests(repo)
    nodes = Nodes(repo.env())
    try:
        nodes.start("head")
        nodes.start("node2")
        repo.set_params({"train": {"backend": "ray", "ray_address": nodes.address}})
        yield repo, local, nodes
    finally:
        nodes.stop()


@pytest.mark.parametrize("address, what", [
    ("127.0.0.1:{port}", "nothing answers at 127.0.0.1:"), ("ray://head:10001", "a Ray Client address"),
    ("head-without-port", "expected the head's host:port")])
def test_a_cluster_that_cannot_be_reached_is_one_error_at_once(address, what):
    """Ray itself retries an unreachable address for minutes before it says anything."""
    from tsarena.core.errors import TsarenaError
    from tsarena.fitting.cluster import Cluster, connect

    address = address.format(port=free_port())  # chosen here: pytest-xdist's workers must collect the same ids
    started = time.monotonic()
    with pytest.raises(TsarenaError, match=what) as error:
        connect(Cluster(address))
    assert error.value.where == "train.ray_address" and time.monotonic() - started < 10


def fit_runs(repo) -> tuple[list, dict[str, dict]]:
    """The newest train@lstm parent run's fits: name -> (val_loss curve, the Ray node tag)."""
    from mlflow import MlflowClient

    client = MlflowClient(repo.mlflow_uri)
    experiment = client.get_experiment_by_name("tsarena")
    parents = client.search_runs([experiment.experiment_id], "attributes.run_name = 'lstm'", order_by=["start_time DESC"])
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    return parents, {run.info.run_name: {"curve": [(m.step, m.value) for m in client.get_metric_history(
        run.info.run_id, "val_loss")], "node": run.data.tags.get("ray.node_id")} for run in children}


def test_fits_run_on_both_nodes_and_equal_the_local_pools_bit_for_bit(arena):
    repo, local, nodes = arena
    _, local_runs = fit_runs(repo)
    knob = repo.dvc("repro", "train@lstm").stdout  # where the fits run is a speed knob: nothing re-runs but check
    assert "Running stage 'check'" in knob and knob.count("Running stage") == 1, knob
    out = repo.dvc("repro", "--force", "--single-item", "train@lstm").stdout
    assert f"4 fit(s), on the Ray cluster at {nodes.address} (2 node(s), 2 CPU(s)), 1 thread(s) each" in out, out
    assert digests(repo) == local
    parents, runs = fit_runs(repo)
    assert parents[0].info.status == "FINISHED" and "train.backend" not in parents[0].data.params
    assert sorted(runs) == sorted(local_runs) == [f"lstm fold={k} seed={s}" for k in (1, 2) for s in (0, 1)]
    assert {name: run["curve"] for name, run in runs.items()} == {n: r["curve"] for n, r in local_runs.items()}
    assert len({run["node"] for run in runs.values()}) == 2, runs  # both nodes trained
    assert all(run["node"] is None for run in local_runs.values())


def kill_mid_stage(repo, nodes: Nodes, node: str) -> tuple[int, str, str]:
    """`dvc repro` of train@lstm, and `node` killed while it trains a fit: (exit code, stdout, stderr)."""
    proc = subprocess.Popen([str(BIN / "dvc"), "repro", "--force", "--single-item", "train@lstm"], cwd=repo.path,
                            env=repo.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: nodes.running(node), 120, f"fit running on {node}")
        nodes.kill(node)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    return proc.returncode, out, err


def test_a_node_killed_mid_stage_is_survived_with_the_same_bytes(arena):
    repo, local, nodes = arena
    returncode, out, err = kill_mid_stage(repo, nodes, "node2")
    assert returncode == 0, out[-3000:] + err[-3000:]
    assert digests(repo) == local
    _, runs = fit_runs(repo)
    assert {name: len(run["curve"]) for name, run in runs.items()} == {name: 3 for name in runs}  # one attempt each
    assert "Traceback" not in out + err
    nodes.start("node2")


def test_tuning_trials_share_one_study_on_the_cluster_with_the_budget_exact(arena):
    repo, _, _ = arena
    repo.set_params({"tune": {"trials": 4, "jobs": 2}})
    try:
        out = repo.dvc("repro", "--single-item", "tune@lstm").stdout
    finally:
        repo.set_params({"tune": {"trials": 0, "jobs": 1}})
    tuned = json.loads((repo.path / "data/tuned/lstm.json").read_text())
    assert tuned["trials"] == 4 and tuned["complete"] + tuned["pruned"] == 4, tuned
    assert "tune@lstm: 4 trials" in out, out


def test_ctrl_c_cancels_the_clusters_tasks(arena):
    repo, _, nodes = arena
    repo.set_params({"train": {"max_epochs": 500, "patience": 500}})
    try:
        proc = subprocess.Popen([sys.executable, "pipeline/train.py", "lstm"], cwd=repo.path, env=repo.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: nodes.running("head") and nodes.running("node2"), 120, "fits running on both nodes")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        repo.set_params({"train": {"max_epochs": 3, "patience": 3}})
    assert proc.returncode == 128 + signal.SIGINT
    assert err.strip().splitlines()[-1] == "error: interrupted by SIGINT; no output was written", err
    wait_until(lambda: not nodes.running("head") and not nodes.running("node2"), 30, "cluster idle after Ctrl-C")


def test_a_node_with_other_code_fails_the_stage_with_one_line(arena, tmp_path):
    """The nodes import tsarena from the repo; a stage run from an edited copy would get other numbers from
    them in silence: every task compares the code it runs with the stage's."""
    import shutil

    repo, _, _ = arena
    shutil.copytree(repo.path / "src", tmp_path / "src")
    with (tmp_path / "src/tsarena/fitting/fit.py").open("a") as edited:
        edited.write("\n# a local edit\n")
    proc = repo.run(sys.executable, "pipeline/train.py", "lstm", check=False, PYTHONPATH=str(tmp_path / "src"))
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: Ray node ") and "runs other tsarena code or torch than this stage" \
        in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_head_lost_is_one_error_line_no_output_and_the_next_repro_reruns_cleanly(arena):
    repo, local, nodes = arena
    returncode, out, err = kill_mid_stage(repo, nodes, "head")
    assert returncode != 0
    errors = [line for line in (out + err).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: lost the Ray cluster's head at {nodes.address}") and \
        errors[0].endswith("(train.ray_address)"), out[-2000:] + err[-3000:]
    assert "Traceback" not in out + err
    leftovers = [p.name for folder in ("data/models", "data/predictions") if (repo.path / folder).exists()
                 for p in (repo.path / folder).iterdir()]
    assert not [name for name in leftovers if name.startswith(".") or name.startswith("lstm")], leftovers
    nodes.stop()
    repo.set_params({"train": {"backend": "local"}})  # the cluster is gone: the next repro on this machine
    out = repo.dvc("repro", "train@lstm").stdout  # DVC's run-cache may restore the outputs of an identical run
    assert "Running stage 'train@lstm'" in out or "Stage 'train@lstm' is cached" in out, out
    assert digests(repo) == local
    assert "up to date" in repo.dvc("status", "train@lstm").stdout
