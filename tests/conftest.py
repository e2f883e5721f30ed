"""Shared fixtures: a real git + DVC repo in a temp folder, running the real pipeline."""

from __future__ import annotations

import tsarena.core.pinned  # noqa: F401  first, as in every stage: what this process serves computes as they do
import copy
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Small and fast: synthetic data, short windows, tiny models, few epochs.
SMALL = {
    "data": {"source": "synthetic", "synthetic": {"kind": "ar1", "n_days": 4000, "n_series": 1, "phi": 0.3, "seed": 0}},
    "features": {"return_lags": [1, 5], "volatility_windows": [5], "ma_windows": [5, 10], "rsi_window": 14,
                 "macd": None, "volume_window": 10},
    "window": {"seq_len": 10},
    "train": {"max_epochs": 6, "batch_size": 64, "lr": 0.003, "patience": 3, "accelerator": "cpu"},
    "lstm": {"hidden_size": 16, "num_layers": 1, "dropout": 0.0},
    "transformer": {"d_model": 16, "nhead": 2, "num_layers": 1, "dropout": 0.0},
    # off: its torch + Captum + matplotlib start-up is ~15 s per repro; test_explain, test_extras and test_zoo turn it on
    "explain": {"enabled": False, "windows": 60, "steps": 16, "repeats": 1},
}


def deep_update(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out


class Repo:
    """A throwaway copy of the project as a user would have it: git, DVC, params.yaml."""

    def __init__(self, path: Path):
        self.path = path

    def env(self, **extra: str) -> dict[str, str]:
        # as a user's shell: bytecode is written (the CI environment does), no tracking overrides, and none of
        # pytest's variables (with PYTEST_CURRENT_TEST set, MLflow's SQL store runs its own test-only checks)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MLFLOW_", "DVC_", "PYTHONDONTWRITEBYTECODE", "PYTEST_"))}
        env.update(PATH=f"{BIN}{os.pathsep}{env['PATH']}", PYTHONPATH=str(self.path / "src"), CI="true",
                   GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
        env.update(extra)
        return env

    def run(self, *cmd: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, cwd=self.path, env=self.env(**env), capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def dvc(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        return self.run(str(BIN / "dvc"), *args, check=check, **env)

    @property
    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def set_params(self, overrides: dict) -> None:
        (self.path / "params.yaml").write_text(yaml.safe_dump(deep_update(self.params, overrides), sort_keys=False))

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.path / 'mlflow.db'}"


def make_repo(path: Path, overrides: dict) -> Repo:
    for item in ("dvc.yaml", "pipeline", "src", "data/input", ".gitignore", ".dvcignore"):
        source = ROOT / item
        target = path / item
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    params = deep_update(yaml.safe_load((ROOT / "params.yaml").read_text()), deep_update(SMALL, overrides))
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    repo = Repo(path)
    repo.run("git", "init", "-q")
    repo.dvc("init", "-q")
    repo.dvc("config", "core.analytics", "false")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-qm", "init")
    return repo


@pytest.fixture
def new_repo(tmp_path: Path):
    """Factory: new_repo(overrides) -> Repo, with the small params merged over params.yaml."""

    def factory(overrides: dict | None = None) -> Repo:
        return make_repo(tmp_path / "repo", overrides or {})

    return factory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes() -> dict[int, tuple[int, str]]:
    """Every live process: pid -> (parent pid, command line), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if stat[0] != "Z":
                found[int(entry.name)] = (int(stat[1]), cmdline)
    return found


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url}: server exited with {proc.returncode}: {proc.stderr.read()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not come up in {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def mlflow_server(root: Path, port: int, admin_password: str | None = None) -> tuple[subprocess.Popen, str]:
    """A real `mlflow server` (SQLite backend under `root`, served artifacts) on a loopback port, up;
    with `admin_password`, MLflow's basic-auth app (user `admin`)."""
    auth = ["--app-name", "basic-auth"] if admin_password else []
    env = {**os.environ, **({"MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
                             "MLFLOW_FLASK_SERVER_SECRET_KEY": "tsarena-test-only"} if admin_password else {})}
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1", *auth,
         "--backend-store-uri", f"sqlite:///{root}/server.db", "--artifacts-destination", str(root / "artifacts")],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    uri = f"http://127.0.0.1:{port}"
    wait_http(f"{uri}/health", proc)
    return proc, uri
