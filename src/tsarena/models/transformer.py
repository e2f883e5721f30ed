"""Causal Transformer encoder: every position attends only to itself and the past."""

from __future__ import annotations

import math

import torch
from torch import nn

from tsarena.models.head import ForecastHead


def sinusoidal_positions(seq_len: int, d_model: int) -> torch.Tensor:
    position = torch.arange(seq_len).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    table = torch.zeros(seq_len, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
    return table


class CausalTransformer(nn.Module):
    """(batch, seq_len, n_features) window -> forecast read from the last position."""

    def __init__(
        self,
        n_features: int,
        seq_len: int,
        d_model: int = 64,
        nhead: int = 4,
        num_layers: int = 2,
        dim_feedforward: int | None = None,
        dropout: float = 0.1,
        positional: str = "sinusoidal",
        target_mean: float = 0.0,
        target_std: float = 1.0,
        **_: object,
    ):
        super().__init__()
        self.input_projection = nn.Linear(n_features, d_model)
        if positional == "learned":
            self.positions = nn.Parameter(0.02 * torch.randn(seq_len, d_model))
        else:
            self.register_buffer("positions", sinusoidal_positions(seq_len, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(
            d_model,
            nhead,
            dim_feedforward=dim_feedforward or 4 * d_model,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.register_buffer("causal_mask", nn.Transformer.generate_square_subsequent_mask(seq_len), persistent=False)
        self.head = ForecastHead(d_model, dropout, target_mean, target_std)

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """Per-position states (batch, seq, d_model); position k depends on inputs <= k only."""
        seq_len = windows.shape[1]
        hidden = self.input_projection(windows) + self.positions[:seq_len]
        mask = self.causal_mask[:seq_len, :seq_len]
        return self.norm(self.encoder(hidden, mask=mask, is_causal=True))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(windows)[:, -1])
