"""What lint says about one scenario: findings (one per problem) and the row's verdict."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LintFinding(BaseModel):
    """One problem: its reason code, a short human detail, and the message index when it is about one turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    detail: str
    turn: int | None = None


class LintResult(BaseModel):
    """A scenario's lint verdict: ``usable`` when there is no finding at all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    usable: bool
    reasons: list[str]
    findings: list[LintFinding]

    @classmethod
    def of(cls, id: str, findings: list[LintFinding]) -> LintResult:
        # built from checked values only: skip validation (lint runs on millions of rows)
        return cls.model_construct(id=id, usable=not findings, reasons=sorted({f.code for f in findings}), findings=findings)
