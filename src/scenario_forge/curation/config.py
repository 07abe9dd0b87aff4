"""``scenario-forge curate``'s typed config: which runs to re-curate, and how.

The CLI options and the Prefect ``curate`` flow's parameters are built from this model; the
curation settings themselves are the same :class:`~scenario_forge.config.CurationConfig` that
``generate`` uses.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..config import CurationConfig
from ..flags import flag, group


class CurateConfig(BaseModel):
    """Re-curate existing runs from their ``generated.parquet`` (no regeneration)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runs: list[Path] = Field(
        min_length=1, description="run folders (OUT/RUN_ID) of one output store", json_schema_extra=flag(argument=True)
    )
    curation: CurationConfig = Field(default=CurationConfig(), description="curation settings", json_schema_extra=group())

    @field_validator("runs")
    @classmethod
    def _distinct(cls, runs: list[Path]) -> list[Path]:
        resolved = [p.resolve() for p in runs]
        twice = sorted({str(p) for p in runs if resolved.count(p.resolve()) > 1})
        if twice:
            raise ValueError(f"run given more than once: {', '.join(twice)}")
        return runs

    @field_validator("runs")
    @classmethod
    def _one_store(cls, runs: list[Path]) -> list[Path]:
        stores = sorted({str(p.resolve().parent) for p in runs})
        if len(stores) > 1:
            raise ValueError(f"runs must come from one output store, got {', '.join(stores)}; curate each store separately")
        return runs
