"""Blocks shared by the architectures: the forecast head and positional encodings; and the affine map of a
window that is every linear baseline's served form."""

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


def lookback_steps(lookback: int | None, seq_len: int) -> int:
    """How many of the window's latest steps a model reads: `lookback`, at most the window
    (`window.seq_len`); None reads the whole window. The feature row of each step already
    summarises up to the longest feature window (lags, moving averages, volatility), so a short
    lookback keeps that history while a whole-window reader of low signal-to-noise data mostly
    fits its noise (BENCHMARKS.md section 7)."""
    return seq_len if lookback is None else min(lookback, seq_len)


def sinusoidal_positions(seq_len: int, d_model: int) -> torch.Tensor:
    """Vaswani et al. (2017) fixed position table, (seq_len, d_model)."""
    position = torch.arange(seq_len).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    table = torch.zeros(seq_len, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
    return table


class CausalConv1d(nn.Conv1d):
    """Conv1d over time (input (batch, channels, time)) padded on the left only, so output step t
    reads inputs <= t (Bai et al. 2018; van den Oord et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, (self.left, 0)))


def moving_average(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Trend of (batch, time, channels) by a centred moving average, ends padded by repetition
    (DLinear's series decomposition). Inside a window of the past, centring reads no future."""
    front = x[:, :1].expand(-1, (kernel_size - 1) // 2, -1)
    back = x[:, -1:].expand(-1, kernel_size // 2, -1)
    padded = torch.cat([front, x, back], dim=1).transpose(1, 2)
    return nn.functional.avg_pool1d(padded, kernel_size, stride=1).transpose(1, 2)


def patches(x: torch.Tensor, patch_len: int, stride: int) -> torch.Tensor:
    """(batch, time, channels) -> (batch, channels, n_patches, patch_len); the end is padded by
    repeating the last step `stride` times, as PatchTST does."""
    series = x.transpose(1, 2)
    series = torch.cat([series, series[..., -1:].expand(-1, -1, stride)], dim=-1)
    return series.unfold(-1, patch_len, stride)


def n_patches(seq_len: int, patch_len: int, stride: int) -> int:
    return (seq_len + stride - patch_len) // stride + 1


class GatedResidualNetwork(nn.Module):
    """TFT's GRN (Lim et al. 2021): LayerNorm(skip(a) + GLU(W1 ELU(W2 a + W3 c))), c an optional context."""

    def __init__(self, in_size: int, hidden: int, out_size: int, dropout: float, context_size: int = 0):
        super().__init__()
        self.skip = nn.Linear(in_size, out_size) if in_size != out_size else nn.Identity()
        self.fc1 = nn.Linear(in_size, hidden)
        self.context = nn.Linear(context_size, hidden, bias=False) if context_size else None
        self.fc2 = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.gate = nn.Linear(hidden, 2 * out_size)
        self.norm = nn.LayerNorm(out_size)

    def forward(self, a: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.fc1(a)
        if self.context is not None and context is not None:
            hidden = hidden + self.context(context)
        hidden = self.dropout(self.fc2(nn.functional.elu(hidden)))
        return self.norm(self.skip(a) + nn.functional.glu(self.gate(hidden), dim=-1))


class WindowAffine(nn.Module):
    """A linear baseline as a module: sum(window * coef) + intercept over the scaled window, in float64 (the
    baseline was fit and evaluated in float64), output in a network's units (a log return, or the logit of
    P(up)). What a served ensemble runs for a baseline member, so a bundle holds networks and baselines alike."""

    def __init__(self, seq_len: int, n_features: int) -> None:
        super().__init__()
        self.register_buffer("coef", torch.zeros(seq_len, n_features, dtype=torch.float64))
        self.register_buffer("intercept", torch.zeros((), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.double() * self.coef).sum(dim=(1, 2)) + self.intercept
