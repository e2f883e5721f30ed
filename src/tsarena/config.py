"""Typed params: the one place params.yaml is parsed and validated.

Each stage loads only the sections it reads (the same sections dvc.yaml lists for it), so a
typo in `lstm` cannot fail `ingest`, and DVC's params tracking matches what the code reads.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from tsarena.errors import TsarenaError

PARAMS_FILE = "params.yaml"

Date = Annotated[dt.date | None, Field(strict=False)]
PositiveInt = Annotated[int, Field(gt=0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AttentionSection(Section):
    """Params of a model with multi-head attention: `nhead` must divide its width (`width_field`)."""

    width_field: ClassVar[str] = "d_model"

    @model_validator(mode="after")
    def _heads_divide(self) -> AttentionSection:
        width = getattr(self, self.width_field)
        if width % self.nhead:
            raise ValueError(f"nhead: {self.width_field} {width} is not divisible by nhead {self.nhead}")
        return self


ColumnName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
RESERVED_COLUMNS = {"date", "ticker", "open", "high", "low", "close", "adj_close", "volume"}


class CsvParams(Section):
    path: str = "data/input/prices.csv"
    sort: bool = False  # opt in to sorting out-of-order dates instead of rejecting them
    # numeric columns of the user's own (a daily sentiment score, ...): causal features, see features.extra_lag
    extra_columns: list[ColumnName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _extras_are_new(self) -> CsvParams:
        clash = [c for c in self.extra_columns if c in RESERVED_COLUMNS]
        if clash:
            raise ValueError(f"extra_columns: {clash[0]!r} is already a price column")
        if len(set(self.extra_columns)) != len(self.extra_columns):
            raise ValueError(f"extra_columns: each column once, got {self.extra_columns}")
        return self


class YfinanceParams(Section):
    tickers: list[str] = Field(default_factory=lambda: ["SPY"], min_length=1)


class SyntheticParams(Section):
    kind: Literal["gbm", "ar1", "sine", "regime"] = "gbm"
    n_days: Annotated[int, Field(ge=100)] = 2000
    n_series: PositiveInt = 1
    phi: Annotated[float, Field(gt=-1, lt=1)] = 0.3
    seed: int = 0


class DataParams(Section):
    source: Literal["arch", "csv", "synthetic", "yfinance"] = "arch"
    series: list[Literal["sp500", "nasdaq", "wti", "vix"]] = Field(default_factory=lambda: ["sp500"], min_length=1)
    start: Date = None
    end: Date = None
    nan_policy: Literal["error", "drop", "ffill"] = "ffill"
    max_nan_run: Annotated[int, Field(ge=0)] = 3
    csv: CsvParams = CsvParams()
    yfinance: YfinanceParams = YfinanceParams()
    synthetic: SyntheticParams = SyntheticParams()

    @model_validator(mode="after")
    def _dates_ordered(self) -> DataParams:
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"end: start {self.start} must be before end {self.end}")
        if self.csv.extra_columns and self.source != "csv":
            raise ValueError(f"csv: extra_columns {self.csv.extra_columns} come from a CSV; data.source is {self.source}")
        return self


class TargetParams(Section):
    kind: Literal["return", "direction"] = "return"
    horizon: Annotated[int, Field(ge=1, le=63)] = 1


Windows = list[Annotated[int, Field(ge=2, le=252)]]


class FeatureParams(Section):
    return_lags: list[Annotated[int, Field(ge=1, le=252)]] = Field(default_factory=lambda: [1, 5, 21])
    volatility_windows: Windows = Field(default_factory=lambda: [5, 21])
    ma_windows: Windows = Field(default_factory=lambda: [5, 21, 63])
    rsi_window: Annotated[int, Field(ge=2, le=252)] | None = 14
    macd: Annotated[list[PositiveInt], Field(min_length=3, max_length=3)] | None = Field(
        default_factory=lambda: [12, 26, 9]
    )  # fast, slow, signal spans
    volume_window: Annotated[int, Field(ge=2, le=252)] | None = 21
    high_low_range: bool = True
    # a CSV's extra column dated t enters the feature row of t + extra_lag: 1 (default) = first used for the
    # forecast made the next day, safe for a value published after the close; 0 = known at t's close
    extra_lag: Annotated[int, Field(ge=0, le=21)] = 1
    target: TargetParams = TargetParams()

    @model_validator(mode="after")
    def _macd_order(self) -> FeatureParams:
        if self.macd and self.macd[0] >= self.macd[1]:
            raise ValueError(f"macd: fast span {self.macd[0]} must be below slow span {self.macd[1]}")
        return self


Fraction = Annotated[float, Field(gt=0, lt=0.5)]


class WindowParams(Section):
    seq_len: Annotated[int, Field(ge=2, le=1000)] = 60
    scaler: Literal["standard", "robust", "none"] = "standard"
    # Dates, when both are set, override the fractions.
    val_start: Date = None
    test_start: Date = None
    val_frac: Fraction = 0.15
    test_frac: Fraction = 0.15
    # walk-forward: the test period cut into this many folds, every producer refit before each (1 = single split)
    folds: Annotated[int, Field(ge=1, le=50)] = 1

    @model_validator(mode="after")
    def _split(self) -> WindowParams:
        if (self.val_start is None) != (self.test_start is None):
            raise ValueError("test_start: set both val_start and test_start, or neither to split by fractions")
        if self.val_start and self.val_start >= self.test_start:
            raise ValueError(f"test_start: val_start {self.val_start} must be before test_start {self.test_start}")
        if self.val_frac + self.test_frac >= 0.8:
            raise ValueError("test_frac: val_frac + test_frac must leave at least 20% for training")
        return self


class TrainParams(Section):
    max_epochs: Annotated[int, Field(ge=1, le=10_000)] = 15
    batch_size: Annotated[int, Field(ge=1, le=65_536)] = 64
    lr: Annotated[float, Field(gt=0, le=1)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 1e-4
    scheduler: Literal["plateau", "cosine", "none"] = "plateau"
    patience: Annotated[int, Field(ge=1)] = 5
    grad_clip: Annotated[float, Field(ge=0)] = 1.0
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    precision: Literal["32", "bf16-mixed"] = "32"
    # several devices or nodes: Lightning's own strategies (DDP); 1 device needs none
    devices: Annotated[int, Field(ge=1, le=1024)] = 1
    num_nodes: Annotated[int, Field(ge=1, le=1024)] = 1
    strategy: Literal["auto", "ddp"] = "auto"
    # torch.compile the model for training: pays only for some architectures (BENCHMARKS.md, "compile")
    compile: bool = False
    # a fit's intra-op threads: part of its result (reductions split by thread count), so fixed, not
    # derived from the machine; 1 makes a fit reproducible on any machine
    threads: Annotated[int, Field(ge=1, le=1024)] = 1
    # fits run side by side in worker processes; auto: cores // threads. A speed knob: no result changes
    jobs: Literal["auto"] | Annotated[int, Field(ge=1, le=1024)] = "auto"

    @field_validator("jobs", mode="before")
    @classmethod
    def _jobs_auto_or_count(cls, value: object) -> object:
        """One message for both ways to get it wrong (the union would report only its first branch)."""
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1024):
            return value
        raise ValueError(f"auto or a number of processes from 1 to 1024, got {value!r}")
    # one model (and one MLflow run) per seed; evaluate reports mean, std, min and max across them
    seeds: Annotated[list[int], Field(min_length=1, max_length=100)] = Field(default_factory=lambda: [42])

    @model_validator(mode="after")
    def _seeds_unique(self) -> TrainParams:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: each seed once, got {self.seeds}")
        return self


class ArenaParams(Section):
    """The contestants: registered architectures, and how (or whether) to ensemble them."""

    models: Annotated[list[str], Field(min_length=1)] = Field(default_factory=lambda: ["lstm", "transformer"])
    ensemble: Literal["inverse_mse", "stacking"] | None = None  # None: no ensemble

    @model_validator(mode="after")
    def _known(self) -> ArenaParams:
        from tsarena.models import architecture_names

        known = architecture_names()
        for name in self.models:
            if name == "ensemble":
                raise ValueError("models: 'ensemble' is not an architecture; set arena.ensemble "
                                 "(inverse_mse or stacking) to add it")
            if name not in known:
                raise ValueError(f"models: unknown architecture {name!r} (registered: {', '.join(known)})")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models: each architecture once, got {self.models}")
        return self


class BaselineParams(Section):
    # linear baseline: ridge penalty chosen on the validation split from this grid
    ridge_alphas: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)] = Field(
        default_factory=lambda: [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
    )
    ar_max_lag: Annotated[int, Field(ge=1, le=60)] = 10  # AR(p) baseline: p in 1..ar_max_lag chosen on validation


class EvaluateParams(Section):
    cost_bps: Annotated[float, Field(ge=0, le=1000)] = 1.0
    bootstrap_reps: Annotated[int, Field(ge=100, le=100_000)] = 1000  # SPA, MCS and intervals
    block_size: Annotated[int, Field(ge=1)] | None = None  # stationary bootstrap mean block; null = Politis-White
    bootstrap_seed: int = 0


class CompareParams(Section):
    select_by: Literal["test_rmse", "test_mae", "test_dir_acc", "test_ic", "test_sharpe", "dm_pvalue"] = "test_rmse"
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    registered_model: Annotated[str, Field(min_length=1)] = "tsarena-forecaster"


class SearchRange(Section):
    """A numeric search range: integers when both bounds are, floats otherwise; `log` samples log-uniformly."""

    low: int | float
    high: int | float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if not self.low < self.high:
            raise ValueError(f"high: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"low: a log range needs low > 0, got {self.low}")
        return self

    def values(self) -> list:
        return [self.low, self.high]


class SearchChoice(Section):
    choices: Annotated[list[int | float | str | bool | None], Field(min_length=1)]

    def values(self) -> list:
        return list(self.choices)


def _spec_kind(raw: Any) -> str:
    return "choice" if isinstance(raw, dict) and "choices" in raw or isinstance(raw, SearchChoice) else "range"


Spec = Annotated[Annotated[SearchRange, Tag("range")] | Annotated[SearchChoice, Tag("choice")], Discriminator(_spec_kind)]
Space = dict[str, Spec]


def check_space(space: Space, params: type[BaseModel], base: dict[str, Any]) -> None:
    """Every searched key is a field of `params`, and every bound or choice is a valid value for it."""
    for key, spec in space.items():
        if key not in params.model_fields:
            raise ValueError(f"{key}: not a param of this section")
        for value in spec.values():
            try:
                params.model_validate({**base, key: value})
            except ValidationError as exc:  # the field's own rule; a cross-field rule is checked per trial
                own = [e for e in exc.errors() if tuple(e["loc"]) == (key,)]
                if own:
                    raise ValueError(f"{key}: {value!r} is not a valid value ({own[0]['msg']})") from None


class TuneParams(Section):
    """Equal tuning budgets (Optuna): `trials` per architecture, seeded TPE, median pruning, on fold 1's
    training and validation windows only; 0 uses the params as they are."""

    trials: Annotated[int, Field(ge=0, le=100_000)] = 0
    seed: int = 0
    jobs: Annotated[int, Field(ge=1, le=256)] = 1  # local worker processes sharing one study
    storage: str | None = None  # null: in memory (jobs 1) or a journal file; else an RDB URL shared by machines
    pruner: Literal["median", "none"] = "median"
    train_space: Space = Field(default_factory=lambda: {"lr": SearchRange(low=1e-4, high=1e-2, log=True)})
    space: dict[str, Space] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _spaces_fit_their_sections(self) -> TuneParams:
        from tsarena.models import architecture_names, params_class

        try:
            check_space(self.train_space, TrainParams, {})
        except ValueError as exc:
            raise ValueError(f"train_space.{exc}") from None
        for name, space in self.space.items():
            if name not in architecture_names():
                raise ValueError(f"space: unknown architecture '{name}'")
            try:
                check_space(space, params_class(name), {})
            except ValueError as exc:
                raise ValueError(f"space.{name}.{exc}") from None
        return self


class TrackingParams(Section):
    uri: str | None = None
    experiment: Annotated[str, Field(min_length=1)] = "tsarena"


SECTIONS: dict[str, type[BaseModel]] = {
    "data": DataParams,
    "features": FeatureParams,
    "window": WindowParams,
    "arena": ArenaParams,
    "train": TrainParams,
    "baselines": BaselineParams,
    "evaluate": EvaluateParams,
    "compare": CompareParams,
    "tune": TuneParams,
    "tracking": TrackingParams,
}


def section_model(name: str) -> type[BaseModel]:
    """The params class of a section: a fixed one above, or an architecture's own (its model file)."""
    if name in SECTIONS:
        return SECTIONS[name]
    from tsarena.models import params_class

    return params_class(name)


def known_sections() -> list[str]:
    from tsarena.models import architecture_names

    return [*SECTIONS, *architecture_names()]


def _where(loc: tuple[Any, ...], section: str) -> str:
    return ".".join([section, *(str(part) for part in loc)])


def _describe(err: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """(message, location); cross-field validators name their key as a `key: ` prefix."""
    loc = tuple(part for part in err["loc"] if part not in ("range", "choice") and "[" not in str(part))  # union tags
    if err["type"] == "extra_forbidden":
        return f"unknown key '{loc[-1]}'", loc
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "value_error":
        key, sep, rest = msg.partition(": ")
        if sep and all(part.isidentifier() for part in key.split(".")):
            return rest, (*loc, key)
        return msg, loc
    return f"{msg}, got {err.get('input')!r}", loc


def parse_section(name: str, raw: Any) -> Any:
    """Validate one section; the first problem becomes one `error: ... (section.key)` line."""
    model = section_model(name)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise TsarenaError(f"must be a mapping, got {raw!r}", name)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        what, loc = _describe(exc.errors()[0])
        raise TsarenaError(what, _where(loc, name)) from None


def read_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise TsarenaError("params file not found", str(path)) from None
    except yaml.YAMLError as exc:
        raise TsarenaError(f"params file is not valid YAML: {exc}".replace("\n", " "), str(path)) from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise TsarenaError("params file must be a mapping", str(path))
    unknown = sorted(set(raw) - set(known_sections()))
    if unknown:
        raise TsarenaError(f"unknown section '{unknown[0]}'", str(path))
    return raw


def load(*sections: str, path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Read params.yaml and validate the named sections in full; defaults fill what is absent."""
    raw = read_params(path)
    return {name: parse_section(name, raw.get(name)) for name in sections}


# params that change how fast a stage runs, never what it computes: not in dvc.yaml, not logged as run params
SPEED_ONLY = ("train.jobs",)


def result_params(params: dict[str, Any]) -> dict[str, Any]:
    """flatten(params) without SPEED_ONLY: what a run's results depend on (its MLflow params, a study's name)."""
    return {k: v for k, v in flatten(params).items() if k not in SPEED_ONLY}


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted names (`lstm.hidden_size`) for MLflow, identical across models where meaning is."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
