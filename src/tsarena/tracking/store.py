"""MLflow stores: tracking URI resolution, creating a store once, runs that end with the right status,
one error line for a store that fails. Knows nothing of architectures or DVC."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from filelock import FileLock

from tsarena.core.errors import StageInterrupted, TsarenaError
from tsarena.core.io import git_root


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


DUPLICATE = ("UNIQUE constraint failed", "duplicate key value")  # SQLite's and PostgreSQL's words for it


def shared_write(call: Any, *args: Any, attempts: int = 5, **kwargs: Any) -> Any:
    """`call(*args)` for a row another process may write at the same moment. MLflow's SQL store reads,
    then inserts without a lock, so the slower writer hits the UNIQUE constraint; its retry finds the row
    and updates or links it."""
    for attempt in range(attempts):
        try:
            return call(*args, **kwargs)
        except mlflow.exceptions.MlflowException as exc:
            if attempt == attempts - 1 or not any(text in str(exc) for text in DUPLICATE):
                raise
            time.sleep(0.1 * (attempt + 1))


class MlflowClient(mlflow.MlflowClient):
    """MLflow's client, its writes of rows that two experiments of a queue (`--jobs 2`) may create at the
    same moment made safe (`shared_write`): a run DVC restored from its run cache is every experiment's
    (its metrics, tags, registered version's tags), and so are the registry's aliases, the experiment's
    tags and a dataset both log. Every write tsarena makes outside its own stage's active run goes
    through it (the fluent API writes only that run, which no other process shares)."""


SHARED_WRITES = ("log_batch", "log_inputs", "set_tag", "set_experiment_tag", "set_model_version_tag",
                 "set_registered_model_alias")


def _shared(name: str) -> Any:
    def write(self: MlflowClient, *args: Any, **kwargs: Any) -> Any:
        return shared_write(getattr(super(MlflowClient, self), name), *args, **kwargs)

    write.__name__, write.__doc__ = name, f"MLflow's `{name}`, through `shared_write`."
    return write


for _name in SHARED_WRITES:
    setattr(MlflowClient, _name, _shared(_name))


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


