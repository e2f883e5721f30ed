"""The one worker pool: a stage's fits (folds x seeds) or tuning trials, one after another or in worker
processes, with the same results either way; or, with a Cluster, as tasks on Ray (cluster.py). A task is
picklable plain data with a `label`, a `cost` (the costliest start first), the `source` of the windows it
reads and `windows()` to load them, `compute(windows, report)` (the work, anywhere; `report` sends a row,
an epoch, back as it lands) and `deliver(payload)` (what this machine keeps of it: files, the result);
`run_here` is all three in one process.

A fit's numbers depend on its intra-op thread count (`train.threads`: reductions split differently),
never on how many fits run beside it, so `train.jobs` is a speed knob only. Workers map each fold's
scaled matrix from one file (shared pages, no copy), write their forecasts to a file, and send back
small plain data: the weights as bytes, the history, and each epoch's row as it lands (forecasts
never cross a queue, so the stage's process never holds them all). They never touch MLflow; the
stage's own process logs everything, so a SQLite store sees one writer.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import queue
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tsarena.core.errors import TsarenaError


@dataclass(frozen=True)
class FitTask:
    """Everything a process needs to run one fit: picklable, no arrays."""

    name: str
    fold: int
    seed: int
    params: dict
    train: dict  # TrainParams as JSON
    split: str
    matrix: str  # the fold's scaled matrix (windows.write_scaled_fold)
    forecasts: str  # where the fit writes its predictions table (Parquet)
    mc_samples: int = 0  # Monte Carlo dropout intervals at `levels` on test (uncertainty.mc_samples; 0 = off)
    levels: tuple[float, ...] = ()
    variant: str = ""  # "" | "without news": the same fit on the matrix less the sentiment columns

    @property
    def label(self) -> str:
        return f"{self.name}{' ' + self.variant if self.variant else ''} fold={self.fold} seed={self.seed}"

    @property
    def cost(self) -> int:
        return self.fold  # later folds train on more data

    @property
    def source(self) -> tuple[str, int, str]:
        return self.split, self.fold, self.matrix

    def windows(self) -> Any:
        """The fold, mapped from its scaled matrix (shared pages, no copy)."""
        from tsarena.split.windows import load_fold

        return load_fold(self.split, self.fold, scaled=Path(self.matrix))

    def compute(self, windows: Any, report: Callable[[dict], None] | None = None) -> tuple[FitResult, Any]:
        """Train, forecast: the result and the forecasts (a predictions table)."""
        import torch

        from tsarena.contestants.registry import n_parameters
        from tsarena.fitting.fit import fit_one
        from tsarena.fitting.params import TrainParams

        started = time.perf_counter()
        fit = fit_one(self.name, self.params, windows, TrainParams.model_validate(self.train), self.seed, report,
                      mc_samples=self.mc_samples, levels=self.levels)
        seconds = time.perf_counter() - started
        buffer = io.BytesIO()
        torch.save(fit.model.state_dict(), buffer)
        result = FitResult(replace(fit, model=None, predictions=None), buffer.getvalue(), seconds,
                           n_parameters(fit.model))
        return result, fit.predictions

    def deliver(self, payload: tuple[FitResult, Any]) -> FitResult:
        """The forecasts to their file; the result back."""
        result, forecasts = payload
        forecasts.to_parquet(self.forecasts, index=False)
        return result


@dataclass
class FitResult:
    """A fit without its live model and forecasts: weights as bytes, so it crosses a process boundary
    unchanged; forecasts in the task's file."""

    fit: Any  # fitting.Fit with model=None, predictions=None
    state: bytes
    seconds: float
    n_parameters: int
    node: str = ""  # the Ray node that ran it (train.backend ray); "" on this machine

    def restore(self) -> Any:
        """The Fit with its model rebuilt from the weights (bit-identical to the trained one)."""
        import torch

        from tsarena.contestants.registry import build_model

        model = build_model(self.fit.name, self.fit.params, self.fit.dims)
        model.load_state_dict(torch.load(io.BytesIO(self.state), weights_only=True))
        return replace(self.fit, model=model.eval())


def cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_jobs(jobs: int | str, threads: int, n_fits: int, devices: int = 1, num_nodes: int = 1) -> int:
    """`auto`: enough processes to fill the machine (jobs x threads = cores), never more than there are
    fits. Several devices or nodes train one fit at a time across them (DDP), in this process."""
    if devices > 1 or num_nodes > 1:
        if jobs not in ("auto", 1):
            raise TsarenaError(f"train.jobs={jobs} with train.devices={devices}, train.num_nodes={num_nodes}: a "
                               "multi-device fit already uses every device; set train.jobs to 1 or auto", "train.jobs")
        return 1
    wanted = max(1, cores() // threads) if jobs == "auto" else int(jobs)
    return max(1, min(wanted, n_fits))


def run_here(task: Any, report: Callable[[dict], None] | None = None) -> Any:
    """A task in this process: its windows loaded here, computed, delivered."""
    return task.deliver(task.compute(task.windows(), report))


def _die_with_parent(parent: int) -> None:
    """A worker outlives no parent, even one killed with -9 (Linux: PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def _serve(tasks: Any, events: Any, threads: int, parent: int) -> None:
    """A worker: runs tasks until told to stop. Ctrl-C reaches the whole process group; the parent
    alone decides, and terminates its workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)
    import torch

    torch.set_num_threads(threads)
    while (item := tasks.get()) is not None:
        index, task = item
        try:
            events.put(("done", index, run_here(task, lambda row: events.put(("epoch", index, row)))))
        except TsarenaError as exc:
            events.put(("error", index, (exc.what, exc.where)))
        except BaseException:
            events.put(("crash", index, traceback.format_exc()))
            return


def run_tasks(tasks: list[Any], jobs: int, threads: int, on_epoch: Callable[[int, dict], None] | None = None,
              on_done: Callable[[int, Any], None] | None = None, cluster: Any = None) -> list[Any]:
    """Run every task (`threads` torch threads each); returns results in task order. Callbacks run in this
    process (index, payload): on_epoch as each epoch lands, on_done as each task ends (in completion order).
    Workers die with this process, ignore Ctrl-C (this process decides), and a dead one fails the stage.
    With a `cluster` (cluster.Cluster) the tasks run on Ray instead, `jobs` unused: Ray schedules them."""
    on_epoch = on_epoch or (lambda index, row: None)
    on_done = on_done or (lambda index, result: None)
    if cluster is not None:
        from tsarena.fitting.cluster import run_on_ray

        return run_on_ray(tasks, cluster, threads, on_epoch, on_done)
    import torch

    results: dict[int, FitResult] = {}
    if jobs == 1:
        torch.set_num_threads(threads)
        for index, task in enumerate(tasks):
            results[index] = run_here(task, lambda row, i=index: on_epoch(i, row))
            on_done(index, results[index])
        return [results[i] for i in range(len(tasks))]
    context = multiprocessing.get_context("spawn")  # fork would copy a parent holding threads and MLflow
    work, events = context.Queue(), context.Queue()
    # the costliest first, so no worker is left with a long one at the end
    for index in sorted(range(len(tasks)), key=lambda i: -tasks[i].cost):
        work.put((index, tasks[index]))
    workers = [context.Process(target=_serve, args=(work, events, threads, os.getpid()), daemon=True)
               for _ in range(jobs)]
    for _ in workers:
        work.put(None)
    try:
        for worker in workers:
            worker.start()
        while len(results) < len(tasks):
            try:
                kind, index, payload = events.get(timeout=0.5)
            except queue.Empty:
                dead = [w for w in workers if w.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a worker (pid {dead[0].pid}) died with exit code {dead[0].exitcode} "
                                       "(-9: killed, e.g. out of memory)") from None
                continue
            if kind == "epoch":
                on_epoch(index, payload)
            elif kind == "done":
                results[index] = payload
                on_done(index, payload)
            elif kind == "error":
                raise TsarenaError(*payload)
            else:
                raise RuntimeError(f"{tasks[index].label} failed in a worker process:\n{payload}")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
        for q in (work, events):
            q.cancel_join_thread()
            q.close()
    return [results[i] for i in range(len(tasks))]
