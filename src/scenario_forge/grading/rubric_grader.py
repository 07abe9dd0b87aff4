"""Rubric grading: did a candidate final answer meet each criterion, and what does it score?

A judge backend answers YES or NO for every (answer, criterion) pair; all pairs of a call go out
as one batch. The score is HealthBench's: the points of the met criteria (negative criteria
subtract when met) over the total positive points, clipped to [0, 1]. A verdict the judge could not
give (a refusal, anything but YES/NO, a failed request) is *unscoreable*: it is left out of both
sums and counted, never read as NO or as 0. An answer with no scoreable positive criterion has no
score (``None``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from ..backends.base import Backend, ChatRequest, StageUsage, timed_generate
from ..config import SamplingParams
from ..hashing import content_key
from ..prompts import PromptSet
from ..records import Criterion, Message
from .verdicts import parse_yes_no

JUDGE_TEMPLATE = "grade_criterion.j2"
DEFAULT_JUDGE_SAMPLING = SamplingParams(temperature=0.0, max_tokens=8, repeat_penalty=1.0, stop=["\n"])


class GradeItem(BaseModel):
    """One candidate answer to grade against a rubric."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conversation: list[Message]
    answer: str
    rubric: list[Criterion] = Field(min_length=1)


class AnswerGrade(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: HealthBench score in [0, 1], or None if no positive criterion could be judged.
    score: float | None
    #: Per criterion: True (met), False (not met), None (unscoreable).
    met: list[bool | None]
    unscoreable: int
    #: Raw judge replies, per criterion (kept for inspection).
    raw: list[str | None]
    #: Of the unscoreable criteria, those whose judge request failed (transient: worth asking again).
    failed_requests: int = 0


def rubric_score(rubric: Sequence[Criterion], met: Sequence[bool | None]) -> float | None:
    """HealthBench arithmetic over the scoreable criteria.

    >>> from scenario_forge.records import Criterion as C
    >>> rubric = [C(criterion="names the risk", points=6), C(criterion="cites a source", points=4),
    ...           C(criterion="invents a DOI", points=-8)]
    >>> rubric_score(rubric, [True, True, False])
    1.0
    >>> rubric_score(rubric, [True, False, True])   # (6 - 8) / 10, clipped
    0.0
    >>> rubric_score(rubric, [True, None, False])   # the unscoreable +4 leaves both sums
    1.0
    >>> rubric_score(rubric, [None, None, True]) is None
    True
    """
    if len(rubric) != len(met):
        raise ValueError("one verdict per criterion")
    scoreable = [(c, m) for c, m in zip(rubric, met) if m is not None]
    positive = sum(c.points for c, _ in scoreable if c.points > 0)
    if positive <= 0:
        return None
    achieved = sum(c.points for c, m in scoreable if m)
    return min(1.0, max(0.0, achieved / positive))


class RubricGrader:
    """Grades many (answer, rubric) items with one judge backend, batching every criterion."""

    def __init__(
        self,
        backend: Backend,
        prompts: PromptSet | None = None,
        sampling: SamplingParams = DEFAULT_JUDGE_SAMPLING,
    ) -> None:
        self.backend = backend
        self.prompts = prompts or PromptSet()
        self.sampling = sampling
        self.usage = StageUsage()

    def requests(self, items: Sequence[GradeItem]) -> list[ChatRequest]:
        out = []
        for i, item in enumerate(items):
            for j, c in enumerate(item.rubric):
                out.append(
                    ChatRequest(
                        id=f"grade:{i}:{j}",
                        messages=self.prompts.render(
                            JUDGE_TEMPLATE, conversation=item.conversation, answer=item.answer, criterion=c.criterion
                        ),
                        sampling=self.sampling,
                        seed=int(content_key(item.answer, c.criterion, length=8), 16) & 0x7FFFFFFF,
                    )
                )
        return out

    def grade(self, items: Sequence[GradeItem]) -> list[AnswerGrade]:
        if not items:
            return []
        generations = timed_generate(self.backend, self.requests(items), self.usage)
        it = iter(generations)
        grades: list[AnswerGrade] = []
        for item in items:
            met: list[bool | None] = []
            raw: list[str | None] = []
            failed = 0
            for _ in item.rubric:
                gen = next(it)
                met.append(parse_yes_no(gen.text) if gen.ok else None)
                raw.append(gen.text if gen.ok else f"error: {gen.error}")
                failed += not gen.ok
            grades.append(
                AnswerGrade(
                    score=rubric_score(item.rubric, met),
                    met=met,
                    unscoreable=sum(m is None for m in met),
                    raw=raw,
                    failed_requests=failed,
                )
            )
        return grades
