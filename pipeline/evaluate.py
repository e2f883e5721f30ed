"""evaluate: forecast the test period with every trained model (every seed) and the baselines; score them.

The single split always; with evaluate.folds > 1 also walk-forward: per fold, and pooled over
the folds (whose test windows together are exactly the single split's).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tsarena import config
from tsarena.errors import TsarenaError, stage_main
from tsarena.evaluation import equity_curves, seed_summary
from tsarena.io import atomic_file, read_json, write_json
from tsarena.models import baselines, load_checkpoint
from tsarena.training import predict
from tsarena.windows import Windows, load_fold, load_windows

WINDOWS, FOLDS, MODELS, WALKFORWARD = Path("data/windows"), Path("data/folds"), Path("data/models"), Path("data/walkforward")
OUT = Path("data/eval")
DETERMINISTIC = "deterministic"  # the one "seed" of a baseline


def target_units(raw: np.ndarray, kind: str) -> np.ndarray:
    return 1 / (1 + np.exp(-raw)) if kind == "direction" else raw  # logits -> probability


def baseline_forecasts(windows: Windows, params) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """Test forecasts of the baselines, each fit on this split's training rows only."""
    kind, ends = windows.meta["target_kind"], windows.ends
    linear, alpha = baselines.linear(windows.matrix, windows.targets, ends, windows.seq_len, params.ridge_alphas, kind)
    return {"random_walk": {DETERMINISTIC: baselines.random_walk(len(ends["test"]), kind)},
            "drift": {DETERMINISTIC: baselines.drift(windows.targets[ends["train"]], len(ends["test"]))},
            "linear": {DETERMINISTIC: linear}}, alpha


def single_split_forecasts(windows: Windows, params) -> dict[str, dict[str, np.ndarray]]:
    """model -> seed -> test forecast in target units, in test-row order."""
    out = {}
    for seeds in sorted(MODELS.glob("*/seeds")):
        out[seeds.parent.name] = {
            path.stem: target_units(predict(load_checkpoint(str(path))[2], windows.matrix, windows.ends["test"],
                                            windows.seq_len, params.batch_size), windows.meta["target_kind"])
            for path in sorted(seeds.glob("*.pt"), key=lambda p: int(p.stem))}
    found, alpha = baseline_forecasts(windows, params)
    print(f"evaluate: linear baseline penalty {alpha:g} (chosen on the validation split)")
    return {**out, **found}


def fold_forecasts(k: int, refit: dict[str, pd.DataFrame], params) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """Fold k's test end rows, and every model's forecasts for them (neural: from `refit`, the
    walk-forward stages' predictions per model; baselines: refit here)."""
    windows = load_fold(FOLDS, k)
    ends, kind = windows.ends["test"], windows.meta["target_kind"]
    out = {}
    for name, predictions in refit.items():
        out[name] = {}
        for seed, part in predictions.query("fold == @k").groupby("seed", sort=True):
            if not np.array_equal(part["row"].to_numpy(), ends):
                raise TsarenaError(f"forecasts for fold {k}, seed {seed} do not match the fold's test rows; "
                                   "data/folds changed since they were made (run dvc repro)",
                                   str(WALKFORWARD / name / "predictions.parquet"))
            out[name][str(seed)] = target_units(part["forecast"].to_numpy(), kind)
    found, _ = baseline_forecasts(windows, params)
    return ends, {**out, **found}


def score(forecasts: dict[str, dict[str, np.ndarray]], rows: pd.DataFrame, meta: dict, cost_bps: float) -> dict:
    actual = rows["target"].to_numpy(dtype=float)
    benchmark = forecasts["random_walk"][DETERMINISTIC]
    return {name: seed_summary(by_seed, actual, rows, benchmark, meta["target_kind"], meta["horizon"], cost_bps)
            for name, by_seed in forecasts.items()}


def prediction_table(rows: pd.DataFrame, forecasts: dict[str, dict[str, np.ndarray]], selected: dict[str, str]
                     ) -> pd.DataFrame:
    """One row per test window; a baseline's column is its name, a neural model has `<model>@<seed>`
    per seed, and `<model>` for its selected seed (the model.pt that is registered and served)."""
    columns = {}
    for name, by_seed in forecasts.items():
        if DETERMINISTIC in by_seed:
            columns[name] = by_seed[DETERMINISTIC]
            continue
        if name in selected:
            columns[name] = by_seed[selected[name]]
        columns.update({f"{name}@{seed}": f for seed, f in by_seed.items()})
    base = rows[["date", "ticker"]].assign(actual=rows["target"].to_numpy(dtype=float),
                                           close=rows["close"], next_return=rows["next_return"])
    return pd.concat([base.reset_index(drop=True), pd.DataFrame(columns)], axis=1)


def walk_forward(n_folds: int, all_rows: pd.DataFrame, meta: dict, params) -> tuple[dict, dict, pd.DataFrame]:
    """Scores per fold, scores pooled over the folds, and the pooled prediction table."""
    refit = {path.parent.name: pd.read_parquet(path) for path in sorted(WALKFORWARD.glob("*/predictions.parquet"))}
    per_fold, pooled_ends, pooled = {}, [], {}
    for k in range(1, n_folds + 1):
        ends, found = fold_forecasts(k, refit, params)
        per_fold[k] = score(found, all_rows.iloc[ends].reset_index(drop=True), meta, params.cost_bps)
        pooled_ends.append(ends)
        for name, by_seed in found.items():
            for seed, forecast in by_seed.items():
                pooled.setdefault(name, {}).setdefault(seed, []).append(forecast)
    pooled = {name: {seed: np.concatenate(parts) for seed, parts in by_seed.items()} for name, by_seed in pooled.items()}
    rows = all_rows.iloc[np.concatenate(pooled_ends)].reset_index(drop=True)
    table = prediction_table(rows, pooled, {})
    table.insert(2, "fold", np.repeat(np.arange(1, n_folds + 1), [len(e) for e in pooled_ends]))
    return per_fold, score(pooled, rows, meta, params.cost_bps), table


def log_to_runs(root: Path, summaries: dict[str, dict], children: dict[str, dict[str, dict]], tracking_params) -> None:
    """Test metrics into the training runs: the summary in each model's parent run, and per seed
    (and fold) in its child runs, so MLflow lines params up with results."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from tsarena import tracking as tr

    def scalars(metrics: dict) -> list:
        now = int(pd.Timestamp.now().timestamp() * 1000)
        return [Metric(k, float(v), now, 0) for k, v in metrics.items() if isinstance(v, (int, float))]

    for run_file in sorted(root.glob("*/run.json")):
        run, name = json.loads(run_file.read_text()), run_file.parent.name
        tr.connect(run["tracking_uri"], tracking_params.experiment)
        client = MlflowClient(run["tracking_uri"])
        client.log_batch(run["run_id"], metrics=scalars(summaries[name]))
        for key, run_id in run["child_runs"].items():
            client.log_batch(run_id, metrics=scalars(children[name][key]))


@stage_main
def main() -> None:
    params = config.load("evaluate", "tracking")
    evaluate = params["evaluate"]
    windows = load_windows(WINDOWS)
    meta, all_rows = windows.meta, windows.rows
    selected = {p.parent.name: str(read_json(p)["selected_seed"]) for p in sorted(MODELS.glob("*/run.json"))}

    rows = all_rows.iloc[windows.ends["test"]].reset_index(drop=True)
    forecasts = single_split_forecasts(windows, evaluate)
    single = score(forecasts, rows, meta, evaluate.cost_bps)
    table = prediction_table(rows, forecasts, selected)
    metrics = {"single_split": {name: s["summary"] for name, s in single.items()}}
    details = {"single_split": single}

    fold_meta = read_json(FOLDS / "meta.json")
    n_folds = fold_meta["n_folds"]
    if n_folds > 1:
        per_fold, pooled, walk_table = walk_forward(n_folds, all_rows, meta, evaluate)
        metrics["walk_forward"] = {name: s["summary"] for name, s in pooled.items()}
        details["walk_forward"] = {"folds": fold_meta["folds"], "pooled": pooled,
                                   "per_fold": {str(k): scores for k, scores in per_fold.items()}}
    else:
        walk_table = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), "ticker": pd.Series(dtype=str),
                                   "fold": pd.Series(dtype="int64")})

    log_to_runs(MODELS, metrics["single_split"], {name: single[name]["seeds"] for name in selected}, params["tracking"])
    if n_folds > 1:
        log_to_runs(WALKFORWARD, metrics["walk_forward"],
                    {name: {f"{k}/{seed}": m for k, scores in per_fold.items() for seed, m in scores[name]["seeds"].items()}
                     for name in selected}, params["tracking"])
    OUT.mkdir(parents=True, exist_ok=True)
    with atomic_file(OUT / "predictions.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_file(OUT / "walkforward.parquet") as tmp:
        walk_table.to_parquet(tmp, index=False)
    equity = equity_curves(table, [m for m in forecasts if m != "random_walk"], meta["target_kind"], evaluate.cost_bps)
    with atomic_file(OUT / "equity.csv") as tmp:
        equity.to_csv(tmp, index=False)
    write_json(OUT / "details.json", details)
    write_json(OUT / "metrics.json", metrics)
    for section, scores in metrics.items():
        for name, m in scores.items():
            spread = f" ± {m['test_rmse_std']:.6f}" if "test_rmse_std" in m else ""
            print(f"evaluate: {section:<12} {name:<12} rmse {m['test_rmse']:.6f}{spread}  dm_p {m['dm_pvalue']}  "
                  f"n {m['n_test']}")


if __name__ == "__main__":
    main()
