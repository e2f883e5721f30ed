"""End to end, the fast tier's arena: one real `dvc repro` in a temporary git repo, logging to a real
SQLite MLflow store, on small AR(1) data (planted autocorrelation 0.3) with the default models, the
baselines, an ensemble and explain on; then every route a user takes on that one repo: the cache, the check
stage, a params edit, the MLflow runs and registry, `tsarena predict` and the pyfunc.

What takes minutes (the whole zoo, folds x seeds, tuning, servers, the browser) is in the full tier
(`make test-all`), behind the `evidence` and `system` markers.
"""

import hashlib
import json
import shutil
import socket
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import BIN, ROOT, make_repo

pytestmark = pytest.mark.e2e
MODELS = ["lstm", "transformer"]
STAGES = ["check", "ingest", "sentiment", "feature", "split", "tune@lstm", "tune@transformer", "train@lstm",
          "train@transformer", "baselines", "ensemble", "explain", "evaluate", "compare"]
ARENA = {"data": {"synthetic": {"kind": "ar1", "phi": 0.3}},
         "arena": {"models": MODELS, "ensemble": "inverse_mse", "ensemble_members": [*MODELS, "ar"]},
         "explain": {"enabled": True, "windows": 40, "steps": 8, "repeats": 1}}


def ran(output: str) -> set[str]:
    return {stage for stage in STAGES if f"Running stage '{stage}'" in output}


@pytest.fixture(scope="module")
def ar1(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("ar1"), ARENA)
    first = repo.dvc("repro")
    return repo, first


@pytest.fixture(scope="module")
def client(ar1):
    from mlflow import MlflowClient

    return MlflowClient(ar1[0].mlflow_uri)


def runs_by_name(client, name: str):
    experiment = client.get_experiment_by_name("tsarena")
    return client.search_runs([experiment.experiment_id], f"attributes.run_name = '{name}'", order_by=["attributes.start_time ASC"])


def test_one_templated_training_stage_per_listed_model_then_nothing_to_do(ar1):
    repo, first = ar1
    assert ran(first.stdout) == set(STAGES)
    listed = [line.split()[0] for line in repo.dvc("stage", "list").stdout.splitlines()]
    assert [s for s in listed if s.startswith("train")] == ["train@lstm", "train@transformer"]
    for path in ["data/raw/prices.parquet", "data/split/features.npy", "data/split/fold_1/scaler.json",
                 "data/predictions/lstm.parquet", "data/models/lstm/bundle/members.json", "data/models/lstm/served.json",
                 "data/baselines/predictions.parquet", "data/eval/scores.json", "data/eval/forecasts.parquet",
                 "data/reports/comparison.md", "data/reports/equity.png"]:
        assert (repo.path / path).is_file(), path
    second = repo.dvc("repro")
    assert ran(second.stdout) == set() and "Data and pipelines are up to date" in second.stdout


def test_every_producer_writes_the_one_predictions_table(ar1):
    repo, _ = ar1
    test_ends = np.load(repo.path / "data/split/fold_1/test_ends.npy")
    val_ends = np.load(repo.path / "data/split/fold_1/val_ends.npy")
    for path, models in [("data/predictions/lstm.parquet", {"lstm"}),
                         ("data/baselines/predictions.parquet", {"random_walk", "drift", "ar", "ridge_last", "linear",
                                                                 "oracle"})]:
        table = pd.read_parquet(repo.path / path)
        assert list(table.columns) == ["model", "fold", "seed", "split", "row", "forecast"]
        assert set(table["model"]) == models
        for _, part in table.groupby("model"):
            assert np.array_equal(part.loc[part["split"] == "test", "row"], test_ends)
            assert np.array_equal(part.loc[part["split"] == "val", "row"], val_ends)
    # the ensemble: the same table, its weights fit on validation forecasts (tests/test_ensemble.py)
    ensemble = pd.read_parquet(repo.path / "data/ensemble/predictions.parquet")
    assert set(ensemble["model"]) == {"ensemble"}
    assert np.array_equal(ensemble.loc[ensemble["split"] == "test", "row"], test_ends)
    weights = json.loads((repo.path / "data/ensemble/weights.json").read_text())
    assert all(set(w) == {*MODELS, "ar"} and sum(w.values()) == pytest.approx(1) for w in weights.values())


def test_the_split_stage_fits_each_scaler_on_its_training_rows_only(ar1):
    """The stage's wiring, not only the scaler's arithmetic (test_windows.py): fold 1's scaler.json holds
    the mean and spread of exactly the rows its training windows can see, no validation or test row."""
    from tsarena.split.windows import training_rows

    repo, _ = ar1
    split = repo.path / "data/split"
    features = np.load(split / "features.npy").astype(np.float64)  # unscaled
    tickers = pd.read_parquet(split / "rows.parquet")["ticker"].to_numpy()
    mask = training_rows(tickers, np.load(split / "fold_1/train_ends.npy"))
    assert not mask[np.load(split / "fold_1/val_ends.npy")].any()
    scaler = json.loads((split / "fold_1/scaler.json").read_text())
    np.testing.assert_allclose(scaler["mean"], features[mask].mean(axis=0), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(scaler["scale"], features[mask].std(axis=0), rtol=1e-5)


def test_lstm_beats_random_walk_significantly_on_ar1(ar1):
    metrics = json.loads((ar1[0].path / "data/eval/scores.json").read_text())
    assert metrics["lstm"]["dm_pvalue"] < 0.05
    assert metrics["lstm"]["test_rmse"] < metrics["random_walk"]["test_rmse"]
    assert metrics["lstm"]["test_dir_acc_lo"] > 0.5
    forecasts = pd.read_parquet(ar1[0].path / "data/eval/forecasts.parquet")
    lstm = forecasts[forecasts["model"] == "lstm"]
    assert len(lstm) == metrics["lstm"]["n_test"] == lstm[["date", "ticker"]].drop_duplicates().shape[0]
    assert "alias `champion`" in (ar1[0].path / "data/reports/comparison.md").read_text()


def test_one_mlflow_run_per_model_and_fit_with_params_curves_tags_and_test_metrics(ar1, client):
    repo, _ = ar1
    lock = yaml.safe_load((repo.path / "dvc.lock").read_text())
    split_md5 = next(o["md5"] for o in lock["stages"]["split"]["outs"] if o["path"] == "data/split")
    histories = {}
    for name in ("lstm", "transformer"):
        (run,) = runs_by_name(client, name)
        (fit_run,) = runs_by_name(client, f"{name} fold=1 seed=42")
        assert fit_run.data.tags["mlflow.parentRunId"] == run.info.run_id
        assert run.data.params[f"{name}.num_layers"] == "1"
        assert run.data.params["train.lr"] == "0.003" and run.data.params["train.seeds"] == "[42]"
        assert fit_run.data.params["train.seed"] == "42" and fit_run.data.params["fold"] == "1"
        histories[name] = pd.read_csv(repo.path / f"data/models/{name}/histories.csv")
        curve = client.get_metric_history(fit_run.info.run_id, "val_loss")
        assert [m.step for m in curve] == histories[name]["epoch"].tolist()
        assert np.allclose([m.value for m in curve], histories[name]["val_loss"])
        for tags in (run.data.tags, fit_run.data.tags):
            assert tags["stage"] == f"train@{name}" and tags["data_md5"] == split_md5
            assert len(tags["git_commit"]) == 40 and tags["git_dirty"] in ("true", "false") and tags["params_hash"]
        assert fit_run.inputs.dataset_inputs[0].dataset.digest == split_md5
        for metrics in (run.data.metrics, fit_run.data.metrics):
            assert "test_rmse" in metrics and "dm_pvalue" in metrics and metrics["model.n_parameters"] > 0
        # the run is found from the predictions file's content: no run id in any DVC output
        assert run.data.tags["predictions_md5"] == hashlib.md5((repo.path / f"data/predictions/{name}.parquet").read_bytes()).hexdigest()
        assert "run_id" not in (repo.path / f"data/models/{name}/served.json").read_text()
    (compare,) = runs_by_name(client, "compare")
    assert compare.data.tags["model_run.lstm"] == runs_by_name(client, "lstm")[0].info.run_id
    assert compare.data.tags["mlflow.note.content"].startswith("Ranked by test_rmse")
    artifacts = {a.path for a in client.list_artifacts(compare.info.run_id, "report")}
    assert {"report/comparison.md", "report/comparison.csv", "report/loss_curves.png"} <= artifacts


def raw_until(repo, date, path) -> None:
    """The raw prices a user would hold on `date`, as a CSV without a ticker column."""
    raw = pd.read_parquet(repo.path / "data/raw/prices.parquet")
    raw[raw["date"] <= date].drop(columns="ticker").to_csv(path, index=False)


def test_logged_model_takes_raw_prices_and_reproduces_the_evaluated_forecast(ar1, tmp_path):
    import mlflow

    repo, _ = ar1
    forecasts = pd.read_parquet(repo.path / "data/eval/forecasts.parquet")
    row = forecasts[forecasts["model"] == "lstm"].iloc[100]
    raw_until(repo, row["date"], tmp_path / "p.csv")
    (run,) = runs_by_name(mlflow.MlflowClient(repo.mlflow_uri), "lstm")
    mlflow.set_tracking_uri(repo.mlflow_uri)
    model = mlflow.pyfunc.load_model(json.loads(run.data.tags["model_uri"]))
    assert model.metadata.get_input_schema() is None  # the input contract is tsarena's, not a schema that drops columns
    raw = pd.read_csv(tmp_path / "p.csv")
    out = model.predict(raw)
    assert out["as_of"].tolist() == [str(row["date"].date())]
    assert out["log_return_1d"].iloc[0] == pytest.approx(row["forecast"], rel=1e-4, abs=1e-7)


def test_champion_is_registered_with_its_evidence(ar1, client):
    repo, _ = ar1
    version = client.get_model_version_by_alias("tsarena-forecaster", "champion")
    run_ids = {n: runs_by_name(client, n)[0].info.run_id for n in (*MODELS, "ensemble")}
    assert version.run_id in run_ids.values()
    name = next(n for n, run_id in run_ids.items() if run_id == version.run_id)
    run = client.get_run(version.run_id)
    assert version.tags["architecture"] == name and version.tags["data_md5"] == run.data.tags["data_md5"]
    assert version.tags["git_commit"] == run.data.tags["git_commit"] and float(version.tags["dm_pvalue"]) < 0.05
    assert "raw OHLCV prices in" in version.description and "Evidence: Ranked by" in version.description


def test_mlflow_3_views_link_test_metrics_to_logged_models_and_the_test_data(ar1, client):
    import mlflow

    repo, _ = ar1
    experiment = client.get_experiment_by_name("tsarena")
    mlflow.set_tracking_uri(repo.mlflow_uri)
    logged = {m.name: m for m in mlflow.search_logged_models(experiment_ids=[experiment.experiment_id],
                                                              output_format="list")}
    assert {"lstm", "transformer"} <= set(logged)
    metrics = json.loads((repo.path / "data/eval/scores.json").read_text())
    for name in ("lstm", "transformer"):
        linked = {m.key: m for m in logged[name].metrics}
        assert linked["test_rmse"].value == pytest.approx(metrics[name]["test_rmse"])
        assert linked["test_rmse"].dataset_name == "test"
        (run,) = runs_by_name(client, name)
        contexts = {(i.dataset.name, t.value) for i in run.inputs.dataset_inputs for t in i.tags}
        assert ("test", "testing") in contexts


def test_unreachable_tracking_server_fails_the_stage_before_training(ar1):
    repo, _ = ar1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = (repo.path / "data/predictions/lstm.parquet").read_bytes()
    start = time.monotonic()
    proc = repo.run("python", "pipeline/train.py", "lstm", check=False, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 30
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: MLflow tracking store http://127.0.0.1:{port} unreachable")
    assert "epoch" not in proc.stdout
    assert (repo.path / "data/predictions/lstm.parquet").read_bytes() == before


def test_too_few_training_windows_for_a_batch_is_a_param_error(ar1):
    repo, _ = ar1
    original = (repo.path / "params.yaml").read_text()
    repo.set_params({"train": {"batch_size": 50_000}})
    proc = repo.run("python", "pipeline/train.py", "lstm", check=False)
    (repo.path / "params.yaml").write_text(original)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "fewer than train.batch_size=50000 (window.seq_len, train.batch_size)" in lines[0]


def test_predict_uses_only_what_the_model_carries(ar1, tmp_path):
    """`tsarena predict` from outside the repo, before and after the workspace's scaler and feature
    params change (and their stages re-run): the champion's forecast does not move, and it equals the
    local model's and the evaluated one."""
    repo, _ = ar1
    forecasts = pd.read_parquet(repo.path / "data/eval/forecasts.parquet")
    champion = json.loads(repo.run(str(BIN / "python"), "-c", (
        "import mlflow, json; c = mlflow.MlflowClient(); v = c.get_model_version_by_alias('tsarena-forecaster', "
        "'champion'); print(json.dumps(c.get_run(v.run_id).info.run_name))"), MLFLOW_TRACKING_URI=repo.mlflow_uri).stdout)
    row = forecasts[forecasts["model"] == champion].iloc[-1]
    raw_until(repo, row["date"], tmp_path / "p.csv")
    predict = [str(BIN / "tsarena"), "predict", str(tmp_path / "p.csv"), "--output", "json"]

    def run(*extra: str) -> list[dict]:
        proc = repo.run(*predict, *extra, MLFLOW_TRACKING_URI=repo.mlflow_uri)
        return json.loads(proc.stdout)

    before = run()
    assert before[0]["as_of"] == str(row["date"].date())
    assert before[0]["log_return_1d"] == pytest.approx(row["forecast"], rel=1e-4, abs=1e-7)
    assert run("--model", champion) == before and run("--model", "models:/tsarena-forecaster/1") == before
    original = (repo.path / "params.yaml").read_text()
    repo.set_params({"window": {"scaler": "robust"}, "features": {"rsi_window": 9}})
    repo.dvc("repro", "split")
    after = run()
    (repo.path / "params.yaml").write_text(original)
    repo.dvc("repro", "split")  # back to the committed params: restored from the run-cache
    assert after == before


def test_predict_errors_are_one_line_and_create_no_store(ar1, tmp_path):
    repo, _ = ar1
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Close\n2020-01-01,abc\n")
    proc = repo.run(str(BIN / "tsarena"), "predict", str(bad), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: non-numeric value 'abc' ({bad}, column close, line 2)"]
    good = tmp_path / "p.csv"
    raw_until(repo, pd.Timestamp("2100-01-01"), good)
    proc = repo.run(str(BIN / "tsarena"), "predict", str(good), "--model", "nosuch", check=False,
                    MLFLOW_TRACKING_URI=repo.mlflow_uri)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "tsarena-forecaster has no alias 'nosuch' (its aliases: best_ranked, champion)" in proc.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    import subprocess

    proc = subprocess.run([str(BIN / "tsarena"), "predict", str(good)], cwd=outside, capture_output=True, text=True,
                          env={k: v for k, v in repo.env().items() if k != "MLFLOW_TRACKING_URI"})
    assert proc.returncode == 1 and proc.stderr.startswith("error: no MLflow tracking store")
    assert list(outside.iterdir()) == []
    assert repo.run(str(BIN / "tsarena"), "--version").stdout.startswith("tsarena ")


def test_feature_param_change_reruns_feature_and_below_but_not_ingest(ar1):
    repo, _ = ar1
    original = (repo.path / "params.yaml").read_text()
    repo.set_params({"features": {"rsi_window": 10}})
    status = json.loads(repo.dvc("status", "--json").stdout)
    assert set(status) == {"check", "feature"}  # DVC flags the stages whose params changed; never ingest
    assert ran(repo.dvc("repro", "feature").stdout) == {"check", "feature"}
    # its new output invalidates the next stage, and so on down (every stage's deps: test_dvc_contract.py)
    assert set(json.loads(repo.dvc("status", "--json").stdout)) == {"split"}
    (repo.path / "params.yaml").write_text(original)
    assert "is cached" in repo.dvc("repro", "feature").stdout  # back: restored from the run-cache
    assert json.loads(repo.dvc("status", "--json").stdout) == {}


# one module of each area, and the stages an edit to it may re-run (dvc.yaml's code deps: scripts/code_deps.py)
EDITS = {"src/tsarena/judging/report.py": {"compare"},
         "src/tsarena/judging/plots.py": {"explain", "compare"},
         "src/tsarena/judging/metrics.py": {"check", "explain", "evaluate", "compare"},
         "src/tsarena/tracking/registry.py": {"compare"},
         "src/tsarena/judging/intervals.py": {"check", "train@lstm", "train@transformer", "baselines", "ensemble",
                                              "explain", "evaluate", "compare"},
         "src/tsarena/contestants/architectures/lstm.py": {"check", "tune@lstm", "train@lstm", "explain"},
         # the served bundles compute the features of what they are given: the producers depend on them too
         "src/tsarena/data/features.py": {"feature", "train@lstm", "train@transformer", "baselines", "ensemble",
                                          "explain"}}


def test_a_code_edit_marks_only_the_stages_whose_outputs_it_can_change(ar1):
    """On the cached arena, a comment added to one module of each area: `dvc status` lists exactly the stages
    the closure table predicts (an edit to the report re-runs compare only)."""
    repo, _ = ar1
    assert json.loads(repo.dvc("status", "--json").stdout) == {}
    for module, expected in EDITS.items():
        path = repo.path / module
        original = path.read_text()
        path.write_text(original + "\n# an edit\n")
        try:
            changed = set(json.loads(repo.dvc("status", "--json").stdout))
        finally:
            path.write_text(original)
        assert changed == expected, (module, changed)
    assert json.loads(repo.dvc("status", "--json").stdout) == {}


@pytest.mark.system
def test_lstm_param_change_reruns_only_its_own_training_and_what_reads_it(ar1, client):
    repo, _ = ar1
    original = (repo.path / "params.yaml").read_text()
    lstm_runs, transformer_runs = len(runs_by_name(client, "lstm")), len(runs_by_name(client, "transformer"))
    repo.set_params({"lstm": {"hidden_size": 8}})
    out = repo.dvc("repro").stdout
    assert ran(out) == {"check", "tune@lstm", "train@lstm", "ensemble", "explain", "evaluate", "compare"}
    runs = runs_by_name(client, "lstm")
    assert len(runs) == lstm_runs + 1 and runs[-1].data.params["lstm.hidden_size"] == "8"
    assert len(runs_by_name(client, "transformer")) == transformer_runs
    # back to the committed params: DVC's run-cache restores every stage, runs no command, logs no run
    (repo.path / "params.yaml").write_text(original)
    out = repo.dvc("repro").stdout
    assert ran(out) == set() and "is cached" in out
    assert len(runs_by_name(client, "lstm")) == lstm_runs + 1


@pytest.mark.system
@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="needs Chromium for the browser check (apt-get install chromium; .ci/run installs it)")
def test_the_mlflow_ui_first_page_shows_every_contestant_with_its_test_rmse(ar1, tmp_path):
    """A real `mlflow ui` (started by `tsarena ui`) and headless Chromium: the link it prints opens as a
    model-training experiment whose runs list has a row per contestant (networks and every baseline, the
    random walk included) with its test RMSE as rendered text."""
    repo, _ = ar1
    proc = repo.run(str(BIN / "python"), str(ROOT / "scripts/check_mlflow_ui.py"),
                    "--store", repo.mlflow_uri, "--metrics", str(repo.path / "data/eval/metrics.json"),
                    "--screenshot", str(tmp_path / "ui.png"), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    contestants = set(json.loads((repo.path / "data/eval/metrics.json").read_text()))
    assert {"lstm", "transformer", "random_walk", "ar"} <= contestants
    assert f"{len(contestants)} of {len(contestants)} contestants shown" in proc.stdout
    assert (tmp_path / "ui.png").stat().st_size > 10_000


def test_an_edit_no_stage_reads_fails_the_cached_pipeline_with_one_line(ar1):
    """A misspelt key or section, a bad speed-only value or an unknown architecture is listed by no stage
    that would run: on a cached pipeline `check` (which tracks the whole file) fails first, alone."""
    repo, _ = ar1
    original = (repo.path / "params.yaml").read_text()
    cases = [({"train": {"max_epoch": 3}}, "error: unknown key 'max_epoch' (train.max_epoch)"),
             ({"trainer": {"max_epochs": 3}}, "error: unknown section 'trainer' (params.yaml)"),
             ({"tune": {"space": {"tcn": {"hiden_siz": {"choices": [8]}}}}}, "(tune.space.tcn.hiden_siz)"),
             ({"train": {"jobs": 0}}, "error: auto or a number of processes from 1 to 1024, got 0 (train.jobs)"),
             ({"arena": {"models": ["lstm", "gpt5"]}}, "error: unknown architecture 'gpt5' (registered: cnn_lstm,")]
    try:
        for edit, line in cases:
            (repo.path / "params.yaml").write_text(original)
            repo.set_params(edit)
            proc = repo.dvc("repro", check=False)
            errors = [text for text in (proc.stdout + proc.stderr).splitlines() if text.startswith("error:")]
            assert proc.returncode != 0 and len(errors) == 1 and line in errors[0], (edit, errors)
            assert ran(proc.stdout) == {"check"}, edit
        # a valid edit that nothing reads: said in one line, nothing else runs
        (repo.path / "params.yaml").write_text(original)
        repo.set_params({"tcn": {"dropout": 0.25}})
        out = repo.dvc("repro").stdout
        assert "note: tcn.dropout was edited, but tcn is not in arena.models ['lstm', 'transformer']" in out
        assert ran(out) == {"check"}
    finally:
        (repo.path / "params.yaml").write_text(original)
    assert ran(repo.dvc("repro").stdout) <= {"check"}
    assert json.loads(repo.dvc("status", "--json").stdout) == {}


def test_explain_writes_every_contestant_s_attributions_onto_its_run_and_into_the_report(ar1, client):
    """explain on the fast arena: each contestant explained once, the networks' integrated gradients add up,
    the files on its MLflow run; the planted-data evidence (the right input found) is test_explain.py's."""
    from tsarena.judging.attributions import COMPLETENESS, COMPLETENESS_TOLERANCE

    repo, _ = ar1
    summary = json.loads((repo.path / "data/explain/summary.json").read_text())["producers"]
    scores = json.loads((repo.path / "data/eval/scores.json").read_text())
    assert set(summary) == set(scores) - {"oracle"}
    for name in (*MODELS, "ensemble"):
        assert summary[name][COMPLETENESS] <= COMPLETENESS_TOLERANCE, name
        explained = [r for r in runs_by_name(client, name) if r.data.tags.get("explain.top_feature")]
        run = explained[-1]  # the latest execution's (a params edit in this module may have made another)
        assert run.data.tags["explain.top_feature"] == summary[name]["top_feature"]
        logged = {a.path for a in client.list_artifacts(run.info.run_id, "explain")}
        assert {"explain/permutation.csv", "explain/lag_map.csv", "explain/explain.png"} <= logged, name
    section = (repo.path / "data/reports/comparison.md").read_text().split("## What each model looks at")[1]
    assert all(f"| {m} |" in section for m in [*MODELS, "ensemble", "ar", "random_walk"])


def test_every_producer_is_scored_with_its_intervals(ar1):
    """Intervals on the fast arena: every producer's conformal and adaptive bounds are scored (coverage,
    Winkler, CRPS) and the evaluated table carries them; their calibration is the full tier's evidence."""
    repo, _ = ar1
    scores = json.loads((repo.path / "data/eval/scores.json").read_text())
    forecasts = pd.read_parquet(repo.path / "data/eval/forecasts.parquet")
    for name in (*MODELS, "ensemble", "random_walk", "ar"):
        for method in ("conformal", "adaptive"):
            assert 0.5 < scores[name][f"{method}_90_coverage"] <= 1, (name, method)
        assert scores[name]["adaptive_crps"] > 0
        rows = forecasts[forecasts["model"] == name]
        assert (rows["lower_conformal_90"] < rows["forecast"]).all() and (rows["forecast"] < rows["upper_conformal_90"]).all()
