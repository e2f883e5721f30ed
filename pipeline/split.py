"""split: K walk-forward folds (K = 1 is the single split), each chronological by target date,
purged, with its own scaler fit on its training rows only; one unscaled float32 matrix."""

import tsarena.core.pinned  # noqa: F401  first: pins the CPU kernels (params numerics) before numpy or torch loads

import shutil
from functools import partial

from tsarena import config
from tsarena.core.errors import stage_main
from tsarena.data.feature_table import matrix_chunks
from tsarena.core.io import atomic_dir
from tsarena.contestants.producers import SPLIT
from tsarena.split.scaling import fit_scaler, scaler_to_dict, write_matrix
from tsarena.split.windows import read_checked_keys, save_split, split_summary, training_rows, walk_forward_splits

IN, OUT = "data/features", SPLIT


@stage_main
def main() -> None:
    params = config.load("window")["window"]
    schema, keys, tickers = read_checked_keys(IN, params.seq_len)
    splits = walk_forward_splits(keys, params, params.folds)
    chunks = partial(matrix_chunks, IN, len(schema["features"]))  # streamed: one pass per fold, never whole
    targets, ticker_codes = keys["target"].to_numpy(), keys["ticker"].to_numpy()
    scalers, folds = [], []
    for k, split in enumerate(splits, start=1):
        fit_rows = training_rows(ticker_codes, split.train)
        scalers.append(scaler_to_dict(fit_scaler(chunks(), fit_rows, params.scaler)))
        folds.append({"fold": k, **split_summary(split, targets, fit_rows)})
    meta = {**schema, "seq_len": params.seq_len, "scaler": params.scaler, "n_rows": len(keys),
            "tickers": sorted(tickers), "n_folds": params.folds, "folds": folds}
    with atomic_dir(OUT) as tmp:
        write_matrix(tmp / "features.npy", chunks(), (len(keys), len(schema["features"])), {"kind": "none"})
        save_split(tmp, targets, splits, scalers, meta)
        shutil.copyfile(f"{IN}/rows.parquet", tmp / "rows.parquet")  # bytes only: no Parquet decoding
    for fold in folds:
        n = fold["n_samples"]
        print(f"split: fold {fold['fold']}/{params.folds}: {n['train']}/{n['val']}/{n['test']} train/val/test "
              f"windows, test {fold['test_start']} to {fold['test_end'] or 'end'}, purged {fold['purged']}")


if __name__ == "__main__":
    main()
