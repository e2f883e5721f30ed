"""ingest: every malformed input gets one clear error naming what and where; good input meets the contract."""

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsarena.data.params import DataParams
from tsarena.data.prices import load_prices
from tsarena.data.validate import COLUMNS
from tsarena.core.errors import TsarenaError

HEADER = "Date,Open,High,Low,Close,Volume\n"
GOOD_ROWS = [f"2020-01-{d:02d},10,11,9,{10 + d / 10},1000" for d in range(1, 11)]


def body(*rows: str) -> str:
    return HEADER + "\n".join(rows) + "\n"


def rows_with(index: int, row: str) -> list[str]:
    rows = list(GOOD_ROWS)
    rows[index] = row
    return rows


# (case, file content (str, bytes or None = no file), extra params, expected fragments of the one error line)
CASES = [
    ("missing file", None, {}, ["file not found", "data.csv.path"]),
    ("empty file", "", {}, ["file is empty"]),
    ("blank file", "\n\n  \n", {}, ["file is empty"]),
    ("binary file", b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", {}, ["not a CSV text file"]),
    ("not csv", "Date,Close\n2020-01-01,10\n2020-01-02,11,12,13\n", {}, ["not valid CSV", "line 3"]),
    ("json file", '{"prices": [1, 2, 3]}\n', {}, ["missing column 'date'"]),
    ("no date column", "Day,Close\n2020-01-01,10\n", {}, ["missing column 'date'"]),
    ("no close column", "Date,Open\n2020-01-01,10\n", {}, ["missing column 'close'"]),
    ("header only", HEADER, {}, ["no data rows"]),
    ("non-numeric", body(*rows_with(4, "2020-01-05,10,11,9,abc,1000")), {}, ["non-numeric value 'abc'", "column close", "line 6"]),
    ("bad date", body(*rows_with(2, "2020-13-45,10,11,9,10,1000")), {}, ["unparseable date '2020-13-45'", "line 4"]),
    ("duplicate date", body(*rows_with(3, "2020-01-03,10,11,9,10,1000")), {}, ["duplicate date 2020-01-03", "line 4 and line 5"]),
    ("out of order", body(*GOOD_ROWS[:3], GOOD_ROWS[5], GOOD_ROWS[3], GOOD_ROWS[4], *GOOD_ROWS[6:]), {},
     ["dates out of order", "data.csv.sort", "line 6"]),
    ("zero price", body(*rows_with(6, "2020-01-07,10,11,9,0,1000")), {}, ["non-positive price 0", "column close", "line 8"]),
    ("negative price", body(*rows_with(1, "2020-01-02,-3,11,9,10,1000")), {}, ["non-positive price -3", "column open", "line 3"]),
    ("long nan run", body(*GOOD_ROWS[:2], *[f"2020-01-{d:02d},10,11,9,,1000" for d in range(3, 9)], *GOOD_ROWS[8:]),
     {"max_nan_run": 3}, ["6 consecutive missing values", "max_nan_run=3", "column close"]),
    ("nan with error policy", body(*rows_with(5, "2020-01-06,10,11,9,,1000")), {"nan_policy": "error"},
     ["missing value", "nan_policy", "line 7"]),
]


@pytest.mark.parametrize("case, content, extra, fragments", CASES, ids=[c[0] for c in CASES])
def test_malformed_csv_is_rejected_clearly(tmp_path, case, content, extra, fragments):
    path = tmp_path / "prices.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    params = DataParams(source="csv", csv={"path": str(path)}, **extra)
    with pytest.raises(TsarenaError) as err:
        load_prices(params, root=Path("/"))
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"


def test_sort_is_opt_in(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(body(GOOD_ROWS[1], GOOD_ROWS[0], *GOOD_ROWS[2:]))
    prices = load_prices(DataParams(source="csv", csv={"path": str(path), "sort": True}), root=Path("/"))
    assert prices["date"].is_monotonic_increasing and len(prices) == 10


def test_short_gaps_are_forward_filled_causally(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(body(*rows_with(4, "2020-01-05,10,11,9,,1000")))
    prices = load_prices(DataParams(source="csv", csv={"path": str(path)}, nan_policy="ffill"), root=Path("/"))
    assert prices.loc[4, "close"] == prices.loc[3, "close"]  # the past value, never the next one
    dropped = load_prices(DataParams(source="csv", csv={"path": str(path)}, nan_policy="drop"), root=Path("/"))
    assert len(dropped) == 9


def test_csv_variants_meet_the_contract(tmp_path):
    """Case-insensitive columns, Adj Close adjusting OHLC, and several tickers in one file."""
    path = tmp_path / "multi.csv"
    path.write_text(
        "DATE,ticker,OPEN,high,Low,close,Adj Close,VOLUME\n"
        "2020-01-02,BBB,10,11,9,10,5,100\n2020-01-03,BBB,10,11,9,10,5,100\n"
        "2020-01-02,AAA,20,22,19,21,21,300\n2020-01-03,AAA,21,22,20,21.5,21.5,300\n"
    )
    prices = load_prices(DataParams(source="csv", csv={"path": str(path)}), root=Path("/"))
    assert list(prices.columns) == COLUMNS
    assert list(prices["ticker"]) == ["AAA", "AAA", "BBB", "BBB"]
    bbb = prices[prices["ticker"] == "BBB"].iloc[0]
    assert (bbb["close"], bbb["open"], bbb["high"]) == (5.0, 5.0, 5.5)


def test_default_source_is_offline_sp500():
    prices = load_prices(DataParams())
    assert list(prices.columns) == COLUMNS and prices["ticker"].unique().tolist() == ["SP500"]
    assert len(prices) > 4900 and prices["date"].is_monotonic_increasing


@pytest.mark.parametrize("kind", ["gbm", "ar1", "sine", "regime"])
def test_synthetic_sources_are_seeded(kind):
    params = DataParams(source="synthetic", synthetic={"kind": kind, "n_days": 300, "n_series": 2, "seed": 3})
    a, b = load_prices(params), load_prices(params)
    pd.testing.assert_frame_equal(a, b)
    assert sorted(a["ticker"].unique()) == ["SYN0", "SYN1"] and len(a) == 600


def test_ar1_plants_its_autocorrelation():
    params = DataParams(source="synthetic", synthetic={"kind": "ar1", "n_days": 20000, "phi": 0.3})
    returns = np.log(load_prices(params)["close"]).diff().dropna()
    assert abs(returns.autocorr() - 0.3) < 0.03


def test_yfinance_empty_frame_is_an_error(monkeypatch):
    """Offline, yfinance returns an empty frame instead of raising: that must not become an empty dataset."""
    fake = types.SimpleNamespace(download=lambda *a, **k: pd.DataFrame())
    monkeypatch.setitem(sys.modules, "yfinance", fake)
    with pytest.raises(TsarenaError, match="yfinance returned no data for 'SPY'"):
        load_prices(DataParams(source="yfinance"))


def test_ingest_stage_fails_with_one_line_and_no_output(tmp_path):
    (tmp_path / "data/input").mkdir(parents=True)
    (tmp_path / "data/input/prices.csv").write_text(body(*rows_with(4, "2020-01-05,10,11,9,abc,1000")))
    (tmp_path / "params.yaml").write_text("data:\n  source: csv\n")
    script = Path(__file__).resolve().parents[1] / "pipeline/ingest.py"
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: non-numeric value 'abc' (data/input/prices.csv, column close, line 6)"
    ]
    assert not (tmp_path / "data/raw").exists() or not any((tmp_path / "data/raw").iterdir())


def test_bad_param_fails_stage_with_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  source: arch\n  series: [ftse]\n")
    script = Path(__file__).resolve().parents[1] / "pipeline/ingest.py"
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("(data.series.0)")


def test_close_only_arch_series_get_the_csv_treatment_and_several_are_several_tickers():
    """WTI crude oil and the VIX ship as one column: open/high/low become the close, volume 0."""
    from tsarena.data.params import DataParams
    from tsarena.data.prices import load_prices

    prices = load_prices(DataParams(source="arch", series=["wti", "vix"]))
    assert list(prices["ticker"].unique()) == ["VIX", "WTI"]
    wti = prices[prices["ticker"] == "WTI"]
    assert wti["date"].min() == pd.Timestamp("1986-01-02") and len(wti) > 8000
    assert (wti["open"] == wti["close"]).all() and (wti["high"] == wti["close"]).all() and (wti["volume"] == 0).all()
    assert (prices["close"] > 0).all() and not prices[["close"]].isna().any().any()  # short gaps filled from the past


def test_extra_columns_are_numeric_features_of_the_users_own(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Date,Close,Sentiment,Other\n" + "\n".join(f"2020-01-{d:02d},{10 + d},{d / 10},x" for d in range(1, 9)))
    prices = load_prices(DataParams(source="csv", csv={"path": str(path), "extra_columns": ["sentiment"]}), root=Path("/"))
    assert list(prices.columns) == [*COLUMNS, "sentiment"] and prices["sentiment"].iloc[-1] == 0.8  # `other`: not asked for
    for extras, rows, fragment in [(["mood"], None, "missing column 'mood' named in data.csv.extra_columns"),
                                   (["other"], None, "non-numeric value 'x'"),
                                   (["sentiment"], "2020-01-09,19,,x", "missing value")]:
        if rows:
            path.write_text(path.read_text() + "\n" + rows)
        with pytest.raises(TsarenaError) as err:
            load_prices(DataParams(source="csv", nan_policy="error", csv={"path": str(path), "extra_columns": extras}),
                        root=Path("/"))
        assert fragment in err.value.what or fragment in str(err.value)
    with pytest.raises(ValueError, match="come from a CSV"):
        DataParams(source="arch", csv={"extra_columns": ["sentiment"]})
    with pytest.raises(ValueError, match="already a price column"):
        DataParams(source="csv", csv={"extra_columns": ["volume"]})
