"""window: chronological split by target date, purge, train-only scaler, one float32 matrix."""

from tsarena import config
from tsarena.errors import stage_main
from tsarena.feature_table import copy_rows, read_columns, read_keys
from tsarena.io import atomic_dir, read_json
from tsarena.windows import check_lengths, chronological_split, fit_transform, save_windows, split_summary, training_rows

IN, OUT = "data/features", "data/windows"
FEATURES = f"{IN}/features.parquet"


@stage_main
def main() -> None:
    params = config.load("window")["window"]
    schema = read_json(f"{IN}/schema.json")
    keys, tickers = read_keys(FEATURES)
    counts = keys.groupby("ticker", sort=False).size()
    check_lengths(counts.set_axis(tickers[counts.index]), params.seq_len, f"window.seq_len, {FEATURES}")
    split = chronological_split(keys, params)
    fit_rows = training_rows(keys["ticker"].to_numpy(), split.train)
    matrix, scaler = fit_transform(read_columns(FEATURES, schema["features"], "float32"), fit_rows, params.scaler)
    targets = keys["target"].to_numpy()
    meta = {**schema, "seq_len": params.seq_len, "scaler": params.scaler, "n_rows": len(keys),
            "tickers": sorted(tickers), **split_summary(split, targets, fit_rows)}
    with atomic_dir(OUT) as tmp:
        save_windows(tmp, matrix, targets, split, meta, scaler)
        copy_rows(FEATURES, tmp / "rows.parquet")
    n = meta["n_samples"]
    print(f"window: {n['train']}/{n['val']}/{n['test']} train/val/test windows of {params.seq_len} rows, "
          f"val from {meta['val_start']}, test from {meta['test_start']}, purged {split.purged} -> {OUT}")


if __name__ == "__main__":
    main()
