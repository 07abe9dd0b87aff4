"""Rubric grading: did a candidate final answer meet each criterion, and what does it score?

A judge backend gives a verdict for every (answer, criterion) pair (explanation then verdict, or
the verdict alone: :mod:`.config`); all pairs of a call go out as one batch. A verdict the judge
could not give (a refusal, no clear YES/NO, invalid JSON, a failed request) is asked again with a
new seed and some temperature, up to ``GradingConfig.retries`` times, all retries of a round in one
batch. If a criterion is still unscoreable the *whole answer* is unscoreable (score ``None``):
leaving that criterion out would let a trap answer earn full marks whenever the judge fails on the
one criterion that catches it.

The score is HealthBench's, per example and *unclipped*: the points of the met criteria (negative
criteria subtract when met) over the total positive points, so it can be negative. Only an
aggregate (a mean over answers) is clipped to [0, 1]: :func:`healthbench_mean`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..backends.base import Backend, ChatRequest, Generation, StageUsage, timed_generate
from ..hashing import content_key
from ..prompts import PromptSet
from ..records import Criterion, Message
from .config import VERDICT_SCHEMA, GradingConfig
from .verdicts import parse_verdict

JUDGE_TEMPLATE = "grade_criterion.j2"


class GradeItem(BaseModel):
    """One candidate answer to grade against a rubric."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conversation: list[Message]
    answer: str
    rubric: list[Criterion] = Field(min_length=1)


class AnswerGrade(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: HealthBench per-example score (unclipped: may be negative), or None if any criterion is unscoreable.
    score: float | None
    #: Per criterion: True (met), False (not met), None (unscoreable after every retry).
    met: list[bool | None]
    #: Criteria still unscoreable after the retries (any makes ``score`` None).
    unscoreable: int
    #: The judge's final reply per criterion (kept for inspection).
    raw: list[str | None]
    #: Of the unscoreable criteria, those whose last judge request failed (transient: worth asking again).
    failed_requests: int = 0
    #: Requests asked again for this answer (over all its criteria and rounds).
    retries: int = 0


def rubric_score(rubric: Sequence[Criterion], met: Sequence[bool | None]) -> float | None:
    """HealthBench's per-example score: achieved points / total positive points, unclipped.

    None if any criterion is unscoreable (``None``) or the rubric has no positive points.

    >>> from scenario_forge.records import Criterion as C
    >>> rubric = [C(criterion="names the risk", points=6), C(criterion="cites a source", points=4),
    ...           C(criterion="invents a DOI", points=-8)]
    >>> rubric_score(rubric, [True, True, False])
    1.0
    >>> rubric_score(rubric, [True, False, True])   # (6 - 8) / 10: negative, not clipped
    -0.2
    >>> rubric_score(rubric, [True, True, None]) is None   # the unread pitfall makes the answer unscoreable
    True
    """
    if len(rubric) != len(met):
        raise ValueError("one verdict per criterion")
    if any(m is None for m in met):
        return None
    positive = sum(c.points for c in rubric if c.points > 0)
    if positive <= 0:
        return None
    return sum(c.points for c, m in zip(rubric, met) if m) / positive


def healthbench_mean(scores: Sequence[float | None]) -> float | None:
    """HealthBench's aggregate: the mean of the scored per-example scores, clipped to [0, 1].

    >>> healthbench_mean([1.0, -0.2, 0.1]), healthbench_mean([-0.5, -0.2]), healthbench_mean([None]) is None
    (0.3, 0.0, True)
    """
    values = [s for s in scores if s is not None]
    if not values:
        return None
    return float(np.clip(np.mean(values), 0.0, 1.0))


class RubricGrader:
    """Grades many (answer, rubric) items with one judge backend, batching every criterion.

    ``counts`` keeps running totals over every :meth:`grade` call: ``criteria`` judged,
    ``retried`` (requests asked again), ``recovered`` (verdicts a retry rescued),
    ``unscoreable_criteria`` and ``unscoreable_answers``.
    """

    def __init__(
        self,
        backend: Backend,
        prompts: PromptSet | None = None,
        config: GradingConfig | None = None,
    ) -> None:
        self.backend = backend
        self.prompts = prompts or PromptSet()
        self.config = config or GradingConfig()
        self.form = self.config.form_for(backend.kind, backend.auto_json_schema)
        self.usage = StageUsage()
        self.counts: Counter[str] = Counter()

    def _request(self, item: GradeItem, i: int, j: int, attempt: int) -> ChatRequest:
        c = item.rubric[j]
        return ChatRequest(
            id=f"grade:{i}:{j}:{attempt}",
            messages=self.prompts.render(
                JUDGE_TEMPLATE, conversation=item.conversation, answer=item.answer, criterion=c.criterion,
                points=c.points, output=self.form,
            ),
            sampling=self.config.sampling(self.form, retry=attempt > 0),
            seed=int(content_key(item.answer, c.criterion, attempt, length=8), 16) & 0x7FFFFFFF,
            json_schema=VERDICT_SCHEMA if self.form == "json" else None,
        )

    def requests(self, items: Sequence[GradeItem]) -> list[ChatRequest]:
        """The first attempt's requests, one per (item, criterion), in order."""
        return [self._request(item, i, j, 0) for i, item in enumerate(items) for j in range(len(item.rubric))]

    def grade(self, items: Sequence[GradeItem]) -> list[AnswerGrade]:
        if not items:
            return []
        pairs = [(i, j) for i, item in enumerate(items) for j in range(len(item.rubric))]
        last: dict[tuple[int, int], Generation] = {}
        verdict: dict[tuple[int, int], bool | None] = {}
        asked_again: Counter[int] = Counter()
        todo = pairs
        for attempt in range(self.config.retries + 1):
            requests = [self._request(items[i], i, j, attempt) for i, j in todo]
            for (i, j), gen in zip(todo, timed_generate(self.backend, requests, self.usage)):
                last[(i, j)] = gen
                verdict[(i, j)] = parse_verdict(gen.text) if gen.ok else None
                if attempt:
                    asked_again[i] += 1
                    self.counts["recovered"] += verdict[(i, j)] is not None
            todo = [p for p in todo if verdict[p] is None]
            if not todo:
                break
        self.counts["criteria"] += len(pairs)
        self.counts["retried"] += sum(asked_again.values())
        grades: list[AnswerGrade] = []
        for i, item in enumerate(items):
            keys = [(i, j) for j in range(len(item.rubric))]
            met = [verdict[k] for k in keys]
            gens = [last[k] for k in keys]
            score = rubric_score(item.rubric, met)
            unscoreable = sum(m is None for m in met)
            self.counts["unscoreable_criteria"] += unscoreable
            self.counts["unscoreable_answers"] += score is None
            grades.append(
                AnswerGrade(
                    score=score,
                    met=met,
                    unscoreable=unscoreable,
                    raw=[g.text if g.ok else f"error: {g.error}" for g in gens],
                    failed_requests=sum(1 for m, g in zip(met, gens) if m is None and not g.ok),
                    retries=asked_again[i],
                )
            )
        return grades
