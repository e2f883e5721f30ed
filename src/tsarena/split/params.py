"""`window`: the split's params."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from tsarena.core.params import Date, Section

Fraction = Annotated[float, Field(gt=0, lt=0.5)]


class WindowParams(Section):
    seq_len: Annotated[int, Field(ge=2, le=1000)] = 60
    scaler: Literal["standard", "robust", "none"] = "standard"
    # Dates, when both are set, override the fractions.
    val_start: Date = None
    test_start: Date = None
    val_frac: Fraction = 0.15
    test_frac: Fraction = 0.15
    # walk-forward: the test period cut into this many folds, every producer refit before each (1 = single split)
    folds: Annotated[int, Field(ge=1, le=50)] = 1

    @model_validator(mode="after")
    def _split(self) -> WindowParams:
        if (self.val_start is None) != (self.test_start is None):
            raise ValueError("test_start: set both val_start and test_start, or neither to split by fractions")
        if self.val_start and self.val_start >= self.test_start:
            raise ValueError(f"test_start: val_start {self.val_start} must be before test_start {self.test_start}")
        if self.val_frac + self.test_frac >= 0.8:
            raise ValueError("test_frac: val_frac + test_frac must leave at least 20% for training")
        return self


