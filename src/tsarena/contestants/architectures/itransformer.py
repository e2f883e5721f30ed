"""iTransformer (Liu, Hu, Zhang, Wu, Wang, Ma & Long 2024, "iTransformer: Inverted Transformers Are
Effective for Time Series Forecasting").

Inverted tokens: each feature (variate) is one token, its whole window embedded by one linear
layer; self-attention runs across features (how variates relate), the feed-forward network within
each token (the series' own representation); each token is projected to its one-step forecast.
Differences from the reference: no series normalisation (the split stage scales features); a
linear head mixes the per-feature forecasts into the one target.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import AttentionSection, Lookback
from tsarena.contestants.layers import ForecastHead, lookback_steps


class Params(AttentionSection):
    d_model: Annotated[int, Field(ge=2, le=1024)] = 32
    nhead: Annotated[int, Field(ge=1, le=32)] = 4
    num_layers: Annotated[int, Field(ge=1, le=12)] = 2
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    lookback: Lookback = 5


# tune.space.itransformer's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"d_model": {"choices": [16, 32, 64]}, "num_layers": {"low": 1, "high": 3}, "dropout": {"low": 0.0, "high": 0.5},
         "lookback": {"choices": [3, 5, 10, 20]}}


class Model(nn.Module):
    """(batch, seq_len, n_features) -> last `lookback` steps -> tokens = features -> encoder across features -> mix features."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        self.lookback = seq_len = lookback_steps(params.lookback, seq_len)
        self.embed = nn.Linear(seq_len, params.d_model)
        layer = nn.TransformerEncoderLayer(params.d_model, params.nhead, 2 * params.d_model, params.dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, params.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(params.d_model)
        self.project = nn.Linear(params.d_model, 1)
        self.head = ForecastHead(n_features, 0.0, target_mean, target_std)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(windows[:, -self.lookback :].transpose(1, 2))  # (batch, features, d_model)
        return self.head(self.project(self.norm(self.encoder(tokens))).squeeze(-1))
