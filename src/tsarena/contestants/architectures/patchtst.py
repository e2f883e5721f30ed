"""PatchTST (Nie, Nguyen, Sinthong & Kalagnanam 2023, "A Time Series is Worth 64 Words").

Channel independence: each feature's window is one univariate series, cut into overlapping
patches (length patch_len, step stride, the end padded by repetition); a linear patch embedding
plus learned positions feeds a Transformer encoder shared by all features; a flatten head maps
each feature's patch states to its one-step forecast. Differences from the reference: no RevIN
(the split stage already scales every feature on its training rows); as the target is one
series, a linear head mixes the per-feature forecasts into it.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import AttentionSection, Lookback
from tsarena.contestants.layers import ForecastHead, lookback_steps, n_patches, patches


class Params(AttentionSection):
    patch_len: Annotated[int, Field(ge=1, le=512)] = 4
    stride: Annotated[int, Field(ge=1, le=512)] = 2
    d_model: Annotated[int, Field(ge=2, le=1024)] = 32
    nhead: Annotated[int, Field(ge=1, le=32)] = 4
    num_layers: Annotated[int, Field(ge=1, le=12)] = 2
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    lookback: Lookback = 20


# tune.space.patchtst's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"patch_len": {"choices": [2, 4, 8, 12]}, "d_model": {"choices": [16, 32, 64]}, "dropout": {"low": 0.0, "high": 0.5},
         "lookback": {"choices": [10, 20, 40]}}


class Model(nn.Module):
    """(batch, seq_len, n_features) -> last `lookback` steps -> per feature: patches -> encoder -> flatten head -> mix features."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        self.lookback = seq_len = lookback_steps(params.lookback, seq_len)
        self.patch_len, self.stride = min(params.patch_len, seq_len), params.stride
        count = n_patches(seq_len, self.patch_len, self.stride)
        self.embed = nn.Linear(self.patch_len, params.d_model)
        self.positions = nn.Parameter(0.02 * torch.randn(count, params.d_model))
        layer = nn.TransformerEncoderLayer(params.d_model, params.nhead, 2 * params.d_model, params.dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, params.num_layers, enable_nested_tensor=False)
        self.flatten_head = nn.Sequential(nn.Flatten(-2), nn.Dropout(params.dropout), nn.Linear(count * params.d_model, 1))
        self.head = ForecastHead(n_features, 0.0, target_mean, target_std)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        windows = windows[:, -self.lookback :]
        batch, _, n_features = windows.shape
        tokens = patches(windows, self.patch_len, self.stride)  # (batch, features, n_patches, patch_len)
        tokens = self.embed(tokens.flatten(0, 1)) + self.positions  # (batch * features, n_patches, d_model)
        states = self.encoder(tokens)
        per_feature = self.flatten_head(states).view(batch, n_features)
        return self.head(per_feature)
