"""What lint says about one scenario: findings (one per problem) and the row's verdict."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

_FIELDS_FINDING = frozenset({"code", "detail", "turn"})
_FIELDS_RESULT = frozenset({"id", "usable", "reasons", "findings"})


_Model = TypeVar("_Model", bound=BaseModel)


def _built(cls: type[_Model], values: dict[str, Any], fields: frozenset[str]) -> _Model:
    """An instance from values the detectors already checked: what ``model_construct`` does, without
    its per-field bookkeeping (lint builds one result per row, millions of rows)."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(fields))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


class LintFinding(BaseModel):
    """One problem: its reason code, a short human detail, and the message index when it is about one turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    detail: str
    turn: int | None = None

    @classmethod
    def of(cls, code: str, detail: str, turn: int | None = None) -> LintFinding:
        """A finding from a detector's own checked values, built without re-validating them."""
        return _built(cls, {"code": code, "detail": detail, "turn": turn}, _FIELDS_FINDING)


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
        return _built(cls, {"id": id, "usable": not findings, "reasons": reasons, "findings": findings}, _FIELDS_RESULT)
