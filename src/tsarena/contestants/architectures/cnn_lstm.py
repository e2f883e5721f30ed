"""CNN-LSTM (the seed design documents' hybrid; cf. Livieris et al. 2020): a causal 1-D convolution
front end extracts local patterns over time, an LSTM reads the convolved sequence, the forecast
comes from its last state."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import Section
from tsarena.contestants.layers import CausalConv1d, ForecastHead


class Params(Section):
    channels: Annotated[int, Field(ge=1, le=1024)] = 32
    kernel_size: Annotated[int, Field(ge=1, le=32)] = 3
    hidden_size: Annotated[int, Field(ge=1, le=4096)] = 32
    num_layers: Annotated[int, Field(ge=1, le=8)] = 1
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1


# tune.space.cnn_lstm's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"channels": {"choices": [16, 32, 64]}, "hidden_size": {"choices": [16, 32, 64]}, "dropout": {"low": 0.0, "high": 0.5}}


class Model(nn.Module):
    """(batch, seq_len, n_features) -> Conv1d (causal) + ReLU -> LSTM -> last step -> forecast."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        self.conv = CausalConv1d(n_features, params.channels, params.kernel_size)
        self.dropout = nn.Dropout(params.dropout)
        self.lstm = nn.LSTM(params.channels, params.hidden_size, num_layers=params.num_layers, batch_first=True,
                            dropout=params.dropout if params.num_layers > 1 else 0.0)
        self.head = ForecastHead(params.hidden_size, params.dropout, target_mean, target_std)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        local = self.dropout(torch.relu(self.conv(windows.transpose(1, 2)))).transpose(1, 2)
        outputs, _ = self.lstm(local)
        return self.head(outputs[:, -1])
