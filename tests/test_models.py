"""Architectures: causal mask, capacity to overfit, parameter counts, LSTM init."""

import pytest
import torch

from tsarena.models import build_model
from tsarena.models.lstm import LSTMForecaster
from tsarena.models.transformer import CausalTransformer

N_FEATURES, SEQ_LEN = 5, 12


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_transformer_outputs_at_or_before_k_ignore_later_inputs(positional):
    torch.manual_seed(0)
    model = CausalTransformer(N_FEATURES, SEQ_LEN, d_model=16, nhead=4, num_layers=3, positional=positional).eval()
    x = torch.randn(4, SEQ_LEN, N_FEATURES)
    for k in (0, 5, SEQ_LEN - 2):
        perturbed = x.clone()
        perturbed[:, k + 1 :] += 10 * torch.randn_like(perturbed[:, k + 1 :])
        with torch.no_grad():
            before, after = model.encode(x), model.encode(perturbed)
        torch.testing.assert_close(before[:, : k + 1], after[:, : k + 1], rtol=0, atol=1e-5)
        assert not torch.allclose(before[:, k + 1 :], after[:, k + 1 :])


CONFIGS = [
    ("lstm", {"hidden_size": 16, "num_layers": 2, "dropout": 0.0}),
    ("lstm", {"cell": "gru", "hidden_size": 16, "num_layers": 1}),
    ("lstm", {"hidden_size": 16, "bidirectional": True, "pooling": "attention", "dropout": 0.0}),
    ("lstm", {"hidden_size": 16, "bidirectional": True, "pooling": "last", "dropout": 0.0}),
    ("transformer", {"d_model": 16, "nhead": 2, "num_layers": 2, "dropout": 0.0}),
    ("transformer", {"d_model": 16, "nhead": 4, "num_layers": 1, "dropout": 0.0, "positional": "learned"}),
]


@pytest.mark.parametrize("name, config", CONFIGS)
def test_each_model_overfits_a_tiny_fixed_batch(name, config):
    torch.manual_seed(0)
    model = build_model(name, {"n_features": N_FEATURES, "seq_len": SEQ_LEN, **config})
    x, y = torch.randn(16, SEQ_LEN, N_FEATURES), torch.randn(16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    first = None
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first / 10


def _rnn_params(cell_gates: int, n_in: int, hidden: int, layers: int, directions: int) -> int:
    """Closed form: per layer and direction, gates * (hidden * (input + hidden) + 2 * hidden)."""
    total = 0
    for layer in range(layers):
        layer_in = n_in if layer == 0 else hidden * directions
        total += directions * cell_gates * (hidden * (layer_in + hidden) + 2 * hidden)
    return total


@pytest.mark.parametrize("cell, gates", [("lstm", 4), ("gru", 3)])
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (3, False), (2, True)])
def test_recurrent_parameter_counts_match_closed_form(cell, gates, layers, bidirectional):
    model = LSTMForecaster(N_FEATURES, hidden_size=10, num_layers=layers, bidirectional=bidirectional, cell=cell)
    directions = 2 if bidirectional else 1
    rnn = sum(p.numel() for p in model.rnn.parameters())
    assert rnn == _rnn_params(gates, N_FEATURES, 10, layers, directions)
    head = 10 * directions + 1
    assert sum(p.numel() for p in model.parameters()) == rnn + head


def test_lstm_forget_gate_bias_starts_at_one():
    model = LSTMForecaster(N_FEATURES, hidden_size=8, num_layers=2)
    for name, bias in model.rnn.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.all(bias[8:16] == 1.0)
        if name.startswith("bias_hh"):
            assert torch.all(bias[8:16] == 0.0)


def test_head_rescales_to_target_units():
    torch.manual_seed(0)
    base = LSTMForecaster(N_FEATURES, hidden_size=8).eval()
    scaled = LSTMForecaster(N_FEATURES, hidden_size=8, target_mean=0.001, target_std=0.02).eval()
    scaled.load_state_dict(base.state_dict() | {"head.target_mean": torch.tensor(0.001), "head.target_std": torch.tensor(0.02)})
    x = torch.randn(3, SEQ_LEN, N_FEATURES)
    with torch.no_grad():
        torch.testing.assert_close(scaled(x), base(x) * 0.02 + 0.001)
