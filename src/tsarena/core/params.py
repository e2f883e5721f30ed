"""The base of every params section: strict, frozen, no unknown keys. Each layer defines the sections
it reads (data.params, split.params, ...); tsarena.config assembles them into params.yaml's."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

Date = Annotated[dt.date | None, Field(strict=False)]
PositiveInt = Annotated[int, Field(gt=0)]
# an architecture's `lookback`: how many of the window's latest steps it reads (None: all of
# window.seq_len, a longer lookback reads the whole window; contestants.layers.lookback_steps)
Lookback = Annotated[int, Field(ge=1, le=100_000)] | None


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


