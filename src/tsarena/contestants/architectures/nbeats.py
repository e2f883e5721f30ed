"""N-BEATS, generic architecture (Oreshkin, Carpov, Chapados & Bengio 2020).

Input: the whole window flattened (every feature, not only the target's own history: the
features are the covariates, and the target's history is among them as `log_return`). Each block
is a stack of fully connected ReLU layers whose output feeds two linear projections: a backcast of
the block's input, subtracted before the next block (doubly residual stacking), and a one-step
forecast; the forecasts of all blocks are summed. Differences from the reference: one generic
stack of unshared blocks; a final linear rescale to target units.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import Lookback, Section
from tsarena.contestants.layers import ForecastHead, lookback_steps


class Params(Section):
    num_blocks: Annotated[int, Field(ge=1, le=30)] = 2
    num_layers: Annotated[int, Field(ge=1, le=8)] = 3
    layer_width: Annotated[int, Field(ge=1, le=4096)] = 32
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    lookback: Lookback = 3


# tune.space.nbeats's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"num_blocks": {"low": 1, "high": 4}, "layer_width": {"choices": [32, 64, 128]}, "dropout": {"low": 0.0, "high": 0.3},
         "lookback": {"choices": [3, 5, 10, 20]}}


class Block(nn.Module):
    def __init__(self, size: int, params: Params):
        super().__init__()
        layers: list[nn.Module] = []
        width = size
        for _ in range(params.num_layers):
            layers += [nn.Linear(width, params.layer_width), nn.ReLU(), nn.Dropout(params.dropout)]
            width = params.layer_width
        self.fc = nn.Sequential(*layers)
        self.backcast = nn.Linear(width, size)
        self.forecast = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.fc(x)
        return self.backcast(hidden), self.forecast(hidden)


class Model(nn.Module):
    """(batch, seq_len, n_features) -> last `lookback` steps, flattened -> blocks (backcast residual, summed forecasts)."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        self.lookback = seq_len = lookback_steps(params.lookback, seq_len)
        self.blocks = nn.ModuleList(Block(seq_len * n_features, params) for _ in range(params.num_blocks))
        self.head = ForecastHead(1, 0.0, target_mean, target_std)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        residual = windows[:, -self.lookback :].flatten(1)
        forecast = torch.zeros(windows.shape[0], 1, dtype=windows.dtype, device=windows.device)
        for block in self.blocks:
            backcast, block_forecast = block(residual)
            residual = residual - backcast
            forecast = forecast + block_forecast
        return self.head(forecast)
