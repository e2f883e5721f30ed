"""The recurrent family: LSTM or GRU, stacked, optionally bidirectional over the past window."""

from __future__ import annotations

import torch
from torch import nn

from tsarena.models.head import ForecastHead


class LSTMForecaster(nn.Module):
    """(batch, seq_len, n_features) window -> one forecast per window.

    Bidirectional recurrence is causal here: the window holds only the past, so reading it
    backwards sees nothing after the forecast time.
    """

    def __init__(
        self,
        n_features: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        bidirectional: bool = False,
        dropout: float = 0.1,
        cell: str = "lstm",
        pooling: str = "last",
        target_mean: float = 0.0,
        target_std: float = 1.0,
        **_: object,
    ):
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(
            n_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.pooling = pooling
        out_size = hidden_size * (2 if bidirectional else 1)
        self.attention = nn.Linear(out_size, 1) if pooling == "attention" else None
        self.head = ForecastHead(out_size, dropout, target_mean, target_std)
        if cell == "lstm":
            self._forget_bias_one(hidden_size)

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
        outputs, _ = self.rnn(windows)
        return self.head(self.pool(outputs))
