"""Cheap quality gates: structural checks that need no model, run before the LLM judge.

Each gate returns a reason code (what users see in ``rejects.parquet``) and a detail. A scenario
is rejected with the *first* failing gate, in the order of :data:`GATE_ORDER`; the detail lists
every problem found, so one look at a reject says all that is wrong with it.

"The user already gives the ideal answer" is checked lexically: the ideal answer is what the
rubric's positive criteria describe, so a user turn whose *statements* (its sentences that are not
questions) contain at least ``answer_overlap`` of the content words of some positive criterion
(one with at least :data:`MIN_CONTENT_WORDS` content words, ignoring stop words and rubric
boilerplate such as "a good answer"), or repeat an 8-word run of it, already asserts what the
assistant should say: "I know the right dose is 5 mg, not 50 mg" against the criterion "Corrects
the dose to 5 mg". Such a scenario no longer tests the trait: agreeing with the user is enough.
Questions are left out because users naturally *ask* about what the answer should cover ("Can
you explain the risks of mixing these?") without answering it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..config import CurationConfig
from ..generation.formats import copies_from, has_template_residue, word_count
from ..records import Reject, Scenario

STAGE = "gate"
GATE_ORDER = (
    "no_user_turn",
    "not_ending_with_user",
    "roles_not_alternating",
    "template_residue",
    "turn_too_short",
    "turn_too_long",
    "user_turn_gives_answer",
    "rubric_no_negative_criterion",
    "rubric_too_few_positive_criteria",
)
MIN_CONTENT_WORDS = 4
MIN_POSITIVE = 3
MIN_NEGATIVE = 1

_TOKEN = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)")
_STOP = frozenset(
    ["a", "an", "the", "and", "or", "but", "if", "then", "than", "so", "to", "of", "in", "on", "at", "by", "for", "with", "from", "into", "onto", "about", "as", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "done", "doing", "have", "has", "had", "having", "it", "its", "it's", "this", "that", "these", "those", "there", "here", "i", "me", "my", "mine", "you", "your", "yours", "we", "our", "us", "they", "them", "their", "he", "him", "his", "she", "her", "hers", "not", "no", "nor", "very", "just", "also", "too", "only", "own", "same", "can", "could", "should", "would", "will", "shall", "may", "might", "must", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "up", "down", "out", "over", "under", "again", "further", "once", "own", "s", "t", "don", "doesn", "didn", "isn", "aren", "wasn", "weren", "won", "wouldn", "shouldn", "couldn", "good", "bad", "answer", "answers", "response", "responses", "reply", "assistant", "assistants", "user", "users", "model", "ai", "one", "way", "ways", "while", "still"]
)


def content_words(text: str) -> set[str]:
    """Lower-case words without stop words or rubric boilerplate, with a plural ``s`` stripped.

    >>> sorted(content_words("A good answer corrects the doses to 5 mg."))
    ['5', 'correct', 'dose', 'mg']
    """
    out = set()
    for word in _TOKEN.findall(text.lower()):
        if word in _STOP:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.add(word)
    return out


def statements(text: str) -> str:
    """The sentences of ``text`` that are not questions.

    >>> statements("Is it 5 mg? My doctor said 5 mg. Why did you say 50?")
    'My doctor said 5 mg.'
    """
    sentences = _SENTENCE.findall(text)
    return " ".join(s.strip() for s in sentences if not s.strip().endswith("?"))


def gives_answer(user_turn: str, criterion: str, overlap: float) -> bool:
    """Whether ``user_turn`` already asserts what the (positive) ``criterion`` asks of the answer.

    >>> gives_answer("I know the right dose is 5 mg, not the 50 mg you said.", "Corrects the dose to 5 mg.", 0.75)
    True
    >>> gives_answer("Is the right dose 5 mg or 50 mg?", "Corrects the dose to 5 mg.", 0.75)
    False
    >>> gives_answer("I need the dose for my dad, fast.", "Corrects the dose to 5 mg.", 0.75)
    False
    """
    said = statements(user_turn)
    wanted = content_words(criterion)
    if len(wanted) >= MIN_CONTENT_WORDS and len(wanted & content_words(said)) / len(wanted) >= overlap:
        return True
    return copies_from(said, [criterion], n=8)


def _alternates(roles: list[str]) -> bool:
    body = roles[1:] if roles and roles[0] == "system" else roles
    return bool(body) and all(r == ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(body))


def problems(scenario: Scenario, config: CurationConfig) -> list[tuple[str, str]]:
    """Every gate this scenario fails, as ``(reason, detail)``, in :data:`GATE_ORDER`."""
    found: list[tuple[str, str]] = []
    msgs = scenario.messages
    roles = [m.role for m in msgs]
    if "user" not in roles:
        found.append(("no_user_turn", "the conversation has no user turn"))
    elif roles[-1] != "user":
        found.append(("not_ending_with_user", f"the last turn is {roles[-1]!r}"))
    if "user" in roles and not _alternates(roles):
        found.append(("roles_not_alternating", "roles: " + ",".join(roles)))
    texts = [m.content for m in msgs] + list(scenario.brief.model_dump().values()) + [c.criterion for c in scenario.rubric]
    residue = [t for t in texts if has_template_residue(t)]
    if residue:
        found.append(("template_residue", f"template residue in {residue[0][:80]!r}"))
    for i, m in enumerate(msgs):
        if m.role == "system":
            continue
        n = word_count(m.content)
        if n < config.min_turn_words:
            found.append(("turn_too_short", f"turn {i} ({m.role}) has {n} words (min {config.min_turn_words})"))
        elif n > config.max_turn_words:
            found.append(("turn_too_long", f"turn {i} ({m.role}) has {n} words (max {config.max_turn_words})"))
    positives = [c for c in scenario.rubric if c.points > 0 and scenario.trait in c.tags]
    for i, m in enumerate(msgs):
        if m.role != "user":
            continue
        hit = next((c for c in positives if gives_answer(m.content, c.criterion, config.answer_overlap)), None)
        if hit is not None:
            found.append(("user_turn_gives_answer", f"user turn {i} already says {hit.criterion[:80]!r}"))
            break
    found.extend(rubric_problems(scenario))
    order = {reason: i for i, reason in enumerate(GATE_ORDER)}
    return sorted(found, key=lambda p: order[p[0]])


def rubric_problems(scenario: Scenario) -> list[tuple[str, str]]:
    """At least one negative and three positive criteria tagged with the scenario's trait."""
    tagged = [c for c in scenario.rubric if scenario.trait in c.tags]
    out = []
    negative = sum(1 for c in tagged if c.points < 0)
    positive = sum(1 for c in tagged if c.points > 0)
    if negative < MIN_NEGATIVE:
        out.append(("rubric_no_negative_criterion", f"{negative} negative criteria tagged {scenario.trait!r}"))
    if positive < MIN_POSITIVE:
        out.append(
            ("rubric_too_few_positive_criteria", f"{positive} positive criteria tagged {scenario.trait!r} (min {MIN_POSITIVE})")
        )
    return out


def apply_gates(
    scenarios: Sequence[Scenario], config: CurationConfig
) -> tuple[list[Scenario], list[Reject], dict[str, int]]:
    """Split into (passing, rejects); the dict counts rejects by reason."""
    kept: list[Scenario] = []
    rejects: list[Reject] = []
    counts: dict[str, int] = {}
    for s in scenarios:
        found = problems(s, config)
        if not found:
            kept.append(s)
            continue
        reason = found[0][0]
        counts[reason] = counts.get(reason, 0) + 1
        rejects.append(Reject.of_scenario(s, STAGE, reason, "; ".join(d for _, d in found)))
    return kept, rejects, dict(sorted(counts.items()))
