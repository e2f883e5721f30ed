"""DLinear (Zeng, Chen, Zhang & Xu 2023, "Are Transformers Effective for Time Series Forecasting?").

A moving-average decomposition splits each feature's window into trend and remainder ("seasonal");
one linear layer over time maps each to the one-step forecast, shared across features as in the
reference's default (individual=False). Difference: the reference forecasts every input channel;
here the target is one series, so a linear head mixes the per-feature forecasts into it.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import Lookback, Section
from tsarena.contestants.layers import ForecastHead, lookback_steps, moving_average


class Params(Section):
    moving_avg: Annotated[int, Field(ge=1, le=251)] = 25  # the reference's default kernel
    lookback: Lookback = 5


# tune.space.dlinear's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"moving_avg": {"low": 5, "high": 61}, "lookback": {"choices": [3, 5, 10, 20]}}


class Model(nn.Module):
    """(batch, seq_len, n_features) -> last `lookback` steps -> trend + seasonal, Linear(seq_len -> 1) each -> mix features."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        self.lookback = seq_len = lookback_steps(params.lookback, seq_len)
        self.kernel = params.moving_avg
        self.trend = nn.Linear(seq_len, 1)
        self.seasonal = nn.Linear(seq_len, 1)
        for layer in (self.trend, self.seasonal):  # the reference starts from the window's mean
            nn.init.constant_(layer.weight, 1 / seq_len)
        self.head = ForecastHead(n_features, 0.0, target_mean, target_std)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        windows = windows[:, -self.lookback :]
        trend = moving_average(windows, self.kernel)
        seasonal = windows - trend
        per_feature = self.trend(trend.transpose(1, 2)) + self.seasonal(seasonal.transpose(1, 2))
        return self.head(per_feature.squeeze(-1))
