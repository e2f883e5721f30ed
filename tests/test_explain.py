"""The explain stage end to end, on planted data whose answer is known: a real `dvc repro` in a temp repo,
a real MLflow store, the report, and `tsarena predict --explain`."""

import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import BIN
from tsarena.judging.attributions import COMPLETENESS, COMPLETENESS_TOLERANCE

pytestmark = [pytest.mark.e2e, pytest.mark.evidence]

NETWORKS = ["lstm", "dlinear", "tft", "transformer"]
CONCENTRATED = ["lstm", "dlinear", "tft"]  # the three that hold half their |attribution| on the one signal cell
# AR(1) returns: only the last row's one-day return carries the signal. No feature that is another name for
# it (close_open, a 5-day moving-average ratio, RSI): return_21d and volatility are the distractors.
PLANTED = {"data": {"synthetic": {"kind": "ar1", "n_days": 4000, "phi": 0.3, "seed": 0}},
           "features": {"return_lags": [1, 21], "volatility_windows": [5], "ma_windows": [], "rsi_window": None,
                        "macd": None, "volume_window": 10, "high_low_range": False},
           "arena": {"models": NETWORKS, "ensemble": "inverse_mse"}, "train": {"max_epochs": 8, "jobs": 2},
           "explain": {"enabled": True, "windows": 300, "steps": 32, "repeats": 3}}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from conftest import make_repo

    repo = make_repo(tmp_path_factory.mktemp("explain") / "repo", PLANTED)
    repo.dvc("repro")
    scores = json.loads((repo.path / "data/eval/scores.json").read_text())
    summary = json.loads((repo.path / "data/explain/summary.json").read_text())["producers"]
    return repo, scores, summary


def skilled(scores: dict) -> list[str]:
    return [m for m, s in scores.items() if (s.get("dm_pvalue_holm") or 1) < 0.05 and m != "oracle"]


def test_networks_with_skill_attribute_most_to_the_last_return_and_add_up(planted):
    repo, scores, summary = planted
    winners = [m for m in skilled(scores) if m in [*NETWORKS, "ensemble"]]
    assert set(NETWORKS) <= set(winners), f"the planted AR(1) was not found: { {m: s.get('dm_pvalue_holm') for m, s in scores.items()} }"
    for name in [*NETWORKS, "ensemble"]:
        assert summary[name][COMPLETENESS] <= COMPLETENESS_TOLERANCE, name
    for name in winners:
        lag_map = pd.read_csv(repo.path / f"data/explain/{name}/lag_map.csv")
        cells = lag_map.drop(columns="lag")
        share = cells.loc[lag_map["lag"] == 0, "log_return"].iloc[0] / cells.to_numpy().sum()
        # every one: the signal cell is the largest, its feature the first; a model that reads 60 rows (the
        # transformer) spreads the rest over cells whose coefficients are estimated near zero (BENCHMARKS §10)
        lag, feature = np.unravel_index(np.argmax(cells.to_numpy()), cells.shape)
        assert (lag_map["lag"].iloc[lag], cells.columns[feature]) == (0, "log_return"), (name, lag, feature)
        assert cells.sum(axis=0).idxmax() == "log_return", name
        if name in CONCENTRATED:
            assert share >= 0.5, f"{name}: last row's log_return holds {share:.0%} of |attribution|"


def test_every_contestant_with_skill_ranks_the_last_return_first(planted):
    repo, scores, summary = planted
    winners = skilled(scores)
    assert {"ar", "ridge_last"} <= set(winners)  # the baselines find it too: they are ranked like the rest
    for name in winners:
        assert summary[name]["top_feature"] == "log_return", (name, summary[name])
    # a constant forecast uses nothing, and says so
    assert summary["random_walk"]["top_feature"] == "none"
    ranking = pd.read_csv(repo.path / "data/explain/random_walk/permutation.csv")
    assert (ranking["importance"] == 0).all()


def test_the_tft_variable_weights_sit_beside_its_attributions(planted):
    repo, _, _ = planted
    weights = pd.read_csv(repo.path / "data/explain/tft/variable_weights.csv")
    assert set(weights["feature"]) == set(pd.read_csv(repo.path / "data/explain/tft/attribution.csv")["feature"])
    assert weights["weight"].sum() == pytest.approx(1.0, abs=1e-4)
    assert not (repo.path / "data/explain/lstm/variable_weights.csv").exists()


def test_each_explanation_is_on_its_contestants_run_and_in_the_report(planted):
    repo, _, summary = planted
    client = MlflowClient(repo.mlflow_uri)
    experiment = client.get_experiment_by_name("tsarena")
    for name in ["lstm", "ensemble", "ar"]:
        (run,) = client.search_runs([experiment.experiment_id], f"attributes.run_name = '{name}' and "
                                    "tags.`explain.top_feature` != ''")
        assert run.data.tags["explain.top_feature"] == summary[name]["top_feature"]
        logged = {a.path for a in client.list_artifacts(run.info.run_id, "explain")}
        assert "explain/permutation.csv" in logged
        if name == "ar":
            assert "explain/importance.png" in logged
        else:
            assert {"explain/lag_map.csv", "explain/explain.png"} <= logged
            assert run.data.metrics[f"explain.{COMPLETENESS}"] == pytest.approx(summary[name][COMPLETENESS])
    report = (repo.path / "data/reports/comparison.md").read_text()
    section = report.split("## What each model looks at")[1].split("\n## ")[0]
    assert all(f"| {m} |" in section for m in [*NETWORKS, "ensemble", "ar", "random_walk"])
    assert (repo.path / "data/reports/importance.png").stat().st_size > 10_000


def test_predict_explain_names_the_inputs_behind_the_forecast(planted, tmp_path):
    repo, _, _ = planted
    raw = pd.read_parquet(repo.path / "data/raw/prices.parquet").tail(200)
    given = tmp_path / "recent.csv"
    raw.drop(columns="ticker").assign(date=raw["date"].dt.strftime("%Y-%m-%d")).to_csv(given, index=False)
    tsarena = str(BIN / "tsarena")
    plain = json.loads(repo.run(tsarena, "predict", str(given), "--model", "tft", "--output", "json").stdout)
    both = json.loads(repo.run(tsarena, "predict", str(given), "--model", "tft", "--output", "json",
                               "--explain").stdout)
    assert both["forecasts"] == plain  # explaining changes no number
    why = pd.DataFrame(both["explain"])
    assert list(why["order"]) == [1, 2, 3, 4, 5] and (why["completeness_error"] < COMPLETENESS_TOLERANCE).all()
    features = json.loads((repo.path / "data/features/schema.json").read_text())["features"]
    assert set(why["feature"]) <= set(features) and (why["lag"] >= 0).all()
    assert np.all(np.diff(np.abs(why["attribution"])) <= 0)  # largest first
    table = repo.run(tsarena, "predict", str(given), "--model", "tft", "--explain").stdout
    assert "why:" in table and why["feature"].iloc[0] in table
    refused = repo.run(tsarena, "predict", str(given), "--model", "tft", "--explain", "--output", "csv", check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("error: --explain") and not refused.stdout


def test_explain_is_off_with_one_param(planted):
    repo, _, _ = planted
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-qm", "repro")
    repo.dvc("exp", "run", "-S", "explain.enabled=false")
    assert json.loads((repo.path / "data/explain/summary.json").read_text()) == {}
    assert [p.name for p in (repo.path / "data/explain").iterdir()] == ["summary.json"]
    assert "Off (`explain.enabled: false`)" in (repo.path / "data/reports/comparison.md").read_text()
    assert not (repo.path / "data/reports/importance.png").exists()
