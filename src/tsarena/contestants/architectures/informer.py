"""Informer encoder (Zhou, Zhang, Peng, Zhang, Li, Xiong & Zhang 2021, "Informer: Beyond Efficient
Transformer for Long Sequence Time-Series Forecasting").

ProbSparse self-attention: of the L queries only the u = factor * ceil(ln L) most "active" ones
(largest max-minus-mean score against a sample of factor * ceil(ln L) keys) attend in full; the
others output the mean of the values. Self-attention distilling between encoder layers (Conv1d,
ELU, max-pool with stride 2) halves the sequence. The forecast is read from the last position.
Differences from the reference (zhouhaoyi/Informer2020): the key sample is evenly spaced, not
random, so a trained model forecasts the same numbers every time it is asked (the reference's
random sample makes two predictions of one window differ); the distilling convolution pads with
zeros (the reference's circular padding mixes the window's ends); encoder only (one-step
forecast, no generative decoder).
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import AttentionSection
from tsarena.contestants.layers import ForecastHead, sinusoidal_positions


class Params(AttentionSection):
    d_model: Annotated[int, Field(ge=2, le=1024)] = 32
    nhead: Annotated[int, Field(ge=1, le=32)] = 4
    num_layers: Annotated[int, Field(ge=1, le=8)] = 2
    factor: Annotated[int, Field(ge=1, le=50)] = 5
    distil: bool = True
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1


# tune.space.informer's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"d_model": {"choices": [16, 32, 64]}, "num_layers": {"low": 1, "high": 3}, "dropout": {"low": 0.0, "high": 0.5}}


class ProbSparseAttention(nn.Module):
    def __init__(self, d_model: int, nhead: int, factor: int, dropout: float):
        super().__init__()
        self.nhead, self.d_head, self.factor = nhead, d_model // nhead, factor
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, d_model = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.nhead, self.d_head).permute(2, 0, 3, 1, 4)
        n_top = min(length, self.factor * math.ceil(math.log(length + 1)))
        n_sample = min(length, self.factor * math.ceil(math.log(length + 1)))
        sample = torch.linspace(0, length - 1, n_sample, device=x.device).long()  # evenly spaced keys
        sampled = q @ k[:, :, sample].transpose(-1, -2)  # (batch, heads, L, n_sample)
        sparsity = sampled.max(dim=-1).values - sampled.mean(dim=-1)
        top = sparsity.topk(n_top, dim=-1).indices  # (batch, heads, n_top): the active queries
        out = v.mean(dim=2, keepdim=True).expand(-1, -1, length, -1).clone()  # lazy queries: mean of values
        q_top = q.gather(2, top.unsqueeze(-1).expand(-1, -1, -1, self.d_head))
        attention = self.dropout(torch.softmax(q_top @ k.transpose(-1, -2) / self.d_head**0.5, dim=-1))
        out = out.scatter(2, top.unsqueeze(-1).expand(-1, -1, -1, self.d_head), attention @ v)
        return self.out(out.transpose(1, 2).reshape(batch, length, d_model))


class EncoderLayer(nn.Module):
    def __init__(self, params: Params):
        super().__init__()
        d = params.d_model
        self.attention = ProbSparseAttention(d, params.nhead, params.factor, params.dropout)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(params.dropout), nn.Linear(2 * d, d))
        self.norm1, self.norm2, self.dropout = nn.LayerNorm(d), nn.LayerNorm(d), nn.Dropout(params.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attention(x)))
        return self.norm2(x + self.dropout(self.ff(x)))


class Distil(nn.Module):
    """Conv1d (kernel 3) + BatchNorm-free ELU + MaxPool(3, stride 2): the sequence length halves."""

    def __init__(self, d_model: int):
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, 3, padding=1)
        self.pool = nn.MaxPool1d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(nn.functional.elu(self.conv(x.transpose(1, 2)))).transpose(1, 2)


class Model(nn.Module):
    """(batch, seq_len, n_features) -> embedding + positions -> ProbSparse layers with distilling -> last."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        self.embed = nn.Linear(n_features, params.d_model)
        self.register_buffer("positions", sinusoidal_positions(seq_len, params.d_model), persistent=False)
        self.layers = nn.ModuleList(EncoderLayer(params) for _ in range(params.num_layers))
        self.distil = nn.ModuleList(Distil(params.d_model) if params.distil else nn.Identity()
                                    for _ in range(params.num_layers - 1))
        self.norm = nn.LayerNorm(params.d_model)
        self.head = ForecastHead(params.d_model, params.dropout, target_mean, target_std)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        x = self.embed(windows) + self.positions[: windows.shape[1]]
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.distil):
                x = self.distil[i](x)
        return self.head(self.norm(x)[:, -1])
