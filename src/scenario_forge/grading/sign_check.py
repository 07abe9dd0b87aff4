"""Rubric sign checks: a criterion that describes a failure must carry negative points, a virtue
positive points (published rubrics contain wrong-signed items). A judge classifies each criterion as
GOOD or BAD behaviour; a clear disagreement with its sign is a mismatch, an unclear reply is
unscoreable and is not held against the criterion."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from ..backends.base import Backend, ChatRequest, StageUsage, timed_generate
from ..config import SamplingParams
from ..hashing import content_key
from ..prompts import PromptSet
from ..records import Criterion
from .verdicts import parse_good_bad

TEMPLATE = "sign_check.j2"
SAMPLING = SamplingParams(temperature=0.0, max_tokens=6, repeat_penalty=1.0, stop=["\n"])


class SignVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    describes_good: bool | None
    mismatch: bool

    @property
    def unscoreable(self) -> bool:
        return self.describes_good is None


def check_signs(
    backend: Backend,
    rubrics: Sequence[Sequence[Criterion]],
    prompts: PromptSet | None = None,
    usage: StageUsage | None = None,
) -> list[list[SignVerdict]]:
    """One verdict per criterion of every rubric, in one batch."""
    prompts = prompts or PromptSet()
    flat = [(i, j, c) for i, rubric in enumerate(rubrics) for j, c in enumerate(rubric)]
    requests = [
        ChatRequest(
            id=f"sign:{i}:{j}",
            messages=prompts.render(TEMPLATE, criterion=c.criterion),
            sampling=SAMPLING,
            seed=int(content_key(c.criterion, length=8), 16) & 0x7FFFFFFF,
        )
        for i, j, c in flat
    ]
    generations = timed_generate(backend, requests, usage if usage is not None else StageUsage())
    out: list[list[SignVerdict]] = [[] for _ in rubrics]
    for (i, _, c), gen in zip(flat, generations):
        good = parse_good_bad(gen.text) if gen.ok else None
        out[i].append(SignVerdict(describes_good=good, mismatch=good is not None and good != (c.points > 0)))
    return out
