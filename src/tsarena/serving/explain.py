"""Why a served model forecasts what it does for the last date: `tsarena predict --explain`. Apart from
bundle.py so that the training stages, which write bundles, do not depend on the attribution code."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsarena.serving.bundle import Bundle, input_prices


def explain_latest(bundle: Bundle, raw: pd.DataFrame, where: str = "model input", labels: pd.Series | None = None,
                   top: int = 5, steps: int = 32) -> pd.DataFrame:
    """Why the bundle forecasts what it does for each ticker's last date: the `top` (feature, lag) cells of its
    integrated gradients (judging.attributions, as the explain stage: from the scaler's centre, zero after
    scaling), each's part of the forecast in target units, and how far they miss adding up."""
    from tsarena.data.features import raw_extras
    from tsarena.judging.attributions import attribute, top_inputs

    prices, _ = input_prices(raw, where, raw_extras(bundle.preprocess["features"]), labels)
    batch, rows = bundle.latest_windows(prices, where)
    found = attribute(bundle.network, batch, np.zeros(batch.shape[1:], dtype=np.float32), steps)
    out = []
    for i, (ticker, date) in enumerate(zip(rows["ticker"].astype(str), rows["date"].dt.strftime("%Y-%m-%d"))):
        for rank, cell in enumerate(top_inputs(found.values[i], bundle.preprocess["features"], top), start=1):
            out.append({"ticker": ticker, "as_of": date, "order": rank, **cell,
                        "completeness_error": abs(float(found.delta[i])) / max(abs(float(found.moved[i])), 1e-12)})
    return pd.DataFrame(out)
