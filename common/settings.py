"""The base of every typed settings object of the project (the pipeline configuration, the
Trainer's options, tracking, scoring): pydantic models that are valid once constructed."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """Immutable, unknown keys rejected, no silent coercion (a string is not a number, 1 is not
    a boolean)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
