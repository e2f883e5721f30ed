"""The Ray backend (`train.backend: ray`): a stage's fits, or its tuning trials' shares, as tasks on a Ray
cluster, with the same results as the local pool (pool.py).

Each task asks Ray for `train.threads` CPUs and `train.gpus_per_fit` of a GPU (0.25: four small fits share
one). A fold's windows (its scaled matrix, targets and split ends) go to the object store once, put by
this process, and every task of that fold reads them there (zero-copy on the task's node); a fit's
forecasts come back as its task's return value, fetched one task at a time as each ends and written to
the file the local pool would have written, so this process never holds them all. Tasks compute exactly
what a local worker computes (the task's `compute`), so the numbers are the same bit for bit for the
same `train.threads`; every task checks that its node runs this process's tsarena and torch, since a
node with other code would give other numbers in silence.

Faults: a task whose node dies is retried elsewhere by Ray (`max_retries`); its epochs are logged
only from the attempt that finished, so a retry leaves no trace in MLflow. The head lost (its GCS
unreachable for a few seconds) is one TsarenaError, before Ray's own 60-second timeout would end this
process without a word. Ctrl-C (or SIGTERM) is taken between Ray's calls, never inside one, and cancels every
task of the stage. Only this process writes to MLflow.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsarena.core.errors import TsarenaError, signals_deferred
from tsarena.core.numerics import MODE_VARIABLE, PORTABLE, environment

RETRIES = 3  # attempts after the first when a task's node or worker process dies (never for an error in the fit)
HEAD_MISSES = 3  # consecutive failed connections to the head's GCS, a second or more apart, before giving up
WHERE = "train.ray_address"


@dataclass(frozen=True)
class Cluster:
    """Where a stage's tasks run: a Ray cluster's address (None: $RAY_ADDRESS, else a Ray instance started
    on this machine for the stage) and each fit's GPU share."""

    address: str | None = None
    gpus_per_fit: float = 0.0

    @classmethod
    def from_params(cls, train: Any) -> Cluster | None:
        """The cluster `train` (TrainParams) asks for, or None for the local pool."""
        return cls(train.ray_address, float(train.gpus_per_fit)) if train.backend == "ray" else None

    def joins(self) -> str | None:
        """The address to join: train.ray_address, else $RAY_ADDRESS; None starts Ray on this machine."""
        return self.address or os.environ.get("RAY_ADDRESS")


def code_digest() -> str:
    """This process's tsarena source and torch version: what a task's numbers depend on besides its inputs."""
    import torch

    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256(torch.__version__.encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


_said: set[str] = set()


def _brief(data: dict, ignore_prefix: bool = False) -> None:
    """Ray's messages from the cluster (a node died, a task is retried): the first two sentences of each, once,
    not the raylet's log tail that follows them."""
    for message in data.get("lines", []):
        text = str(message).strip()
        brief = ". ".join(text.splitlines()[0].split(". ")[:2]).rstrip(".") + "." if text else ""
        if brief and brief not in _said:
            _said.add(brief)
            print(f"ray: {brief}", file=sys.stderr, flush=True)


def _native_stderr_to_devnull() -> None:
    """Ray's C++ core writes its log lines to this process's file descriptor 2 (they are in the session's log
    files too): that descriptor goes to /dev/null, and Python's sys.stderr, which every message and error of
    the stage uses, keeps the terminal. Ray's core can then not print over the stage's one error line."""
    sys.stderr.flush()
    kept = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = kept


def connect(cluster: Cluster) -> str:
    """Join the cluster (or start a local Ray instance) once per process; returns what the stage prints of it.
    Ray's own handlers and chatter are kept out: our SIGTERM handler stays, its C++ log goes to its files, its
    messages from the cluster come one line each."""
    # this process reports a lost head itself, sooner, as one error line: Ray's own timeout would exit it
    os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", "600")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise TsarenaError("train.backend is ray, and Ray is not installed: pip install -c constraints.txt "
                           "-e '.[ray]'", "train.backend") from None
    address = cluster.joins()
    where = WHERE if cluster.address else "RAY_ADDRESS"
    if address and "://" in address:
        raise TsarenaError(f"a Ray Client address ({address}) is not supported: give the head's host:port, and run "
                           "dvc on a machine that reaches it", where)
    host, _, port = (address or "").rpartition(":")
    if address and address != "auto" and not ray.is_initialized():
        if not (host and port.isdigit()):
            raise TsarenaError(f"expected the head's host:port (as `ray start --head` prints it), got {address!r}", where)
        if not head_alive((host, int(port))):  # Ray itself would retry for minutes before saying so
            raise TsarenaError(f"nothing answers at {address}: start the cluster's head there (`ray start --head "
                               f"--port={port}`), or point {where} at it", where)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if not ray.is_initialized():
            _native_stderr_to_devnull()
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                     include_dashboard=False if address is None else None)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise TsarenaError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}", where) from None
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    import ray._private.worker as ray_worker

    if hasattr(ray_worker, "print_to_stdstream"):
        ray_worker.print_to_stdstream = _brief
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = ray.cluster_resources().get("CPU", 0)
    gpus = ray.cluster_resources().get("GPU", 0)
    where = f"the Ray cluster at {address}" if address else "a Ray instance on this machine"
    return f"{where} ({len(nodes)} node(s), {cpus:g} CPU(s){f', {gpus:g} GPU(s)' if gpus else ''})"


def hosts(cluster: Cluster) -> set[str]:
    """The addresses of the cluster's live nodes (several nodes may share one host)."""
    connect(cluster)
    import ray

    return {n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}


def _head() -> tuple[str, int] | None:
    """The head's GCS host and port, to watch."""
    import ray

    host, _, port = (ray.get_runtime_context().gcs_address or "").rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


def _named(cluster: Cluster, head: tuple[str, int]) -> str:
    """The head as the user named it (train.ray_address or $RAY_ADDRESS), else as Ray reports it."""
    return cluster.joins() or f"{head[0]}:{head[1]}"


def head_alive(head: tuple[str, int]) -> bool:
    try:
        socket.create_connection(head, timeout=2).close()
        return True
    except OSError:
        return False


def _remote(task: Any, windows: Any, threads: int, digest: str) -> tuple[Any, str]:
    """What a Ray task runs: the local worker's computation on windows from the object store."""
    import ray
    import torch

    node = ray.get_runtime_context().get_node_id()
    if (mine := code_digest()) != digest:
        raise TsarenaError(f"Ray node {node[:12]} runs other tsarena code or torch than this stage ({mine} vs "
                           f"{digest}): install the same version on every node", WHERE)
    torch.set_num_threads(threads)
    return task.compute(windows, None), node


def run_on_ray(tasks: list[Any], cluster: Cluster, threads: int, on_epoch: Callable[[int, dict], None],
               on_done: Callable[[int, Any], None]) -> list[Any]:
    """Run every task (pool.py's protocol: `source`, `windows()`, `compute`, `deliver`) as a Ray task;
    results in task order, callbacks in this process as each task ends (its epochs first)."""
    import ray
    from ray.exceptions import RayError, RayTaskError, TaskCancelledError

    connect(cluster)
    head = _head()
    digest = code_digest()
    # each task's worker starts with this stage's numerics pinned (core.numerics: before it loads numpy or torch)
    numerics = {"env_vars": environment(os.environ.get(MODE_VARIABLE, PORTABLE))}
    remote = ray.remote(_remote).options(num_cpus=threads, num_gpus=cluster.gpus_per_fit, max_retries=RETRIES,
                                         retry_exceptions=False, runtime_env=numerics)
    shared: dict[Any, Any] = {}  # source -> the object store's copy of those windows, put once
    pending: dict[Any, int] = {}
    # the costliest first, as the local pool, so no node is left with a long one at the end
    for index in sorted(range(len(tasks)), key=lambda i: -tasks[i].cost):
        task = tasks[index]
        if task.source not in shared:
            shared[task.source] = ray.put(task.windows())
        pending[remote.remote(task, shared[task.source], threads, digest)] = index
    results: dict[int, Any] = {}
    misses, checked = 0, time.monotonic()
    try:
        while pending:
            with signals_deferred():  # a signal raised inside Ray's C++ wait would come out as a SystemError
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in done:
                index = pending.pop(ref)
                try:
                    with signals_deferred():
                        payload, node = ray.get(ref)
                except RayTaskError as exc:
                    cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
                    if isinstance(cause, TsarenaError):
                        raise cause from None
                    raise RuntimeError(f"{tasks[index].label} failed on the Ray cluster:\n{exc}") from None
                result = tasks[index].deliver(payload)
                if hasattr(result, "node"):
                    result.node = node
                for row in getattr(getattr(result, "fit", None), "history", []):
                    on_epoch(index, row)
                results[index] = result
                on_done(index, result)
                del ref, payload
            if head is not None and time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                misses = 0 if head_alive(head) else misses + 1
                if misses >= HEAD_MISSES:
                    raise TsarenaError(f"lost the Ray cluster's head at {_named(cluster, head)} (it does not answer) "
                                       f"with {len(pending)} task(s) unfinished; no output was written", WHERE)
    except (TaskCancelledError, RayError) as exc:
        raise TsarenaError(f"the Ray cluster failed the stage: {str(exc).strip().splitlines()[0]}", WHERE) from None
    finally:
        if pending and (head is None or head_alive(head)):
            with signals_deferred():
                for ref in pending:
                    ray.cancel(ref, force=True)
    return [results[i] for i in range(len(tasks))]
