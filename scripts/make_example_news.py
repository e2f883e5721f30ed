"""Writes data/input/news_example.csv: made-up headlines for `data.source: synthetic` at its defaults (gbm,
2,000 days, seed 0), one item a day on average, with a planted link: an item's tone is the sign of the next
day's return with probability 0.3 (else a coin flip, a third neutral), stamped before that day's 16:00
New York close. Made up by the project to show the sentiment stage; no real news in it."""

from pathlib import Path

from tsarena.data.news import synthetic_news
from tsarena.data.params import SyntheticParams
from tsarena.data.sources import synthetic_prices

OUT = Path(__file__).resolve().parents[1] / "data/input/news_example.csv"

if __name__ == "__main__":
    news = synthetic_news(synthetic_prices(SyntheticParams(), None), link=0.3, seed=0, per_day=1.0)
    news.to_csv(OUT, index=False)
    print(f"{len(news)} made-up items -> {OUT}")
