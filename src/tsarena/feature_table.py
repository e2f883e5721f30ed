"""Reading the feature stage's Parquet table column by column, batch by batch.

At a million rows the whole Arrow table plus a pandas copy of it is several times the
matrix the window stages need; these readers fill preallocated arrays instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROW_COLUMNS = ["date", "ticker", "target_date", "close", "next_return", "target"]
BATCH = 65_536


def read_columns(path: str | Path, columns: list[str], dtype: str) -> np.ndarray:
    """Columns into one preallocated (rows x columns) array."""
    source = pq.ParquetFile(path)
    out = np.empty((source.metadata.num_rows, len(columns)), dtype=dtype)
    start = 0
    for batch in source.iter_batches(columns=columns, batch_size=BATCH):
        for j, column in enumerate(batch.columns):
            out[start : start + batch.num_rows, j] = column.to_numpy(zero_copy_only=False)
        start += batch.num_rows
    return out


def read_keys(path: str | Path) -> tuple[pd.DataFrame, pd.Index]:
    """date, target_date, target and integer ticker codes (each ticker name once, not per row)."""
    tickers = pq.read_table(path, columns=["ticker"], read_dictionary=["ticker"]).column(0).combine_chunks()
    dates = read_columns(path, ["date", "target_date"], "datetime64[ns]")
    keys = pd.DataFrame({"ticker": tickers.indices.to_numpy(), "date": dates[:, 0], "target_date": dates[:, 1],
                         "target": read_columns(path, ["target"], "float64")[:, 0]})
    return keys, pd.Index(tickers.dictionary.to_pylist())


def copy_rows(path: str | Path, out: str | Path) -> None:
    """Dates, tickers and prices of every row (what evaluate needs), streamed to another Parquet file."""
    source = pq.ParquetFile(path)
    schema = pa.schema([source.schema_arrow.field(c) for c in ROW_COLUMNS])
    with pq.ParquetWriter(out, schema) as writer:
        for batch in source.iter_batches(columns=ROW_COLUMNS, batch_size=BATCH):
            writer.write_batch(batch)
