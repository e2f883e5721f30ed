"""`evaluate` and `compare`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from tsarena.core.params import Section
from tsarena.judging.metrics import RMSE, SELECTABLE


class EvaluateParams(Section):
    cost_bps: Annotated[float, Field(ge=0, le=1000)] = 1.0
    bootstrap_reps: Annotated[int, Field(ge=100, le=100_000)] = 1000  # SPA, MCS and intervals
    block_size: Annotated[int, Field(ge=1)] | None = None  # stationary bootstrap mean block; null = Politis-White
    bootstrap_seed: int = 0


class CompareParams(Section):
    select_by: Literal[tuple(str(m) for m in SELECTABLE)] = str(RMSE)  # the catalogue's selectable metrics
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    registered_model: Annotated[str, Field(min_length=1)] = "tsarena-forecaster"


class ExplainParams(Section):
    """The explain stage (judging.attributions): what each contestant looks at, on a sample of the served
    fold's test windows."""

    enabled: bool = True
    windows: Annotated[int, Field(ge=10, le=100_000)] = 200  # test windows sampled, evenly over the period
    steps: Annotated[int, Field(ge=2, le=1024)] = 16  # integrated gradients: quadrature points along the path
    repeats: Annotated[int, Field(ge=1, le=100)] = 2  # permutation importance: shuffles per feature
    seed: int = 0  # the shuffles' seed
