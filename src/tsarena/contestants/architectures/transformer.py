"""Causal Transformer encoder (Vaswani et al. 2017, pre-norm): every position attends only to
itself and the past, and the forecast is read from the last position."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import AttentionSection
from tsarena.contestants.layers import ForecastHead, sinusoidal_positions


class Params(AttentionSection):
    d_model: Annotated[int, Field(ge=2, le=4096)] = 64
    nhead: Annotated[int, Field(ge=1, le=64)] = 4
    num_layers: Annotated[int, Field(ge=1, le=24)] = 2
    dim_feedforward: Annotated[int, Field(ge=1)] | None = None  # None: 4 x d_model
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    positional: Literal["sinusoidal", "learned"] = "sinusoidal"


# tune.space.transformer's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"d_model": {"choices": [16, 32, 64]}, "num_layers": {"low": 1, "high": 3}, "dropout": {"low": 0.0, "high": 0.5}}


class Model(nn.Module):
    """(batch, seq_len, n_features) window -> forecast read from the last position."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        d_model = params.d_model
        self.input_projection = nn.Linear(n_features, d_model)
        if params.positional == "learned":
            self.positions = nn.Parameter(0.02 * torch.randn(seq_len, d_model))
        else:
            self.register_buffer("positions", sinusoidal_positions(seq_len, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(d_model, params.nhead, dim_feedforward=params.dim_feedforward or 4 * d_model,
                                           dropout=params.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, params.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.register_buffer("causal_mask", nn.Transformer.generate_square_subsequent_mask(seq_len), persistent=False)
        self.head = ForecastHead(d_model, params.dropout, target_mean, target_std)

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """Per-position states (batch, seq, d_model); position k depends on inputs <= k only."""
        seq_len = windows.shape[1]
        hidden = self.input_projection(windows) + self.positions[:seq_len]
        mask = self.causal_mask[:seq_len, :seq_len]
        return self.norm(self.encoder(hidden, mask=mask, is_causal=True))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(windows)[:, -1])
