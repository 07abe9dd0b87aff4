"""What every adapter hands back: one :class:`GradeRow` per item (split ``suite``, source ``suite``,
task = the suite's name, so the report's eval is ``suite/<name>``), and the ``ask`` callable through
which an adapter gets the model's answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...records import Message
from ..records import GradeRow
from .items import Suite

SPLIT = "suite"
SOURCE = "suite"

#: conversations in, one answer each out (None: the generation failed)
Ask = Callable[[Sequence[list[Message]]], list[str | None]]


def suite_grade(
    suite: Suite, model: str, item_id: str, answer: str | None, score: float | None, status: str,
    *, criteria: int = 0, unscoreable_criteria: int = 0, met: str = "[]",
) -> GradeRow:
    """The grade of one suite item."""
    return GradeRow(
        model=model, split=SPLIT, row_id=item_id, scenario_id=None, source=SOURCE, reward_type=suite.kind,
        domain=None, trait=None, task=suite.name, persona_variant=None, answer=answer, score=score, status=status,
        criteria=criteria, unscoreable_criteria=unscoreable_criteria, met=met,
    )


def rate(values: Sequence[bool]) -> float | None:
    """Share of True, None when empty.

    >>> rate([True, False, True, True]), rate([]) is None
    (0.75, True)
    """
    return sum(values) / len(values) if values else None
