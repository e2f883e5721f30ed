"""The recurrent family: LSTM or GRU, stacked, optionally bidirectional over the past window
(Hochreiter & Schmidhuber 1997; Cho et al. 2014), last-step or attention pooling."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import Lookback, Section
from tsarena.contestants.layers import ForecastHead, lookback_steps


class Params(Section):
    cell: Literal["lstm", "gru"] = "lstm"
    hidden_size: Annotated[int, Field(ge=1, le=4096)] = 64
    num_layers: Annotated[int, Field(ge=1, le=16)] = 2
    bidirectional: bool = False  # the window holds only the past: reading it backwards sees no future
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    pooling: Literal["last", "attention"] = "last"
    lookback: Lookback = 2


# tune.space.lstm's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"hidden_size": {"choices": [16, 32, 64, 128]}, "num_layers": {"low": 1, "high": 3}, "dropout": {"low": 0.0, "high": 0.5},
         "lookback": {"choices": [2, 5, 10, 20]}}


class Model(nn.Module):
    """(batch, seq_len, n_features) window -> its last `lookback` steps -> one forecast per window."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        self.lookback = lookback_steps(params.lookback, seq_len)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[params.cell]
        self.rnn = rnn(n_features, params.hidden_size, num_layers=params.num_layers, batch_first=True,
                       bidirectional=params.bidirectional, dropout=params.dropout if params.num_layers > 1 else 0.0)
        out_size = params.hidden_size * (2 if params.bidirectional else 1)
        self.attention = nn.Linear(out_size, 1) if params.pooling == "attention" else None
        self.head = ForecastHead(out_size, params.dropout, target_mean, target_std)
        if params.cell == "lstm":
            self._forget_bias_one(params.hidden_size)

    def _forget_bias_one(self, hidden_size: int) -> None:
        """Forget gate bias 1 (Jozefowicz et al. 2015): gates are (input, forget, cell, output)."""
        with torch.no_grad():
            for name, bias in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    bias[hidden_size : 2 * hidden_size] = 1.0
                elif name.startswith("bias_hh"):
                    bias[hidden_size : 2 * hidden_size] = 0.0

    def pool(self, outputs: torch.Tensor) -> torch.Tensor:
        if self.attention is not None:
            weights = torch.softmax(self.attention(outputs), dim=1)  # (batch, seq, 1)
            return (weights * outputs).sum(dim=1)
        if self.rnn.bidirectional:
            half = self.rnn.hidden_size
            # forward direction's last step, backward direction's final state (at step 0)
            return torch.cat([outputs[:, -1, :half], outputs[:, 0, half:]], dim=-1)
        return outputs[:, -1]

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(windows[:, -self.lookback :])
        return self.head(self.pool(outputs))
