"""The report's plots show what a quant reads, on planted data: a forecast with signal rises across its
deciles, one bad first epoch does not flatten a loss curve, tiny spreads stay tiny, the cost is stated."""

import numpy as np
import pandas as pd
from scipy import stats

from tsarena.judging import plots
from tsarena.judging.trading import BUY_AND_HOLD


def wide(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1e-3, n)
    return pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=n), "ticker": "X",
                         "actual": signal + rng.normal(0, 5e-3, n), "skilled": signal,
                         "noise": rng.normal(0, 1e-3, n), "drift": 2e-4})


def test_calibration_rises_for_a_planted_signal_and_is_flat_for_noise(tmp_path):
    fig = plots.plot_calibration(wide(), ["skilled", "noise", "drift"], tmp_path / "c.png")
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible() and ax.get_title()}
    assert set(panels) == {"skilled", "noise"}  # a constant forecast has no deciles ...
    assert "not shown: drift" in fig._suptitle.get_text()  # ... and the figure says so
    rising = {}
    for name, ax in panels.items():
        x, y = ax.lines[0].get_data()  # the decile means
        assert len(x) == 10
        rising[name] = stats.spearmanr(x, y).statistic
    assert rising["skilled"] > 0.8 and rising["noise"] < rising["skilled"]
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_forecast_window_gives_the_forecasts_their_own_axis(tmp_path):
    frame = wide()
    fig = plots.plot_forecast_window(frame, ["skilled", "noise"], tmp_path / "w.png", days=60)
    bars, lines = fig.axes
    assert len(bars.patches) == 60 and {line.get_label() for line in lines.lines} >= {"skilled (right axis)"}
    reach = frame.tail(60)[["skilled", "noise"]].abs().to_numpy().max()
    assert lines.get_ylim()[1] < 2 * reach < bars.get_ylim()[1]  # a forecast is not a flat line at zero
    direction = frame.assign(actual=(frame["actual"] > 0).astype(float), skilled=0.5 + frame["skilled"])
    plots.plot_forecast_window(direction, ["skilled"], tmp_path / "d.png")  # 0/1 targets and probabilities draw too


def history(first: float) -> pd.DataFrame:
    later = [1.004, 0.999, 1.002, 0.997, 1.001]
    return pd.DataFrame({"fold": 1, "seed": 0, "epoch": range(6), "train_loss": [first, *later],
                         "val_loss": [first, *[v + 0.002 for v in later]]})


def test_one_bad_first_epoch_does_not_flatten_the_loss_curves(tmp_path):
    fig = plots.plot_losses({"spiky": history(5.0), "smooth": history(1.012)}, tmp_path / "l.png")
    spiky, smooth = (ax for ax in fig.axes if ax.get_visible())
    assert spiky.get_ylim()[1] < 1.1  # the useful epochs fill the panel ...
    assert any("epoch 0 off scale (5)" in t.get_text() for t in spiky.texts)  # ... and the outlier is named
    assert smooth.get_ylim()[1] >= 1.012 and not smooth.texts  # a first epoch in range is drawn, not clipped


def test_folds_axis_includes_zero_and_says_when_there_is_no_spread(tmp_path):
    table = pd.DataFrame({"model": ["a", "b", "random_walk"], "kind": ["neural", "neural", "baseline"]})
    one = pd.DataFrame({"fold": [1], "a": [0.00796], "b": [0.00797], "random_walk": [0.00800]})
    fig = plots.plot_folds(one, table, "test_rmse", tmp_path / "f.png")
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low <= 0 < high < 1  # skills of 0.4-0.5%: no axis from 0.4 to 0.5 that makes 0.1% look large
    assert "one fold: no spread across folds" in ax.get_title() and "one seed: no error bars" in ax.get_title()
    many = pd.DataFrame({"fold": [1, 2], "a": [0.0079, 0.0081], "a_std": [1e-5, 2e-5], "b": [0.008, 0.008],
                         "random_walk": [0.008, 0.008]})
    title = plots.plot_folds(many, table, "test_rmse", tmp_path / "g.png").axes[0].get_title()
    assert "2 folds" in title and "std across seeds" in title


def test_equity_states_the_cost_and_draws_buy_and_hold(tmp_path):
    dates = pd.bdate_range("2020-01-01", periods=50)
    held = np.linspace(1, 1.1, 50)
    equity = pd.DataFrame({"date": dates, "m": np.linspace(1, 0.95, 50), "drift": held, BUY_AND_HOLD: held})
    ax = plots.plot_equity(equity, 2.5, tmp_path / "e.png").axes[0]
    assert "2.5 bps per unit turnover" in ax.get_title()
    labels = [line.get_label() for line in ax.lines]
    assert "buy and hold" in labels and "drift (= buy and hold)" in labels and "m" in labels
