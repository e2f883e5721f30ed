"""End to end: real `dvc repro` in a temporary git repo, logging to a real SQLite MLflow store.

ar1 data (planted autocorrelation 0.3) must show skill; gbm data (no signal) must show none.
The gbm test is the leak detector: keep it in CI.
"""

import json
import socket
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import make_repo

pytestmark = pytest.mark.e2e
STAGES = ["ingest", "feature", "window", "train_lstm", "train_transformer", "folds", "walkforward_lstm",
          "walkforward_transformer", "evaluate", "compare"]


def ran(output: str) -> set[str]:
    return {stage for stage in STAGES if f"Running stage '{stage}'" in output}


@pytest.fixture(scope="module")
def ar1(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("ar1"), {"data": {"synthetic": {"kind": "ar1", "phi": 0.3}}})
    first = repo.dvc("repro")
    return repo, first


@pytest.fixture(scope="module")
def client(ar1):
    from mlflow import MlflowClient

    return MlflowClient(ar1[0].mlflow_uri)


def runs_by_name(client, name: str):
    experiment = client.get_experiment_by_name("tsarena")
    return client.search_runs([experiment.experiment_id], f"attributes.run_name = '{name}'", order_by=["attributes.start_time ASC"])


def test_repro_runs_every_stage_then_nothing(ar1):
    repo, first = ar1
    assert ran(first.stdout) == set(STAGES)
    for path in ["data/raw/prices.parquet", "data/features/features.parquet", "data/windows/matrix.npy",
                 "data/models/lstm/model.pt", "data/models/transformer/history.csv", "data/eval/metrics.json",
                 "data/eval/predictions.parquet", "data/reports/comparison.md", "data/reports/equity.png"]:
        assert (repo.path / path).is_file(), path
    second = repo.dvc("repro")
    assert ran(second.stdout) == set()
    assert "Data and pipelines are up to date" in second.stdout


def test_lstm_beats_random_walk_significantly_on_ar1(ar1):
    metrics = json.loads((ar1[0].path / "data/eval/metrics.json").read_text())["single_split"]
    assert metrics["lstm"]["dm_pvalue"] < 0.05
    assert metrics["lstm"]["test_rmse"] < metrics["random_walk"]["test_rmse"]
    assert metrics["lstm"]["test_dir_acc_lo"] > 0.5
    predictions = pd.read_parquet(ar1[0].path / "data/eval/predictions.parquet")
    assert len(predictions) == metrics["lstm"]["n_test"] == predictions[["date", "ticker"]].drop_duplicates().shape[0]
    report = (ar1[0].path / "data/reports/comparison.md").read_text()
    assert "alias `champion`" in report


def test_one_mlflow_run_per_model_and_seed_with_params_curves_tags_and_test_metrics(ar1, client):
    repo, _ = ar1
    lock = yaml.safe_load((repo.path / "dvc.lock").read_text())
    windows_md5 = next(o["md5"] for o in lock["stages"]["window"]["outs"] if o["path"] == "data/windows")
    for name in ("lstm", "transformer"):
        (run,) = runs_by_name(client, name)
        (seed_run,) = runs_by_name(client, f"{name} seed=42")
        assert seed_run.data.tags["mlflow.parentRunId"] == run.info.run_id
        assert run.data.params[f"{name}.num_layers"] == "1"
        assert run.data.params["train.lr"] == "0.003" and run.data.params["train.seeds"] == "[42]"
        assert seed_run.data.params["train.seed"] == "42"
        history = pd.read_csv(repo.path / f"data/models/{name}/history.csv")
        curve = client.get_metric_history(seed_run.info.run_id, "val_loss")
        assert [m.step for m in curve] == history["epoch"].tolist()
        assert np.allclose([m.value for m in curve], history["val_loss"])
        for tags in (run.data.tags, seed_run.data.tags):
            assert tags["stage"] == f"train_{name}" and tags["data_md5"] == windows_md5
            assert len(tags["git_commit"]) == 40 and tags["git_dirty"] in ("true", "false") and tags["params_hash"]
        assert seed_run.inputs.dataset_inputs[0].dataset.digest == windows_md5
        for metrics in (run.data.metrics, seed_run.data.metrics):
            assert "test_rmse" in metrics and "dm_pvalue" in metrics
        assert json.loads((repo.path / f"data/models/{name}/run.json").read_text())["run_id"] == run.info.run_id
    (compare,) = runs_by_name(client, "compare")
    assert compare.data.tags["model_run.lstm"] == runs_by_name(client, "lstm")[0].info.run_id
    artifacts = {a.path for a in client.list_artifacts(compare.info.run_id, "report")}
    assert {"report/comparison.md", "report/comparison.csv", "report/loss_curves.png"} <= artifacts


def test_logged_model_loads_with_pyfunc_and_matches_the_evaluated_predictions(ar1):
    import mlflow

    from tsarena.windows import load_windows, windows_at

    repo, _ = ar1
    run = json.loads((repo.path / "data/models/lstm/run.json").read_text())
    mlflow.set_tracking_uri(run["tracking_uri"])
    model = mlflow.pyfunc.load_model(run["model_uri"])
    windows = load_windows(repo.path / "data/windows")
    ends = windows.ends["test"][:5]
    batch = np.ascontiguousarray(windows_at(windows.matrix, ends, windows.seq_len))
    served = np.asarray(model.predict(batch)).ravel()
    expected = pd.read_parquet(repo.path / "data/eval/predictions.parquet")["lstm"].to_numpy()[:5]
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-7)


def test_champion_is_registered_when_it_beats_random_walk(ar1, client):
    version = client.get_model_version_by_alias("tsarena-forecaster", "champion")
    assert version.run_id in {runs_by_name(client, n)[0].info.run_id for n in ("lstm", "transformer")}


def test_unreachable_tracking_server_fails_the_stage_before_training(ar1):
    repo, _ = ar1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = (repo.path / "data/models/lstm/model.pt").read_bytes()
    start = time.monotonic()
    proc = repo.run("python", "pipeline/train.py", "lstm", check=False, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 30
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: MLflow tracking store http://127.0.0.1:{port} unreachable")
    assert "epoch" not in proc.stdout
    assert (repo.path / "data/models/lstm/model.pt").read_bytes() == before


def test_too_few_training_windows_for_a_batch_is_a_param_error(ar1):
    repo, _ = ar1
    original = (repo.path / "params.yaml").read_text()
    repo.set_params({"train": {"batch_size": 50_000}})
    proc = repo.run("python", "pipeline/train.py", "lstm", check=False)
    (repo.path / "params.yaml").write_text(original)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "fewer than train.batch_size=50000 (window.seq_len, train.batch_size)" in lines[0]


def test_feature_param_change_reruns_feature_and_below_but_not_ingest(ar1, client):
    repo, _ = ar1
    original = (repo.path / "params.yaml").read_text()
    repo.set_params({"features": {"rsi_window": 10}})
    status = json.loads(repo.dvc("status", "--json").stdout)
    assert set(status) == {"feature"}  # DVC flags the stage whose params changed; never ingest
    assert {"changed deps": {"params.yaml": {"features": "modified"}}} in status["feature"]
    # with evaluate.folds = 1 the folds stage's output does not change, so nothing refits per fold
    assert ran(repo.dvc("repro").stdout) == set(STAGES) - {"ingest", "walkforward_lstm", "walkforward_transformer"}
    n_runs = len(runs_by_name(client, "lstm"))
    # back to the committed params: DVC's run-cache restores every stage, runs no command, logs no run
    (repo.path / "params.yaml").write_text(original)
    out = repo.dvc("repro").stdout
    assert ran(out) == set() and "is cached" in out
    assert len(runs_by_name(client, "lstm")) == n_runs


def test_lstm_param_change_reruns_only_train_lstm_and_descendants(ar1, client):
    repo, _ = ar1
    lstm_runs, transformer_runs = len(runs_by_name(client, "lstm")), len(runs_by_name(client, "transformer"))
    repo.set_params({"lstm": {"hidden_size": 8}})
    out = repo.dvc("repro").stdout
    assert ran(out) == {"train_lstm", "walkforward_lstm", "evaluate", "compare"}
    runs = runs_by_name(client, "lstm")
    assert len(runs) == lstm_runs + 1 and runs[-1].data.params["lstm.hidden_size"] == "8"
    assert len(runs_by_name(client, "transformer")) == transformer_runs


def test_no_model_shows_skill_on_a_random_walk(tmp_path):
    """The leak detector. On gbm prices nothing is forecastable: a significant DM p-value, or a
    direction accuracy significantly above a coin, means the future leaked into a feature or split.
    (Accuracy significantly *below* 0.5 happens by chance at 5% per model and is not a leak.)"""
    repo = make_repo(tmp_path, {"data": {"synthetic": {"kind": "gbm"}}})
    repo.dvc("repro")
    metrics = json.loads((repo.path / "data/eval/metrics.json").read_text())["single_split"]
    for name, m in metrics.items():
        if m["dm_pvalue"] is not None:
            assert m["dm_pvalue"] >= 0.05, name
        if m["test_dir_acc"] is not None:
            assert m["test_dir_acc_lo"] <= 0.5, name
    report = (repo.path / "data/reports/comparison.md").read_text()
    assert "No model beats the random walk significantly" in report
    assert "alias was left where it was" in report


def test_predict_command_reproduces_the_evaluated_forecast(ar1, tmp_path):
    """Raw prices up to a test date -> the same forecast evaluate made for that date."""
    from conftest import BIN

    repo, _ = ar1
    predictions = pd.read_parquet(repo.path / "data/eval/predictions.parquet")
    row = predictions.iloc[len(predictions) // 2]
    raw = pd.read_parquet(repo.path / "data/raw/prices.parquet")
    csv = tmp_path / "prices.csv"
    raw[raw["date"] <= row["date"]].drop(columns="ticker").to_csv(csv, index=False)
    out = repo.run(str(BIN / "tsarena"), "predict", str(csv), "--model", "lstm").stdout.splitlines()
    header, values = out[0].split(), out[1].split()
    assert header == ["ticker", "as_of", "close", "log_return_1d", "price_1d"]
    assert values[1] == str(row["date"].date())
    assert float(values[3]) == pytest.approx(row["lstm"], rel=1e-3, abs=1e-6)
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Close\n2020-01-01,abc\n")
    proc = repo.run(str(BIN / "tsarena"), "predict", str(bad), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: non-numeric value 'abc' ({bad}, column close, line 2)"]
