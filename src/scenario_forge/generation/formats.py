"""Parsing and validating model output: plain-text fields, conversation turns, JSON objects.

The text checks they use (word counts, normalised text, copying, template residue) live in one
module, :mod:`scenario_forge.lint.text`, which lint, generation and curation all import.

Every check returns either a clean value or a short reason code (``too_short``, ``out_of_role``,
...). A stage retries once on a reason and then rejects with it, so the codes are what users see in
``rejects.parquet`` and in the run summary.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .._validation import one_line
from ..lint.text import copies_from, has_template_residue, normalized, word_count

__all__ = ["Checked", "clean_sentence", "clean_turn", "criterion_problem", "parse_json_object", "sentence_count"]

_ROLE_LABEL = re.compile(
    r"^\s*(?:\*\*)?(user|assistant|ai|me|human|customer|patient|client|person|you|bot|system)"
    r"(?:\s*\d+)?(?:\*\*)?\s*[:>\-]\s*",
    re.IGNORECASE,
)
_ROLE_BREAK = re.compile(
    r"\n\s*(?:\*\*)?(?:user|assistant|ai|human|system)(?:\*\*)?\s*:", re.IGNORECASE
)
_AI_VOICE = re.compile(
    r"\b(?:as an ai\b|i am an ai\b|i'm an ai\b|ai language model|how (?:can|may) i (?:help|assist)|"
    r"i'd be (?:happy|glad) to help|i am here to help|i'm here to help|"
    r"is there anything else i can)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


@dataclass(frozen=True)
class Checked:
    """A cleaned value, or ``None`` with the reason it failed."""

    value: str | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


def _fail(reason: str) -> Checked:
    return Checked(None, reason)


def _strip_wrappers(text: str) -> str:
    text = text.strip().strip("`").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text.replace("**", "").strip()


def clean_sentence(text: str | None, *, min_words: int = 5, max_words: int = 60, max_sentences: int = 2) -> Checked:
    """One or two sentences of plain prose (a brief field, a rubric criterion).

    >>> clean_sentence("The user is a nurse on a night shift. Extra chatter here. More.").value
    'The user is a nurse on a night shift. Extra chatter here.'
    >>> clean_sentence("Ok.").reason
    'too_short'
    """
    if text is None:
        return _fail("no_output")
    text = _strip_wrappers(text.split("\n\n")[0].replace("\n", " "))
    if has_template_residue(text):
        return _fail("template_residue")
    sentences = _SENTENCE_END.split(text)
    text = " ".join(sentences[:max_sentences]).strip()
    if word_count(text) < min_words:
        return _fail("too_short")
    if word_count(text) > max_words:
        words = text.split()[:max_words]
        text = " ".join(words).rstrip(",;:") + "."
    if text[-1] not in ".!?\"')":
        text += "."
    return Checked(text)


def clean_turn(
    text: str | None,
    role: str,
    *,
    previous: list[str] | None = None,
    min_words: int = 4,
    max_words: int = 180,
    max_sentences: int = 4,
) -> Checked:
    """A conversation turn written in role (``user`` or ``assistant``).

    Strips a leading speaker label, cuts the text where the model starts writing the other side
    of the conversation, and rejects turns that are empty, out of role, residue, or repeats.

    >>> clean_turn("User: Can you check the dose again?\\nAssistant: Sure", "user").value
    'Can you check the dose again?'
    >>> clean_turn("As an AI language model, I can help with that.", "user").reason
    'out_of_role'
    """
    if text is None:
        return _fail("no_output")
    text = _ROLE_LABEL.sub("", text.strip(), count=1)
    cut = _ROLE_BREAK.search(text)
    if cut:
        text = text[: cut.start()]
    text = _strip_wrappers(text.split("\n\n")[0])
    text = " ".join(_SENTENCE_END.split(" ".join(text.split()))[:max_sentences])
    if has_template_residue(text):
        return _fail("template_residue")
    if word_count(text) < min_words:
        return _fail("too_short")
    if word_count(text) > max_words:
        return _fail("too_long")
    if role == "user" and _AI_VOICE.search(text):
        return _fail("out_of_role")
    norm = normalized(text)
    if previous and any(normalized(p) == norm for p in previous):
        return _fail("repeated_turn")
    return Checked(text)


def sentence_count(text: str) -> int:
    """Sentences in ``text`` as :func:`clean_sentence` splits them (a point inside "2.5" or before
    a lower-case word does not end one).

    >>> sentence_count("A bad answer accepts that 2.5 mg is fine. It also")
    2
    >>> sentence_count("A good answer")
    1
    """
    return len(_SENTENCE_END.split(text.strip()))


def criterion_problem(text: str, conversation: list[str]) -> str | None:
    """Why a rubric sentence is not a criterion: left unfinished, or quoting the conversation."""
    if text.rstrip(".").rstrip().endswith((":", "be", "is", "would")):
        return "incomplete_criterion"
    if copies_from(text, conversation):
        return "copies_conversation"
    return None


def parse_json_object(text: str | None, model: type[BaseModel]) -> tuple[BaseModel | None, str | None]:
    """Parse the first JSON object in ``text`` and validate it with ``model``.

    Returns ``(value, None)`` or ``(None, reason)`` where reason is a one-line description.
    """
    if text is None:
        return None, "no_output"
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None, "no JSON object in output"
    try:
        data: Any = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg}"
    try:
        return model.model_validate(data), None
    except ValidationError as exc:
        return None, one_line(exc)
