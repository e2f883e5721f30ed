"""TSMixer (Chen, Li, Arik, Yoder & Pfister 2023, "TSMixer: An All-MLP Architecture for Time
Series Forecasting").

Mixer blocks alternate a time-mixing MLP (one linear layer over the time axis, shared across
features) and a feature-mixing MLP (two layers over the feature axis), each with a residual
connection and normalisation; a temporal projection maps the window to the one-step forecast of
each feature, and a linear head mixes those into the target. Difference from the reference:
LayerNorm instead of BatchNorm (no batch statistics: the same numbers at any batch size, and
nothing to synchronise under DDP).
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import Lookback, Section
from tsarena.contestants.layers import ForecastHead, lookback_steps


class Params(Section):
    num_blocks: Annotated[int, Field(ge=1, le=16)] = 2
    ff_dim: Annotated[int, Field(ge=1, le=4096)] = 32
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    lookback: Lookback = 5


# tune.space.tsmixer's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"num_blocks": {"low": 1, "high": 4}, "ff_dim": {"choices": [16, 32, 64]}, "dropout": {"low": 0.0, "high": 0.5},
         "lookback": {"choices": [3, 5, 10, 20]}}


class MixerBlock(nn.Module):
    def __init__(self, seq_len: int, n_features: int, params: Params):
        super().__init__()
        self.time_norm = nn.LayerNorm([seq_len, n_features])
        self.time = nn.Sequential(nn.Linear(seq_len, seq_len), nn.ReLU(), nn.Dropout(params.dropout))
        self.feature_norm = nn.LayerNorm([seq_len, n_features])
        self.feature = nn.Sequential(nn.Linear(n_features, params.ff_dim), nn.ReLU(), nn.Dropout(params.dropout),
                                     nn.Linear(params.ff_dim, n_features), nn.Dropout(params.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.time(self.time_norm(x).transpose(1, 2)).transpose(1, 2)
        return x + self.feature(self.feature_norm(x))


class Model(nn.Module):
    """(batch, seq_len, n_features) -> last `lookback` steps -> mixer blocks -> Linear(seq_len -> 1) per feature -> mix features."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        self.lookback = seq_len = lookback_steps(params.lookback, seq_len)
        self.blocks = nn.Sequential(*(MixerBlock(seq_len, n_features, params) for _ in range(params.num_blocks)))
        self.projection = nn.Linear(seq_len, 1)
        self.head = ForecastHead(n_features, 0.0, target_mean, target_std)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        mixed = self.blocks(windows[:, -self.lookback :])
        return self.head(self.projection(mixed.transpose(1, 2)).squeeze(-1))
