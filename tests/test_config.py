"""params.yaml validation and the dvc.yaml <-> code params contract."""

import re
from pathlib import Path

import pytest
import yaml

from tsarena import config
from tsarena.errors import TsarenaError

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
        ("evaluate", {"folds": 0}, "evaluate.folds", "greater than or equal to 1"),
    ],
)
def test_bad_params_name_the_key(section, raw, where, what):
    with pytest.raises(TsarenaError) as err:
        config.parse_section(section, raw)
    assert err.value.where == where
    assert what in err.value.what


def test_default_params_file_is_valid():
    raw = config.read_params(ROOT / "params.yaml")
    for name in config.SECTIONS:
        config.parse_section(name, raw.get(name))
    assert config.parse_section("transformer", raw["transformer"]).feedforward == 4 * raw["transformer"]["d_model"]


def test_unknown_section_is_rejected(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("lstmm: {hidden_size: 3}\n")
    with pytest.raises(TsarenaError, match="unknown section 'lstmm'"):
        config.load("lstm", path=path)


def test_dates_in_params_are_quoted():
    """DVC refuses YAML's unquoted dates; every date-like value in params.yaml must be a string."""
    text = (ROOT / "params.yaml").read_text()
    assert not re.search(r":\s+\d{4}-\d{2}-\d{2}\s*(#|$)", text, re.M)


def _sections_loaded(script: str) -> set[str]:
    """The params sections a stage script validates: its config.load(...) arguments."""
    source = (ROOT / script).read_text()
    names = set()
    for call in re.findall(r"config\.load\(([^)]*)\)", source):
        names |= set(re.findall(r'"(\w+)"', call))
    if "config.load(\"train\", name" in source:
        names.add("<model>")
    return names


def test_each_stage_lists_exactly_the_params_it_reads():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        script = stage["cmd"].split()[1]
        declared = {p.split(".")[0] for p in stage["params"]}  # a dotted key: the stage uses only that key
        read = _sections_loaded(script)
        if "<model>" in read:
            model = stage["cmd"].split()[2]
            read = (read - {"<model>"}) | {model}
        assert declared == read, f"{name}: dvc.yaml lists {declared}, code reads {read}"
