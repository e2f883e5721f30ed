"""Temporal Convolutional Network (Bai, Kolter & Koltun 2018, "An Empirical Evaluation of Generic
Convolutional and Recurrent Networks for Sequence Modeling").

Residual blocks of two dilated causal convolutions (ReLU, dropout), dilation doubling per level,
a 1x1 convolution on the skip path where the width changes; the forecast is read from the last
step. Differences from the reference (locuslab/TCN): no weight normalisation (a reparametrisation
that complicates pt2 export and buys little at this size). The receptive field,
1 + 2 (kernel_size - 1) (2^levels - 1), must cover the window: a shorter one is a param error.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import Section
from tsarena.core.errors import TsarenaError
from tsarena.contestants.layers import CausalConv1d, ForecastHead


class Params(Section):
    channels: Annotated[int, Field(ge=1, le=1024)] = 32
    levels: Annotated[int, Field(ge=1, le=12)] = 4
    kernel_size: Annotated[int, Field(ge=2, le=16)] = 3
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1


# tune.space.tcn's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"channels": {"choices": [16, 32, 64]}, "kernel_size": {"low": 2, "high": 5}, "dropout": {"low": 0.0, "high": 0.5}}


def receptive_field(params: Params) -> int:
    return 1 + 2 * (params.kernel_size - 1) * (2**params.levels - 1)


class TemporalBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            CausalConv1d(in_channels, out_channels, kernel_size, dilation), nn.ReLU(), nn.Dropout(dropout),
            CausalConv1d(out_channels, out_channels, kernel_size, dilation), nn.ReLU(), nn.Dropout(dropout))
        self.skip = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.net(x) + self.skip(x))


class Model(nn.Module):
    """(batch, seq_len, n_features) -> causal TCN over time -> last step -> forecast."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        self.receptive_field = receptive_field(params)
        if self.receptive_field < seq_len:
            raise TsarenaError(f"the receptive field {self.receptive_field} is shorter than window.seq_len={seq_len}: "
                               "raise tcn.levels or tcn.kernel_size", "tcn.levels, tcn.kernel_size")
        blocks, width = [], n_features
        for level in range(params.levels):
            blocks.append(TemporalBlock(width, params.channels, params.kernel_size, 2**level, params.dropout))
            width = params.channels
        self.blocks = nn.Sequential(*blocks)
        self.head = ForecastHead(params.channels, 0.0, target_mean, target_std)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(windows.transpose(1, 2))[:, :, -1])
