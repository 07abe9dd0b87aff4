"""Run every detector on a scenario (:func:`lint_scenario`) or on one turn (:func:`turn_problems`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from . import turns as t
from .brief import BriefWords, shipped_brief
from .findings import LintFinding, LintResult
from .flaw import FLAWED_SHAPE, flaw_problems
from .leak import QUOTE_SHARE, leak_problems
from .rubric import CriterionText, criterion_problems, sign_problems
from .turns import (
    _ANY_HELPS_WORDS,
    _AS_USER_WORDS,
    _NARRATOR_WORDS,
    _PAREN_FILL_IN_WORDS,
    _SCENE_WORDS,
    _STAGE_WORDS,
    _TEMPLATE_WORDS,
    Problem,
    Turn,
)


def _pair(message: Any) -> tuple[str, str]:
    if isinstance(message, tuple):
        return message
    if isinstance(message, Mapping):
        return message["role"], message["content"]
    return message.role, message.content


def _criterion(criterion: Any) -> tuple[str, int]:
    if isinstance(criterion, tuple):
        return criterion
    if isinstance(criterion, Mapping):
        return criterion["criterion"], criterion["points"]
    return criterion.criterion, criterion.points


#: The roles of an alternating conversation (after an optional system message), by its length.
_ALTERNATING: Final = [["user", "assistant"][k % 2] for k in range(64)]


def _alternating(n: int) -> list[str]:
    """The first ``n`` roles of an alternating conversation: user, assistant, user...

    >>> _alternating(3)
    ['user', 'assistant', 'user']
    """
    return _ALTERNATING[:n] if n <= len(_ALTERNATING) else [["user", "assistant"][k % 2] for k in range(n)]


def _leftover_gates(texts: list[str]) -> tuple[bool, bool]:
    """Whether any of ``texts`` (a scenario's turns) may hold a template mark or bracket (``[ < { }``),
    and whether any may hold an unbracketed fill-in (``XX``, ``TBD``, ``INSERT``, ``xxx`` in any case,
    ``____``): looked for once in the turns joined, so that most scenarios, which hold none, skip
    those searches in every turn.

    A search for one character runs at memchr speed, one for a longer string steps through the
    text a few characters at a time: each fill-in is only looked for when one of its rarer
    characters is there (``X``, ``B``, ``R``, ``_``, ``x``), and the text is only lower-cased for
    ``xxx`` when it holds an ``X`` (without one, ``xxx`` in any case is ``xxx``).

    >>> _leftover_gates(["Is 5 mg safe?", "Usually, yes."]), _leftover_gates(["See [1].", "Call XXX"])
    ((False, False), (True, True))
    >>> _leftover_gates(["Box: xXx"]), _leftover_gates(["TBD"]), _leftover_gates(["name: ____"]), _leftover_gates(["call xxx"])
    ((False, True), (False, True), (False, True), (False, True))
    """
    every = "\x00".join(texts)
    marks = "[" in every or "<" in every or "{" in every or "}" in every
    fill_ins = (
        ("X" in every and ("XX" in every or "xxx" in every.lower()))
        or ("x" in every and "xxx" in every)
        or ("B" in every and "TBD" in every)
        or ("R" in every and "INSERT" in every)
        or ("_" in every and "____" in every)
    )
    return marks, fill_ins


def _turn_findings(
    turn: Turn, earlier: list[Turn], previous: Turn | None, final: bool, findings: list[LintFinding],
    marks: bool = True, fill_ins: bool = True,
) -> None:
    """Every turn-level detector on ``turn`` (``earlier``: the non-empty non-system turns before it),
    in report order: role confusion, leftovers, repetition, truncation (the final user turn cut
    short; any turn ending on a colon).

    Each detector is only called when its own first test (a word in the turn's word set, a
    character or phrase in its text) says it could fire: the same tests the detectors start with,
    made here so that a clean turn costs no function call per detector (persona_echo's three
    phrases all hold "re a"; template_fragment's tests each start from a mark, a colon, one of
    :data:`_TEMPLATE_WORDS`, "next"/"first" with "s", or, in a user turn, "you" with a quotation
    mark or "like"). ``marks`` / ``fill_ins`` False: the scenario holds no bracket or template
    mark / no unbracketed fill-in (:func:`_leftover_gates`).
    """
    role = turn.role
    words = turn.words
    text = turn.text
    low = turn.low
    found: list[Problem] = []
    problem: Problem | None
    bracket = marks and ("[" in text or "<" in text)
    paren = "(" in text
    # stage_direction's first test ("(smiles)", "[laughs]"), and the parenthesized fill-in's ("(insert X)")
    staged = (paren or (marks and "[" in text)) and not _STAGE_WORDS.isdisjoint(words)
    fill_in = bracket or (paren and not _PAREN_FILL_IN_WORDS.isdisjoint(words)) or fill_ins and ("XX" in text or "TBD" in text or "INSERT" in text or "xxx" in low or "____" in text)
    colon = ":" in text
    # template_fragment's tests but the quoted script's, which only user turns are tested for
    template = (
        colon
        or not _TEMPLATE_WORDS.isdisjoint(words)
        or ("s" in words and ("next" in words or "first" in words))
        or (marks and ("{" in low or "}" in low or "<" in low or "[" in low))
    )
    if role == "user":
        if not _NARRATOR_WORDS.isdisjoint(words) and (problem := t.third_person(turn)):
            found.append(problem)
        if "you" in words and not _SCENE_WORDS.isdisjoint(words) and (problem := t.second_person_narration(turn)):
            found.append(problem)
        if staged and (problem := t.stage_direction(turn)):
            found.append(problem)
        if (not _ANY_HELPS_WORDS.isdisjoint(words) or "be your" in low) and (problem := t.user_as_assistant(turn)):
            found.append(problem)
        elif (not earlier or "?" not in earlier[-1].text) and (problem := t.reacts_to_nothing(turn, not earlier)):
            found.append(problem)
        if (bracket or colon) and (problem := t.role_label(turn)):
            found.append(problem)
        if fill_in and (problem := t.placeholder(turn)):
            found.append(problem)
        you = "you" in words
        if (
            (template or (you and ('"' in low or "“" in low or "like" in words)))
            and (problem := t.template_fragment(turn, marks))
        ) or (you and "re a" in low and (problem := t.persona_echo(turn))):
            found.append(problem)
        if len(turn.tokens) >= 8 and (problem := t.self_repetition(turn)):
            found.append(problem)
        if earlier:
            again = t.repeats_earlier(turn, earlier)
            if again is not None:
                found.append(("repeated_turn", f"repeats turn {again[0]} ({again[1]:.0%} alike)"))
            else:
                restated = t.restates_earlier(turn, earlier)
                if restated is not None:
                    found.append(("repeated_turn", f"restates user turn {restated[0]}: {restated[1]}"))
                elif (opens := t.opens_like_earlier(turn, earlier)) is not None:
                    found.append(("repeated_turn", f"opens with {opens[1]} words of turn {opens[0]}"))
        if final and (problem := t.truncated(turn)):
            found.append(problem)
        if colon and (problem := t.ends_with_colon(turn)):
            found.append(problem)
    elif role == "system":
        for problem in (t.stage_direction(turn), t.role_label(turn), t.placeholder(turn), t.template_fragment(turn), t.ends_with_colon(turn)):
            if problem is not None:
                found.append(problem)
    else:  # the assistant's (or an unknown role's) turn
        assistant = role == "assistant"
        copied = t.copies_user(turn, previous) if assistant and previous is not None and previous.role == "user" else None
        if not _NARRATOR_WORDS.isdisjoint(words) and (problem := t.third_person(turn)):
            found.append(problem)
        # a copy of the user turn speaks as the user by construction: reported as the copy only
        if assistant and copied is None and not _AS_USER_WORDS.isdisjoint(words) and (problem := t.assistant_as_user(turn)):
            found.append(problem)
        if staged and (problem := t.stage_direction(turn)):
            found.append(problem)
        if (bracket or colon) and (problem := t.role_label(turn)):
            found.append(problem)
        if fill_in and (problem := t.placeholder(turn)):
            found.append(problem)
        if (template and (problem := t.template_fragment(turn, marks))) or (
            assistant and "you" in words and "re a" in low and (problem := t.persona_echo(turn))
        ):
            found.append(problem)
        if len(turn.tokens) >= 8 and (problem := t.self_repetition(turn)):
            found.append(problem)
        if copied is not None:
            found.append(("assistant_copies_user", f"repeats {copied:.0%} of the user turn before it"))
        elif earlier:
            again = t.repeats_earlier(turn, earlier)
            if again is not None:
                found.append(("repeated_turn", f"repeats turn {again[0]} ({again[1]:.0%} alike)"))
            elif (opens := t.opens_like_earlier(turn, earlier)) is not None:
                found.append(("repeated_turn", f"opens with {opens[1]} words of turn {opens[0]}"))
            elif assistant and (made := t.made_of_earlier(turn, earlier)) is not None:
                found.append(("repeated_turn", f"made of earlier turns: {made:.0%} of its 3-word runs were said before"))
        if colon and (problem := t.ends_with_colon(turn)):
            found.append(problem)
    if found:
        where = f"{role} turn {turn.index}: "
        for code, detail in found:
            findings.append(LintFinding.of(code, where + detail, turn.index))


def lint_scenario(
    id: str,
    messages: Sequence[Any],
    rubric: Sequence[Any],
    *,
    flaw: str | None = None,
    flawed_turn_index: int | None = None,
    shape: str | None = None,
    trait: str | None = None,
    domain: str | None = None,
    leak_share: float = QUOTE_SHARE,
    brief_words: BriefWords | None = None,
) -> LintResult:
    """Every detector on one scenario: ``usable`` when nothing is found.

    ``messages`` and ``rubric`` may be records (:class:`~scenario_forge.records.Message`,
    :class:`~scenario_forge.records.Criterion`), plain dicts with the same keys, or
    ``(role, content)`` / ``(criterion, points)`` tuples. ``trait`` (the scenario's trait id, when
    known) lets the rubric check catch a criterion that only restates it; with ``domain`` too, one
    that restates the taxonomy's text for them (``brief_words``: that text by domain and trait, default
    the shipped taxonomy's, :func:`~scenario_forge.lint.brief.shipped_brief`). ``leak_share`` is the share of a
    criterion's word 3-grams a user or system turn may repeat (with the criterion's verb) before
    it counts as a rubric leak (curation passes its configured ``answer_overlap``).

    >>> ok = lint_scenario("a", [{"role": "user", "content": "Is 5 mg of melatonin too much for me?"}],
    ...     [{"criterion": "States that 5 mg is within the usual adult range", "points": 5},
    ...      {"criterion": "Invents a study to back the claim", "points": -5}])
    >>> ok.usable
    True
    """
    pairs = messages if messages and type(messages[0]) is tuple else [_pair(m) for m in messages]
    criteria = rubric if rubric and type(rubric[0]) is tuple else [_criterion(c) for c in rubric]
    findings: list[LintFinding] = []
    roles = [r for r, _ in pairs]

    # conversation shape
    start = 1 if roles and roles[0] == "system" else 0
    if len(roles) > start and roles[start:] != _alternating(len(roles) - start):
        findings.append(LintFinding.of("roles_not_alternating", "roles: " + ",".join(roles)))
    if not roles or roles[-1] != "user":
        detail = "no turns" if not roles else ("no user turn" if "user" not in roles else f"the last turn is {roles[-1]!r}")
        findings.append(LintFinding.of("not_ending_with_user", detail))

    # turn by turn
    final = len(roles) - 1 if roles and roles[-1] == "user" else -1
    marks, fill_ins = _leftover_gates([c for _, c in pairs if c])
    seen: list[Turn] = []
    earlier: list[Turn] = []
    previous: Turn | None = None
    for i, (role, text) in enumerate(pairs):
        if not text or text.isspace():
            findings.append(LintFinding.of("empty_turn", f"{role} turn {i} is empty", i))
            previous = None
            continue
        turn = Turn(i, role, text)
        seen.append(turn)
        _turn_findings(turn, earlier, previous, i == final, findings, marks, fill_ins)
        if role != "system":
            earlier.append(turn)
        previous = turn

    # rubric (sign_problems only called when a sign is missing: most rubrics have both)
    points = [p for _, p in criteria]
    if not points or max(points) <= 0 or min(points) >= 0:
        for code, detail in sign_problems(points):
            findings.append(LintFinding.of(code, detail))
    texts = [CriterionText(c, p) for c, p in criteria]
    brief = (brief_words or shipped_brief()).words(domain, trait) if domain and trait else None
    for code, detail in criterion_problems(texts, trait=trait, brief=brief):
        findings.append(LintFinding.of(code, detail))
    for code, detail in leak_problems(seen, texts, leak_share):
        findings.append(LintFinding.of(code, detail))

    # flaw
    if shape == FLAWED_SHAPE:
        by_index = {turn.index: turn for turn in seen}
        for code, detail in flaw_problems(roles, [c for _, c in pairs], flawed_turn_index, flaw, by_index):
            findings.append(LintFinding.of(code, detail, flawed_turn_index))
    return LintResult.of(id, findings)


def turn_problems(previous: Sequence[Any], turn: Any, *, final: bool = False, flaw: str | None = None) -> list[LintFinding]:
    """Turn-level detectors only, for ``turn`` following ``previous``: what generation re-asks on.

    Role confusion, placeholders and template fragments, repetition of an earlier turn or of
    itself, copying the user turn before it, a turn ending on a colon, and (with ``final=True``)
    truncation. ``flaw`` is
    accepted for symmetry with :func:`lint_scenario`; no turn-level detector needs it today.

    >>> [f.code for f in turn_problems([], {"role": "user", "content": "The user is a nurse who asks about doses."})]
    ['third_person_user']
    >>> turn_problems([{"role": "user", "content": "Is 5 mg of melatonin safe for me?"}],
    ...               {"role": "assistant", "content": "Usually yes, for adults; start lower."})
    []
    """
    prev = [_pair(m) for m in previous]
    role, text = _pair(turn)
    index = len(prev)
    if not text or text.isspace():
        return [LintFinding.of("empty_turn", f"{role} turn {index} is empty", index)]
    earlier = [Turn(k, r, c) for k, (r, c) in enumerate(prev) if r != "system" and c.strip()]
    last = earlier[-1] if earlier and earlier[-1].index == index - 1 else None
    findings: list[LintFinding] = []
    _turn_findings(Turn(index, role, text), earlier, last, final, findings)
    return findings
