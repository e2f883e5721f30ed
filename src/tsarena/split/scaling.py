"""Scalers fit on a fold's training rows only, stored as plain JSON statistics (no pickle), and the
float32 matrix written or scaled chunk by chunk (never whole in memory)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from sklearn.preprocessing import RobustScaler, StandardScaler


def make_scaler(kind: str) -> StandardScaler | RobustScaler | None:
    # copy=False: transform scales the (large) matrix in place
    return {"standard": StandardScaler(copy=False), "robust": RobustScaler(copy=False), "none": None}[kind]


def scaler_to_dict(scaler: StandardScaler | RobustScaler | None) -> dict:
    """Fitted statistics as plain JSON: no pickle to load later."""
    if scaler is None:
        return {"kind": "none"}
    if isinstance(scaler, StandardScaler):
        return {"kind": "standard", "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}
    return {"kind": "robust", "center": scaler.center_.tolist(), "scale": scaler.scale_.tolist()}


def scaler_from_dict(state: dict) -> StandardScaler | RobustScaler | None:
    scaler = make_scaler(state["kind"])
    if isinstance(scaler, StandardScaler):
        scaler.mean_, scaler.scale_ = np.array(state["mean"]), np.array(state["scale"])
        scaler.var_ = scaler.scale_**2
    elif isinstance(scaler, RobustScaler):
        scaler.center_, scaler.scale_ = np.array(state["center"]), np.array(state["scale"])
    if scaler is not None:
        scaler.n_features_in_ = len(scaler.scale_)
    return scaler


def fit_scaler(chunks: Iterable[tuple[int, np.ndarray]], fit_mask: np.ndarray, kind: str
               ) -> StandardScaler | RobustScaler | None:
    """Statistics of the fit rows only (the training rows: never validation or test), chunk by chunk."""
    scaler = make_scaler(kind)
    if scaler is None:
        return None
    if isinstance(scaler, StandardScaler):  # streamed: no copy of the training rows
        for start, chunk in chunks:
            rows = chunk[fit_mask[start : start + len(chunk)]]
            if len(rows):
                scaler.partial_fit(rows)
        return scaler
    # the median needs all fit rows at once
    return scaler.fit(np.concatenate([chunk[fit_mask[start : start + len(chunk)]] for start, chunk in chunks]))


def write_matrix(path: Path, chunks: Iterable[tuple[int, np.ndarray]], shape: tuple[int, int], state: dict) -> None:
    """Write the (optionally scaled) float32 matrix as .npy chunk by chunk: never whole in memory."""
    scaler = scaler_from_dict(state)
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": shape})
        for _, chunk in chunks:
            block = np.array(chunk, dtype=np.float32)
            (block if scaler is None else scaler.transform(block)).astype(np.float32, copy=False).tofile(handle)


def apply_scaler(features: np.ndarray, state: dict) -> np.ndarray:
    """A scaled float32 copy of `features` with saved statistics; `features` is left as it is."""
    matrix = np.array(features, dtype=np.float32)
    scaler = scaler_from_dict(state)
    return matrix if scaler is None else scaler.transform(matrix)
