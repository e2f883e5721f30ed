"""Seeds and walk-forward folds, end to end: the documented `dvc exp run -S 'train.seeds=[0,1,2]'
-S evaluate.folds=3` in a temporary git repo, logging to a real SQLite MLflow store."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_repo
from tsarena.evaluation import seed_summary

pytestmark = pytest.mark.e2e
SEEDS, FOLDS = [0, 1, 2], 3


@pytest.fixture(scope="module")
def robust(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("robust"), {"train": {"max_epochs": 2}})
    repo.dvc("exp", "run", "-S", f"train.seeds={SEEDS}", "-S", f"evaluate.folds={FOLDS}")
    return repo


@pytest.fixture(scope="module")
def client(robust):
    from mlflow import MlflowClient

    return MlflowClient(robust.mlflow_uri)


def runs(client, name: str):
    experiment = client.get_experiment_by_name("tsarena")
    return client.search_runs([experiment.experiment_id], f"attributes.run_name = '{name}'")


def read_json(repo, path: str) -> dict:
    return json.loads((repo.path / path).read_text())


def test_seeds_give_a_nonzero_spread_and_one_nested_mlflow_run_each(robust, client):
    metrics, details = read_json(robust, "data/eval/metrics.json"), read_json(robust, "data/eval/details.json")
    histories = pd.read_csv(robust.path / "data/models/lstm/histories.csv")
    for name in ("lstm", "transformer"):
        summary = metrics["single_split"][name]
        assert summary["n_seeds"] == 3 and summary["test_rmse_std"] > 0
        spread = details["single_split"][name]["spread"]["test_rmse"]
        assert spread["min"] < spread["mean"] < spread["max"] and sorted(spread["values"]) == ["0", "1", "2"]
        (parent,) = runs(client, name)
        for seed in SEEDS:
            (child,) = runs(client, f"{name} seed={seed}")
            assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert child.data.params["train.seed"] == str(seed)
            assert child.data.metrics["test_rmse"] == pytest.approx(spread["values"][str(seed)])
        assert parent.data.metrics["test_rmse_std"] == pytest.approx(summary["test_rmse_std"])
        (walk,) = runs(client, f"{name} walk-forward")
        children = client.search_runs([walk.info.experiment_id], f"tags.mlflow.parentRunId = '{walk.info.run_id}'")
        assert len(children) == FOLDS * len(SEEDS)
    curve = client.get_metric_history(runs(client, "lstm seed=1")[0].info.run_id, "val_loss")
    assert np.allclose([m.value for m in curve], histories.loc[histories["seed"] == 1, "val_loss"])
    # the served model is the seed with the lowest validation loss, never chosen on test
    run = read_json(robust, "data/models/lstm/run.json")
    assert run["selected_seed"] == int(histories.loc[histories["val_loss"].idxmin(), "seed"])


def test_no_fold_trains_on_its_test_period(robust):
    """Dates: every fold's training labels, and the rows its scaler saw, end before its test labels start."""
    rows = pd.read_parquet(robust.path / "data/windows/rows.parquet")
    dates, target_dates = rows["date"].to_numpy(), rows["target_date"].to_numpy()
    meta = read_json(robust, "data/folds/meta.json")
    assert meta["n_folds"] == FOLDS
    single_test = np.load(robust.path / "data/windows/test_ends.npy")
    tests = []
    for fold in meta["folds"]:
        ends = {s: np.load(robust.path / f"data/folds/fold_{fold['fold']}/{s}_ends.npy") for s in ("train", "val", "test")}
        test_start = target_dates[ends["test"]].min()
        assert test_start >= np.datetime64(fold["test_start"])
        assert target_dates[ends["train"]].max() <= dates[ends["val"]].min()  # purged: labels end before val starts
        assert target_dates[ends["val"]].max() <= dates[ends["test"]].min()
        assert target_dates[ends["train"]].max() < test_start and target_dates[ends["val"]].max() < test_start
        first_row = rows.index[rows["ticker"] == rows["ticker"].iloc[0]].min()
        scaler_rows = dates[first_row : first_row + fold["scaler_fit_rows"]]
        assert scaler_rows.max() < test_start
        tests.append(ends["test"])
    assert np.array_equal(np.sort(np.concatenate(tests)), np.sort(single_test))  # the folds tile the test period
    walk = pd.read_parquet(robust.path / "data/walkforward/lstm/predictions.parquet")
    assert set(walk["fold"]) == {1, 2, 3} and set(walk["seed"]) == set(SEEDS)


def test_pooled_fold_metrics_equal_metrics_recomputed_from_the_pooled_predictions(robust):
    metrics, details = read_json(robust, "data/eval/metrics.json"), read_json(robust, "data/eval/details.json")
    table = pd.read_parquet(robust.path / "data/eval/walkforward.parquet")
    actual, rw = table["actual"].to_numpy(), table["random_walk"].to_numpy()
    assert len(table) == metrics["single_split"]["lstm"]["n_test"]

    def recompute(frame: pd.DataFrame, name: str) -> dict:
        columns = [c for c in frame if c.startswith(f"{name}@")] or [name]
        forecasts = {c.partition("@")[2] or "deterministic": frame[c].to_numpy() for c in columns}
        return seed_summary(forecasts, frame["actual"].to_numpy(), frame, frame["random_walk"].to_numpy(),
                            "return", 1, 1.0)["summary"]

    for name in ("lstm", "transformer", "linear", "drift"):
        assert recompute(table, name) == pytest.approx(metrics["walk_forward"][name], nan_ok=True)
        for fold, part in table.groupby("fold"):
            stored = details["walk_forward"]["per_fold"][str(fold)][name]["summary"]
            assert recompute(part, name) == pytest.approx(stored, nan_ok=True)
    pooled_mse = np.mean([(table[f"lstm@{s}"] - actual) ** 2 for s in SEEDS], axis=0)
    assert pooled_mse.mean() < np.mean((rw - actual) ** 2)  # ar1 data: skill survives the folds


def test_report_shows_spreads_and_folds(robust):
    report = (robust.path / "data/reports/comparison.md").read_text()
    assert "## Walk-forward, pooled over the folds" in report and "## Single split" in report
    assert "## test_rmse per walk-forward fold" in report and " ± " in report
    folds = pd.read_csv(robust.path / "data/reports/folds.csv")
    assert folds["fold"].tolist() == [1, 2, 3] and (folds["lstm_std"] > 0).all()
    assert (robust.path / "data/reports/folds.png").is_file()


def test_changing_folds_does_not_retrain_the_single_split_models(robust):
    robust.set_params({"evaluate": {"cost_bps": 5.0}})
    out = robust.dvc("repro", "--dry").stdout
    assert "Running stage 'evaluate'" in out and "Running stage 'folds'" not in out
    robust.set_params({"evaluate": {"folds": 2, "cost_bps": 1.0}})
    out = robust.dvc("repro").stdout
    assert "Running stage 'folds'" in out and "Running stage 'walkforward_lstm'" in out
    assert "Running stage 'train_lstm'" not in out and "Running stage 'train_transformer'" not in out
    assert len(read_json(robust, "data/eval/details.json")["walk_forward"]["per_fold"]) == 2
