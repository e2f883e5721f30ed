"""Equal tuning budgets: Optuna's seeded TPE over an architecture's search space.

Every trial trains on fold 1's training windows and scores on its validation windows; the test
windows are removed from what a trial is given, so tuning cannot read the test period. The chosen
configuration is then frozen for every fold and seed. Knows nothing of DVC or MLflow.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import optuna
from pydantic import ValidationError

from tsarena.core.errors import TsarenaError
from tsarena.fitting.params import SearchChoice, Space, TrainParams, TuneParams
from tsarena.fitting.pool import run_tasks
from tsarena.split.windows import Windows, load_fold

TUNED_SPLITS = ("train", "val")


def without_test(windows: Windows) -> Windows:
    """The fold as a trial sees it: training and validation windows only."""
    return dataclasses.replace(windows, ends={s: windows.ends[s] for s in TUNED_SPLITS})


def suggest(trial: optuna.Trial, prefix: str, space: Space) -> None:
    """Sample `space` into the trial as `<prefix>.<key>` (configuration() reads them back from trial.params)."""
    for key, spec in space.items():
        name = f"{prefix}.{key}"
        if isinstance(spec, SearchChoice):
            trial.suggest_categorical(name, spec.choices)
        elif isinstance(spec.low, int) and isinstance(spec.high, int):
            trial.suggest_int(name, spec.low, spec.high, log=spec.log)
        else:
            trial.suggest_float(name, float(spec.low), float(spec.high), log=spec.log)


def defaults_trial(name: str, base: dict, train: TrainParams, tune: TuneParams) -> dict[str, Any]:
    """The first trial: the searched keys at the values the fit would use untuned, so the tuned
    configuration is never worse on validation than the defaults. A null default counts when the
    choices hold null (`lookback: null`, the whole window); a default outside a (user's) range or
    choices is left to the sampler, since Optuna cannot enqueue it."""
    values = {f"{name}.{key}": (spec, base.get(key)) for key, spec in tune.space.get(name, {}).items()}
    values |= {f"train.{key}": (spec, getattr(train, key)) for key, spec in tune.train_space.items()}
    return {key: value for key, (spec, value) in values.items() if (
        value in spec.choices if isinstance(spec, SearchChoice) else value is not None and spec.low <= value <= spec.high)}


def configuration(name: str, base: dict, train: TrainParams, trial_params: dict[str, Any]) -> tuple[dict, TrainParams]:
    """The model section and training params a trial's (or the best trial's) values give."""
    from tsarena.contestants.registry import params_class

    model = {**base, **{k.split(".", 1)[1]: v for k, v in trial_params.items() if k.startswith(f"{name}.")}}
    updates = {k.split(".", 1)[1]: v for k, v in trial_params.items() if k.startswith("train.")}
    return params_class(name).model_validate(model).model_dump(mode="json"), train.model_copy(update=updates)


class Objective:
    """One trial: sample, fit on train, return the best validation loss (1.0 = the random walk's)."""

    def __init__(self, name: str, base: dict, train: TrainParams, tune: TuneParams, windows: Windows):
        self.name, self.base, self.train, self.tune, self.windows = name, base, train, tune, without_test(windows)

    def __call__(self, trial: optuna.Trial) -> float:
        from tsarena.fitting.fit import fit_one

        suggest(trial, self.name, self.tune.space.get(self.name, {}))
        suggest(trial, "train", self.tune.train_space)
        trial.set_user_attr("pid", os.getpid())
        try:
            params, train = configuration(self.name, self.base, self.train, trial.params)
        except ValidationError as exc:  # a cross-field rule (nhead divides d_model): not a configuration
            trial.set_user_attr("invalid", exc.errors()[0]["msg"])
            raise optuna.TrialPruned() from None
        callbacks = []
        if self.tune.pruner == "median":
            from optuna_integration import PyTorchLightningPruningCallback

            callbacks.append(PyTorchLightningPruningCallback(trial, monitor="val_loss"))
        started = time.perf_counter()
        fit = fit_one(self.name, params, self.windows, train, self.tune.seed, callbacks=callbacks)
        trial.set_user_attr("seconds", time.perf_counter() - started)
        trial.set_user_attr("epochs", len(fit.history))
        return fit.val_loss


def make_study(study_name: str, tune: TuneParams, storage: Any) -> optuna.Study:
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2) if tune.pruner == "median" \
        else optuna.pruners.NopPruner()
    return optuna.create_study(study_name=study_name, storage=storage, direction="minimize", load_if_exists=True,
                               sampler=optuna.samplers.TPESampler(seed=tune.seed), pruner=pruner)


@dataclasses.dataclass(frozen=True)
class TrialShare:
    """A worker's share of the budget, a task of the one worker pool: join the shared study, run `n_trials`."""

    study_name: str
    storage_url: str | None
    journal: str | None
    name: str
    base: dict
    train: dict
    tune: dict
    split: str
    n_trials: int

    @property
    def label(self) -> str:
        return f"tune {self.name} ({self.n_trials} trials)"

    @property
    def cost(self) -> int:
        return self.n_trials

    @property
    def source(self) -> tuple[str, int, None]:
        return self.split, 1, None

    def windows(self) -> Windows:
        return load_fold(self.split, 1)

    def compute(self, windows: Windows, report: Any = None) -> int:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        tune = TuneParams.model_validate(self.tune)
        study = make_study(self.study_name, tune, open_storage(self.storage_url, self.journal))
        study.optimize(Objective(self.name, self.base, TrainParams.model_validate(self.train), tune, windows),
                       n_trials=self.n_trials)
        return self.n_trials

    def deliver(self, payload: int) -> int:
        return payload


def open_storage(url: str | None, journal: str | None) -> Any:
    """An RDB URL (a team's PostgreSQL, shared by machines), a journal file (local processes), or memory."""
    if url:
        return optuna.storages.RDBStorage(url)
    if journal:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(journal))
    return None


def run_study(study_name: str, name: str, base: dict, train: TrainParams, tune: TuneParams, split: str,
              journal: str | None) -> optuna.Study:
    """Exactly `tune.trials` trials (complete or pruned), shared among `tune.jobs` processes (or Ray tasks, with
    train.backend ray); returns the study.

    With one local job and no storage the study lives in memory and is exactly reproducible (seeded TPE,
    seeded fits). Several jobs, or Ray tasks, share a journal file (or `tune.storage`): faster, and TPE then
    sees trials in an order that depends on timing, as in any parallel search. A journal file is shared by
    the processes of one host: a Ray cluster of several hosts needs `tune.storage` (a database).
    """
    from tsarena.fitting.cluster import Cluster, hosts

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cluster = Cluster.from_params(train)
    if cluster is not None and tune.storage is None and (n_hosts := len(hosts(cluster))) > 1:
        raise TsarenaError(f"the Ray cluster spans {n_hosts} hosts, and a journal file is shared only "
                           "by one host's processes: set tune.storage to a database every host reaches "
                           "(e.g. postgresql://user@host/optuna)", "tune.storage")
    shared = tune.jobs > 1 or cluster is not None
    storage = open_storage(tune.storage, journal if shared else None)
    study = make_study(study_name, tune, storage)
    if not study.trials:
        study.enqueue_trial(defaults_trial(name, base, train, tune))
    if not shared:
        import torch

        torch.set_num_threads(train.threads)
        study.optimize(Objective(name, base, train, tune, load_fold(split, 1)), n_trials=tune.trials)
        return study
    shares = [tune.trials // tune.jobs + (i < tune.trials % tune.jobs) for i in range(tune.jobs)]  # exactly the budget
    tasks = [TrialShare(study_name, tune.storage, journal, name, base, train.model_dump(mode="json"),
                        tune.model_dump(mode="json"), split, share) for share in shares if share]
    # a trial's fit is the fit train@ would run with these threads
    run_tasks(tasks, len(tasks), train.threads, cluster=cluster)
    return optuna.load_study(study_name=study_name, storage=storage)
