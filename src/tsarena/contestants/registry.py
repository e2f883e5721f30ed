"""The architecture registry: every module in contestants/architectures/ is an architecture, found by its
file name.

An architecture file `<name>.py` defines `Params` (a params section, its defaults the only defaults)
and `Model` (an `nn.Module` built as `Model(params, n_features, seq_len, target_mean, target_std)`,
taking `(batch, seq_len, n_features)` float32 and returning `(batch,)`). Nothing else needs editing:
no list to extend. An architecture imports only from below it (core.params, contestants.layers).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Any

FOLDER = Path(__file__).with_name("architectures")


def architecture_names() -> list[str]:
    """Registered architectures, from the file names alone (no import: config validation stays cheap)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(FOLDER)]) if not m.name.startswith("_"))


def architecture(name: str) -> ModuleType:
    if name not in architecture_names():
        raise KeyError(name)
    module = importlib.import_module(f"tsarena.contestants.architectures.{name}")
    for attribute in ("Params", "Model"):
        if not hasattr(module, attribute):
            raise TypeError(f"tsarena/contestants/architectures/{name}.py must define {attribute}")
    return module


def params_class(name: str) -> Any:
    return architecture(name).Params


def search_space(name: str) -> dict[str, Any]:
    """The architecture's default tuning space (`SPACE` in its file: {key: {low, high[, log]} or {choices}})."""
    return getattr(architecture(name), "SPACE", {})


def build_model(name: str, params: dict[str, Any], dims: dict[str, Any]) -> Any:
    """Build from plain data (params as in params.yaml, dims: n_features, seq_len, target_mean,
    target_std), so a served bundle's config alone rebuilds the model."""
    module = architecture(name)
    return module.Model(module.Params.model_validate(params), **dims)


def n_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())
