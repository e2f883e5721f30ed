"""params.yaml validation and the dvc.yaml <-> code params contract."""

import re
from pathlib import Path

import pytest
import yaml

from tsarena import config
from tsarena.core.errors import TsarenaError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "section, raw, where, what",
    [
        ("data", {"sorce": "arch"}, "data.sorce", "unknown key"),
        ("lstm", {"hiden_size": 8}, "lstm.hiden_size", "unknown key"),
        ("lstm", {"hidden_size": "big"}, "lstm.hidden_size", "valid integer"),
        ("lstm", {"hidden_size": 64.5}, "lstm.hidden_size", "valid integer"),
        ("train", {"lr": -0.1}, "train.lr", "greater than 0"),
        ("lstm", {"dropout": 1.5}, "lstm.dropout", "less than 1"),
        ("data", {"source": "bloomberg"}, "data.source", "'arch', 'csv'"),
        ("train", {"scheduler": "step"}, "train.scheduler", "'plateau'"),
        ("data", {"start": "2015-01-01", "end": "2014-01-01"}, "data.end", "must be before"),
        ("data", {"start": "2015-13-01"}, "data.start", "date"),
        ("window", {"val_start": "2015-01-01"}, "window.test_start", "set both"),
        ("window", {"val_start": "2016-01-01", "test_start": "2015-01-01"}, "window.test_start", "must be before"),
        ("window", {"val_frac": 0.4, "test_frac": 0.4}, "window.test_frac", "20%"),
        ("transformer", {"d_model": 30, "nhead": 4}, "transformer.nhead", "not divisible"),
        ("features", {"macd": [26, 12, 9]}, "features.macd", "fast span"),
        ("features", {"target": {"kind": "price"}}, "features.target.kind", "'return'"),
        ("train", {"seeds": []}, "train.seeds", "at least 1"),
        ("train", {"seeds": [1, 1]}, "train.seeds", "each seed once"),
        ("train", {"seeds": 3}, "train.seeds", "valid list"),
        ("train", {"threads": 0}, "train.threads", "greater than or equal to 1"),
        ("train", {"threads": "all"}, "train.threads", "valid integer"),
        ("train", {"jobs": 0}, "train.jobs", "auto or a number of processes from 1 to 1024, got 0"),
        ("train", {"backend": "dask"}, "train.backend", "Input should be 'local' or 'ray'"),
        ("train", {"gpus_per_fit": -0.25}, "train.gpus_per_fit", "greater than or equal to 0"),
        ("train", {"ray_address": "ray://head:10001"}, "train.ray_address", "Ray Client address (ray://) is not supported"),
        ("train", {"jobs": "max"}, "train.jobs", "auto or a number of processes from 1 to 1024, got 'max'"),
        ("train", {"compile": "sometimes"}, "train.compile", "valid boolean"),
        ("window", {"folds": 0}, "window.folds", "greater than or equal to 1"),
        ("window", {"folds": 51}, "window.folds", "less than or equal to 50"),
        ("arena", {"models": []}, "arena.models", "at least 1"),
        ("arena", {"models": ["lstm", "lstn"]}, "arena.models", "unknown architecture 'lstn'"),
        ("arena", {"models": ["lstm", "lstm"]}, "arena.models", "each architecture once"),
        ("arena", {"models": ["lstm", "ensemble"]}, "arena.models", "set arena.ensemble"),
        ("arena", {"models": "lstm"}, "arena.models", "valid list"),
        ("arena", {"ensemble": "average"}, "arena.ensemble", "'inverse_mse'"),
        ("arena", {"ensemble_members": ["lstm", "ridge_last"]}, "arena.ensemble_members", "arena.ensemble is null"),
        ("arena", {"ensemble": "stacking", "ensemble_members": ["lstm", "tcn"]}, "arena.ensemble_members",
         "'tcn' is neither in arena.models"),
        ("arena", {"ensemble": "stacking", "ensemble_members": ["lstm", "lstm"]}, "arena.ensemble_members", "each once"),
        ("arena", {"ensemble": "stacking", "ensemble_members": []}, "arena.ensemble_members", "at least 1"),
        ("baselines", {"ridge_alphas": []}, "baselines.ridge_alphas", "at least 1"),
        ("baselines", {"ridge_alphas": [0]}, "baselines.ridge_alphas.0", "greater than 0"),
        ("evaluate", {"folds": 2}, "evaluate.folds", "unknown key"),
        ("mlp", {"num_layers": 0}, "mlp.num_layers", "greater than or equal to 1"),
        ("tcn", {"kernel_size": 1}, "tcn.kernel_size", "greater than or equal to 2"),
        ("tcn", {"levels": 13}, "tcn.levels", "less than or equal to 12"),
        ("cnn_lstm", {"channels": 0}, "cnn_lstm.channels", "greater than or equal to 1"),
        ("dlinear", {"moving_avg": 0}, "dlinear.moving_avg", "greater than or equal to 1"),
        ("mlp", {"lookback": 0}, "mlp.lookback", "greater than or equal to 1"),
        ("lstm", {"lookback": "all"}, "lstm.lookback", "valid integer"),
        ("train", {"average_best": 0}, "train.average_best", "greater than or equal to 1"),
        ("train", {"average_best": 101}, "train.average_best", "less than or equal to 100"),
        ("nbeats", {"num_blocks": 0}, "nbeats.num_blocks", "greater than or equal to 1"),
        ("tsmixer", {"ff_dim": "wide"}, "tsmixer.ff_dim", "valid integer"),
        ("patchtst", {"d_model": 30, "nhead": 4}, "patchtst.nhead", "not divisible"),
        ("patchtst", {"stride": 0}, "patchtst.stride", "greater than or equal to 1"),
        ("itransformer", {"dropout": 1.0}, "itransformer.dropout", "less than 1"),
        ("tft", {"hidden_size": 15}, "tft.nhead", "hidden_size 15 is not divisible by nhead 4"),
        ("informer", {"factor": 0}, "informer.factor", "greater than or equal to 1"),
        ("informer", {"distil": "yes"}, "informer.distil", "valid boolean"),
        ("transformer", {"d_modle": 64}, "transformer.d_modle", "unknown key"),
        ("baselines", {"ar_max_lag": 0}, "baselines.ar_max_lag", "greater than or equal to 1"),
        ("evaluate", {"bootstrap_reps": 10}, "evaluate.bootstrap_reps", "greater than or equal to 100"),
        ("evaluate", {"block_size": 0}, "evaluate.block_size", "greater than or equal to 1"),
        ("tune", {"trials": -1}, "tune.trials", "greater than or equal to 0"),
        ("tune", {"space": {"lstn": {}}}, "tune.space", "unknown architecture 'lstn'"),
        ("tune", {"space": {"lstm": {"hiden_size": {"choices": [8]}}}}, "tune.space.lstm.hiden_size", "not a param"),
        ("tune", {"space": {"lstm": {"dropout": {"low": 0.0, "high": 1.5}}}}, "tune.space.lstm.dropout",
         "1.5 is not a valid value"),
        ("tune", {"space": {"lstm": {"num_layers": {"low": 3, "high": 1}}}}, "tune.space.lstm.num_layers.high",
         "must be below high"),
        ("tune", {"space": {"lstm": {"cell": {"choices": []}}}}, "tune.space.lstm.cell.choices", "at least 1"),
        ("tune", {"train_space": {"lr": {"low": 0.0, "high": 0.1, "log": True}}}, "tune.train_space.lr.low",
         "log range needs low > 0"),
        ("tune", {"train_space": {"seeds": {"choices": [1]}}}, "tune.train_space.seeds", "valid list"),
        ("tune", {"pruner": "hyperband"}, "tune.pruner", "'median'"),
        ("tune", {"jobs": 0}, "tune.jobs", "greater than or equal to 1"),
        ("tune", {"seed": "x"}, "tune.seed", "valid integer"),
        ("tune", {"storage": 5}, "tune.storage", "valid string"),
        ("evaluate", {"bootstrap_seed": 1.5}, "evaluate.bootstrap_seed", "valid integer"),
        ("uncertainty", {"levels": [0.9, 0.8], "size_level": 0.8}, "uncertainty.levels", "ascending order"),
        ("uncertainty", {"levels": [0.9, 1.0]}, "uncertainty.levels.1", "less than 1"),
        ("uncertainty", {"levels": []}, "uncertainty.levels", "at least one level"),
        ("uncertainty", {"size_level": 0.5}, "uncertainty.size_level", "not one of levels [0.8, 0.9, 0.95]"),
        ("uncertainty", {"window": 5}, "uncertainty.window", "greater than or equal to 10"),
        ("uncertainty", {"gamma": -0.1}, "uncertainty.gamma", "greater than or equal to 0"),
        ("explain", {"windows": 5}, "explain.windows", "greater than or equal to 10"),
        ("explain", {"steps": 1}, "explain.steps", "greater than or equal to 2"),
        ("explain", {"repeats": 0}, "explain.repeats", "greater than or equal to 1"),
        ("explain", {"enabled": "sometimes"}, "explain.enabled", "valid boolean"),
        ("explain", {"step": 16}, "explain.step", "unknown key"),
        ("features", {"extra_lag": -1}, "features.extra_lag", "greater than or equal to 0"),
        ("features", {"extra_lag": 22}, "features.extra_lag", "less than or equal to 21"),
        ("data", {"source": "csv", "csv": {"extra_columns": ["Bad Name"]}}, "data.csv.extra_columns.0",
         "should match pattern"),
        ("data", {"source": "csv", "csv": {"extra_columns": ["volume"]}}, "data.csv.extra_columns",
         "already a price column"),
        ("data", {"source": "csv", "csv": {"extra_columns": ["mood", "mood"]}}, "data.csv.extra_columns",
         "each column once"),
        ("data", {"csv": {"extra_columns": ["mood"]}}, "data.csv", "come from a CSV; data.source is arch"),
        ("data", {"news": {"path": "news.csv"}}, "data.news.path", "under data/input/"),
        ("data", {"news": {"path": "data/input/news.txt"}}, "data.news.path", "a .csv or .parquet file"),
        ("data", {"news": {"timezone": "Mars/Olympus"}}, "data.news.timezone", "unknown time zone 'Mars/Olympus'"),
        ("sentiment", {"scorer": "vader"}, "sentiment.scorer", "Input should be 'lexicon' or 'transformers'"),
        ("sentiment", {"scorer": "transformers"}, "sentiment.model_path", "tsarena never downloads one"),
        ("sentiment", {"batch_size": 0}, "sentiment.batch_size", "greater than or equal to 1"),
        ("sentiment", {"close_time": "4pm"}, "sentiment.close_time", "should match pattern"),
        ("sentiment", {"close_time": "24:00"}, "sentiment.close_time", "should match pattern"),
        ("sentiment", {"timezone": "EST5"}, "sentiment.timezone", "unknown time zone"),
        ("features", {"sentiment_lag": -1}, "features.sentiment_lag", "greater than or equal to 0"),
    ],
)
def test_bad_params_name_the_key(section, raw, where, what):
    with pytest.raises(TsarenaError) as err:
        config.parse_section(section, raw)
    assert err.value.where == where
    assert what in err.value.what


def test_default_params_file_is_valid():
    raw = config.read_params(ROOT / "params.yaml")
    for name in config.known_sections():
        config.parse_section(name, raw.get(name))


@pytest.mark.parametrize("name", __import__("tsarena.contestants.registry", fromlist=["x"]).architecture_names())
def test_each_architecture_has_its_defaults_in_params_yaml_exactly(name):
    """One set of defaults: the params class in the model file. params.yaml ships exactly those values
    (so a reader of params.yaml sees what runs), and the nn.Module takes no defaults of its own."""
    import inspect

    from tsarena.contestants.registry import architecture

    raw = config.read_params(ROOT / "params.yaml")
    assert name in raw, f"params.yaml has no block for architecture {name!r}"
    defaults = architecture(name).Params().model_dump(mode="json")
    assert raw[name] == defaults
    # its search space too: the model file's SPACE is what params.yaml's tune.space.<name> ships, and valid
    assert raw["tune"]["space"][name] == architecture(name).SPACE
    tune = config.parse_section("tune", {"space": {name: architecture(name).SPACE}})
    # the defaults are a point of the space, so a study's first trial can be exactly the untuned fit
    from tsarena.fitting.params import TrainParams
    from tsarena.fitting.tuning import defaults_trial

    assert set(defaults_trial(name, defaults, TrainParams(), tune)) == \
        {f"{name}.{key}" for key in architecture(name).SPACE} | {f"train.{key}" for key in tune.train_space}
    init = inspect.signature(architecture(name).Model.__init__).parameters
    assert not any(p.default is not inspect.Parameter.empty for p in init.values()
                   if p.name not in ("target_mean", "target_std")), f"{name}.Model has defaults of its own"


@pytest.mark.parametrize("lookback, choices, first", [
    (None, [3, 5, None], {"mlp.lookback": None}),   # null is a choice: trial 0 reads the whole window, as untuned
    (5, [3, 5, None], {"mlp.lookback": 5}),
    (None, [3, 5], {}),                             # not a choice: Optuna cannot enqueue it, the sampler picks
    (7, [3, 5], {}),
])
def test_the_first_trial_is_the_untuned_value_whenever_the_space_holds_it(lookback, choices, first):
    from tsarena.fitting.params import TrainParams
    from tsarena.fitting.tuning import defaults_trial

    tune = config.parse_section("tune", {"space": {"mlp": {"lookback": {"choices": choices}}}, "train_space": {}})
    assert defaults_trial("mlp", {"lookback": lookback}, TrainParams(), tune) == first


def test_unknown_section_is_rejected(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("lstmm: {hidden_size: 3}\n")
    with pytest.raises(TsarenaError, match="unknown section 'lstmm'"):
        config.load("lstm", path=path)


def test_dates_in_params_are_quoted():
    """DVC refuses YAML's unquoted dates; every date-like value in params.yaml must be a string."""
    text = (ROOT / "params.yaml").read_text()
    assert not re.search(r":\s+\d{4}-\d{2}-\d{2}\s*(#|$)", text, re.M)


@pytest.mark.parametrize("name", config.known_sections())
def test_every_params_yaml_section_is_exactly_the_codes_defaults(name):
    """One place for defaults: each section's class (in the layer that reads it, or the model file). params.yaml
    ships exactly those values, so what a reader sees in it is what runs when a key is left out."""
    from pydantic import BaseModel

    def missing(raw: dict, model: BaseModel, where: str) -> list[str]:
        """Keys of `model`'s fields (and of its sub-sections') that `raw` leaves out."""
        out = []
        for key in type(model).model_fields:
            if key not in raw:
                out.append(f"{where}.{key}")
            elif isinstance(getattr(model, key), BaseModel):
                out += missing(raw[key], getattr(model, key), f"{where}.{key}")
        return out

    raw = config.read_params(ROOT / "params.yaml")
    assert name in raw, f"params.yaml has no section {name!r}"
    default = config.section_model(name)()
    assert config.parse_section(name, raw[name]) == default
    assert not missing(raw[name], default, name), "params.yaml should show every param"
