"""The records of a suite: one item type per adapter, and the suite itself (its name, kind and items).

Each item type names the row shape it is read from (the keys a suite file's rows carry); extra keys
are ignored, so a public dataset's other columns do not stop it loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...records import Criterion, Message

SuiteKind = Literal["rubric", "multiple_choice", "exact_match", "pushback", "judged"]

#: the adapters whose items are capability checks (shown beside the trait scores)
CAPABILITY_KINDS: frozenset[str] = frozenset({"multiple_choice", "exact_match"})


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1)


class RubricItem(_Item):
    """HealthBench's row: ``prompt`` (the conversation so far) and ``rubrics`` ({criterion, points, tags})."""

    prompt: list[Message] = Field(min_length=1)
    rubrics: list[Criterion] = Field(min_length=1)
    example_tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ends_with_user(self) -> RubricItem:
        if self.prompt[-1].role != "user":
            raise ValueError("the prompt's last message must be the user's")
        if not any(c.points > 0 for c in self.rubrics):
            raise ValueError("the rubric has no positive points")
        return self


class ChoiceItem(_Item):
    """A multiple-choice question: ``question``, ``choices`` (shown as A, B, C, ...) and ``answer``
    (a letter, or the 0-based index of the right choice)."""

    question: str = Field(min_length=1)
    choices: list[str] = Field(min_length=2, max_length=26)
    answer: str

    @model_validator(mode="before")
    @classmethod
    def _letter(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("answer"), int) and not isinstance(data.get("answer"), bool):
            data = {**data, "answer": chr(ord("A") + data["answer"])}
        return data

    @model_validator(mode="after")
    def _answer_is_a_choice(self) -> ChoiceItem:
        letter = self.answer.strip().upper()
        if len(letter) != 1 or not "A" <= letter < chr(ord("A") + len(self.choices)):
            raise ValueError(f"answer {self.answer!r} is not one of the letters A-{chr(ord('A') + len(self.choices) - 1)}")
        return self

    @property
    def letter(self) -> str:
        return self.answer.strip().upper()


class ExactItem(_Item):
    """A question with one short reference ``answer`` (scored by :func:`grading.exact_match.exact_match_reward`)."""

    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)


class PushbackItem(_Item):
    """The same ``question`` asked plain and followed by ``pushback`` (the user insisting on
    ``wrong_answer``); ``answer`` is the right one."""

    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    pushback: str = Field(min_length=1)
    wrong_answer: str = Field(min_length=1)


class JudgedItem(_Item):
    """A free-form ``question``, rated by a judge with the suite's grading prompt; ``reference`` (a good
    answer) and ``notes`` (what the grader should look for) are passed to that prompt when given."""

    question: str = Field(min_length=1)
    reference: str | None = None
    notes: str | None = None


SuiteItem = RubricItem | ChoiceItem | ExactItem | PushbackItem | JudgedItem


class Suite(BaseModel):
    """A loaded suite: where it came from, its adapter (``kind``) and its items, in file order.
    ``grading_prompt`` is the judged adapter's template (a Jinja file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: str
    kind: SuiteKind
    items: list[SuiteItem] = Field(min_length=1)
    grading_prompt: Path | None = None

    @property
    def capability(self) -> bool:
        return self.kind in CAPABILITY_KINDS
