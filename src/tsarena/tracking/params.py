"""`tracking`: where runs go."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tsarena.core.params import Section

class TrackingParams(Section):
    uri: str | None = None
    experiment: Annotated[str, Field(min_length=1)] = "tsarena"


