"""The registry contract, run for every registered architecture automatically (a new model file is
picked up with no edit here), plus architecture-specific checks (causal mask, closed-form sizes)."""

import numpy as np
import pytest
import torch

from tsarena.config import parse_section
from tsarena.fitting.params import TrainParams
from tsarena.contestants.registry import architecture_names, build_model, n_parameters

N_FEATURES, SEQ_LEN = 5, 12
ARCHITECTURES = architecture_names()


def dims(seq_len: int = SEQ_LEN, n_features: int = N_FEATURES) -> dict:
    return {"n_features": n_features, "seq_len": seq_len, "target_mean": 0.0, "target_std": 1.0}


def small(name: str) -> dict:
    """The architecture's defaults, dropout off (so the checks below are about the architecture)."""
    params = parse_section(name, {}).model_dump(mode="json")
    return params | ({"dropout": 0.0} if "dropout" in params else {})


def test_the_registry_finds_every_model_file_and_nothing_else():
    from pathlib import Path

    import tsarena.contestants.registry as registry

    files = {p.stem for p in registry.FOLDER.glob("*.py")} - {"__init__"}
    assert set(ARCHITECTURES) == files and {"lstm", "transformer"} <= files


@pytest.mark.parametrize("name", ARCHITECTURES)
@pytest.mark.parametrize("batch, seq_len, n_features", [(1, SEQ_LEN, N_FEATURES), (7, SEQ_LEN, N_FEATURES),
                                                         (3, 30, 2), (2, 5, 9)])
def test_output_is_one_float32_forecast_per_window(name, batch, seq_len, n_features):
    torch.manual_seed(0)
    model = build_model(name, small(name), dims(seq_len, n_features)).eval()
    with torch.no_grad():
        out = model(torch.randn(batch, seq_len, n_features))
    assert out.shape == (batch,) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert 0 < n_parameters(model) < 1_000_000  # sized for daily data on CPU


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_no_future_reaches_a_forecast_through_the_pipeline(name):
    """Raw prices -> causal features -> train-only scaler -> window -> model. Perturbing prices after
    the window's end row leaves its forecast unchanged; perturbing inside the window changes it
    (so the check is not vacuous)."""
    from tsarena.data.params import FeatureParams, SyntheticParams
    from tsarena.data.sources import synthetic_prices
    from tsarena.data.features import build_features
    from tsarena.split.scaling import apply_scaler, fit_scaler, scaler_to_dict
    from tsarena.split.windows import windows_at

    prices = synthetic_prices(SyntheticParams(kind="gbm", n_days=400, seed=3), None)
    params = FeatureParams()
    torch.manual_seed(0)
    model = None

    def forecast_at(frame, end: int) -> float:
        nonlocal model
        table, names = build_features(frame, params, labelled=False)
        values = table[names].to_numpy(dtype=np.float32)
        scaler = scaler_to_dict(fit_scaler([(0, values)], np.arange(len(values)) < 150, "standard"))
        matrix = apply_scaler(values, scaler)
        model = model or build_model(name, small(name), dims(SEQ_LEN, len(names))).eval()
        with torch.no_grad():
            return float(model(torch.from_numpy(np.ascontiguousarray(windows_at(matrix, np.array([end]), SEQ_LEN))))[0])

    end_date = build_features(prices, params, labelled=False)[0]["date"].iloc[250]
    end = 250
    rng = np.random.default_rng(1)
    future = prices["date"] > end_date
    perturbed = prices.copy()
    for column in ("open", "high", "low", "close"):
        perturbed.loc[future, column] *= np.exp(rng.normal(0, 0.05, future.sum()))
    perturbed["volume"] = perturbed["volume"].where(~future, perturbed["volume"] * 3)
    assert forecast_at(perturbed, end) == pytest.approx(forecast_at(prices, end), abs=1e-6)
    inside = prices.copy()
    inside.loc[prices["date"] == end_date, "close"] *= 1.05
    assert forecast_at(inside, end) != pytest.approx(forecast_at(prices, end), abs=1e-6)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_overfits_a_tiny_fixed_batch(name):
    """Capacity: the architecture can fit 16 random targets. On the whole window (a short `lookback`
    leaves a linear model like dlinear fewer weights than samples, by design)."""
    torch.manual_seed(0)
    config = small(name)
    model = build_model(name, config | ({"lookback": None} if "lookback" in config else {}), dims())
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


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_served_bundle_round_trip_predicts_the_same(name, tmp_path):
    """The one saved form of a model is the served bundle: weights only, rebuilt from its config."""
    from tsarena.serving.bundle import Bundle, Member

    torch.manual_seed(0)
    model = build_model(name, small(name), dims()).eval()
    Bundle({"seq_len": SEQ_LEN}, [Member(name, small(name), dims(), 1.0, model)]).save(tmp_path / "bundle")
    (member,) = Bundle.load(tmp_path / "bundle").members
    loaded = member.model
    assert (member.name, member.params, member.dims) == (name, small(name), dims())
    x = torch.randn(4, SEQ_LEN, N_FEATURES)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def tiny_windows(n_rows: int, val_at: int, test_at: int):
    """One fold of a signal in feature 0: windows' train, val and test split at those end positions."""
    from tsarena.split.windows import Windows

    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((n_rows, N_FEATURES)).astype(np.float32)
    targets = (0.5 * matrix[:, 0] + 0.1 * rng.standard_normal(n_rows)).astype(np.float32)
    ends = np.arange(SEQ_LEN - 1, n_rows)
    return Windows(matrix, targets, {"train": ends[:val_at], "val": ends[val_at:test_at], "test": ends[test_at:]},
                   {"seq_len": SEQ_LEN, "target_kind": "return", "target_mean": 0.0, "target_std": 1.0, "fold": 1}, None)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_refit_with_the_same_seed_is_bit_identical_with_or_without_deterministic_kernels(name, monkeypatch):
    """Seeding is what makes a CPU fit reproducible: the same weights whether or not torch's
    deterministic mode is on (the engine leaves it off on CPU, where it only costs time)."""
    from tsarena.fitting import engine as training
    from tsarena.fitting.fit import fit_one

    windows = tiny_windows(300, 200, 250)
    params = parse_section(name, {}).model_dump(mode="json")  # dropout on: its masks must be seeded too
    train = TrainParams(max_epochs=2, batch_size=32, accelerator="cpu")
    a = fit_one(name, params, windows, train, seed=3)
    assert not torch.are_deterministic_algorithms_enabled()
    monkeypatch.setattr(training, "deterministic_mode", lambda accelerator: True)
    try:
        b = fit_one(name, params, windows, train, seed=3)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    assert a.history == b.history
    for (k1, v1), (k2, v2) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2), k1
    assert a.predictions.equals(b.predictions)
    # the fit's val_loss is the kept model's (here the average of both epochs), relative to the random walk
    val, targets = windows.ends["val"], windows.targets
    kept = np.mean((training.predict(a.model, windows.matrix, val, SEQ_LEN) - targets[val]) ** 2) / np.mean(targets[val] ** 2)
    assert a.val_loss == pytest.approx(kept, rel=1e-5) and sum(row["kept"] for row in a.history) == 2


# ~8 s each (torch.export): the fast tier exports the LSTM, the full tier every architecture
@pytest.mark.parametrize("name", [n if n == "lstm" else pytest.param(n, marks=pytest.mark.system) for n in ARCHITECTURES])
def test_exports_in_mlflow_pt2_format_and_predicts_the_same(name, tmp_path):
    import mlflow.pytorch

    torch.manual_seed(0)
    model = build_model(name, small(name), dims()).eval()
    example = np.random.default_rng(0).standard_normal((2, SEQ_LEN, N_FEATURES)).astype(np.float32)
    mlflow.pytorch.save_model(model, str(tmp_path / "pt2"), serialization_format="pt2", input_example=example)
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "pt2"))
    x = np.random.default_rng(1).standard_normal((5, SEQ_LEN, N_FEATURES)).astype(np.float32)  # another batch size
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.asarray(loaded.predict(x)).ravel(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_transformer_outputs_at_or_before_k_ignore_later_inputs(positional):
    torch.manual_seed(0)
    model = build_model("transformer", {"d_model": 16, "nhead": 4, "num_layers": 3, "positional": positional},
                        dims()).eval()
    x = torch.randn(4, SEQ_LEN, N_FEATURES)
    for k in (0, 5, SEQ_LEN - 2):
        perturbed = x.clone()
        perturbed[:, k + 1 :] += 10 * torch.randn_like(perturbed[:, k + 1 :])
        with torch.no_grad():
            before, after = model.encode(x), model.encode(perturbed)
        torch.testing.assert_close(before[:, : k + 1], after[:, : k + 1], rtol=0, atol=1e-5)
        assert not torch.allclose(before[:, k + 1 :], after[:, k + 1 :])


@pytest.mark.parametrize("config", [{"cell": "gru", "num_layers": 1}, {"bidirectional": True, "pooling": "attention"},
                                    {"bidirectional": True}])
def test_recurrent_variants_overfit(config):
    torch.manual_seed(0)
    model = build_model("lstm", {"hidden_size": 16, "dropout": 0.0, **config}, dims())
    x, y = torch.randn(16, SEQ_LEN, N_FEATURES), torch.randn(16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10


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
    model = build_model("lstm", {"hidden_size": 10, "num_layers": layers, "bidirectional": bidirectional,
                                 "cell": cell}, dims())
    directions = 2 if bidirectional else 1
    rnn = sum(p.numel() for p in model.rnn.parameters())
    assert rnn == _rnn_params(gates, N_FEATURES, 10, layers, directions)
    assert n_parameters(model) == rnn + 10 * directions + 1


def test_lstm_forget_gate_bias_starts_at_one():
    model = build_model("lstm", {"hidden_size": 8, "num_layers": 2}, dims())
    for name, bias in model.rnn.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.all(bias[8:16] == 1.0)
        if name.startswith("bias_hh"):
            assert torch.all(bias[8:16] == 0.0)


def test_head_rescales_to_target_units():
    torch.manual_seed(0)
    base = build_model("lstm", {"hidden_size": 8}, dims()).eval()
    scaled = build_model("lstm", {"hidden_size": 8}, {**dims(), "target_mean": 0.001, "target_std": 0.02}).eval()
    scaled.load_state_dict(base.state_dict() | {"head.target_mean": torch.tensor(0.001), "head.target_std": torch.tensor(0.02)})
    x = torch.randn(3, SEQ_LEN, N_FEATURES)
    with torch.no_grad():
        torch.testing.assert_close(scaled(x), base(x) * 0.02 + 0.001)


def test_tcn_receptive_field_must_cover_the_window():
    from tsarena.core.errors import TsarenaError
    from tsarena.contestants.architectures.tcn import Params, receptive_field

    assert receptive_field(Params()) == 1 + 2 * 2 * (1 + 2 + 4 + 8) == 61  # covers the default window of 60
    build_model("tcn", {}, dims(seq_len=61))
    with pytest.raises(TsarenaError) as err:
        build_model("tcn", {}, dims(seq_len=62))
    assert err.value.where == "tcn.levels, tcn.kernel_size" and "receptive field 61" in err.value.what


def test_tft_exposes_its_variable_selection_weights():
    torch.manual_seed(0)
    model = build_model("tft", {}, dims()).eval()
    with torch.no_grad():
        weights = model.variable_weights(torch.randn(3, SEQ_LEN, N_FEATURES))
    assert weights.shape == (3, SEQ_LEN, N_FEATURES)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, SEQ_LEN))


@pytest.mark.parametrize("name", [n for n in ARCHITECTURES if "lookback" in parse_section(n, {}).model_fields])
def test_a_lookback_reads_only_the_windows_latest_steps(name):
    """`lookback: k` reads the window's last k steps: earlier steps change nothing, the last does;
    a lookback longer than the window reads all of it."""
    torch.manual_seed(0)
    model = build_model(name, small(name) | {"lookback": 3}, dims()).eval()
    x = torch.randn(2, SEQ_LEN, N_FEATURES)
    early, late = x.clone(), x.clone()
    early[:, : SEQ_LEN - 3] += 5.0
    late[:, -1] += 5.0
    with torch.no_grad():
        assert torch.equal(model(early), model(x)) and not torch.allclose(model(late), model(x))
        whole = build_model(name, small(name) | {"lookback": SEQ_LEN + 100}, dims()).eval()
        assert not torch.allclose(whole(early), whole(x))


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_monte_carlo_dropout_gives_ordered_seeded_intervals_for_every_model_with_dropout(name):
    """With uncertainty.mc_samples, a network with dropout writes its test rows' Monte Carlo dropout bounds,
    nested by level around a spread that is not zero, the same on a refit; one without dropout writes none."""
    from tsarena.contestants.predictions import MC_DROPOUT, bound_columns
    from tsarena.fitting.engine import has_dropout
    from tsarena.fitting.fit import fit_one

    windows = tiny_windows(200, 100, 140)
    params = parse_section(name, {}).model_dump(mode="json")
    train = TrainParams(max_epochs=1, batch_size=32, accelerator="cpu")
    levels = (0.8, 0.95)
    a = fit_one(name, params, windows, train, seed=3, mc_samples=16, levels=levels)
    columns = [c for level in levels for c in bound_columns(MC_DROPOUT, level)]
    if not has_dropout(a.model):
        assert not set(columns) & set(a.predictions.columns)
        return
    test = a.predictions[a.predictions["split"] == "test"]
    assert a.predictions.loc[a.predictions["split"] == "val", columns].isna().all().all()
    (lo80, hi80), (lo95, hi95) = (bound_columns(MC_DROPOUT, level) for level in levels)
    assert (test[lo95] <= test[lo80]).all() and (test[lo80] <= test[hi80]).all() and (test[hi80] <= test[hi95]).all()
    assert (test[hi95] - test[lo95]).mean() > 0
    b = fit_one(name, params, windows, train, seed=3, mc_samples=16, levels=levels)
    assert a.predictions.equals(b.predictions)
    plain = fit_one(name, params, windows, train, seed=3)  # sampling leaves the point forecast as it was
    assert np.array_equal(plain.predictions["forecast"], a.predictions["forecast"])
