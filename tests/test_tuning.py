"""Equal tuning budgets end to end: `tune@<model>` stages with Optuna, on a real `dvc repro` and a real
SQLite MLflow store; the test period is never read while tuning; two local workers share one study."""

import json
import shutil

import numpy as np
import pytest

from conftest import make_repo
from tsarena.contestants.registry import params_class
from tsarena.fitting.params import TrainParams, TuneParams

pytestmark = pytest.mark.e2e
MODELS = ["mlp", "dlinear"]
TUNED = {"data": {"synthetic": {"n_days": 2000}}, "train": {"max_epochs": 3}, "arena": {"models": MODELS},
         "tune": {"trials": 3}}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """The whole arena with 3 trials each: the full tier's."""
    repo = make_repo(tmp_path_factory.mktemp("tune"), TUNED)
    first = repo.dvc("repro")
    return repo, first


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """The same params, run as far as the split: what a study reads (the fast tier's)."""
    repo = make_repo(tmp_path_factory.mktemp("split"), TUNED)
    repo.dvc("repro", "split")
    return repo


@pytest.mark.evidence
def test_every_model_gets_the_same_budget_and_training_uses_the_chosen_configuration(tuned):
    from mlflow import MlflowClient

    repo, first = tuned
    client = MlflowClient(repo.mlflow_uri)
    experiment = client.get_experiment_by_name("tsarena").experiment_id
    comparison = (repo.path / "data/reports/comparison.csv").read_text().splitlines()
    header = comparison[0].split(",")
    for name in MODELS:
        assert f"Running stage 'tune@{name}'" in first.stdout
        chosen = json.loads((repo.path / f"data/tuned/{name}.json").read_text())
        assert chosen["trials"] == 3 and chosen["complete"] >= 1 and "cpu_seconds" not in chosen  # timings: MLflow
        (parent,) = client.search_runs([experiment], f"attributes.run_name = 'tune {name}'")
        assert parent.data.metrics["tune.cpu_seconds"] > 0 and parent.data.metrics["tune.trials"] == 3
        trials = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert sorted(r.data.tags["trial.number"] for r in trials) == ["0", "1", "2"]
        assert {r.data.tags["trial.state"] for r in trials} <= {"COMPLETE", "PRUNED"}
        assert all("val_loss" in r.data.metrics and f"{name}." in " ".join(r.data.params) for r in trials)
        # the first trial is the untuned configuration, so tuning can only match or beat it on validation
        first_trial = next(r for r in trials if r.data.tags["trial.number"] == "0")
        defaults = params_class(name)().model_dump(mode="json")
        for key in TuneParams().space[name]:
            assert first_trial.data.params[f"{name}.{key}"] == str(defaults[key])
        assert first_trial.data.params["train.lr"] == str(TrainParams().lr)
        assert chosen["best_val_loss"] <= first_trial.data.metrics["best_val_loss"]
        best = next(r for r in trials if r.data.tags["trial.number"] == str(chosen["best_trial"]))
        assert best.data.metrics["best_val_loss"] == pytest.approx(chosen["best_val_loss"])
        # train@<name> trained with the chosen configuration, and says so in its MLflow params
        (trained,) = client.search_runs([experiment], f"attributes.run_name = '{name}'")
        for key, value in chosen["params"].items():
            assert trained.data.params[f"{name}.{key}"] == str(value)
        assert trained.data.params["train.lr"] == str(chosen["train"]["lr"])
        row = next(line.split(",") for line in comparison[1:] if line.startswith(f"{name},"))
        assert float(row[header.index("tune_trials")]) == 3


@pytest.mark.evidence
def test_nothing_changed_is_a_cache_hit_and_a_space_edit_retunes_that_model_only(tuned):
    repo, _ = tuned
    assert "Data and pipelines are up to date" in repo.dvc("repro").stdout
    space = repo.params["tune"]["space"]["dlinear"]
    repo.set_params({"tune": {"space": {"dlinear": {**space, "moving_avg": {"low": 3, "high": 9}}}}})
    out = repo.dvc("repro").stdout
    assert "Running stage 'tune@dlinear'" in out and "Running stage 'train@dlinear'" in out
    assert "tune@mlp" not in out.replace("Stage 'tune@mlp' didn't change", "") and "Running stage 'train@mlp'" not in out
    assert 3 <= json.loads((repo.path / "data/tuned/dlinear.json").read_text())["params"]["moving_avg"] <= 9


def _study(repo, split, jobs: int, tmp_path, name: str = "mlp"):
    from tsarena.fitting.tuning import run_study

    params = repo.params
    tune = TuneParams.model_validate({**params["tune"], "jobs": jobs, "trials": 4 if jobs > 1 else 3})
    return run_study(f"t-{jobs}-{tmp_path.name}", name, params[name], TrainParams.model_validate(params["train"]), tune,
                     str(split), str(tmp_path / "journal.log"))


def test_tuning_never_reads_the_test_period(split, tmp_path):
    """Fold 1's rows after its validation period (the test period) destroyed: NaN features and
    targets. If a trial read one of them, its loss would change (or be NaN); the study is identical."""
    repo = split
    split = repo.path / "data/split"
    blind = tmp_path / "split"
    shutil.copytree(split, blind)
    after = int(np.load(split / "fold_1/val_ends.npy").max()) + 1
    assert after < len(np.load(split / "targets.npy"))
    for name in ("features.npy", "targets.npy"):
        data = np.load(blind / name)
        data[after:] = np.nan
        np.save(blind / name, data)
    clean, blinded = _study(repo, split, 1, tmp_path / "a"), _study(repo, blind, 1, tmp_path / "b")
    assert [(t.params, t.value, t.state) for t in clean.trials] == [(t.params, t.value, t.state) for t in blinded.trials]
    assert all(t.value is None or np.isfinite(t.value) for t in blinded.trials)


def test_two_local_worker_processes_share_one_study(split, tmp_path):
    repo = split
    (tmp_path / "s").mkdir()
    study = _study(repo, repo.path / "data/split", 2, tmp_path / "s")
    assert len(study.trials) == 4 and all(t.state.is_finished() for t in study.trials)
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2  # both workers ran trials on the one study


def test_an_rdb_storage_holds_the_study_and_a_second_worker_joins_it(split, tmp_path):
    """`tune.storage` (an RDB URL; SQLite here, PostgreSQL in a team): the study lives in the database
    under its name, so a worker started later (another machine, in a team) adds to the same search."""
    import optuna

    from tsarena.fitting.tuning import run_study

    repo = split
    params = repo.params
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    tune = TuneParams.model_validate({**params["tune"], "trials": 2, "storage": url})
    train = TrainParams.model_validate(params["train"])
    for _ in range(2):  # the first worker, then one that joins
        run_study("shared", "dlinear", params["dlinear"], train, tune, str(repo.path / "data/split"), None)
    study = optuna.load_study(study_name="shared", storage=url)
    assert len(study.trials) == 4 and all(t.state.is_finished() for t in study.trials)
