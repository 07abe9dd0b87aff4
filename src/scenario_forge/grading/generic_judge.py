"""The ``generic-reward`` arm: a judge rates overall helpfulness (1-10) instead of the item's rubric.

The paper's control trained on the same rows with a generic-helpfulness reward and saw no
significant gains, so a recipe swaps the reward type, not only the rows. Scores map 1..10 onto
0..1; an unreadable rating is unscoreable (None), never 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..backends.base import Backend, ChatRequest, StageUsage, timed_generate
from ..config import SamplingParams
from ..hashing import content_key
from ..prompts import PromptSet
from ..records import Message
from .verdicts import parse_rating

TEMPLATE = "generic_reward.j2"
SAMPLING = SamplingParams(temperature=0.0, max_tokens=6, repeat_penalty=1.0, stop=["\n"])


class GenericJudge:
    def __init__(self, backend: Backend, prompts: PromptSet | None = None, sampling: SamplingParams = SAMPLING) -> None:
        self.backend = backend
        self.prompts = prompts or PromptSet()
        self.sampling = sampling
        self.usage = StageUsage()

    def score(self, items: Sequence[tuple[list[Message], str]]) -> list[float | None]:
        """``[(conversation, answer), ...]`` -> scores in [0, 1] or None."""
        requests = [
            ChatRequest(
                id=f"generic:{i}",
                messages=self.prompts.render(TEMPLATE, conversation=conv, answer=answer),
                sampling=self.sampling,
                seed=int(content_key(answer, length=8), 16) & 0x7FFFFFFF,
            )
            for i, (conv, answer) in enumerate(items)
        ]
        out: list[float | None] = []
        for gen in timed_generate(self.backend, requests, self.usage):
            rating = parse_rating(gen.text) if gen.ok else None
            out.append(None if rating is None else (rating - 1) / 9)
        return out
