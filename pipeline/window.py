"""window: chronological split by target date, purge, train-only scaler, one float32 matrix."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tsarena import config
from tsarena.errors import stage_main
from tsarena.io import atomic_dir, read_json
from tsarena.windows import check_lengths, chronological_split, fit_transform, save_windows, training_rows

IN, OUT = "data/features", "data/windows"
FEATURES = f"{IN}/features.parquet"
ROW_COLUMNS = ["date", "ticker", "target_date", "close", "next_return", "target"]
BATCH = 65_536


def read_columns(columns: list[str], dtype: str) -> np.ndarray:
    """Columns of the feature table into one preallocated (rows x columns) array, batch by batch:
    never the whole Arrow table and a pandas copy of it at once."""
    source = pq.ParquetFile(FEATURES)
    out = np.empty((source.metadata.num_rows, len(columns)), dtype=dtype)
    start = 0
    for batch in source.iter_batches(columns=columns, batch_size=BATCH):
        for j, column in enumerate(batch.columns):
            out[start : start + batch.num_rows, j] = column.to_numpy(zero_copy_only=False)
        start += batch.num_rows
    return out


def read_keys() -> tuple[pd.DataFrame, pd.Index]:
    """date, target_date, target and integer ticker codes (each ticker name once, not per row)."""
    tickers = pq.read_table(FEATURES, columns=["ticker"], read_dictionary=["ticker"]).column(0).combine_chunks()
    dates = read_columns(["date", "target_date"], "datetime64[ns]")
    keys = pd.DataFrame({"ticker": tickers.indices.to_numpy(), "date": dates[:, 0], "target_date": dates[:, 1],
                         "target": read_columns(["target"], "float64")[:, 0]})
    return keys, pd.Index(tickers.dictionary.to_pylist())


def copy_rows(path) -> None:
    """Dates, tickers and prices of every row, for evaluate: streamed, batch by batch."""
    source = pq.ParquetFile(FEATURES)
    schema = pa.schema([source.schema_arrow.field(c) for c in ROW_COLUMNS])
    with pq.ParquetWriter(path, schema) as writer:
        for batch in source.iter_batches(columns=ROW_COLUMNS, batch_size=BATCH):
            writer.write_batch(batch)


@stage_main
def main() -> None:
    params = config.load("window")["window"]
    schema = read_json(f"{IN}/schema.json")
    keys, tickers = read_keys()
    counts = keys.groupby("ticker", sort=False).size()
    check_lengths(counts.set_axis(tickers[counts.index]), params.seq_len, f"window.seq_len, {FEATURES}")
    split = chronological_split(keys, params)
    fit_rows = training_rows(keys["ticker"].to_numpy(), split.train)
    matrix, scaler = fit_transform(read_columns(schema["features"], "float32"), fit_rows, params.scaler)
    targets = keys["target"].to_numpy()
    train_targets = targets[split.train]
    meta = {
        **schema, "seq_len": params.seq_len, "scaler": params.scaler, "n_rows": len(keys),
        "tickers": sorted(tickers), "val_start": split.val_start.date(), "test_start": split.test_start.date(),
        "n_samples": {name: len(getattr(split, name)) for name in ("train", "val", "test")},
        "purged": split.purged, "scaler_fit_rows": int(fit_rows.sum()),
        "target_mean": float(train_targets.mean()), "target_std": float(train_targets.std()),
    }
    with atomic_dir(OUT) as tmp:
        save_windows(tmp, matrix, targets, split, meta, scaler)
        copy_rows(tmp / "rows.parquet")
    n = meta["n_samples"]
    print(f"window: {n['train']}/{n['val']}/{n['test']} train/val/test windows of {params.seq_len} rows, "
          f"val from {meta['val_start']}, test from {meta['test_start']}, purged {split.purged} -> {OUT}")


if __name__ == "__main__":
    main()
