"""Temporal Fusion Transformer, one-step core (Lim, Arik, Loeff & Pfister 2021).

Per time step a variable selection network embeds each feature (one linear layer per variable),
weighs the variables with a softmax from a gated residual network (GRN) over all of them, and
sums each variable's own GRN output by those weights; an LSTM encoder reads the selected
inputs, joined to them by a gated skip connection (GLU, add & norm); interpretable multi-head
attention (heads share the value projection, and are averaged) runs over the window with a causal
mask, followed by another gated skip, a position-wise GRN and a final gated skip to the LSTM
output; the forecast is read from the last step. `variable_weights(windows)` returns the
selection weights (batch, seq_len, n_features) for interpretation. Differences from the
reference: no static covariates or known future inputs (the window is the past of
the features), so no static enrichment and no decoder; one forecast, no quantiles.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import torch
from pydantic import Field
from torch import nn

from tsarena.core.params import AttentionSection
from tsarena.contestants.layers import ForecastHead, GatedResidualNetwork


class Params(AttentionSection):
    width_field: ClassVar[str] = "hidden_size"
    hidden_size: Annotated[int, Field(ge=2, le=512)] = 16
    nhead: Annotated[int, Field(ge=1, le=16)] = 4
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1


# tune.space.tft's default: what Optuna searches when tune.trials > 0 (README "Tuning")
SPACE = {"hidden_size": {"choices": [8, 16, 32]}, "dropout": {"low": 0.0, "high": 0.5}}


class GateAddNorm(nn.Module):
    def __init__(self, size: int, dropout: float):
        super().__init__()
        self.dropout, self.gate, self.norm = nn.Dropout(dropout), nn.Linear(size, 2 * size), nn.LayerNorm(size)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.norm(skip + nn.functional.glu(self.gate(self.dropout(x)), dim=-1))


class VariableSelection(nn.Module):
    def __init__(self, n_features: int, hidden: int, dropout: float):
        super().__init__()
        self.embed = nn.Parameter(0.1 * torch.randn(n_features, hidden))  # one linear (1 -> hidden) per variable
        self.embed_bias = nn.Parameter(torch.zeros(n_features, hidden))
        self.select = GatedResidualNetwork(n_features * hidden, hidden, n_features, dropout)
        self.variables = nn.ModuleList(GatedResidualNetwork(hidden, hidden, hidden, dropout) for _ in range(n_features))

    def forward(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = windows.unsqueeze(-1) * self.embed + self.embed_bias  # (batch, time, features, hidden)
        weights = torch.softmax(self.select(embedded.flatten(-2)), dim=-1)  # (batch, time, features)
        processed = torch.stack([grn(embedded[..., i, :]) for i, grn in enumerate(self.variables)], dim=-2)
        return (weights.unsqueeze(-1) * processed).sum(dim=-2), weights


class InterpretableAttention(nn.Module):
    """Multi-head attention whose heads share one value projection and are averaged (TFT, eq. 14-16)."""

    def __init__(self, hidden: int, nhead: int, dropout: float):
        super().__init__()
        self.nhead, self.d_head = nhead, hidden // nhead
        self.query, self.key = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, self.d_head)
        self.out = nn.Linear(self.d_head, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, time, _ = x.shape
        q = self.query(x).view(batch, time, self.nhead, self.d_head).transpose(1, 2)
        k = self.key(x).view(batch, time, self.nhead, self.d_head).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / self.d_head**0.5 + mask
        attention = self.dropout(torch.softmax(scores, dim=-1))  # (batch, heads, time, time)
        return self.out((attention @ self.value(x).unsqueeze(1)).mean(dim=1))


class Model(nn.Module):
    """(batch, seq_len, n_features) -> variable selection -> LSTM -> attention -> last step -> forecast."""

    def __init__(self, params: Params, n_features: int, seq_len: int, target_mean: float = 0.0,
                 target_std: float = 1.0):
        super().__init__()
        hidden, dropout = params.hidden_size, params.dropout
        self.selection = VariableSelection(n_features, hidden, dropout)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.lstm_gate = GateAddNorm(hidden, dropout)
        self.attention = InterpretableAttention(hidden, params.nhead, dropout)
        self.attention_gate = GateAddNorm(hidden, dropout)
        self.position_wise = GatedResidualNetwork(hidden, hidden, hidden, dropout)
        self.output_gate = GateAddNorm(hidden, 0.0)
        self.register_buffer("causal_mask", nn.Transformer.generate_square_subsequent_mask(seq_len), persistent=False)
        self.head = ForecastHead(hidden, dropout, target_mean, target_std)

    def variable_weights(self, windows: torch.Tensor) -> torch.Tensor:
        """How much each feature counted at each step: (batch, seq_len, n_features), rows sum to 1."""
        return self.selection(windows)[1]

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        selected, _ = self.selection(windows)
        encoded, _ = self.lstm(selected)
        temporal = self.lstm_gate(encoded, selected)
        time = windows.shape[1]
        attended = self.attention_gate(self.attention(temporal, self.causal_mask[:time, :time]), temporal)
        return self.head(self.output_gate(self.position_wise(attended), temporal)[:, -1])
