"""The feature stage's output on disk, written one ticker at a time and read back in chunks.

`features.parquet` is the table people read; `rows.parquet` holds the columns evaluate needs
(dates, ticker, prices, target), which the window stage copies byte for byte. Beside them the
window stages get the same rows as raw arrays: `matrix.f32` (rows x features, float32) and
`keys.bin` (ticker code, date, target date, target per row). Decoding a million-row Parquet
table costs Arrow about twice the matrix; raw arrays are read chunk by chunk at the size of
the chunk, which is what keeps the window stages within 2 x (matrix + model) at scale.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROW_COLUMNS = ["date", "ticker", "target_date", "close", "next_return", "target"]
KEY_DTYPE = np.dtype([("ticker", "<i4"), ("date", "<i8"), ("target_date", "<i8"), ("target", "<f8")])
BATCH = 65_536


class FeatureWriter:
    """Appends finished tickers to the Parquet table and the raw arrays, in the same row order."""

    def __init__(self, folder: Path, features: list[str]):
        self.folder, self.features, self.n_rows = folder, features, 0
        self.parquet: pq.ParquetWriter | None = None
        self.rows: pq.ParquetWriter | None = None
        self.matrix = open(folder / "matrix.f32", "wb")
        self.keys = open(folder / "keys.bin", "wb")

    def write(self, table: pd.DataFrame, ticker_code: int) -> None:
        part = pa.Table.from_pandas(table, preserve_index=False)
        self.parquet = self.parquet or pq.ParquetWriter(self.folder / "features.parquet", part.schema)
        self.parquet.write_table(part)
        rows = part.select([*ROW_COLUMNS, *(c for c in part.column_names if c not in self.features
                                             and c not in ROW_COLUMNS)])  # + a user's raw extra columns
        self.rows = self.rows or pq.ParquetWriter(self.folder / "rows.parquet", rows.schema)
        self.rows.write_table(rows)
        np.ascontiguousarray(table[self.features].to_numpy(dtype=np.float32)).tofile(self.matrix)
        keys = np.empty(len(table), dtype=KEY_DTYPE)
        keys["ticker"] = ticker_code
        keys["date"] = table["date"].to_numpy("datetime64[ns]").view("i8")
        keys["target_date"] = table["target_date"].to_numpy("datetime64[ns]").view("i8")
        keys["target"] = table["target"].to_numpy(dtype=np.float64)
        keys.tofile(self.keys)
        self.n_rows += len(table)

    def close(self) -> None:
        for handle in (self.parquet, self.rows, self.matrix, self.keys):
            if handle is not None:
                handle.close()


def raw_tickers(path: str | Path) -> Iterator[pd.DataFrame]:
    """The raw price table one ticker at a time, reading one Parquet row group at a time
    (ingest writes one per ticker; any other layout works too, just with more in memory)."""
    source = pq.ParquetFile(path)
    pending = None
    for i in range(source.num_row_groups):
        frame = source.read_row_group(i).to_pandas()
        if pending is not None:
            frame = pd.concat([pending, frame], ignore_index=True)
        last = frame["ticker"].iloc[-1]
        done = frame["ticker"] != last
        for _, group in frame[done].groupby("ticker", sort=False):
            yield group.reset_index(drop=True)
        pending = frame[~done].reset_index(drop=True)
    if pending is not None and len(pending):
        yield pending


def read_keys(folder: str | Path, tickers: list[str]) -> tuple[pd.DataFrame, pd.Index]:
    """date, target_date, target and integer ticker codes per row (each ticker name once, not per row)."""
    records = np.fromfile(Path(folder) / "keys.bin", dtype=KEY_DTYPE)
    keys = pd.DataFrame({"ticker": np.ascontiguousarray(records["ticker"]),
                         "date": np.ascontiguousarray(records["date"]).view("datetime64[ns]"),
                         "target_date": np.ascontiguousarray(records["target_date"]).view("datetime64[ns]"),
                         "target": np.ascontiguousarray(records["target"])}, copy=False)
    return keys, pd.Index(tickers)


def matrix_chunks(folder: str | Path, n_features: int, rows: int = BATCH) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, float32 block) over the feature matrix, never more than `rows` rows in memory."""
    with open(Path(folder) / "matrix.f32", "rb") as handle:
        start = 0
        while True:
            block = np.fromfile(handle, dtype=np.float32, count=rows * n_features)
            if block.size == 0:
                return
            yield start, block.reshape(-1, n_features)
            start += block.size // n_features
