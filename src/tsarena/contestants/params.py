"""`arena` (who competes) and `baselines`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from tsarena.core.params import Section

class ArenaParams(Section):
    """The contestants: registered architectures, and how (or whether) to ensemble them."""

    models: Annotated[list[str], Field(min_length=1)] = Field(default_factory=lambda: ["lstm", "transformer"])
    ensemble: Literal["inverse_mse", "stacking"] | None = None  # None: no ensemble
    # the ensemble's members: None = arena.models; else names from arena.models and the baselines, e.g. the price
    # models with sentiment_ridge (the design's fusion of price and news models)
    ensemble_members: Annotated[list[str], Field(min_length=1)] | None = None

    @property
    def members(self) -> list[str]:
        """What the ensemble combines."""
        return self.ensemble_members or self.models

    @model_validator(mode="after")
    def _known(self) -> ArenaParams:
        from tsarena.contestants.registry import architecture_names

        known = architecture_names()
        for name in self.models:
            if name in type(self).model_fields:  # arena.ensemble names the ensemble: not an architecture
                raise ValueError(f"models: {name!r} is not an architecture; set arena.ensemble "
                                 "(inverse_mse or stacking) to add it")
            if name not in known:
                raise ValueError(f"models: unknown architecture {name!r} (registered: {', '.join(known)})")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models: each architecture once, got {self.models}")
        if self.ensemble_members is not None:
            self._check_members()
        return self

    def _check_members(self) -> None:
        from tsarena.contestants.baselines import BASELINES

        if self.ensemble is None:
            raise ValueError("ensemble_members: set, but arena.ensemble is null (no ensemble): set arena.ensemble "
                             "(inverse_mse or stacking), or remove ensemble_members")
        for name in self.ensemble_members:
            if name not in self.models and name not in BASELINES:
                raise ValueError(f"ensemble_members: {name!r} is neither in arena.models {self.models} nor a baseline "
                                 f"({', '.join(BASELINES)})")
        if len(set(self.ensemble_members)) != len(self.ensemble_members):
            raise ValueError(f"ensemble_members: each once, got {self.ensemble_members}")


class BaselineParams(Section):
    # linear baseline: ridge penalty chosen on the validation split from this grid
    ridge_alphas: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)] = Field(
        default_factory=lambda: [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
    )
    ar_max_lag: Annotated[int, Field(ge=1, le=60)] = 10  # AR(p) baseline: p in 1..ar_max_lag chosen on validation


