"""The architecture registry: every module in this package is an architecture, found by its file name.

An architecture file `<name>.py` defines `Params` (a params section, its defaults the only defaults)
and `Model` (an `nn.Module` built as `Model(params, n_features, seq_len, target_mean, target_std)`,
taking `(batch, seq_len, n_features)` float32 and returning `(batch,)`). Nothing else needs editing:
no list to extend. The helper modules below are the only files here that are not architectures.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import Any

HELPERS = {"layers", "baselines", "ensemble"}


def architecture_names() -> list[str]:
    """Registered architectures, from the file names alone (no import: config validation stays cheap)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                  if not m.name.startswith("_") and m.name not in HELPERS)


def architecture(name: str) -> ModuleType:
    if name not in architecture_names():
        raise KeyError(name)
    module = importlib.import_module(f"tsarena.models.{name}")
    for attribute in ("Params", "Model"):
        if not hasattr(module, attribute):
            raise TypeError(f"tsarena/models/{name}.py must define {attribute}")
    return module


def params_class(name: str) -> Any:
    return architecture(name).Params


def build_model(name: str, params: dict[str, Any], dims: dict[str, Any]) -> Any:
    """Build from plain data (params as in params.yaml, dims: n_features, seq_len, target_mean,
    target_std), so a checkpoint alone rebuilds the model."""
    module = architecture(name)
    return module.Model(module.Params.model_validate(params), **dims)


def n_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def save_checkpoint(path: str | Path, name: str, params: dict[str, Any], dims: dict[str, Any], model: Any) -> None:
    import torch

    torch.save({"name": name, "params": params, "dims": dims, "state_dict": model.state_dict()}, path)


def load_checkpoint(path: str | Path) -> tuple[str, dict[str, Any], dict[str, Any], Any]:
    """(name, params, dims, model in eval mode). Weights only: loading never unpickles arbitrary objects."""
    import torch

    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    model = build_model(checkpoint["name"], checkpoint["params"], checkpoint["dims"])
    model.load_state_dict(checkpoint["state_dict"])
    return checkpoint["name"], checkpoint["params"], checkpoint["dims"], model.eval()
