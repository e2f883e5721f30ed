"""The one place params.yaml is parsed: its sections, each defined by the layer that reads it (and every
architecture's by its model file), validated in full, defaulted by the section's class.

Each stage loads only the sections it reads (the same sections dvc.yaml lists for it), so a
typo in `lstm` cannot fail `ingest`, and DVC's params tracking matches what the code reads. This
module sits above every layer it assembles; nothing below imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tsarena.core.errors import TsarenaError

PARAMS_FILE = "params.yaml"

# params.yaml's fixed sections -> their class, in the layer that reads them; imported when loaded, so a stage
# depends (and DVC re-runs it) only on the sections it reads (tests/test_dvc_contract.py follows this table)
SECTIONS: dict[str, str] = {
    "numerics": "tsarena.core.numerics:NumericsParams",
    "data": "tsarena.data.params:DataParams",
    "features": "tsarena.data.params:FeatureParams",
    "sentiment": "tsarena.data.params:SentimentParams",
    "window": "tsarena.split.params:WindowParams",
    "arena": "tsarena.contestants.params:ArenaParams",
    "train": "tsarena.fitting.params:TrainParams",
    "baselines": "tsarena.contestants.params:BaselineParams",
    "evaluate": "tsarena.judging.params:EvaluateParams",
    "compare": "tsarena.judging.params:CompareParams",
    "uncertainty": "tsarena.judging.intervals:UncertaintyParams",
    "explain": "tsarena.judging.params:ExplainParams",
    "tune": "tsarena.fitting.params:TuneParams",
    "tracking": "tsarena.tracking.params:TrackingParams",
}
# params that change how fast a stage runs, never what it computes: not in dvc.yaml, not logged as run params
SPEED_ONLY = ("train.jobs", "train.backend", "train.ray_address", "train.gpus_per_fit")


def section_model(name: str) -> type[BaseModel]:
    """The params class of a section: a fixed one's (SECTIONS), or an architecture's own (its model file)."""
    import importlib

    if name in SECTIONS:
        module, cls = SECTIONS[name].split(":")
        return getattr(importlib.import_module(module), cls)
    from tsarena.contestants.registry import params_class

    return params_class(name)


def known_sections() -> list[str]:
    from tsarena.contestants.registry import architecture_names

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
