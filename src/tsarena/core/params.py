"""The base of every params section: strict, frozen, no unknown keys. Each layer defines the sections
it reads (data.params, split.params, ...); tsarena.config assembles them into params.yaml's."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

Date = Annotated[dt.date | None, Field(strict=False)]
PositiveInt = Annotated[int, Field(gt=0)]
# an architecture's `lookback`: how many of the window's latest steps it reads (None: all of
# window.seq_len, a longer lookback reads the whole window, and the check stage says so;
# contestants.layers.lookback_steps)
Lookback = Annotated[int, Field(ge=1, le=100_000)] | None


def capped_lookback_note(name: str, lookback: int | None, seq_len: int) -> str | None:
    """What the check stage says when `<name>.lookback` is longer than the window: the model reads the
    whole window (contestants.layers.lookback_steps), which params.yaml alone would not show. Not an error, so a shorter
    `window.seq_len` does not fail a shipped lookback (patchtst's 20)."""
    if lookback is None or lookback <= seq_len:
        return None
    return (f"note: {name}.lookback is {lookback}, longer than window.seq_len {seq_len}: {name} reads the whole "
            f"window ({seq_len} steps)")


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


