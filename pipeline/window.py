"""window: chronological split by target date, purge, train-only scaler, one float32 matrix."""

import pandas as pd

from tsarena import config
from tsarena.errors import TsarenaError, stage_main
from tsarena.io import atomic_dir, read_json
from tsarena.windows import chronological_split, fit_transform, save_windows, training_rows

IN, OUT = "data/features", "data/windows"


def check_lengths(table: pd.DataFrame, seq_len: int) -> None:
    counts = table.groupby("ticker", sort=False).size()
    short = counts[counts < seq_len]
    if len(short):
        raise TsarenaError(
            f"ticker {short.index[0]!r} has {short.iloc[0]} rows after features, fewer than one window "
            f"needs ({seq_len})", f"window.seq_len, {IN}/features.parquet")


@stage_main
def main() -> None:
    params = config.load("window")["window"]
    schema = read_json(f"{IN}/schema.json")
    table = pd.read_parquet(f"{IN}/features.parquet")
    check_lengths(table, params.seq_len)
    split = chronological_split(table, params)
    tickers = table["ticker"].to_numpy()
    fit_rows = training_rows(tickers, split.train)
    matrix, scaler = fit_transform(table[schema["features"]].to_numpy(), fit_rows, params.scaler)
    train_targets = table["target"].to_numpy()[split.train]
    meta = {
        **schema, "seq_len": params.seq_len, "scaler": params.scaler, "n_rows": len(table),
        "tickers": sorted(set(tickers)), "val_start": split.val_start.date(), "test_start": split.test_start.date(),
        "n_samples": {name: len(getattr(split, name)) for name in ("train", "val", "test")},
        "purged": split.purged, "scaler_fit_rows": int(fit_rows.sum()),
        "target_mean": float(train_targets.mean()), "target_std": float(train_targets.std()),
    }
    rows = table[["date", "ticker", "target_date", "close", "next_return", "target"]]
    with atomic_dir(OUT) as tmp:
        save_windows(tmp, matrix, table["target"].to_numpy(), split, rows, meta, scaler)
    n = meta["n_samples"]
    print(f"window: {n['train']}/{n['val']}/{n['test']} train/val/test windows of {params.seq_len} rows, "
          f"val from {meta['val_start']}, test from {meta['test_start']}, purged {split.purged} -> {OUT}")


if __name__ == "__main__":
    main()
