"""evaluate: score every producer's predictions table (networks, baselines, ensemble): per fold,
and pooled over the folds (with one fold: the single split). Each producer's prediction intervals are
built here from its own table (judging.intervals: calibrated on its validation rows, the adaptive
one through test on outcomes already revealed), so every producer has them alike. Reads tables only;
loads no model."""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

from pathlib import Path

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.core.errors import stage_main
from tsarena.judging.metrics import (DM_PVALUE_HOLM, HEADLINE, MCS_PVALUE, N_PARAMETERS, N_TEST, NEWS_DM_PVALUE_HOLM,
                                     NEWS_SKILL, RMSE, TUNE_TRIALS)
from tsarena.judging.scoring import check_predictions, pvalue_text, skill_text, test_frame
from tsarena.judging.trading import BUY_AND_HOLD, equity_curves, neutral_forecast, strategy_returns
from tsarena.core.io import atomic_file, read_json, write_json
from tsarena.contestants.baselines import BENCHMARK, WHEN_APPLICABLE
from tsarena.contestants.predictions import parse_fit_key
from tsarena.contestants.producers import (ORACLE, SPLIT, model_dir, predictions_path, producers, producing_stage,
                                           trained, without_news_name, without_news_path)
from tsarena.judging.intervals import attach
from tsarena.judging.referee import judge, news_added
from tsarena.split.windows import read_meta

OUT = Path("data/eval")
COMPUTE = (N_PARAMETERS, TUNE_TRIALS)  # from train@'s served.json (timings are in MLflow only)


@stage_main
def main() -> None:
    params = config.load("arena", "evaluate", "uncertainty", "tracking")
    unc = params["uncertainty"]
    cost = params["evaluate"].cost_bps
    meta, rows = read_meta(SPLIT), pd.read_parquet(SPLIT / "rows.parquet")
    fold_ends = {k: np.load(SPLIT / f"fold_{k}/test_ends.npy") for k in range(1, meta["n_folds"] + 1)}
    cache, tables = {}, []
    contestants = producers(params["arena"])
    made = set(pd.read_parquet(predictions_path(ORACLE), columns=["model"])["model"])  # the baselines stage's
    for name in WHEN_APPLICABLE - made:  # a baseline for other data (sentiment_ridge without news)
        del contestants[name]
    if ORACLE in made:
        contestants[ORACLE] = predictions_path(ORACLE)  # synthetic ar1: the known optimum, shown beside
    for name, path in contestants.items():
        if path not in cache:  # baselines and the oracle share one file: read once
            cache[path] = pd.read_parquet(path)
        table = cache[path]
        check_predictions(table, name, fold_ends, str(path))
        tables.append(table[table["model"] == name])
    kind, boot = meta["target_kind"], params["evaluate"]
    table = pd.concat(tables, ignore_index=True)
    if kind == "return":  # a probability (direction target) has no interval
        table = attach(table, rows["target"].to_numpy(dtype=float), rows["ticker"].to_numpy(), unc.levels, unc.gamma,
                       unc.window, meta["horizon"])
    frame = test_frame(table, rows)
    judgement = judge(frame, kind, meta["horizon"], cost, boot.block_size, boot.bootstrap_reps, boot.bootstrap_seed,
                      unc.levels, unc.size_level)
    per_fold, metrics, mean, pnl, verdicts = (judgement.per_fold, judgement.metrics, judgement.mean, judgement.pnl,
                                              judgement.verdicts)
    # what the news added: each architecture against its own fits without the sentiment features (sentiment.ablate)
    pairs = {name: without_news_name(name) for name in params["arena"].models if without_news_path(name).is_file()}
    news = None
    if pairs:
        blind = []
        for name, other in pairs.items():
            blind.append(pd.read_parquet(without_news_path(name)))
            check_predictions(blind[-1], other, fold_ends, str(without_news_path(name)))
        news = news_added(test_frame(pd.concat([*blind, table[table["model"].isin(pairs)]], ignore_index=True), rows),
                          pairs, meta["horizon"])
        for name, found in news.items():
            metrics[name].update({k: found[k] for k in (NEWS_SKILL, NEWS_DM_PVALUE_HOLM)})

    from tsarena.tracking.lineage import dvc_out_md5
    from tsarena.tracking.runs import log_test_metrics, producer_run

    test_data = frame[frame["model"] == BENCHMARK][["date", "ticker", "actual"]]
    digest = dvc_out_md5("split", str(SPLIT))
    for name in trained(params["arena"]):
        described = read_json(model_dir(name) / "served.json")
        metrics[name].update({k: described[k] for k in COMPUTE if k in described})
    for name in metrics:  # every contestant's run gets its test metrics, baselines' too
        run = producer_run(params["tracking"], producing_stage(name), name, predictions_path(name))
        if run is None:
            print(f"note: no MLflow run in this store made {predictions_path(name)} (made against another store): "
                  f"{name}'s test metrics are in {OUT}/scores.json only")
            continue
        fits = {key: parse_fit_key(key) for key in run["child_runs"]}
        log_test_metrics(run, metrics[name], {key: per_fold[str(fold)][name]["seeds"][str(seed)]
                                              for key, (fold, seed) in fits.items()}, params["tracking"], test_data, digest)
    with atomic_file(OUT / "forecasts.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    held = mean[mean["model"] == BENCHMARK]  # every date and ticker once: always long, for scale
    pnl[BUY_AND_HOLD] = strategy_returns(np.ones(len(held)), held["next_return"].to_numpy(), held["date"].to_numpy(),
                                         held["ticker"].to_numpy(), neutral_forecast(kind), cost)
    with atomic_file(OUT / "equity.csv") as tmp:
        equity_curves(pnl, [m for m in pnl if m != BENCHMARK]).to_csv(tmp, index=False)
    write_json(OUT / "details.json", {"folds": meta["folds"], "pooled": judgement.pooled, "per_fold": per_fold,
                                      "referee": verdicts, "cost_bps": cost, "news": news,
                                      "uncertainty": unc.model_dump() if kind == "return" else None})
    write_json(OUT / "scores.json", metrics)
    write_json(OUT / "metrics.json", {name: {short: m[k] for short, k in HEADLINE.items() if k in m}
                                      for name, m in metrics.items()})
    print(f"evaluate: {len(metrics)} contestants on {metrics[BENCHMARK][N_TEST]} test rows; DM p one-sided vs "
          f"the random walk, Holm-adjusted; full scores in {OUT}/scores.json")
    width = max(map(len, metrics))
    for name, m in metrics.items():
        spread = f" ± {m[f'{RMSE}_std']:.2g}" if f"{RMSE}_std" in m else ""
        versus = ("the benchmark" if name == BENCHMARK else
                  f"skill {skill_text(m)}  DM p {pvalue_text(m.get(DM_PVALUE_HOLM))}  "
                  f"MCS p {pvalue_text(m.get(MCS_PVALUE))}")
        print(f"evaluate: {name:<{width}} rmse {m[RMSE]:.6g}{spread}  {versus}")
    for name, found in (news or {}).items():
        print(f"evaluate: what the news added to {name}: skill {found[NEWS_SKILL]:+.2f}% over {without_news_name(name)}, "
              f"DM p {pvalue_text(found[NEWS_DM_PVALUE_HOLM])} (Holm over {len(news)})")
    spa = verdicts["spa_pvalues"]["consistent"]
    print(f"evaluate: SPA (does any of {len(judgement.judged) - 1} contestants beat the random walk?) p = {spa:.3g}; "
          f"stationary bootstrap, mean block {verdicts['block_size']} days, {boot.bootstrap_reps} resamples")


if __name__ == "__main__":
    main()
