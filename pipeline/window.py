"""window: chronological split by target date, purge, train-only scaler, one float32 matrix."""

import shutil
from functools import partial

from tsarena import config
from tsarena.errors import stage_main
from tsarena.feature_table import matrix_chunks
from tsarena.io import atomic_dir
from tsarena.windows import (chronological_split, fit_scaler, read_checked_keys, save_windows, scaler_to_dict,
                             split_summary, training_rows, write_matrix)

IN, OUT = "data/features", "data/windows"


@stage_main
def main() -> None:
    params = config.load("window")["window"]
    schema, keys, tickers = read_checked_keys(IN, params.seq_len)
    split = chronological_split(keys, params)
    fit_rows = training_rows(keys["ticker"].to_numpy(), split.train)
    # the matrix is read in chunks twice (fit, then scale and write): never whole in memory here
    chunks = partial(matrix_chunks, IN, len(schema["features"]))
    scaler = scaler_to_dict(fit_scaler(chunks(), fit_rows, params.scaler))
    targets = keys["target"].to_numpy()
    meta = {**schema, "seq_len": params.seq_len, "scaler": params.scaler, "n_rows": len(keys),
            "tickers": sorted(tickers), **split_summary(split, targets, fit_rows)}
    with atomic_dir(OUT) as tmp:
        write_matrix(tmp / "matrix.npy", chunks(), (len(keys), len(schema["features"])), scaler)
        save_windows(tmp, targets, split, meta, scaler)
        shutil.copyfile(f"{IN}/rows.parquet", tmp / "rows.parquet")  # bytes only: no Parquet decoding
    n = meta["n_samples"]
    print(f"window: {n['train']}/{n['val']}/{n['test']} train/val/test windows of {params.seq_len} rows, "
          f"val from {meta['val_start']}, test from {meta['test_start']}, purged {split.purged} -> {OUT}")


if __name__ == "__main__":
    main()
