"""The output head shared by every architecture."""

from __future__ import annotations

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
