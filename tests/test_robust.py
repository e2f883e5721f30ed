"""Seeds, walk-forward folds and the ensemble, end to end: the documented
`dvc exp run -S 'train.seeds=[0,1]' -S window.folds=3 -S arena.ensemble=stacking`
in a temporary git repo, logging to a real SQLite MLflow store."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_repo
from tsarena.judging.intervals import bounds_of
from tsarena.judging.scoring import seed_summary
from tsarena.contestants.ensemble import stacking_weights

pytestmark = [pytest.mark.e2e, pytest.mark.evidence]
SEEDS, FOLDS = [0, 1], 3
LEVELS = [0.8, 0.9, 0.95]  # params.yaml's uncertainty.levels


@pytest.fixture(scope="module")
def robust(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("robust"), {"train": {"max_epochs": 2}})
    repo.dvc("exp", "run", "-S", f"train.seeds={SEEDS}", "-S", f"window.folds={FOLDS}", "-S", "arena.ensemble=stacking")
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


def test_every_fold_and_seed_is_one_nested_run_with_its_own_test_metrics(robust, client):
    metrics, details = read_json(robust, "data/eval/scores.json"), read_json(robust, "data/eval/details.json")
    for name in ("lstm", "transformer"):
        summary = metrics[name]
        assert summary["n_seeds"] == len(SEEDS) and summary["test_rmse_std"] > 0
        spread = details["pooled"][name]["spread"]["test_rmse"]
        assert spread["min"] < spread["mean"] < spread["max"] and sorted(spread["values"]) == ["0", "1"]
        (parent,) = runs(client, name)
        children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert len(children) == FOLDS * len(SEEDS)
        for fold in range(1, FOLDS + 1):
            for seed in SEEDS:
                (child,) = runs(client, f"{name} fold={fold} seed={seed}")
                assert child.data.params["train.seed"] == str(seed) and child.data.params["fold"] == str(fold)
                stored = details["per_fold"][str(fold)][name]["seeds"][str(seed)]["test_rmse"]
                assert child.data.metrics["test_rmse"] == pytest.approx(stored)
        assert parent.data.metrics["test_rmse_std"] == pytest.approx(summary["test_rmse_std"])
        assert not any(k.startswith("system/") for k in parent.data.metrics)  # off the comparison
    # the served model: trained on the most recent data (the last fold), its seed with the best val loss
    histories = pd.read_csv(robust.path / "data/models/lstm/histories.csv")
    last = histories[histories["fold"] == FOLDS]
    run = read_json(robust, "data/models/lstm/served.json")
    assert run["served"] == {"fold": FOLDS, "seed": int(last.loc[last["val_loss"].idxmin(), "seed"])}


def test_no_fold_trains_on_its_test_period(robust):
    """Dates: every fold's training labels, and the rows its scaler saw, end before its test labels start."""
    rows = pd.read_parquet(robust.path / "data/split/rows.parquet")
    dates, target_dates = rows["date"].to_numpy(), rows["target_date"].to_numpy()
    meta = read_json(robust, "data/split/meta.json")
    assert meta["n_folds"] == FOLDS
    tests = []
    for fold in meta["folds"]:
        ends = {s: np.load(robust.path / f"data/split/fold_{fold['fold']}/{s}_ends.npy") for s in ("train", "val", "test")}
        test_start = target_dates[ends["test"]].min()
        assert test_start >= np.datetime64(fold["test_start"])
        assert target_dates[ends["train"]].max() <= dates[ends["val"]].min()  # purged: labels end before val starts
        assert target_dates[ends["val"]].max() <= dates[ends["test"]].min()
        first_row = rows.index[rows["ticker"] == rows["ticker"].iloc[0]].min()
        assert dates[first_row : first_row + fold["scaler_fit_rows"]].max() < test_start
        tests.append(ends["test"])
    assert (np.diff(np.concatenate(tests)) > 0).all()  # folds follow each other and never overlap
    for path in ("data/predictions/lstm.parquet", "data/baselines/predictions.parquet", "data/ensemble/predictions.parquet"):
        table = pd.read_parquet(robust.path / path)
        assert set(table["fold"]) == {1, 2, 3}
        for (fold, _, _), part in table[table["split"] == "test"].groupby(["fold", "seed", "model"]):
            assert np.array_equal(part["row"], tests[fold - 1])


def test_pooled_and_fold_metrics_equal_metrics_recomputed_from_the_forecasts(robust):
    metrics, details = read_json(robust, "data/eval/scores.json"), read_json(robust, "data/eval/details.json")
    forecasts = pd.read_parquet(robust.path / "data/eval/forecasts.parquet").sort_values(["fold", "row"], kind="stable")

    def recompute(frame: pd.DataFrame, name: str) -> dict:
        rw = frame[frame["model"] == "random_walk"].reset_index(drop=True)
        mine = frame[frame["model"] == name]
        by_seed = {str(s): part["forecast"].to_numpy() for s, part in mine.groupby("seed")}
        bounds = {str(s): bounds_of(part, LEVELS) for s, part in mine.groupby("seed")}  # the intervals' scores too
        return seed_summary(by_seed, rw["actual"].to_numpy(), rw, rw["forecast"].to_numpy(), "return", 1, 1.0,
                            bounds, 0.8)["summary"]

    for name in ("lstm", "transformer", "linear", "drift", "ensemble"):
        pooled = recompute(forecasts, name)
        assert pooled == pytest.approx({k: metrics[name][k] for k in pooled}, nan_ok=True)
        if name in ("lstm", "transformer"):  # size beside skill: from the training stage's served.json
            run = read_json(robust, f"data/models/{name}/served.json")
            assert metrics[name]["n_parameters"] == run["n_parameters"] > 0
            assert "train_seconds" not in metrics[name]  # timings: MLflow only, never in a DVC output
        for fold, part in forecasts.groupby("fold"):
            assert recompute(part, name) == pytest.approx(details["per_fold"][str(fold)][name]["summary"], nan_ok=True)


def test_ensemble_weights_are_fit_on_validation_forecasts_only(robust, client):
    members = pd.concat([pd.read_parquet(robust.path / f"data/predictions/{m}.parquet") for m in ("lstm", "transformer")])
    ensemble = pd.read_parquet(robust.path / "data/ensemble/predictions.parquet")
    weights = read_json(robust, "data/ensemble/weights.json")
    targets = np.load(robust.path / "data/split/targets.npy")
    assert len(weights) == FOLDS * len(SEEDS)
    for key, w in weights.items():
        fold, seed = map(int, key.split("/"))
        part = members[(members["fold"] == fold) & (members["seed"] == seed)]
        wide = {s: part[part["split"] == s].pivot(index="row", columns="model", values="forecast")[["lstm", "transformer"]]
                for s in ("val", "test")}
        expected = stacking_weights(wide["val"].to_numpy(), targets[wide["val"].index])  # val rows and targets only
        assert [w["lstm"], w["transformer"]] == pytest.approx(expected, abs=1e-9)
        assert sum(w.values()) == pytest.approx(1) and min(w.values()) >= 0
        mine = ensemble[(ensemble["fold"] == fold) & (ensemble["seed"] == seed) & (ensemble["split"] == "test")]
        np.testing.assert_allclose(mine["forecast"], wide["test"].to_numpy() @ expected)
    (run,) = runs(client, "ensemble")
    assert run.data.tags["stage"] == "ensemble" and "test_rmse" in run.data.metrics


def test_report_shows_spreads_folds_and_the_ensemble(robust):
    report = (robust.path / "data/reports/comparison.md").read_text()
    assert "## Walk-forward, pooled over the 3 folds" in report and "| ensemble | ensemble |" in report
    assert "## test_rmse per walk-forward fold" in report and " ± " in report
    folds = pd.read_csv(robust.path / "data/reports/folds.csv")
    assert folds["fold"].tolist() == [1, 2, 3] and (folds["lstm_std"] > 0).all()
    assert (robust.path / "data/reports/folds.png").is_file()


def test_costs_rescore_only_and_folds_refit_everything_below_split(robust):
    robust.set_params({"evaluate": {"cost_bps": 5.0}})
    out = robust.dvc("repro", "--dry").stdout
    assert "Running stage 'evaluate'" in out and "Running stage 'split'" not in out
    assert "Running stage 'train@" not in out and "Running stage 'ensemble'" not in out
    robust.set_params({"evaluate": {"cost_bps": 1.0}, "window": {"folds": 2}})
    robust.dvc("repro", "split")
    assert len(read_json(robust, "data/split/meta.json")["folds"]) == 2
    stale = set(json.loads(robust.dvc("status", "--json").stdout))  # what the new folds invalidate
    assert stale == {"tune@lstm", "tune@transformer", "train@lstm", "train@transformer", "baselines", "ensemble",
                     "explain", "evaluate"}


def test_served_models_carry_the_interval_calibration_of_the_forecasts_they_serve(robust):
    """Each served network's interval is calibrated on its served fit's (last fold, best seed) validation
    residuals; the served ensemble's on its served combination's: those members' fits, the served weights."""
    from tsarena.serving.bundle import Bundle

    targets = np.load(robust.path / "data/split/targets.npy")
    served_val = {}
    for name in ("lstm", "transformer"):
        fit = read_json(robust, f"data/models/{name}/served.json")["served"]
        table = pd.read_parquet(robust.path / f"data/predictions/{name}.parquet")
        val = table[(table["fold"] == fit["fold"]) & (table["seed"] == fit["seed"]) & (table["split"] == "val")]
        served_val[name] = val.set_index("row")["forecast"]
        assert fit["fold"] == FOLDS
        calibration = Bundle.load(robust.path / f"data/models/{name}/bundle").calibration
        assert calibration["levels"] == [0.8, 0.9, 0.95]
        np.testing.assert_allclose(calibration["residuals"], targets[val["row"].to_numpy()] - val["forecast"].to_numpy())
    weights = read_json(robust, "data/ensemble/served.json")["served"]["weights"]
    combined = sum(weights[m] * served_val[m] for m in served_val)
    calibration = Bundle.load(robust.path / "data/ensemble/bundle").calibration
    np.testing.assert_allclose(calibration["residuals"], targets[combined.index.to_numpy()] - combined.to_numpy(),
                               rtol=1e-9, atol=1e-12)
