"""What lint says about one scenario: findings (one per problem) and the row's verdict."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

_new = object.__new__
_setattr = object.__setattr__

# LintFinding.of and LintResult.of build an instance from values the detectors already checked:
# what ``model_construct`` does, without its per-field bookkeeping (lint builds a result and a
# finding or two per row, millions of rows), spelled out in their bodies (no helper call, the
# fields set built from a literal).


class LintFinding(BaseModel):
    """One problem: its reason code, a short human detail, and the message index when it is about one turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    detail: str
    turn: int | None = None

    @classmethod
    def of(cls, code: str, detail: str, turn: int | None = None) -> LintFinding:
        """A finding from a detector's own checked values, built without re-validating them."""
        model = _new(cls)
        _setattr(model, "__dict__", {"code": code, "detail": detail, "turn": turn})
        _setattr(model, "__pydantic_fields_set__", {"code", "detail", "turn"})
        _setattr(model, "__pydantic_extra__", None)
        _setattr(model, "__pydantic_private__", None)
        return model


class LintResult(BaseModel):
    """A scenario's lint verdict: ``usable`` when there is no finding at all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    usable: bool
    reasons: list[str]
    findings: list[LintFinding]

    @classmethod
    def of(cls, id: str, findings: list[LintFinding]) -> LintResult:
        """The verdict for ``findings`` (built without re-validating them).

        >>> r = LintResult.of("s1", [LintFinding.of("placeholder", "user turn 0: [URL]", 0)])
        >>> r == LintResult.model_validate(r.model_dump()), r.usable, r.reasons
        (True, False, ['placeholder'])
        """
        reasons = sorted({f.code for f in findings}) if findings else []
        model = _new(cls)
        _setattr(model, "__dict__", {"id": id, "usable": not findings, "reasons": reasons, "findings": findings})
        _setattr(model, "__pydantic_fields_set__", {"id", "usable", "reasons", "findings"})
        _setattr(model, "__pydantic_extra__", None)
        _setattr(model, "__pydantic_private__", None)
        return model
