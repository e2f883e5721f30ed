"""MLP on the flattened window: the honest non-sequential neural baseline (no notion of order
beyond each input's fixed position in the window)."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import Lookback, Section
from tsarena.contestants.layers import ForecastHead, lookback_steps


class Params(Section):
    hidden_size: Annotated[int, Field(ge=1, le=4096)] = 64
    num_layers: Annotated[int, Field(ge=1, le=8)] = 2
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    lookback: Lookback = 5


# tune.space.mlp's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"hidden_size": {"choices": [32, 64, 128, 256]}, "num_layers": {"low": 1, "high": 3}, "dropout": {"low": 0.0, "high": 0.5},
         "lookback": {"choices": [3, 5, 10, 20]}}


class Model(nn.Module):
    """(batch, seq_len, n_features) -> last `lookback` steps -> flatten -> [Linear, GELU, Dropout] x num_layers -> head."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        self.lookback = seq_len = lookback_steps(params.lookback, seq_len)
        layers: list[nn.Module] = [nn.Flatten()]
        width = seq_len * n_features
        for _ in range(params.num_layers):
            layers += [nn.Linear(width, params.hidden_size), nn.GELU(), nn.Dropout(params.dropout)]
            width = params.hidden_size
        self.body = nn.Sequential(*layers)
        self.head = ForecastHead(width, 0.0, target_mean, target_std)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(windows[:, -self.lookback :]))
