"""folds: walk-forward folds over the test period, each with its own purge and train-only scaler.

With evaluate.folds = 1 (the single split) it writes only meta.json, and nothing downstream trains.
"""

from functools import partial

from tsarena import config
from tsarena.errors import stage_main
from tsarena.feature_table import matrix_chunks
from tsarena.io import atomic_dir, write_json
from tsarena.windows import (fit_scaler, read_checked_keys, save_folds, scaler_to_dict, split_summary, training_rows,
                             walk_forward_splits, write_matrix)

IN, OUT = "data/features", "data/folds"


@stage_main
def main() -> None:
    params = config.load("window", "evaluate")
    window, n_folds = params["window"], params["evaluate"].folds
    if n_folds == 1:
        with atomic_dir(OUT) as tmp:
            write_json(tmp / "meta.json", {"n_folds": 1})
        print("folds: evaluate.folds = 1, the single split only (nothing to refit)")
        return
    schema, keys, tickers = read_checked_keys(IN, window.seq_len)
    splits = walk_forward_splits(keys, window, n_folds)
    chunks = partial(matrix_chunks, IN, len(schema["features"]))  # streamed: one pass per fold, never whole
    targets, ticker_codes = keys["target"].to_numpy(), keys["ticker"].to_numpy()
    scalers, folds = [], []
    for k, split in enumerate(splits, start=1):
        fit_rows = training_rows(ticker_codes, split.train)
        scalers.append(scaler_to_dict(fit_scaler(chunks(), fit_rows, window.scaler)))
        folds.append({"fold": k, **split_summary(split, targets, fit_rows)})
    meta = {**schema, "seq_len": window.seq_len, "scaler": window.scaler, "n_rows": len(keys),
            "tickers": sorted(tickers), "n_folds": n_folds, "folds": folds}
    with atomic_dir(OUT) as tmp:
        write_matrix(tmp / "features.npy", chunks(), (len(keys), len(schema["features"])), {"kind": "none"})
        save_folds(tmp, targets, splits, scalers, meta)
    for fold in folds:
        n = fold["n_samples"]
        print(f"folds: fold {fold['fold']}: {n['train']}/{n['val']}/{n['test']} train/val/test windows, "
              f"test {fold['test_start']} to {fold['test_end'] or 'end'}")


if __name__ == "__main__":
    main()
