"""Model registry: a name in params.yaml and dvc.yaml maps to one architecture file."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tsarena.models.lstm import LSTMForecaster
from tsarena.models.transformer import CausalTransformer

REGISTRY: dict[str, type[nn.Module]] = {"lstm": LSTMForecaster, "transformer": CausalTransformer}


def build_model(name: str, config: dict[str, Any]) -> nn.Module:
    """Build from the config saved beside the weights, so `model.pt` alone rebuilds the model."""
    return REGISTRY[name](**config)


def save_checkpoint(path: str, name: str, config: dict[str, Any], model: nn.Module) -> None:
    torch.save({"name": name, "config": config, "state_dict": model.state_dict()}, path)


def load_checkpoint(path: str) -> tuple[str, dict[str, Any], nn.Module]:
    """Weights only: loading never unpickles arbitrary objects."""
    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    model = build_model(checkpoint["name"], checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return checkpoint["name"], checkpoint["config"], model.eval()
