"""Chronological split, purge, train-only scaler, and windows as views into one matrix.

A sample is identified by its end row t (a row of the feature table): its input is rows
t-L+1..t of the same ticker and its label is target[t], known at target_date[t].
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tsarena.split.params import WindowParams
from tsarena.core.errors import TsarenaError
from tsarena.split.scaling import apply_scaler, write_matrix

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """End rows of the samples in each split, and the boundaries that made them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    val_start: pd.Timestamp
    test_start: pd.Timestamp
    purged: dict[str, int]
    test_end: pd.Timestamp | None = None  # exclusive; None = to the end of the data


def check_lengths(rows_per_ticker: pd.Series, seq_len: int, where: str) -> None:
    """Every ticker needs at least one full window; name the first that has not."""
    short = rows_per_ticker[rows_per_ticker < seq_len]
    if len(short):
        raise TsarenaError(f"ticker {short.index[0]!r} has {short.iloc[0]} rows after features, fewer than one "
                           f"window needs ({seq_len})", where)


def read_checked_keys(folder: str | Path, seq_len: int) -> tuple[dict, pd.DataFrame, pd.Index]:
    """The feature schema and the keys, once every ticker is known to fill one window of `seq_len`."""
    from tsarena.data.feature_table import read_keys  # pyarrow: only the stages that read the feature table pay for it

    schema = json.loads((Path(folder) / "schema.json").read_text())
    keys, tickers = read_keys(folder, schema["tickers"])
    counts = keys.groupby("ticker", sort=False).size()
    check_lengths(counts.set_axis(tickers[counts.index]), seq_len, f"window.seq_len, {folder}/features.parquet")
    return schema, keys, tickers


def window_end_rows(tickers: np.ndarray, seq_len: int) -> np.ndarray:
    """Rows that end a full window inside one ticker (rows sorted by ticker, then date)."""
    position = pd.Series(tickers).groupby(tickers, sort=False).cumcount().to_numpy()
    return np.flatnonzero(position >= seq_len - 1)


def split_dates(target_dates: pd.Series, params: WindowParams) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Boundaries on the target's date: given as dates, or as fractions of the distinct dates."""
    if params.val_start is not None:
        return pd.Timestamp(params.val_start), pd.Timestamp(params.test_start)
    days = np.sort(target_dates.unique())
    n = len(days)
    return (
        pd.Timestamp(days[int(n * (1 - params.val_frac - params.test_frac))]),
        pd.Timestamp(days[int(n * (1 - params.test_frac))]),
    )


def _purge(earlier: np.ndarray, later: np.ndarray, dates: np.ndarray, target_dates: np.ndarray) -> np.ndarray:
    """Drop earlier-split samples whose label interval (date, target_date] overlaps a later label.

    The binding later label is the one that starts first; the rule is global across tickers,
    since correlated tickers share return days.
    """
    if len(later) == 0:
        return earlier
    first_later_start = dates[later].min()
    return earlier[target_dates[earlier] <= first_later_start]


def split_at(table: pd.DataFrame, ends: np.ndarray, seq_len: int, val_start: pd.Timestamp, test_start: pd.Timestamp,
             test_end: pd.Timestamp | None = None, where: str = "window.val_start/test_start or window.val_frac/test_frac"
             ) -> Split:
    """Windows (their end rows `ends`) by target date: train < val_start <= val < test_start <= test < test_end; purged."""
    target_dates = table["target_date"].to_numpy()
    dates = table["date"].to_numpy()
    end_dates = target_dates[ends]
    train = ends[end_dates < val_start]
    val = ends[(end_dates >= val_start) & (end_dates < test_start)]
    in_test = end_dates >= test_start
    if test_end is not None:
        in_test &= end_dates < test_end
    test = ends[in_test]
    purged_train = _purge(train, val, dates, target_dates)
    purged_val = _purge(val, test, dates, target_dates)
    purged = {"train": len(train) - len(purged_train), "val": len(val) - len(purged_val)}
    split = Split(purged_train, purged_val, test, val_start, test_start, purged, test_end)
    for name in SPLITS:
        if len(getattr(split, name)) == 0:
            raise TsarenaError(
                f"the {name} split has no windows (split at {val_start.date()} / {test_start.date()}, "
                f"seq_len {seq_len}, {len(ends)} windows in all)", where)
    return split


def chronological_split(table: pd.DataFrame, params: WindowParams) -> Split:
    """Assign each window to train/val/test by its target date, then purge overlapping labels."""
    ends = window_end_rows(pd.factorize(table["ticker"])[0], params.seq_len)
    val_start, test_start = split_dates(table["target_date"].iloc[ends], params)
    return split_at(table, ends, params.seq_len, val_start, test_start)


def walk_forward_splits(table: pd.DataFrame, params: WindowParams, folds: int) -> list[Split]:
    """Expanding-window rolling origin over the single split's test period.

    The test period's target dates are cut into `folds` runs of equal length (within a day).
    Fold k validates on as many days as the single split does, just before its test run, and
    trains on everything earlier: so fold 1 of 1 is exactly the single split, and the folds'
    test windows together are exactly its test windows.
    """
    ends = window_end_rows(pd.factorize(table["ticker"])[0], params.seq_len)
    end_dates = table["target_date"].iloc[ends]
    val_start, test_start = split_dates(end_dates, params)
    days = np.sort(end_dates.unique())
    first_test = int(np.searchsorted(days, np.datetime64(test_start)))
    n_val = first_test - int(np.searchsorted(days, np.datetime64(val_start)))
    n_test = len(days) - first_test
    if n_test < folds:
        raise TsarenaError(f"{folds} folds need at least one test day each; the test period has {n_test}",
                           "window.folds")
    lengths = [len(chunk) for chunk in np.array_split(np.arange(n_test), folds)]
    starts = [first_test + int(offset) for offset in np.cumsum([0, *lengths[:-1]])]
    splits = []
    for k, start in enumerate(starts):
        end = pd.Timestamp(days[starts[k + 1]]) if k + 1 < folds else None
        where = f"window.folds (fold {k + 1} of {folds})" if folds > 1 else \
            "window.val_start/test_start or window.val_frac/test_frac"
        splits.append(split_at(table, ends, params.seq_len, pd.Timestamp(days[start - n_val]),
                               pd.Timestamp(days[start]), end, where))
    return splits


def training_rows(tickers: np.ndarray, train_ends: np.ndarray) -> np.ndarray:
    """Boolean mask of rows that any training window can see: up to each ticker's last train end."""
    mask = np.zeros(len(tickers), dtype=bool)
    last_end = pd.Series(train_ends).groupby(tickers[train_ends]).max()
    first_row = pd.Series(np.arange(len(tickers))).groupby(tickers).min()
    for ticker, last in last_end.items():
        mask[first_row[ticker] : last + 1] = True
    return mask


def window_view(matrix: np.ndarray, seq_len: int) -> np.ndarray:
    """(rows - L + 1, L, features) strided view: window ending at row t is view[t - L + 1]. No copy."""
    return np.lib.stride_tricks.sliding_window_view(matrix, seq_len, axis=0).transpose(0, 2, 1)


def windows_at(matrix: np.ndarray, ends: np.ndarray, seq_len: int) -> np.ndarray:
    """The windows ending at `ends`, as views where possible (a copy only of the rows asked for)."""
    return window_view(matrix, seq_len)[ends - seq_len + 1]


@dataclass(frozen=True)
class Windows:
    """One fold of the split stage's output, loaded: one scaled matrix, targets, end rows per split, metadata.

    `rows` (dates, tickers, prices of every row) is read only when asked for: training needs
    none of it, and at a million rows it is larger than the matrix.
    """

    matrix: np.ndarray
    targets: np.ndarray
    ends: dict[str, np.ndarray]
    meta: dict
    path: Path

    @property
    def seq_len(self) -> int:
        return int(self.meta["seq_len"])

    @property
    def n_features(self) -> int:
        return self.matrix.shape[1]

    @property
    def rows(self) -> pd.DataFrame:
        return pd.read_parquet(self.path / "rows.parquet")


def split_summary(split: Split, targets: np.ndarray, fit_rows: np.ndarray) -> dict:
    """What a split is, for meta.json: boundaries, sizes, purges, and the training target's scale."""
    train_targets = targets[split.train]
    return {
        "val_start": split.val_start.date(), "test_start": split.test_start.date(),
        "test_end": None if split.test_end is None else split.test_end.date(),
        "n_samples": {name: len(getattr(split, name)) for name in SPLITS},
        "purged": split.purged, "scaler_fit_rows": int(fit_rows.sum()),
        "target_mean": float(train_targets.mean()), "target_std": float(train_targets.std()),
    }


def save_split(out: Path, targets: np.ndarray, splits: list[Split], scalers: list[dict], meta: dict) -> None:
    """Per fold its end rows and its own scaler (fit on its training rows); the caller writes the
    unscaled features.npy once (write_matrix with no scaler)."""
    np.save(out / "targets.npy", targets.astype(np.float32))
    for k, (split, scaler) in enumerate(zip(splits, scalers), start=1):
        fold = out / f"fold_{k}"
        fold.mkdir()
        for name in SPLITS:
            np.save(fold / f"{name}_ends.npy", getattr(split, name).astype(np.int64))
        (fold / "scaler.json").write_text(json.dumps(scaler, indent=1))
    (out / "meta.json").write_text(json.dumps(meta, indent=1, default=str))


def read_meta(path: str | Path) -> dict:
    return json.loads((Path(path) / "meta.json").read_text())


def write_scaled_fold(path: str | Path, k: int, out: Path, chunk_rows: int = 65_536) -> Path:
    """Fold k's scaled matrix as an .npy file, written chunk by chunk (never whole in memory), for
    `load_fold(..., scaled=out)`: processes that map it share one copy of its pages."""
    features = np.load(Path(path) / "features.npy", mmap_mode="r")
    state = json.loads((Path(path) / f"fold_{k}" / "scaler.json").read_text())
    chunks = ((start, features[start : start + chunk_rows]) for start in range(0, len(features), chunk_rows))
    write_matrix(out, chunks, features.shape, state)
    return out


def write_without_columns(matrix: Path, drop: list[int], out: Path, chunk_rows: int = 65_536) -> Path:
    """A copy of a scaled fold matrix (write_scaled_fold's) without the columns `drop`, chunk by chunk: the
    same fit's inputs less some features (what the news added: the fit without its sentiment columns)."""
    source = np.load(matrix, mmap_mode="r")
    keep = np.setdiff1d(np.arange(source.shape[1]), drop)
    target = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(source.shape[0], len(keep)))
    for start in range(0, len(source), chunk_rows):
        target[start : start + chunk_rows] = source[start : start + chunk_rows][:, keep]
    target.flush()
    del target
    return out


def load_fold(path: str | Path, k: int, scaled: Path | None = None) -> Windows:
    """Fold k (from 1) as Windows: the matrix scaled with that fold's own training statistics.

    The single split is fold 1 of 1: every stage reads every split this one way. `scaled`: that matrix
    already written by write_scaled_fold, mapped copy-on-write (writable for torch, shared, not copied).
    """
    path = Path(path)
    meta = read_meta(path)
    fold = path / f"fold_{k}"
    scaler = json.loads((fold / "scaler.json").read_text())
    matrix = np.load(scaled, mmap_mode="c") if scaled else apply_scaler(np.load(path / "features.npy", mmap_mode="r"),
                                                                         scaler)
    return Windows(
        matrix=matrix,
        targets=np.load(path / "targets.npy", mmap_mode="c" if scaled else None),
        ends={name: np.load(fold / f"{name}_ends.npy") for name in SPLITS},
        meta={**{key: value for key, value in meta.items() if key != "folds"}, **meta["folds"][k - 1],
              "scaler_state": scaler},
        path=path,
    )
