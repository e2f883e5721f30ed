"""A CSV's own numeric columns (a daily sentiment score, ...) end to end: they become causal features
under the extra_lag rule, reach every producer, and the served model asks for them."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import BIN, make_repo
from tsarena.data.params import SyntheticParams
from tsarena.data.sources import synthetic_prices

pytestmark = [pytest.mark.e2e, pytest.mark.evidence]


LAG = 3  # the planted column's value at t moves the return at t + 1 + LAG


@pytest.fixture(scope="module")
def extras(tmp_path_factory):
    """gbm prices (nothing to forecast from prices) and `signal`, a value dated t that announces the
    return from t+LAG to t+LAG+1. With extra_lag 1 it enters row t+1; the row whose target is that return
    is t+LAG, so a window ending there holds it LAG-1 rows before its last: legitimate foresight a model
    can only use through the extra column, at that lag."""
    root = tmp_path_factory.mktemp("extras")
    prices = synthetic_prices(SyntheticParams(kind="gbm", n_days=1500, seed=3), None)
    log_close = np.log(prices["close"])
    prices["signal"] = (log_close.shift(-LAG - 1) - log_close.shift(-LAG)).fillna(0.0) * 100
    csv = root / "data/input/prices.csv"
    csv.parent.mkdir(parents=True)
    prices.drop(columns="ticker").assign(date=prices["date"].dt.strftime("%Y-%m-%d")).to_csv(csv, index=False)
    repo = make_repo(root / "repo", {"data": {"source": "csv", "csv": {"path": "data/input/prices.csv",
                                                                           "extra_columns": ["signal"]}},
                                     "arena": {"models": ["mlp"]}, "train": {"max_epochs": 3},
                                     "explain": {"enabled": True}})
    (repo.path / "data/input/prices.csv").write_bytes(csv.read_bytes())
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-qm", "csv with a signal column")
    repo.dvc("repro")
    return repo, prices


def test_an_extra_column_becomes_a_lagged_feature_every_producer_can_use(extras):
    repo, prices = extras
    schema = json.loads((repo.path / "data/features/schema.json").read_text())
    assert schema["features"][-1] == "extra_signal"
    table = pd.read_parquet(repo.path / "data/features/features.parquet")
    # the lag rule on disk: row t holds the value dated t-1
    raw = prices.set_index("date")["signal"]
    np.testing.assert_allclose(table["extra_signal"].to_numpy(), raw.shift(1).loc[table["date"]].to_numpy(), rtol=1e-6)
    metrics = json.loads((repo.path / "data/eval/scores.json").read_text())
    rw = metrics["random_walk"]["test_rmse"]
    assert metrics["linear"]["test_rmse"] < 0.2 * rw  # it reads the announced return, LAG-1 rows back
    assert metrics["mlp"]["test_rmse"] < rw and metrics["mlp"]["dm_pvalue_holm"] < 0.05


def test_the_models_that_find_the_column_attribute_to_it_at_its_lag(extras):
    repo, _ = extras
    summary = json.loads((repo.path / "data/explain/summary.json").read_text())["producers"]
    for name in ("mlp", "linear"):  # the contestants that found it (asserted above)
        assert summary[name]["top_feature"] == "extra_signal", summary[name]
    assert summary["mlp"]["ig_top_feature"] == "extra_signal" and summary["mlp"]["ig_top_lag"] == LAG - 1
    lag_map = pd.read_csv(repo.path / "data/explain/mlp/lag_map.csv").set_index("lag")
    assert lag_map["extra_signal"].idxmax() == LAG - 1
    assert lag_map.loc[LAG - 1, "extra_signal"] == lag_map.to_numpy().max()  # the map's largest cell


def test_the_served_model_requires_the_extra_column(extras, tmp_path):
    repo, prices = extras
    given = tmp_path / "recent.csv"
    recent = prices.tail(400).drop(columns="ticker").assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d"))
    recent.to_csv(given, index=False)
    out = repo.run(str(BIN / "tsarena"), "predict", str(given), "--model", "mlp", "--output", "json")
    (row,) = json.loads(out.stdout)
    assert row["as_of"] == recent["date"].iloc[-1] and np.isfinite(row["log_return_1d"])
    recent.drop(columns="signal").to_csv(given, index=False)
    proc = repo.run(str(BIN / "tsarena"), "predict", str(given), "--model", "mlp", check=False)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: missing column 'signal' named in data.csv.extra_columns") and str(given) in line
