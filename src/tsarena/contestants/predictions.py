"""The forecaster contract: every producer (network, baseline, ensemble) writes one predictions table.

Columns: model, fold, seed, split (val | test), row (feature-table row), forecast in target units
(log return over the horizon, or the probability of an up move). Validation forecasts exist so that
ensembles and calibrations are fit without touching test; evaluate reads only these tables.
Interval bounds are columns `lower_<method>_<pct>` / `upper_<method>_<pct>` (bound_columns): a network's
fit writes its Monte Carlo dropout ones on test rows; evaluate adds the conformal ones to every table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

PREDICTION_COLUMNS = ["model", "fold", "seed", "split", "row", "forecast"]
FORECAST_SPLITS = ("val", "test")
# a trained producer's served.json fields that evaluate reports (the served model's size, its tuning budget)
N_PARAMETERS, TUNE_TRIALS = "n_parameters", "tune_trials"
MC_DROPOUT = "mc_dropout"  # the interval method a network's own fit produces (uncertainty.mc_samples)


def pct(level: float) -> str:
    """0.9 -> "90", 0.975 -> "97.5": a level in a column or metric name."""
    return f"{100 * level:.10g}"


def bound_columns(method: str, level: float) -> tuple[str, str]:
    """An interval's two columns in a predictions table (and a served model's output)."""
    return f"lower_{method}_{pct(level)}", f"upper_{method}_{pct(level)}"


def fit_key(fold: int, seed: int) -> str:
    """A fit's name in JSON keys and MLflow lookups: `<fold>/<seed>` (one place builds and parses it)."""
    return f"{int(fold)}/{int(seed)}"


def parse_fit_key(key: str) -> tuple[int, int]:
    fold, seed = key.split("/")
    return int(fold), int(seed)


def target_units(raw, kind: str):
    """Network output (an array or a torch tensor) -> target units: logits become probabilities for a
    direction target."""
    if kind != "direction":
        return raw
    return raw.sigmoid() if hasattr(raw, "sigmoid") else 1 / (1 + np.exp(-raw))


def predictions_frame(model: str, fold: int, seed: int, forecasts: dict[str, tuple[np.ndarray, np.ndarray]]
                      ) -> pd.DataFrame:
    """The contract's table for one fit: `forecasts` maps split -> (end rows, forecasts)."""
    parts = [pd.DataFrame({"model": model, "fold": fold, "seed": seed, "split": split,
                           "row": np.asarray(rows, dtype=np.int64), "forecast": np.asarray(values, dtype=np.float64)})
             for split, (rows, values) in forecasts.items()]
    return pd.concat(parts, ignore_index=True)[PREDICTION_COLUMNS]


def concat_tables(parts: list[Path], out: Path, model: str | None = None) -> None:
    """Predictions tables -> one file, a table at a time: the stage never holds every fit's forecasts.
    `model`: the producer's name in the file, where the fits ran under another (an architecture's fits
    without news)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(parts[0])
    with pq.ParquetWriter(out, schema) as writer:
        for part in parts:
            table = pq.read_table(part)
            if model is not None:
                field = schema.field("model")
                table = table.set_column(schema.get_field_index("model"), field, pa.array([model] * len(table), field.type))
            writer.write_table(table)


def empty_predictions() -> pd.DataFrame:
    return pd.DataFrame({"model": pd.Series(dtype=str), "fold": pd.Series(dtype="int64"),
                         "seed": pd.Series(dtype="int64"), "split": pd.Series(dtype=str),
                         "row": pd.Series(dtype="int64"), "forecast": pd.Series(dtype="float64")})
