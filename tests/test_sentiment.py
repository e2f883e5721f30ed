"""News in and sentiment out: validation of a news file, the causal dating of each item, the scorers, and the
arena on planted headlines (sentiment_ridge finds a planted link, and nothing in headlines unrelated to
returns or in after-close news that "knows" tomorrow)."""

import json

import numpy as np
import pandas as pd
import pytest

from tsarena.core.errors import TsarenaError
from tsarena.data.news import NEGATIVE, NEUTRAL, POSITIVE, load_news, normalise_news, synthetic_news
from tsarena.data.params import SentimentParams, SyntheticParams
from tsarena.data.sentiment import (SENTIMENT_COLUMNS, daily_scores, join_sentiment, lexicon_scores, trading_days)
from tsarena.data.sources import synthetic_prices

ZONE = "America/New_York"


def _calendar() -> np.ndarray:
    """Business days of 2021 without two holidays (weekends, holidays and both DST switches inside), and the
    Sundays of the switches as trading days too: a market that trades on a switch day is dated right."""
    days = pd.bdate_range("2021-01-04", "2021-12-31")
    days = days[~days.isin(pd.to_datetime(["2021-07-05", "2021-11-25"]))]
    return days.union(pd.to_datetime(["2021-03-14", "2021-03-28", "2021-10-31", "2021-11-07"])).to_numpy()


def _close(day, params: SentimentParams) -> pd.Timestamp:
    """The day's close as the market's wall clock shows it."""
    return pd.Timestamp(f"{pd.Timestamp(day).date()} {params.close_time}").tz_localize(params.timezone)


@pytest.mark.parametrize("close_time, zone", [("16:00", ZONE), ("17:30", "Europe/London"), ("15:00", "Asia/Tokyo")])
def test_every_item_counts_for_the_first_close_after_it_and_none_before(close_time, zone):
    params = SentimentParams(close_time=close_time, timezone=zone)
    days = _calendar()
    rng = np.random.default_rng(0)
    stamps = pd.Series(pd.Timestamp("2021-01-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 360 * 86400, 5000), unit="s"))
    closes = pd.DatetimeIndex([_close(d, params) for d in days])
    stamps = pd.concat([stamps, pd.Series(closes[:50].tz_convert("UTC")),  # exactly at a close: the next day's
                        pd.Series(closes[:50].tz_convert("UTC") - pd.Timedelta(seconds=1))], ignore_index=True)
    assigned = trading_days(stamps, days, params)
    for stamp, day in zip(stamps, assigned):
        if pd.isna(day):  # past the last close: in no row yet
            assert stamp >= closes[-1]
            continue
        i = int(np.searchsorted(days, day))
        assert stamp < closes[i], (stamp, day)  # known when the forecast at day's close is made
        assert i == 0 or stamp >= closes[i - 1], (stamp, day)  # and not usable a close earlier


def test_a_day_without_news_is_zero_items_not_yesterdays_score():
    prices = synthetic_prices(SyntheticParams(n_days=120), None)
    news = normalise_news(pd.DataFrame({"timestamp": ["2000-01-05T10:00-0500", "2000-01-05T11:00-0500",
                                                      "2000-01-07T20:00-0500"],
                                        "headline": ["SYN0 reports record profit", "SYN0 posts surprise loss",
                                                     "SYN0 achieves successful launch"]}), "news", ZONE, ["SYN0"])
    daily = daily_scores(news, lexicon_scores(news["headline"]), {"SYN0": prices["date"].to_numpy()}, SentimentParams())
    joined = join_sentiment(prices, daily).set_index("date")
    assert joined.loc["2000-01-05", SENTIMENT_COLUMNS].tolist() == [0.0, 2.0, 1.0]  # +1 and -1: mean 0, std 1
    assert joined.loc["2000-01-06", SENTIMENT_COLUMNS].tolist() == [0.0, 0.0, 0.0]
    assert joined.loc["2000-01-10", SENTIMENT_COLUMNS].tolist() == [1.0, 1.0, 0.0]  # Friday after the close -> Monday
    assert joined[SENTIMENT_COLUMNS].to_numpy().sum() == 5.0  # nothing on any other day


def test_the_lexicon_reads_the_made_up_headlines_as_their_tone():
    for texts, sign in ((POSITIVE, 1), (NEGATIVE, -1), (NEUTRAL, 0)):
        scores = lexicon_scores([t.format(t="ACME") for t in texts])
        assert (np.sign(scores) == sign).all(), (texts, scores)


def _bad_files():
    good = "timestamp,ticker,headline\n2000-01-05T10:00-0500,SYN0,SYN0 reports record profit\n"
    return {
        "bad timestamp": (good + "yesterday noon,SYN0,SYN0 posts surprise loss\n",
                          "unparseable timestamp 'yesterday noon'", "line 3"),
        "missing timestamp": (good + ",SYN0,SYN0 posts surprise loss\n", "missing timestamp", "line 3"),
        "empty headline": (good + "2000-01-06T10:00-0500,SYN0,  \n", "empty headline", "line 3"),
        "unknown ticker": (good + "2000-01-06T10:00-0500,SYNO,SYN0 posts surprise loss\n", "unknown ticker 'SYNO'",
                           "line 3"),
        "no headline column": ("timestamp,ticker,title\n2000-01-05T10:00-0500,SYN0,x\n", "missing column 'headline'", None),
        "a stray column": ("timestamp,headline,score\n2000-01-05T10:00-0500,x,1\n", "unknown column 'score'", None),
        "no rows": ("timestamp,headline\n", "no news items below the header", None),
        "empty file": ("", "file is empty", None),
        "a time DST skips": ("timestamp,headline\n2000-04-02 02:30,x\n", "timestamp '2000-04-02 02:30' does not exist or is ambiguous", "line 2"),
    }


@pytest.mark.parametrize("case", sorted(_bad_files()))
def test_a_bad_news_file_is_one_error_naming_the_file_and_line(tmp_path, case):
    text, message, line = _bad_files()[case]
    path = tmp_path / "news.csv"
    path.write_text(text)
    with pytest.raises(TsarenaError) as raised:
        load_news(path, ZONE, ["SYN0"])
    assert raised.value.what.startswith(message), raised.value.what
    assert str(path) in raised.value.where and (line is None or raised.value.where.endswith(line)), raised.value.where


def test_stamps_in_any_zone_or_none_and_bare_dates_are_dated_causally(tmp_path):
    path = tmp_path / "news.parquet"
    pd.DataFrame({"timestamp": ["2000-01-05 15:59", "2000-01-05T21:30Z", "2000-01-05", "2000-01-05T22:00+01:00"],
                  "headline": ["a", "b", "c", "d"]}).to_parquet(path)
    news = load_news(path, ZONE, ["SYN0"])
    days = trading_days(news["timestamp"], pd.bdate_range("2000-01-03", periods=10).to_numpy(), SentimentParams())
    by_headline = dict(zip(news["headline"], pd.DatetimeIndex(days).strftime("%Y-%m-%d")))
    # 15:59 New York: before the close; 21:30 UTC = 16:30 New York: after it; a bare date: its end, after it;
    # 22:00 in Paris = 16:00 New York: at the close, the next day
    assert by_headline == {"a": "2000-01-05", "b": "2000-01-06", "c": "2000-01-06", "d": "2000-01-06"}


def test_synthetic_news_plants_its_link_before_the_close_and_only_there():
    prices = synthetic_prices(SyntheticParams(n_days=1500, seed=3), None)
    up = np.log(prices["close"]).diff().shift(-1)
    calendar = {"SYN0": prices["date"].to_numpy()}
    correlations = {}
    for name, link, after in (("planted", 0.4, False), ("unrelated", 0.0, False), ("after close", 1.0, True)):
        news = normalise_news(synthetic_news(prices, link, seed=1, after_close=after), "news", ZONE, ["SYN0"])
        joined = join_sentiment(prices, daily_scores(news, lexicon_scores(news["headline"].tolist()), calendar,
                                                     SentimentParams()))
        correlations[name] = np.corrcoef(joined["sentiment_mean"][:-1], up[:-1])[0, 1]
    assert correlations["planted"] > 0.25, correlations
    assert abs(correlations["unrelated"]) < 0.08 and abs(correlations["after close"]) < 0.08, correlations


def _tiny_classifier(folder, labels=("negative", "neutral", "positive")):
    """A two-layer BERT and a word-level tokenizer, built from configs here (no model hub), saved like a
    downloaded model."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    words = sorted({w.lower() for t in POSITIVE + NEGATIVE + NEUTRAL for w in t.format(t="acme").split()})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]",
                                        cls_token="[CLS]", sep_token="[SEP]")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=len(labels),
                        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer


def test_the_transformers_scorer_reads_a_local_model_offline(tmp_path, monkeypatch):
    import torch

    from tsarena.data.sentiment import transformer_scores

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tokenizer = _tiny_classifier(tmp_path / "model")
    texts = [t.format(t="ACME") for t in POSITIVE + NEGATIVE] + ["words the vocabulary lacks entirely"]
    scores = transformer_scores(texts, str(tmp_path / "model"), batch_size=3)
    with torch.inference_mode():  # P(positive) - P(negative), by the labels' names, not their order
        probs = torch.softmax(model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.double(), -1)
    np.testing.assert_allclose(scores, (probs[:, 2] - probs[:, 0]).numpy(), atol=1e-6)
    assert scores.shape == (len(texts),) and np.all(np.abs(scores) <= 1)
    with pytest.raises(TsarenaError, match="no such directory"):
        transformer_scores(texts, str(tmp_path / "absent"), 8)
    _tiny_classifier(tmp_path / "moods", labels=("happy", "sad"))
    with pytest.raises(TsarenaError, match=r"labels \['happy', 'sad'\] need one 'positive' and one 'negative'"):
        transformer_scores(texts, str(tmp_path / "moods"), 8)


NEWS_FILE = "data/input/news.csv"


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    """A small arena on random-walk prices (nothing to forecast from prices) with planted headlines."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import make_repo

    repo = make_repo(tmp_path_factory.mktemp("news") / "repo",
                     {"data": {"synthetic": {"kind": "gbm", "n_days": 2000, "seed": 11}, "news": {"path": NEWS_FILE}},
                      "arena": {"models": ["lstm"], "ensemble": "inverse_mse", "ensemble_members": ["lstm", "sentiment_ridge"]}})
    prices = synthetic_prices(SyntheticParams(kind="gbm", n_days=2000, seed=11), None)
    return repo, prices


def _write_news(repo, news: pd.DataFrame) -> None:
    news.to_csv(repo.path / NEWS_FILE, index=False)
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-qm", "news")


@pytest.mark.evidence
def test_planted_headlines_give_the_sentiment_producer_skill_and_no_row_sees_a_later_item(arena):
    repo, prices = arena
    news = synthetic_news(prices, link=0.3, seed=5)
    _write_news(repo, news)
    out = repo.dvc("repro").stdout
    assert "sentiment: " in out and "news sentiment among them" in out, out
    scores = json.loads((repo.path / "data/eval/scores.json").read_text())
    assert scores["sentiment_ridge"]["dm_pvalue_holm"] < 0.05 and scores["sentiment_ridge"]["skill_of_avg"] > 0
    # the same architecture trained without the news (sentiment.ablate): the news made it significantly better
    assert scores["lstm"]["news_dm_p_holm"] < 0.05 and scores["lstm"]["news_skill_pct"] > 0, scores["lstm"]
    assert json.loads((repo.path / "data/eval/metrics.json").read_text())["lstm"]["news_p"] < 0.05
    report = (repo.path / "data/reports/comparison.md").read_text()
    assert "## What the news added\n\nNews sentiment made lstm (" in report, report
    # every feature row counts exactly the items stamped after the previous close and before its own
    table = pd.read_parquet(repo.path / "data/features/features.parquet")
    stamps = pd.DatetimeIndex(pd.to_datetime(news["timestamp"], utc=True))
    closes = pd.DatetimeIndex([_close(d, SentimentParams()) for d in prices["date"]])
    position = {d: i for i, d in enumerate(prices["date"])}
    for date, count in zip(table["date"], table["sentiment_count"]):
        i = position[date]
        before = (stamps < closes[i]) & (i == 0 or stamps >= closes[i - 1])
        assert count == before.sum(), date


@pytest.mark.evidence
def test_every_route_serves_a_sentiment_model_with_the_news_as_trained(arena, tmp_path):
    """tsarena predict --news, and the MLflow model with the news as its `news` param, reproduce the evaluated
    forecast of a test day from the prices and the whole news file a user holds that evening (items after
    its close are in no row yet); without the news, one error line says what is missing."""
    import mlflow

    from conftest import BIN

    repo, _ = arena
    forecasts = pd.read_parquet(repo.path / "data/eval/forecasts.parquet")
    row = forecasts[forecasts["model"] == "lstm"].iloc[150]
    raw = pd.read_parquet(repo.path / "data/raw/prices.parquet")
    raw[raw["date"] <= row["date"]].to_csv(tmp_path / "p.csv", index=False)  # its ticker, as the news names it
    news = repo.path / NEWS_FILE
    predict = [str(BIN / "tsarena"), "predict", str(tmp_path / "p.csv"), "--model", "lstm", "--output", "json"]
    (served,) = json.loads(repo.run(*predict, "--news", str(news)).stdout)
    assert served["as_of"] == str(row["date"].date())
    assert served["log_return_1d"] == pytest.approx(row["forecast"], rel=1e-4, abs=1e-7)
    proc = repo.run(*predict, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: this model reads news sentiment") and \
        "--news" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    (run,) = [r for r in mlflow.MlflowClient(repo.mlflow_uri).search_runs(["1"], "attributes.run_name = 'lstm'")
              if "model_uri" in r.data.tags]
    mlflow.set_tracking_uri(repo.mlflow_uri)
    model = mlflow.pyfunc.load_model(json.loads(run.data.tags["model_uri"]))
    out = model.predict(pd.read_csv(tmp_path / "p.csv"), params={"news": news.read_text()})
    assert out["log_return_1d"].iloc[0] == pytest.approx(served["log_return_1d"], rel=1e-9)
    from mlflow.exceptions import MlflowException  # bad news text: the CLI's one line, not a parser's traceback

    with pytest.raises(MlflowException, match=r"^no news items below the header \(params 'news'\)$"):
        model.predict(pd.read_csv(tmp_path / "p.csv"), params={"news": "timestamp,headline\n"})


@pytest.mark.evidence
def test_the_ensemble_fuses_the_price_model_with_the_news_model_and_serves_it(arena, tmp_path):
    """arena.ensemble_members [lstm, sentiment_ridge]: weights fit on validation for both, and the served ensemble
    (the LSTM's network and the ridge's affine map in one bundle) gives the evaluated forecast of a test day, from
    `tsarena predict --news` and over HTTP with the news as the request's params."""
    from conftest import BIN

    repo, _ = arena
    weights = json.loads((repo.path / "data/ensemble/weights.json").read_text())
    assert all(set(w) == {"lstm", "sentiment_ridge"} and w["sentiment_ridge"] > 0 for w in weights.values()), weights
    members = json.loads((repo.path / "data/ensemble/bundle/members.json").read_text())
    assert [(m["name"], m["kind"]) for m in members] == [("lstm", "network"), ("sentiment_ridge", "affine")]
    forecasts = pd.read_parquet(repo.path / "data/eval/forecasts.parquet")
    ensemble = forecasts[forecasts["model"] == "ensemble"]
    assert len(ensemble) and ensemble["seed"].nunique() == forecasts[forecasts["model"] == "lstm"]["seed"].nunique()
    raw = pd.read_parquet(repo.path / "data/raw/prices.parquet")
    # the served ensemble is the last fold's seed-averaged weights over the served fits: a test day of a one-seed fold
    row = ensemble.iloc[-40]
    raw[raw["date"] <= row["date"]].to_csv(tmp_path / "p.csv", index=False)
    printed = {}
    for model, column in (("ensemble", None), ("sentiment_ridge", "sentiment_ridge")):
        proc = repo.run(str(BIN / "tsarena"), "predict", str(tmp_path / "p.csv"), "--model", model, "--news",
                        str(repo.path / NEWS_FILE), "--output", "json")
        (printed[model],) = json.loads(proc.stdout)
        expected = row if column is None else forecasts[(forecasts["model"] == column) & (forecasts["row"] == row["row"])].iloc[0]
        assert printed[model]["as_of"] == str(row["date"].date())
        assert printed[model]["log_return_1d"] == pytest.approx(expected["forecast"], rel=1e-4, abs=1e-7), model
    # over HTTP: `mlflow models serve` of the logged ensemble, the news as the request's params
    import subprocess
    import urllib.request

    import mlflow

    from conftest import free_port, stop, wait_http

    (run,) = [r for r in mlflow.MlflowClient(repo.mlflow_uri).search_runs(["1"], "attributes.run_name = 'ensemble'")
              if "model_uri" in r.data.tags][:1]
    port = free_port()
    proc = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", json.loads(run.data.tags["model_uri"]),
                             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path,
                            env=repo.env(MLFLOW_TRACKING_URI=repo.mlflow_uri), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", proc)
        body = {"dataframe_split": json.loads(pd.read_csv(tmp_path / "p.csv").to_json(orient="split", index=False)),
                "params": {"news": (repo.path / NEWS_FILE).read_text()}}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        (over_http,) = json.loads(urllib.request.urlopen(request, timeout=60).read())["predictions"]
    finally:
        stop(proc)
    assert over_http["log_return_1d"] == printed["ensemble"]["log_return_1d"]


@pytest.mark.evidence
def test_headlines_unrelated_to_returns_and_after_close_news_add_nothing(arena):
    repo, prices = arena
    unrelated = synthetic_news(prices, link=0.0, seed=6)
    knows_tomorrow = synthetic_news(prices, link=1.0, seed=7, after_close=True)  # a leak only misdating can use
    _write_news(repo, pd.concat([unrelated, knows_tomorrow]).sort_values("timestamp"))
    repo.dvc("repro")
    scores = json.loads((repo.path / "data/eval/scores.json").read_text())
    assert scores["sentiment_ridge"]["dm_pvalue_holm"] > 0.05, scores["sentiment_ridge"]
    assert scores["lstm"]["news_dm_p_holm"] > 0.05, scores["lstm"]  # nor to the architecture trained with it
    assert abs(scores["sentiment_ridge"]["skill_of_avg"]) < 1.0, scores["sentiment_ridge"]


@pytest.mark.evidence
def test_a_bad_news_file_fails_the_stage_with_one_line_and_writes_nothing(arena):
    repo, _ = arena
    (repo.path / NEWS_FILE).write_text("timestamp,ticker,headline\n2000-01-05T10:00-0500,SPY,SPY rallies\n")
    repo.run("rm", "-rf", "data/sentiment")
    proc = repo.dvc("repro", "sentiment", check=False)
    assert proc.returncode != 0
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error:")]
    assert errors[0] == (f"error: unknown ticker 'SPY' (the prices have SYN0; a price table without a ticker column is "
                         f"one series: leave the news' ticker empty) ({NEWS_FILE}, column ticker, line 2)"), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and not (repo.path / "data/sentiment").exists()


@pytest.mark.parametrize("written, meant", [('"16:00"', "16:00"), ("16:00", "16:00"), ("17:30", "17:30"), ("09:30", "09:30")])
def test_a_close_time_written_unquoted_is_still_that_time(written, meant):
    """`dvc exp run -S sentiment.close_time=17:30` writes it unquoted, which YAML 1.1 reads as 1050 (base 60)."""
    import yaml

    assert SentimentParams.model_validate(yaml.safe_load(f"close_time: {written}")).close_time == meant
