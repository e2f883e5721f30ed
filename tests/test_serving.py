"""Every serving route forecasts like `tsarena predict`, end to end with the real tools.

A model trained on a Yahoo-style CSV (capitalised columns, Adj Close differing from Close, integer
volume, two tickers, an extra column) on iid returns, so the referee names no champion, as on the
default data. Then README's routes: `tsarena predict`, `mlflow.pyfunc.load_model(...).predict` of
`pd.read_csv`, and `tsarena serve` (`mlflow models serve`) fed README's recipes, with the venv's
folder not on PATH; each CSV variant must give one forecast on every route, equal to the evaluated one.
"""

import json
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from conftest import BIN, free_port, make_repo, stop, wait_http

pytestmark = pytest.mark.e2e
TICKERS = ("AAA", "BBB")


def yahoo_prices(n_days: int = 1500) -> pd.DataFrame:
    """Synthetic iid returns in Yahoo's layout: Close is the quoted price, Adj Close the quoted price
    scaled back for dividends (a factor that steps from 0.8 to 1), Volume an integer."""
    from tsarena.data.params import SyntheticParams
    from tsarena.data.sources import synthetic_prices

    raw = synthetic_prices(SyntheticParams(kind="gbm", n_days=n_days, n_series=2, seed=11), None)
    raw["ticker"] = raw["ticker"].map({"SYN0": "AAA", "SYN1": "BBB"})
    factor = np.tile(np.repeat(np.linspace(0.8, 1.0, 10), -(-n_days // 10))[:n_days], 2)
    sentiment = np.random.default_rng(5).normal(size=len(raw)).round(4)
    return pd.DataFrame({"Date": raw["date"].dt.strftime("%Y-%m-%d"), "Ticker": raw["ticker"], "Open": raw["open"],
                         "High": raw["high"], "Low": raw["low"], "Close": raw["close"], "Adj Close": raw["close"] * factor,
                         "Volume": raw["volume"].astype(np.int64), "Sentiment": sentiment})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("serving"), {
        "data": {"source": "csv", "csv": {"path": "data/input/prices.csv", "extra_columns": ["sentiment"]}},
        "arena": {"models": ["lstm"]}})
    prices = yahoo_prices()
    prices.to_csv(repo.path / "data/input/prices.csv", index=False)
    repo.dvc("repro")
    return repo, prices


def variants(prices: pd.DataFrame, date: str, folder) -> dict[str, tuple]:
    """CSV files a user would send (the history up to `date`), and the tickers each answers for."""
    upto = prices[prices["Date"] <= date]
    one = upto[upto["Ticker"] == "AAA"].drop(columns="Ticker")
    files = {"yahoo, one series": (one, {"INPUT": "AAA"}),
             "yahoo, two tickers": (upto, {t: t for t in TICKERS}),
             "lower-case, one series": (one.rename(columns=str.lower), {"INPUT": "AAA"})}
    out = {}
    for name, (table, names) in files.items():
        path = folder / (name.replace(", ", "_").replace(" ", "_") + ".csv")
        table.to_csv(path, index=False)
        out[name] = (path, names)
    return out


def serve_process(repo, *args: str) -> tuple[subprocess.Popen, str]:
    """`tsarena serve` with only the system's folders on PATH (the venv not activated)."""
    port = free_port()
    env = {**repo.env(MLFLOW_TRACKING_URI=repo.mlflow_uri), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([str(BIN / "tsarena"), "serve", "--port", str(port), *args], cwd=repo.path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/ping", proc)
    return proc, url


def post(url: str, body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def by_ticker(records: list[dict]) -> dict[str, dict]:
    return {r["ticker"]: r for r in records}


def test_no_champion_is_an_answer_that_names_the_command_to_use_anyway(served, tmp_path):
    repo, prices = served
    report = (repo.path / "data/reports/comparison.md").read_text()
    assert "the `champion` alias was left where it was" in report  # iid returns: nothing beats the random walk
    csv = tmp_path / "p.csv"
    prices.to_csv(csv, index=False)
    for command in (["predict", str(csv)], ["serve", "--port", str(free_port())]):
        proc = repo.run(str(BIN / "tsarena"), *command, check=False, MLFLOW_TRACKING_URI=repo.mlflow_uri)
        (line,) = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and line.startswith("error: tsarena-forecaster has no champion: the last comparison "
                                                        "found no model that beats the random walk")
        assert "SPA" in line and "--model best_ranked" in line
    out = json.loads(repo.run(str(BIN / "tsarena"), "predict", str(csv), "--model", "best_ranked", "--output", "json",
                              MLFLOW_TRACKING_URI=repo.mlflow_uri).stdout)
    assert {r["ticker"] for r in out} == set(TICKERS)


def test_every_route_gives_the_evaluated_forecast_for_every_csv_variant(served, tmp_path):
    import mlflow

    repo, prices = served
    evaluated = pd.read_parquet(repo.path / "data/eval/forecasts.parquet")
    evaluated = evaluated[evaluated["model"] == "lstm"]
    date = evaluated["date"].iloc[len(evaluated) // 2]
    on_day = evaluated[evaluated["date"] == date].set_index("ticker")
    expected = on_day["forecast"]
    assert set(expected.index) == set(TICKERS)
    # the served interval is the evaluated split-conformal one, at every level params.yaml names
    bounds = [c for c in evaluated.columns if c.startswith(("lower_conformal_", "upper_conformal_"))]
    assert sorted(bounds) == sorted(f"{side}_conformal_{pct}" for side in ("lower", "upper") for pct in (80, 90, 95))
    day = str(date.date())
    mlflow.set_tracking_uri(repo.mlflow_uri)
    model = mlflow.pyfunc.load_model("models:/tsarena-forecaster@best_ranked")
    proc, url = serve_process(repo, "--model", "best_ranked")
    results = {}
    try:
        for name, (path, names) in variants(prices, day, tmp_path).items():
            date_column = next(c for c in pd.read_csv(path, nrows=0).columns if c.lower() == "date")
            split = pd.read_csv(path).to_dict(orient="split", index=False)
            routes = {
                "cli": json.loads(repo.run(str(BIN / "tsarena"), "predict", str(path), "--model", "best_ranked",
                                           "--output", "json", MLFLOW_TRACKING_URI=repo.mlflow_uri).stdout),
                "pyfunc": model.predict(pd.read_csv(path)).to_dict(orient="records"),
                "pyfunc, parsed dates": model.predict(pd.read_csv(path, parse_dates=[date_column])).to_dict(orient="records"),
                "http csv": post(url, path.read_bytes(), "text/csv"),
                "http json": post(url, json.dumps({"dataframe_split": split}).encode(), "application/json"),
            }
            for route in ("http csv", "http json"):
                status, body = routes[route]
                assert status == 200, (name, route, body)
                routes[route] = body["predictions"]
            results[name] = routes
            for route, records in routes.items():
                got = by_ticker(records)
                assert set(got) == set(names), (name, route)
                for ticker, trained_as in names.items():
                    row = got[ticker]
                    assert row["as_of"] == day and row["close_basis"] == "adjusted", (name, route, row)
                    assert row["log_return_1d"] == pytest.approx(expected[trained_as], rel=1e-4, abs=1e-7), (name, route)
                    for column in bounds:
                        assert row[column] == pytest.approx(on_day.loc[trained_as, column], rel=1e-4, abs=1e-7), \
                            (name, route, column)
                    assert row["lower_conformal_80"] < row["log_return_1d"] < row["upper_conformal_80"]
                    assert row == by_ticker(routes["cli"])[ticker], (name, route)  # to the last digit
    finally:
        stop(proc)
    # the adjusted close is the one trained on and forecast from: the quoted Close gives other numbers
    quoted = prices[(prices["Ticker"] == "AAA") & (prices["Date"] <= day)].drop(columns=["Ticker", "Adj Close"])
    raw_route = model.predict(quoted).iloc[0]
    assert raw_route["close_basis"] == "raw"
    assert raw_route["log_return_1d"] != results["yahoo, one series"]["cli"][0]["log_return_1d"]


def test_bad_requests_over_http_are_400_with_tsarena_s_one_line(served):
    repo, prices = served
    one = prices[prices["Ticker"] == "AAA"].drop(columns="Ticker")
    negative = one.copy()
    negative.loc[negative.index[40], "Adj Close"] = -1.0
    cases = {
        "too little history": (one.head(12), "fewer than one window needs (10)"),
        "non-positive price": (negative, "non-positive price -1 (model input, column close, row 41)"),
        "no close": (one.drop(columns=["Close", "Adj Close"]), "missing column 'close'"),
        "no rows": (one.head(0), "no data rows"),
    }
    proc, url = serve_process(repo, "--model", "best_ranked")
    try:
        for name, (table, message) in cases.items():
            status, body = post(url, table.to_csv(index=False).encode(), "text/csv")
            assert status == 400, (name, body)
            assert message in body["message"] and "\n" not in body["message"], (name, body)
            assert "stack_trace" not in body and len(body["message"]) < 400, (name, body)
    finally:
        stop(proc)


def test_serving_a_missing_alias_is_one_line(served):
    repo, _ = served
    env = {**repo.env(MLFLOW_TRACKING_URI=repo.mlflow_uri), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(BIN / "tsarena"), "serve", "--model", "nosuch"], cwd=repo.path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: tsarena-forecaster has no alias 'nosuch' (its aliases: best_ranked) (--model)"]


def test_ui_of_a_missing_experiment_is_one_line(served):
    repo, _ = served
    proc = subprocess.run([str(BIN / "tsarena"), "ui", "--experiment", "nosuch", "--tracking-uri", repo.mlflow_uri],
                          cwd=repo.path, env=repo.env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no experiment 'nosuch' in ") and "(--experiment)" in lines[0]
