"""The feature stage's on-disk form: raw arrays that read back equal to the Parquet table."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tsarena.data.params import FeatureParams, SyntheticParams
from tsarena.data.sources import synthetic_prices
from tsarena.data.feature_table import FeatureWriter, matrix_chunks, raw_tickers, read_keys
from tsarena.data.features import feature_names, ticker_table


def test_raw_tickers_yields_each_ticker_whole_whatever_the_row_groups(tmp_path):
    prices = synthetic_prices(SyntheticParams(kind="gbm", n_days=300, n_series=3), None)
    path = tmp_path / "prices.parquet"
    pq.write_table(pa.Table.from_pandas(prices, preserve_index=False), path, row_group_size=128)  # splits tickers
    groups = list(raw_tickers(path))
    assert [g["ticker"].iloc[0] for g in groups] == ["SYN0", "SYN1", "SYN2"]
    pd.testing.assert_frame_equal(pd.concat(groups, ignore_index=True), prices.reset_index(drop=True))


def test_raw_arrays_read_back_equal_to_the_parquet_table_in_any_chunk_size(tmp_path):
    params = FeatureParams()
    prices = synthetic_prices(SyntheticParams(kind="gbm", n_days=300, n_series=3), None)
    names = feature_names(params)
    writer = FeatureWriter(tmp_path, names)
    for code, (_, group) in enumerate(prices.groupby("ticker", sort=False)):
        writer.write(ticker_table(group, params), code)
    writer.close()
    table = pd.read_parquet(tmp_path / "features.parquet")
    assert writer.n_rows == len(table)
    keys, tickers = read_keys(tmp_path, ["SYN0", "SYN1", "SYN2"])
    assert (tickers[keys["ticker"]] == table["ticker"]).all()
    for column in ("date", "target_date", "target"):
        np.testing.assert_array_equal(keys[column].to_numpy(), table[column].to_numpy())
    expected = table[names].to_numpy(dtype=np.float32)
    for rows in (7, 1000):
        chunks = list(matrix_chunks(tmp_path, len(names), rows))
        assert [start for start, _ in chunks] == list(range(0, len(table), rows))
        np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), expected)
    rows_table = pd.read_parquet(tmp_path / "rows.parquet")
    pd.testing.assert_frame_equal(rows_table, table[rows_table.columns])
