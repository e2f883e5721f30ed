"""Why a served model forecasts what it does for the last date: `tsarena predict --explain`. Apart from
bundle.py so that the training stages, which write bundles, do not depend on the attribution code."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsarena.serving.bundle import Bundle, input_prices

Known = dict  # member name -> (its model, its Attributions) on the same windows, baseline and steps


def same_weights(a, b) -> bool:
    """Two torch modules holding the same parameters and buffers (an ensemble's copy of a served network)."""
    import torch

    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def bundle_attributions(bundle: Bundle, windows: np.ndarray, baseline: np.ndarray, steps: int,
                        known: Known | None = None):
    """Integrated gradients of a bundle's forecast as its members' own, weighted
    (judging.attributions.weighted_sum): each member is refined only if it needs it, and an ensemble reuses
    a member already explained on the same windows (`known`, filled here; same name and weights only), so
    explaining the ensemble of twelve networks costs little once the twelve are explained."""
    from tsarena.judging.attributions import attribute, weighted_sum

    known = {} if known is None else known
    parts = []
    for member in bundle.members:
        found = known.get(member.name)
        if found is None or not same_weights(found[0], member.model):
            found = known[member.name] = (member.model, attribute(bundle.member_network(member), windows, baseline,
                                                                  steps))
        parts.append((member.weight, found[1]))
    return weighted_sum(parts)


def explain_latest(bundle: Bundle, raw: pd.DataFrame, where: str = "model input", labels: pd.Series | None = None,
                   top: int = 5, steps: int = 32, news: pd.DataFrame | None = None,
                   news_labels: pd.Series | None = None, news_where: str = "news") -> pd.DataFrame:
    """Why the bundle forecasts what it does for each ticker's last date: the `top` (feature, lag) cells of its
    integrated gradients (judging.attributions, as the explain stage: from the scaler's centre, zero after
    scaling), each's part of the forecast in target units, and how far they miss adding up."""
    from tsarena.data.features import raw_extras
    from tsarena.judging.attributions import top_inputs

    prices, _ = input_prices(raw, where, raw_extras(bundle.preprocess["features"]), labels)
    batch, rows = bundle.latest_windows(bundle.with_news(prices, news, where, news_labels, news_where), where)
    found = bundle_attributions(bundle, batch, np.zeros(batch.shape[1:], dtype=np.float32), steps)
    out = []
    for i, (ticker, date) in enumerate(zip(rows["ticker"].astype(str), rows["date"].dt.strftime("%Y-%m-%d"))):
        for rank, cell in enumerate(top_inputs(found.values[i], bundle.preprocess["features"], top), start=1):
            out.append({"ticker": ticker, "as_of": date, "order": rank, **cell,
                        "completeness_error": abs(float(found.delta[i])) / max(abs(float(found.moved[i])), 1e-12)})
    return pd.DataFrame(out)
