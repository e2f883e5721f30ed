"""Why a contestant forecasts what it does, measured alike for every producer.

Two measures, both on a sample of the served fold's test windows:
- **Permutation importance** (every producer: networks, baselines, ensemble): shuffle one feature's
  whole window across the sampled windows and measure how much the loss rises, in the loss's own units
  (squared error for a return target, log loss for a direction one). Model-agnostic: it needs only a
  predictor of windows, so the chart exists for every row of the leaderboard.
- **Integrated gradients** (networks, by Captum): attributions of the forecast to every (lag, feature)
  of the window, along the straight path from a baseline window: every feature at its scaler's centre,
  zero after scaling (the training mean under `window.scaler: standard`, the median under `robust`),
  i.e. "an ordinary day". They add up to f(x) - f(baseline); the completeness error says how nearly
  (Gauss-Legendre quadrature with `steps` points).
Lag 0 is the window's last row (the forecast's as-of date); lag k is k rows before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

COMPLETENESS = "ig_completeness_error"  # sum |sum(attr) - (f(x) - f(baseline))| / sum |f(x) - f(baseline)|
TOP_SHARE = "ig_top_share"  # the top (lag, feature) cell's share of total |attribution|
COMPLETENESS_TOLERANCE = 0.01  # the report flags a network whose attributions add up worse than this

Predictor = Callable[[np.ndarray], np.ndarray]  # windows (n, seq_len, n_features) -> forecasts in target units


def squared_error(forecasts: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean((forecasts - targets) ** 2))


def log_loss(forecasts: np.ndarray, targets: np.ndarray) -> float:
    p = np.clip(forecasts, 1e-7, 1 - 1e-7)
    return float(-np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p)))


LOSSES = {"return": squared_error, "direction": log_loss}  # the loss the fits minimise, per target kind


def sample_ends(ends: np.ndarray, n: int) -> np.ndarray:
    """`n` window ends spread evenly over the test period (all of them if fewer): no seed, and every
    stretch of the period counts."""
    if len(ends) <= n:
        return ends
    return ends[np.unique(np.linspace(0, len(ends) - 1, n).round().astype(int))]


def permutation_importance(predict: Predictor, windows: np.ndarray, targets: np.ndarray, features: list[str],
                           loss: Callable[[np.ndarray, np.ndarray], float], repeats: int, seed: int) -> pd.DataFrame:
    """Per feature: the rise in loss when its values (the whole window) are shuffled across windows,
    mean and std over `repeats` shuffles; also as % of the unshuffled loss, each feature's share of the
    positive rises, and its order (1 = the most used). Rows in rank order."""
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    base = loss(predict(windows), targets)
    rng = np.random.default_rng(seed)
    rises = np.empty((len(features), repeats))
    for r in range(repeats):
        order = rng.permutation(len(windows))  # one shuffle per repeat, the same for every feature
        for f in range(len(features)):
            shuffled = windows.copy()
            shuffled[:, :, f] = windows[order, :, f]
            rises[f, r] = loss(predict(shuffled), targets) - base
    importance, spread = rises.mean(axis=1), rises.std(axis=1)
    positive = np.clip(importance, 0, None)
    table = pd.DataFrame({"feature": features, "importance": importance, "importance_std": spread,
                          "rise_pct": 100 * importance / base if base > 0 else np.nan,
                          "rise_pct_std": 100 * spread / base if base > 0 else np.nan,
                          "share": positive / positive.sum() if positive.sum() > 0 else 0.0})
    table = table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    return table.assign(order=np.arange(1, len(table) + 1))


@dataclass
class Attributions:
    values: np.ndarray  # (n, seq_len, n_features): each cell's part of f(x) - f(baseline)
    moved: np.ndarray  # (n,): f(x) - f(baseline)
    delta: np.ndarray  # (n,): sum of attributions - moved (Captum's convergence delta)

    @property
    def completeness_error(self) -> float:
        total = float(np.abs(self.moved).sum())
        return float(np.abs(self.delta).sum() / total) if total > 0 else 0.0


SEGMENTS = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # where the path is cut when one pass does not add up


def integrated_gradients(network, windows: np.ndarray, baseline: np.ndarray, steps: int, cuts: tuple = (0.0, 1.0),
                         batch: int = 64) -> Attributions:
    """Captum's integrated gradients of a differentiable `network` (windows -> forecast per window, a torch
    module or function) from `baseline` (seq_len, n_features) to each window, `steps` quadrature points on
    each piece of the straight path cut at `cuts` (fractions of the way). The pieces' attributions add up to
    the whole path's: cutting only puts more points where the forecast changes fastest, e.g. right next to
    a constant baseline, where an input normalisation over the window (tsmixer's LayerNorm) jumps."""
    import torch
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(network)
    base = np.asarray(baseline, dtype=np.float32)[None]
    values = []
    for start in range(0, len(windows), batch):
        x = np.ascontiguousarray(windows[start : start + batch], dtype=np.float32)
        total = 0.0
        for low, high in zip(cuts[:-1], cuts[1:]):
            begin, end = (torch.from_numpy(np.ascontiguousarray(base + f * (x - base), dtype=np.float32))
                          for f in (low, high))
            total = total + ig.attribute(end, baselines=begin, n_steps=steps).detach().double().numpy()
        values.append(total)
    with torch.no_grad():
        moved = (network(torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)))
                 - network(torch.from_numpy(base))).double().numpy()
    values = np.concatenate(values)
    return Attributions(values, moved, values.sum(axis=(1, 2)) - moved)


def attribute(network, windows: np.ndarray, baseline: np.ndarray, steps: int) -> Attributions:
    """Integrated gradients in one pass; where they miss completeness by more than the tolerance, again
    with the path cut at SEGMENTS (the same integral, more points near the baseline), then with 4x the
    points; the pass that adds up best."""
    found = integrated_gradients(network, windows, baseline, steps)
    for more in (1, 4):  # then 4x the points on each piece: ReLU kinks need more than a smooth path does
        if found.completeness_error <= COMPLETENESS_TOLERANCE:
            break
        found = min(found, integrated_gradients(network, windows, baseline, more * steps, SEGMENTS),
                    key=lambda a: a.completeness_error)
    return found


def weighted_sum(parts: list[tuple[float, Attributions]]) -> Attributions:
    """The attributions of a weighted sum of functions, from each function's own: integrated gradients are
    linear in the function (and so is the quadrature), so an ensemble's are its members', weighted. Each
    member is then refined (attribute) only if it misses completeness itself, and its error bounds the sum's."""
    return Attributions(sum(w * a.values for w, a in parts), sum(w * a.moved for w, a in parts),
                        sum(w * a.delta for w, a in parts))


def lag_feature_map(values: np.ndarray, features: list[str]) -> pd.DataFrame:
    """Mean |attribution| per (lag, feature): rows lag 0 (the last row) upward, a column per feature."""
    mean = np.abs(values).mean(axis=0)[::-1]  # window order is oldest first; lag 0 is the last row
    return pd.DataFrame(mean, columns=features).rename_axis("lag").reset_index()


def feature_totals(lag_map: pd.DataFrame) -> pd.DataFrame:
    """Per feature: total mean |attribution| over lags, its share of the whole, and the lag it peaks at;
    rank order."""
    cells = lag_map.drop(columns="lag")
    total = cells.sum(axis=0)
    table = pd.DataFrame({"feature": cells.columns, "attribution": total.to_numpy(),
                          "share": (total / total.sum()).to_numpy() if total.sum() > 0 else 0.0,
                          "peak_lag": lag_map["lag"].to_numpy()[cells.to_numpy().argmax(axis=0)]})
    table = table.sort_values("attribution", ascending=False, kind="stable").reset_index(drop=True)
    return table.assign(order=np.arange(1, len(table) + 1))


def variable_weights(model, windows: np.ndarray, features: list[str]) -> pd.DataFrame | None:
    """A network's own variable-selection weights (the TFT's `variable_weights`), mean over windows and
    steps per feature; None for a network without them."""
    if not hasattr(model, "variable_weights"):
        return None
    import torch

    with torch.no_grad():
        weights = model.variable_weights(torch.as_tensor(np.ascontiguousarray(windows, dtype=np.float32)))
    steps = weights.shape[1]  # a lookback reads only the window's last steps
    mean = weights.double().numpy().mean(axis=(0, 1))
    table = pd.DataFrame({"feature": features, "weight": mean, "steps": steps})
    return table.sort_values("weight", ascending=False, kind="stable").reset_index(drop=True)


def top_inputs(values: np.ndarray, features: list[str], top: int) -> list[dict]:
    """One window's largest attributions: [{feature, lag, attribution}], by |attribution|."""
    flat = values[::-1].reshape(-1)  # lag 0 first
    order = np.argsort(-np.abs(flat), kind="stable")[:top]
    n = len(features)
    return [{"feature": features[i % n], "lag": int(i // n), "attribution": float(flat[i])} for i in order]


@dataclass
class Explained:
    lag_map: pd.DataFrame
    totals: pd.DataFrame
    weights: pd.DataFrame | None
    summary: dict[str, float | str]


def explain_network(attributions: Attributions, models: list, windows: np.ndarray, features: list[str]) -> Explained:
    """A served network's (or ensemble's) integrated gradients on sampled windows, summarised; the TFT's
    variable weights beside them (`models`: the networks inside, each asked for its own weights)."""
    lag_map = lag_feature_map(attributions.values, features)
    totals = feature_totals(lag_map)
    cells = lag_map.drop(columns="lag").to_numpy()
    weights = next((w for w in (variable_weights(m, windows, features) for m in models) if w is not None), None)
    summary = {COMPLETENESS: attributions.completeness_error,
               TOP_SHARE: float(cells.max() / cells.sum()) if cells.sum() > 0 else 0.0,
               "ig_top_feature": str(totals["feature"].iloc[0]), "ig_feature_share": float(totals["share"].iloc[0]),
               "ig_top_lag": int(totals["peak_lag"].iloc[0])}
    return Explained(lag_map, totals, weights, summary)


EXPLAIN_NOTE = (f"On a sample of the served fold's test windows (`explain.windows`). **Permutation**: the rise in "
                "test loss when one feature's values are shuffled across windows, % of the loss (every contestant; "
                "≤ 0: not used). **Integrated gradients** (networks): each feature's share of the total |attribution| "
                "from an ordinary day (every feature at its training mean or median), the lag it peaks at (0 = the forecast date's row), and the "
                "completeness error: how far the attributions miss f(x) − f(baseline) "
                f"(flagged ⚠ above {COMPLETENESS_TOLERANCE:.0%}). Figures: `importance.png` here; each model's lag × feature map "
                "on its MLflow run under `explain/`.")


def explain_table(summary: dict, models: list[str], rankings: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per contestant in leaderboard order: its top three features by permutation (rise in loss %),
    and for a network the integrated gradients' top feature, its share, peak lag and completeness error."""
    rows = []
    for name in models:
        if name not in summary:
            continue
        ranking = rankings[name]
        top = ranking[ranking["importance"] > 0].head(3)
        row = {"model": name, "permutation top 3 (loss rise %)": ", ".join(
            f"{f} {r:+.2g}" for f, r in zip(top["feature"], top["rise_pct"])) or "none: no shuffle raises its loss"}
        found = summary[name]
        if COMPLETENESS in found:
            error = found[COMPLETENESS]
            row.update({"IG top feature": found["ig_top_feature"], "IG share %": 100 * found["ig_feature_share"],
                        "IG peak lag": found["ig_top_lag"],
                        "completeness error %": f"{100 * error:.2g}" + (" ⚠" if error > COMPLETENESS_TOLERANCE else "")})
        rows.append(row)
    return pd.DataFrame(rows)
