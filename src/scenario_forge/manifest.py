"""``manifest.json``: what a run was asked to do, what it produced, and what it cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import AccountingError
from .records import Provenance, Reject

DEDUP_STAGE = "dedup"


class Counts(BaseModel):
    """``planned = kept + rejected + deduplicated``, with the rejects broken down."""

    model_config = ConfigDict(extra="forbid")

    planned: int
    kept: int
    rejected: int
    deduplicated: int
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    rejected_by_stage: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def tally(cls, planned: int, kept: int, rejects: Iterable[Reject]) -> Counts:
        rejects = list(rejects)
        dropped = [r for r in rejects if r.stage != DEDUP_STAGE]
        counts = cls(
            planned=planned,
            kept=kept,
            rejected=len(dropped),
            deduplicated=len(rejects) - len(dropped),
            rejected_by_reason=dict(sorted(Counter(f"{r.stage}:{r.reason}" for r in dropped).items())),
            rejected_by_stage=dict(sorted(Counter(r.stage for r in rejects).items())),
        )
        counts.check()
        return counts

    def check(self) -> None:
        if self.planned != self.kept + self.rejected + self.deduplicated:
            raise AccountingError(
                f"accounting does not add up: planned {self.planned} != kept {self.kept} + "
                f"rejected {self.rejected} + deduplicated {self.deduplicated}"
            )


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    generator: str
    config: dict[str, Any]
    provenance: Provenance
    counts: Counts
    usage: dict[str, dict[str, float | int]]
    timings: dict[str, float | int]
    files: dict[str, str]
