"""Training engine: bit-identical reruns, batching, no dropped evaluation rows."""

import numpy as np
import pytest
import torch

from tsarena.fitting.params import TrainParams
from tsarena.contestants.registry import build_model
from tsarena.fitting.engine import ShuffledBatches, fit, loss_function, no_skill_loss, predict, seed_all

SEQ_LEN = 8


def data(n_rows: int = 400, n_features: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((n_rows, n_features)).astype(np.float32)
    targets = (0.5 * matrix[:, 0] + 0.1 * rng.standard_normal(n_rows)).astype(np.float32)
    ends = np.arange(SEQ_LEN - 1, n_rows)
    return matrix, targets, {"train": ends[:300], "val": ends[300:360], "test": ends[360:]}


def train_once(name: str, config: dict, average_best: int = 1):
    matrix, targets, ends = data()
    seed_all(7)
    model = build_model(name, config, {"n_features": 4, "seq_len": SEQ_LEN})
    params = TrainParams(max_epochs=3, batch_size=32, accelerator="cpu", patience=5, average_best=average_best)
    history = fit(model, matrix, targets, ends, SEQ_LEN, params, loss_function("return"), seed=7)
    return history, model


def test_two_runs_are_bit_identical():
    for name, config in [("lstm", {"hidden_size": 8, "dropout": 0.2, "num_layers": 2}),
                         ("transformer", {"d_model": 8, "nhead": 2, "num_layers": 1, "dropout": 0.2})]:
        (h1, m1), (h2, m2) = train_once(name, config), train_once(name, config)
        assert h1 == h2
        assert [row["epoch"] for row in h1] == [0, 1, 2]
        for (k1, v1), (k2, v2) in zip(m1.state_dict().items(), m2.state_dict().items()):
            assert k1 == k2 and torch.equal(v1, v2), k1


def test_training_learns_and_restores_best_weights():
    history, model = train_once("lstm", {"hidden_size": 8, "num_layers": 1, "dropout": 0.0})
    matrix, targets, ends = data()
    val_pred = predict(model, matrix, ends["val"], SEQ_LEN)
    val_loss = float(np.mean((val_pred - targets[ends["val"]]) ** 2))
    assert np.isclose(val_loss, min(row["val_loss"] for row in history), rtol=1e-4)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert [row["kept"] for row in history] == [row["val_loss"] == min(r["val_loss"] for r in history) for row in history]


def test_with_average_best_the_history_marks_the_averaged_epochs():
    history, _ = train_once("lstm", {"hidden_size": 8, "num_layers": 1, "dropout": 0.0}, average_best=2)
    best_two = sorted(history, key=lambda row: row["val_loss"])[:2]
    assert sorted(row["epoch"] for row in history if row["kept"]) == sorted(row["epoch"] for row in best_two)


def test_shuffled_batches_cover_every_sample_once_and_unshuffled_keep_order():
    shuffled = list(ShuffledBatches(10, 3, shuffle=True, seed=1))
    assert [len(b) for b in shuffled] == [3, 3, 3, 1]
    assert sorted(torch.cat(shuffled).tolist()) == list(range(10))
    assert torch.cat(list(ShuffledBatches(10, 4, shuffle=False))).tolist() == list(range(10))


def test_predict_keeps_every_row_including_a_short_last_batch(tmp_path):
    matrix, _, ends = data()
    model = build_model("lstm", {"hidden_size": 4}, {"n_features": 4, "seq_len": SEQ_LEN})
    loaded = model.eval()
    out = predict(loaded, matrix, ends["test"], SEQ_LEN, batch_size=7)
    assert out.shape == (len(ends["test"]),)
    single = predict(loaded, matrix, ends["test"][-1:], SEQ_LEN)
    assert np.isclose(out[-1], single[0], atol=1e-6)


def test_each_splits_loss_is_one_for_the_random_walk_on_that_split():
    """Calm validation data (small variance) must not make a no-skill forecast look skilful."""
    for scale in (0.02, 0.005):  # a volatile training period, a calm validation period
        target = torch.randn(10_000, dtype=torch.float64) * scale + 0.001
        ratio = loss_function("return")(torch.zeros_like(target), target).item() / no_skill_loss("return", target.numpy())
        assert ratio == pytest.approx(1.0, abs=1e-12)
    labels = torch.randint(0, 2, (1000,)).double()
    coin = loss_function("direction")(torch.zeros_like(labels), labels).item()  # logit 0 = probability 0.5
    assert coin / no_skill_loss("direction", labels.numpy()) == pytest.approx(1.0)


def test_training_reports_losses_relative_to_the_random_walk():
    matrix, targets, ends = data()
    model = build_model("lstm", {"hidden_size": 4}, {"n_features": 4, "seq_len": SEQ_LEN})
    scales = {s: no_skill_loss("return", targets[ends[s]]) for s in ("train", "val")}
    history = fit(model, matrix, targets, ends, SEQ_LEN, TrainParams(max_epochs=3, batch_size=32, accelerator="cpu",
                                                                      average_best=1), loss_function("return"), 7, scales=scales)
    val = predict(model, matrix, ends["val"], SEQ_LEN)
    expected = np.mean((val - targets[ends["val"]]) ** 2) / scales["val"]
    assert min(row["val_loss"] for row in history) == pytest.approx(expected, rel=1e-4)


def test_best_weights_average_the_best_epochs_and_skip_diverged_ones():
    from types import SimpleNamespace

    from tsarena.fitting.engine import BestWeights

    layer = torch.nn.Linear(1, 1)
    module, trainer = SimpleNamespace(model=layer), SimpleNamespace(current_epoch=0)
    kept = BestWeights(keep=2)
    for epoch, (loss, weight) in enumerate([(0.9, 1.0), (0.5, 2.0), (float("nan"), 50.0), (0.7, 4.0), (0.8, 8.0)]):
        trainer.current_epoch, module.val_loss = epoch, loss
        with torch.no_grad():
            layer.weight.fill_(weight)
        kept.on_validation_end(trainer, module)
    assert kept.best == 0.5 and kept.averaged()["weight"].item() == pytest.approx(3.0)  # epochs 1 and 3
    single = BestWeights()
    module.val_loss = 0.4
    single.on_validation_end(trainer, module)
    assert single.averaged()["weight"].item() == 8.0 and BestWeights().averaged() is None
