"""sentiment: score every news item and date it by the close it came before -> per ticker and trading day:
mean score, count, dispersion (data.sentiment). Off (an empty table) while data.news.path is null."""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

from pathlib import Path

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.core.errors import stage_main
from tsarena.core.io import atomic_dir, write_json
from tsarena.data.news import load_news
from tsarena.data.sentiment import daily_scores, score_items

IN, OUT = "data/raw/prices.parquet", Path("data/sentiment")


@stage_main
def main() -> None:
    params = config.load("data", "sentiment")
    news_params, scoring = params["data"].news, params["sentiment"]
    prices = pd.read_parquet(IN, columns=["ticker", "date"])
    calendars = {str(t): g["date"].to_numpy() for t, g in prices.groupby("ticker", sort=False)}
    news = None if news_params.path is None else load_news(Path(news_params.path), news_params.timezone, list(calendars))
    scores = np.empty(0) if news is None else score_items(news, scoring)
    daily = daily_scores(news if news is not None else pd.DataFrame(columns=["timestamp", "ticker"]), scores,
                         calendars if news is not None else {}, scoring)
    with atomic_dir(OUT) as tmp:
        daily.to_parquet(tmp / "daily.parquet", index=False)
        if news is not None:
            news.assign(score=scores).to_parquet(tmp / "items.parquet", index=False)
        write_json(tmp / "meta.json", {"news": news_params.path, "items": 0 if news is None else len(news),
                                       "columns": list(daily.columns[2:]),  # how a served model scores news again:
                                       "scoring": {"news_timezone": news_params.timezone,
                                                   **scoring.model_dump(mode="json")} if news is not None else None})
    if news is None:
        print(f"sentiment: off (data.news.path is null) -> {OUT}")
        return
    print(f"sentiment: {len(news)} items scored by {scoring.scorer} (mean {scores.mean():+.3f}), dated by the "
          f"{scoring.close_time} close in {scoring.timezone}: {len(daily)} ticker-days with news -> {OUT}")


if __name__ == "__main__":
    main()
