"""Blocks shared by the architectures: the forecast head and positional encodings."""

from __future__ import annotations

import math

import torch
from torch import nn


class ForecastHead(nn.Module):
    """Linear head whose output is rescaled to target units.

    The network learns a standardised target (mean 0, std 1 on the training split); the
    affine rescale lives in the model so an exported model predicts real log returns.
    For a direction target the output is a logit and the rescale is the identity.
    """

    def __init__(self, in_features: int, dropout: float, target_mean: float = 0.0, target_std: float = 1.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features, 1)
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(features)).squeeze(-1) * self.target_std + self.target_mean


def sinusoidal_positions(seq_len: int, d_model: int) -> torch.Tensor:
    """Vaswani et al. (2017) fixed position table, (seq_len, d_model)."""
    position = torch.arange(seq_len).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    table = torch.zeros(seq_len, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
    return table
