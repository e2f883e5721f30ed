"""The self-contained model: raw prices in, forecast per ticker out.

A bundle folder carries everything between the two: the feature params and names, the fitted
scaler, window length, target kind and horizon (`preprocess.json`); one or more members as state dicts
plus their config (`members.json`, `member_<i>.pt`; loaded weights-only, never unpickled), each a network
or a linear baseline as the affine map of the window it is; and for a return target its interval
calibration (`calibration.json`: the served fit's validation residuals and the levels, judging.intervals'
split conformal). One model is a bundle of one member with weight 1; the ensemble is a bundle of its
members with their weights. `tsarena predict`, the MLflow pyfunc and `mlflow models serve` all
run `Bundle.forecast` on the table as the user gave it (`input_prices` is the one normalisation, the
same checks as `data.source: csv`), so they agree to the last digit, and none reads the workspace.
The MLflow signature therefore declares outputs only: an input schema would make MLflow rename-check,
retype and drop columns (an `Adj Close`) before tsarena sees them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsarena.core.errors import TsarenaError

# missing values in a served input: short gaps filled from the past (as data.nan_policy's default)
INPUT_NAN_POLICY, INPUT_MAX_NAN_RUN = "ffill", 3
DEFAULT_TICKER = "INPUT"  # an input without a ticker column is one series of this name, on every route


def input_prices(raw: pd.DataFrame, where: str, extras: list[str], labels: pd.Series | None = None
                 ) -> tuple[pd.DataFrame, str]:
    """The one input contract of every route: what `data.source: csv` accepts (any column case, Adj Close
    applied as at ingest, text or numeric values, text or datetime dates, optional ticker), validated
    as there. Returns the price table and which close it is: "adjusted" (from Adj Close) or "raw"."""
    from tsarena.data.sources import complete_columns, has_adjusted_close
    from tsarena.data.validate import normalise_prices

    raw = pd.DataFrame(raw)
    basis = "adjusted" if has_adjusted_close(raw.columns) else "raw"
    table = complete_columns(raw, where, default_ticker=DEFAULT_TICKER)
    prices = normalise_prices(table, where, labels=labels, nan_policy=INPUT_NAN_POLICY,
                              max_nan_run=INPUT_MAX_NAN_RUN, sort=True, extras=extras)
    return prices, basis


NETWORK, AFFINE = "network", "affine"  # a member's kind: an architecture, or a linear baseline's affine map


@dataclass
class Member:
    name: str
    params: dict[str, Any]
    dims: dict[str, Any]
    weight: float
    model: Any
    kind: str = NETWORK

    @classmethod
    def affine(cls, name: str, coef: np.ndarray, intercept: float, weight: float = 1.0) -> Member:
        """A linear baseline (contestants.baselines.BaselineFit's affine form) as a member."""
        import torch

        from tsarena.contestants.layers import WindowAffine

        dims = {"seq_len": coef.shape[0], "n_features": coef.shape[1]}
        model = WindowAffine(**dims)
        model.load_state_dict({"coef": torch.from_numpy(np.asarray(coef, dtype=np.float64)),
                               "intercept": torch.tensor(float(intercept), dtype=torch.float64)})
        return cls(name, {}, dims, weight, model.eval(), AFFINE)


def build_member(spec: dict[str, Any]) -> Any:
    """A member's module from its entry in members.json (weights not yet loaded)."""
    if spec.get("kind", NETWORK) == AFFINE:
        from tsarena.contestants.layers import WindowAffine

        return WindowAffine(**spec["dims"])
    from tsarena.contestants.registry import build_model

    return build_model(spec["name"], spec["params"], spec["dims"])


def calibration(forecasts: pd.DataFrame, targets: np.ndarray, target_kind: str, levels: list[float]) -> dict | None:
    """A served model's interval calibration: the validation residuals (actual - forecast) of the forecasts
    it serves (`forecasts`: rows and forecast of its validation split) and the levels; None for a
    direction target (a probability has no interval)."""
    if target_kind != "return":
        return None
    residuals = targets[forecasts["row"].to_numpy()] - forecasts["forecast"].to_numpy(dtype=float)
    return {"levels": list(levels), "residuals": [float(r) for r in residuals]}


@dataclass
class Bundle:
    preprocess: dict[str, Any]
    members: list[Member]
    calibration: dict | None = None

    @classmethod
    def from_split(cls, meta: dict, scaler: dict, members: list[Member], calibration: dict | None = None) -> Bundle:
        """From the split stage's fold metadata (`meta`: schema + fold) and that fold's scaler."""
        keys = ("params", "features", "target_kind", "horizon", "seq_len")
        return cls({**{k: meta[k] for k in keys}, "sentiment": meta.get("sentiment"), "scaler": scaler}, members,
                   calibration)

    @staticmethod
    def save_calibration(folder: Path, calibration: dict | None) -> None:
        if calibration is not None:
            (folder / "calibration.json").write_text(json.dumps(calibration))

    def save(self, folder: Path) -> None:
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        (folder / "preprocess.json").write_text(json.dumps(self.preprocess, indent=1))
        self.save_calibration(folder, self.calibration)
        members = []
        for i, m in enumerate(self.members):
            torch.save(m.model.state_dict(), folder / f"member_{i}.pt")
            members.append({"name": m.name, "kind": m.kind, "params": m.params, "dims": m.dims, "weight": m.weight,
                            "file": f"member_{i}.pt"})
        (folder / "members.json").write_text(json.dumps(members, indent=1))

    @classmethod
    def load(cls, folder: str | Path) -> Bundle:
        import torch

        folder = Path(folder)
        if not (folder / "members.json").is_file():
            raise TsarenaError("not a tsarena model (no members.json)", str(folder))
        members = []
        for m in json.loads((folder / "members.json").read_text()):
            model = build_member(m)
            model.load_state_dict(torch.load(folder / m["file"], weights_only=True, map_location="cpu"))
            members.append(Member(m["name"], m["params"], m["dims"], m["weight"], model.eval(), m.get("kind", NETWORK)))
        calibrated = folder / "calibration.json"
        return cls(json.loads((folder / "preprocess.json").read_text()), members,
                   json.loads(calibrated.read_text()) if calibrated.is_file() else None)

    @staticmethod
    def combine(folders: dict[str, Path], weights: dict[str, float], out: Path, calibration: dict | None = None) -> None:
        """An ensemble bundle from its members' bundles (same split, so the same preprocessing), with the
        served combination's own interval calibration."""
        out.mkdir(parents=True)
        shutil.copyfile(next(iter(folders.values())) / "preprocess.json", out / "preprocess.json")
        members = []
        for i, (name, folder) in enumerate(folders.items()):
            (member,) = json.loads((folder / "members.json").read_text())
            shutil.copyfile(folder / member["file"], out / f"member_{i}.pt")
            members.append({**member, "weight": weights[name], "file": f"member_{i}.pt"})
        (out / "members.json").write_text(json.dumps(members, indent=1))
        Bundle.save_calibration(out, calibration)

    @property
    def column(self) -> str:
        kind, horizon = self.preprocess["target_kind"], self.preprocess["horizon"]
        return f"p_up_{horizon}d" if kind == "direction" else f"log_return_{horizon}d"

    def member_network(self, member: Member):
        """One member's forecast in target units as a differentiable function of scaled windows (a torch tensor)."""
        from tsarena.contestants.predictions import target_units

        return lambda windows: target_units(member.model(windows), self.preprocess["target_kind"])

    def network(self, windows):
        """The served forecast as one differentiable function of scaled windows (a torch tensor): the
        members' outputs in target units, weighted; what integrated gradients differentiate."""
        import torch

        return torch.stack([m.weight * self.member_network(m)(windows) for m in self.members]).sum(0)

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Forecasts (target units) of scaled windows (n, seq_len, n_features): the served computation."""
        import torch

        from tsarena.contestants.predictions import target_units

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
            return sum(m.weight * target_units(m.model(x).double().numpy(), self.preprocess["target_kind"])
                       for m in self.members)

    def latest_windows(self, prices: pd.DataFrame, where: str) -> tuple[np.ndarray, pd.DataFrame]:
        """Each ticker's most recent full window of a validated price table, featured and scaled
        exactly as in training."""
        from tsarena.data.params import FeatureParams
        from tsarena.data.features import build_features
        from tsarena.split.scaling import apply_scaler
        from tsarena.split.windows import check_lengths, windows_at

        features, names = build_features(prices, FeatureParams.model_validate(self.preprocess["params"]), labelled=False)
        if names != self.preprocess["features"]:
            raise TsarenaError(f"this model's features {self.preprocess['features']} cannot be rebuilt "
                               f"(got {names})", where)
        seq_len = self.preprocess["seq_len"]
        if features.empty:
            raise TsarenaError(f"too little history: no row has every feature defined; give at least "
                               f"{seq_len} rows more than the longest feature window", where)
        check_lengths(features.groupby("ticker", sort=False).size(), seq_len, f"{where}: rows per ticker with "
                      "every feature defined; give more history")
        matrix = apply_scaler(features[names].to_numpy(), self.preprocess["scaler"])
        ends = features.groupby("ticker", sort=False).tail(1).index.to_numpy()
        return np.ascontiguousarray(windows_at(matrix, ends, seq_len)), features.loc[ends, ["ticker", "date", "close"]]

    def with_news(self, prices: pd.DataFrame, news: pd.DataFrame | None, where: str,
                  news_labels: pd.Series | None = None, news_where: str = "news") -> pd.DataFrame:
        """Prices with each day's news sentiment, scored and dated as in training, where the model reads it;
        news for a model that does not read it is refused, not ignored."""
        from tsarena.data.sentiment import SENTIMENT_COLUMNS, news_sentiment

        scoring = self.preprocess.get("sentiment")
        if scoring is None:
            if news is not None:
                raise TsarenaError("this model was trained without news sentiment: the news given would be ignored; "
                                   "leave it out", news_where)
            return prices
        if news is None:
            raise TsarenaError(f"this model reads news sentiment ({', '.join(SENTIMENT_COLUMNS)}): give the news "
                               "beside the prices (tsarena predict PRICES --news NEWS; MLflow: params {'news': "
                               "<the news as CSV text>})", where)
        return news_sentiment(prices, news, scoring, news_where, news_labels)

    def forecast(self, raw: pd.DataFrame, where: str = "model input", labels: pd.Series | None = None,
                 news: pd.DataFrame | None = None, news_labels: pd.Series | None = None, news_where: str = "news"
                 ) -> pd.DataFrame:
        """Raw prices as the user gave them -> per ticker: as_of, close, close_basis (adjusted or raw),
        the forecast (log return over the horizon, or P(up)), and for a return target the implied price
        and the split-conformal interval at each calibrated level (`lower_conformal_90`, ...: log returns,
        as evaluate's for the same date). `labels` name the input's rows in errors (a CSV's line numbers);
        `news` (raw items, as a news file holds them) goes with a model that reads news sentiment."""
        from tsarena.data.features import raw_extras

        prices, basis = input_prices(raw, where, raw_extras(self.preprocess["features"]), labels)
        prices = self.with_news(prices, news, where, news_labels, news_where)
        batch, rows = self.latest_windows(prices, where)
        forecast = self.predict_windows(batch)
        out = pd.DataFrame({"ticker": rows["ticker"].astype(str).to_numpy(),
                            "as_of": rows["date"].dt.strftime("%Y-%m-%d").to_numpy(),
                            "close": rows["close"].to_numpy(dtype=float), "close_basis": basis,
                            self.column: np.asarray(forecast, dtype=float)})
        if self.preprocess["target_kind"] == "return":
            out[f"price_{self.preprocess['horizon']}d"] = out["close"] * np.exp(out[self.column])
        if self.calibration is not None:
            from tsarena.judging.intervals import STATIC, bound_columns, conformal_offsets

            residuals = np.asarray(self.calibration["residuals"])
            for level in self.calibration["levels"]:
                low, high = conformal_offsets(residuals, level)
                lower, upper = bound_columns(STATIC, level)
                out[lower], out[upper] = out[self.column] + low, out[self.column] + high
        return out


def example_input(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """The last `n` raw rows of one ticker, as a user would send them (dates as text)."""
    last = rows[rows["ticker"] == rows["ticker"].iloc[-1]].tail(n)
    return last.assign(date=last["date"].dt.strftime("%Y-%m-%d")).reset_index(drop=True)
