"""The whole zoo end to end (every registered architecture, the ensemble and the baselines), on
small synthetic data: with no signal (gbm) none may look skilful, with a planted one (AR(1) returns,
phi = 0.3) most must find it. The gbm run is the leak detector: keep it in CI."""

import json

import pytest

from conftest import make_repo
from tsarena.models import architecture_names

pytestmark = pytest.mark.e2e
ZOO = architecture_names()


def run_zoo(tmp_path, kind: str) -> tuple[dict, str]:
    repo = make_repo(tmp_path, {"data": {"synthetic": {"kind": kind, "n_days": 2500}}, "train": {"max_epochs": 3},
                                "arena": {"models": ZOO, "ensemble": "inverse_mse"}})
    repo.dvc("repro")
    metrics = json.loads((repo.path / "data/eval/metrics.json").read_text())
    assert set(metrics) == {*ZOO, "ensemble", "random_walk", "drift", "linear"}
    report = (repo.path / "data/reports/comparison.md").read_text()
    for name in ZOO:  # parameters and training time per model, in the report's table
        assert metrics[name]["n_parameters"] > 0 and metrics[name]["train_seconds"] > 0
        assert f"| {name} | neural |" in report
    return metrics, report


def test_no_model_in_the_zoo_shows_skill_on_a_random_walk(tmp_path):
    """On gbm prices nothing is forecastable: a significant DM p-value, or a direction accuracy
    significantly above a coin, means the future leaked into a feature, a split or a model.
    (Accuracy significantly *below* 0.5 happens by chance at 5% per model and is not a leak.)"""
    metrics, report = run_zoo(tmp_path, "gbm")
    for name, m in metrics.items():
        if m["dm_pvalue"] is not None:
            assert m["dm_pvalue"] >= 0.05, name
        if m["test_dir_acc"] is not None:
            assert m["test_dir_acc_lo"] <= 0.5, name
    assert "No model beats the random walk significantly" in report
    assert "alias was left where it was" in report


def test_most_of_the_zoo_finds_a_planted_ar1_signal(tmp_path):
    """AR(1) returns with phi = 0.3: the best forecast is linear in yesterday's return, and most
    architectures should beat the random walk significantly."""
    metrics, _ = run_zoo(tmp_path, "ar1")
    skilful = [n for n in ZOO if metrics[n]["dm_pvalue"] < 0.05 and metrics[n]["test_rmse"] < metrics["random_walk"]["test_rmse"]]
    assert len(skilful) >= 0.75 * len(ZOO), f"only {skilful} of {ZOO}"
    assert metrics["ensemble"]["dm_pvalue"] < 0.05
