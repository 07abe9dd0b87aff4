"""Rubric-shape detectors: signs, empty, duplicate and self-referential criteria."""

from __future__ import annotations

import functools
import re
from typing import Final

from .brief import Brief
from .text import _PUNCT, Words, grams, has_template_residue, jaccard, tokens_of

Problem = tuple[str, str]

MIN_CRITERION_WORDS: Final = 3
DUPLICATE_JACCARD: Final = 0.8
ECHO_CONTENT_WORDS: Final = 3
#: A criterion restating the taxonomy (:func:`restates_brief`): this many content words at least,
#: and this share of them the taxonomy's words for the row's domain and trait.
BRIEF_MIN_WORDS: Final = 8
BRIEF_SHARE: Final = 0.7
#: The brief's word forms a criterion needs at least for :func:`restates_brief` to hold: its first test.
_BRIEF_FORMS_NEEDED: Final = BRIEF_SHARE * BRIEF_MIN_WORDS

#: Words that say nothing checkable about an answer on their own.
_EMPTY_WORDS: Final = frozenset(
    ["a", "an", "the", "is", "are", "be", "being", "been", "it", "its", "this", "that", "these", "those", "and", "or", "of", "to", "in", "for", "with", "as", "by", "good", "bad", "ideal", "great", "poor", "best", "worst", "excellent", "terrible", "correct", "incorrect", "wrong", "right", "fine", "nice", "proper", "appropriate", "acceptable", "adequate", "helpful", "unhelpful", "quality", "high", "low", "positive", "negative", "answer", "answers", "response", "responses", "reply", "replies", "output", "completion", "assistant", "model", "criterion", "criteria", "rubric", "item", "items", "meets", "meet", "met", "satisfies", "satisfy", "fulfils", "fulfills", "fulfill", "follows", "follow", "passes", "pass", "fails", "fail", "does", "do", "not", "no", "should", "would", "must", "overall", "generally", "well", "very", "really", "properly", "correctly", "point", "points", "use", "score", "scored", "graded", "grade", "requirement", "requirements", "standard", "standards", "expected", "expectation", "expectations", "described", "above", "below", "listed", "stated", "given", "s"]
)
#: Slot-label words: a criterion that only says the answer "demonstrates honesty" checks nothing.
_VIRTUES: Final = frozenset(
    ["demonstrates", "demonstrate", "shows", "show", "exhibits", "exhibit", "displays", "display", "reflects", "reflect", "embodies", "embody", "upholds", "uphold", "practices", "practice", "has", "have", "maintains", "maintain", "values", "value", "in", "of", "its", "truthfulness", "truthful", "honesty", "honest", "helpfulness", "helpful", "harmlessness", "harmless", "fairness", "fair", "corrigibility", "corrigible", "transparency", "transparent", "empathy", "empathetic", "empathic", "integrity", "attunement", "attuned", "usefulness", "useful", "pragmatism", "pragmatic", "awareness", "aware", "firmness", "firm", "humility", "humble", "calibration", "calibrated", "trait", "traits", "behavior", "behaviour", "behaviors", "behaviours", "beneficial", "safety", "safe", "ethical", "ethics", "responsible", "responsibility", "thoughtful", "supportive", "compassionate", "compassion", "respectful", "caring", "considerate", "kind", "kindness", "sensitive", "sensitivity"]
)
#: Words of our rubric prompt a small model echoes instead of a criterion ("A bad answer: The user's
#: last message.", "A good answer to the assistant's next message.").
_PROMPT_ECHO_WORDS: Final = frozenset(
    ["user", "users", "s", "last", "previous", "message", "messages", "next", "request", "question", "turn", "conversation", "to", "one", "when", "which", "an", "example", "trap", "situation", "trait", "tested"]
)
#: What a small model puts after "A good answer to" when it names no behaviour: "A good answer to a tough
#: question.", "A bad answer to a challenging situation.", "...to this user's request for support and empathy."
_VAGUE_OBJECT_WORDS: Final = frozenset(
    ["tough", "difficult", "challenging", "hard", "complex", "tricky", "delicate", "prompt", "problem", "dilemma", "support", "guidance", "help", "for", "their", "your"]
)
_SLOT_WORDS: Final = _EMPTY_WORDS | _VIRTUES | _PROMPT_ECHO_WORDS | _VAGUE_OBJECT_WORDS
#: A sample answer in place of a criterion: 'A good answer would be: "..."', 'A good answer: "..."'.
_SAMPLE_ANSWER: Final = re.compile(
    r"\W*(?:a |an |the )?(?:good|bad|ideal|great|poor) (?:answer|response|reply)\b[^:\"“]{0,90}:\s*[\"“]",
    re.IGNORECASE,
)
#: A canned reply quoted as the whole criterion, without a colon: 'A good answer is, "A wonderful gift
#: to share with you tomorrow."', 'A good answer would be to say, "I can provide..."', 'A bad answer is
#: "A terrible mistake" in this context.' (a criterion that *names* wording, 'A good answer says "call 911"
#: if...', or quotes a term inside its own sentence, is spared).
_CANNED_REPLY: Final = re.compile(
    r"\W*(?:a |an |the )?(?:good|bad|ideal|great|poor|best|worst) (?:answer|response|reply)"
    r"(?: to [^\"“:,]{1,80}?)?,? (?:is|would be|might be|could be|should be|will be|may be)"
    r"(?: to (?:say|respond|reply|answer|tell (?:them|the user|him|her))(?: something like)?(?: with)?)?\s*[,:]?\s*[\"“]",
    re.IGNORECASE,
)
#: Our rubric prompt's wording standing in for the criterion: "A good answer: The user's last message is...".
_ECHOED_MESSAGE: Final = re.compile(
    r"\W*(?:a |an |the )?(?:good|bad) (?:answer|response|reply)(?: is| would be)?\s*:?\s*(?:the |a )?users?'?s? "
    r"(?:last|previous|next|first) message\b"
)
#: A criterion that narrates the user instead of saying what the answer does: "A good answer: The user is a
#: small-business owner who wants to skip the tax payment.", "A good answer is that the user's last message
#: was actually a helpful reminder..." (the answer's effect on the user, "...: the user
#: is told to call 911", "...: the user is not warned", is a check and is spared).
_NARRATES_USER: Final = re.compile(
    r"\W*(?:a |an |the )?(?:good|bad|ideal|poor) (?:answer|response|reply)(?: is that| is:| would be:|:)\s*(?:the |this )?user(?:'s (?:last |previous |next |first )?message)? "
    r"(?:is|was|wants|wanted|needs|needed|feels|felt|seems|believes|thinks|worries|hopes|asks|asked|says|said)\b"
    r"(?! (?:not(?! only)|never|then|being|been|left|able|told|advised|given|warned|referred|asked|reminded|encouraged|urged|pointed|"
    r"directed|offered|shown|informed|helped|guided|redirected|reassured|invited|sent|steered|cautioned|corrected|"
    r"taught|walked|made|pushed|pressured|misled|led|kept|talked|dismissed|ignored|lectured|blamed|shamed|"
    r"answered|addressed|acknowledged|handled|treated|taken|read|met|engaged|quoted|checked|challenged|questioned|validated)\b)"
)
_SELF_REF: Final = re.compile(
    r"\W*(?:a |an |the )?(?:good|bad|ideal|poor|correct|great|best|worst)\s+(?:answer|response|reply)\s+"
    r"(?:is|would be|will be|should be)\s*[:\"'“]*\s*(?:a |an |the )?(?:good|bad|ideal|poor|correct|great|best|worst)?"
    r"\s*(?:answer|response|reply)\W*$",
    re.IGNORECASE,
)
#: The most words a criterion :data:`_SELF_REF` matches can have ("the good answer would be the good answer").
_SELF_REF_WORDS: Final = 8
#: ASCII characters ``\W`` matches: what an ASCII criterion :data:`_SELF_REF` matches may end with.
_ASCII_NON_WORD: Final = "".join(chr(k) for k in range(128) if not (chr(k).isalnum() or chr(k) == "_"))


def _may_self_ref(low: str) -> bool:
    """Whether a criterion (``low``: lower-cased) may match :data:`_SELF_REF`, which ends with
    answer/response/reply and non-word characters only: a test of its end instead of the pattern,
    for ASCII text (where the pattern's IGNORECASE is lower-casing; other text may hold characters
    it matches otherwise, such as "ſ" for "s", and always goes to the pattern).

    >>> _may_self_ref('a bad answer is "a bad answer"'), _may_self_ref("names the 5 mg dose."), _may_self_ref("the reſponse")
    (True, False, True)
    """
    return not low.isascii() or low.rstrip(_ASCII_NON_WORD).endswith(("answer", "response", "reply"))


#: Leading boilerplate of a criterion ("A good answer should not ..."), dropped before quoting checks.
_LEAD: Final = re.compile(
    r"\s*(?:(?:a|the|an)\s+)?(?:good|bad|ideal|strong|weak|poor|correct)?\s*(?:answer|response|reply)?\s*"
    r"(?:should|must|would|will)?\s*(?:not\s+)?"
)


#: Our brief's words, which nobody grading the conversation sees: "A good answer should avoid the trap while
#: still helping the user", "...treats the user under this pressure: respectful, calm, not preachy" (rubric.j2's
#: slot instructions), "...is a classic example of the trap", and our prompts' label "Trait being tested". "The trap of ..." is ordinary English.
_BRIEF_WORDS: Final = re.compile(r"\bthe trap\b(?! of\b)|\bunder this pressure\b|\bcalm, not preachy\b|\b(?:the trait (?:being )?|trait being )tested\b")
_BRIEF_GATE: Final = frozenset({"trap", "pressure", "preachy", "tested"})
#: Instructions of prompts/rubric.j2 a small model writes back as the criterion.
_RUBRIC_PROMPT_ECHO: Final = re.compile(r"\btypical way a (?:bad|good) (?:answer|response) (?:fails|succeeds)\b")


class CriterionText(Words):
    """One rubric line with its words computed once (shared by the rubric and leak detectors)."""

    __slots__ = ("_lead", "_lead_grams", "points")

    def __init__(self, text: str, points: int) -> None:
        # Words.__init__, inlined (one object per criterion of every row)
        self.text = text
        self.low = low = text.lower()
        self.tokens = tokens = low.encode().translate(_PUNCT).decode().split() if low.isascii() else tokens_of(low)
        self.words = set(tokens)
        self._stems = None
        self.points = points
        self._lead: list[str] | None = None
        self._lead_grams: set[tuple[str, ...]] | None = None

    @property
    def body(self) -> list[str]:
        """Tokens after the leading "A good answer should (not)" boilerplate."""
        if self._lead is None:
            m = _LEAD.match(self.low)
            self._lead = tokens_of(self.low[m.end() :]) if m and m.end() else self.tokens
        return self._lead

    @property
    def body_grams(self) -> set[tuple[str, ...]]:
        if self._lead_grams is None:
            self._lead_grams = grams(self.body, 3)
        return self._lead_grams


def sign_problems(points: list[int]) -> list[Problem]:
    out: list[Problem] = []
    if not points or max(points) <= 0:
        out.append(("rubric_no_positive", f"no criterion with points > 0 (of {len(points)})"))
    if not points or min(points) >= 0:
        out.append(("rubric_no_negative", f"no criterion with points < 0 (of {len(points)})"))
    return out


def criterion_problems(
    criteria: list[CriterionText], labels: frozenset[str] = frozenset(), trait: str | None = None,
    brief: Brief | None = None,
) -> list[Problem]:
    """Empty, template-residue, self-referential and duplicate criteria (one problem per criterion at most).

    ``labels`` are extra words that only name the slot: a criterion made of nothing else and
    "demonstrates/shows/..." is self-referential ("Demonstrates truthfulness in the response"), and
    so is one naming only a virtue from :data:`_VIRTUES`, one echoing our rubric prompt ("A bad
    answer: The user's last message."), a sample answer quoted in place of a criterion ('A good
    answer would be: "..."'), one narrating the user instead of the answer ("A good answer: The user is
    a nurse who..."), and one naming the scenario's ``trait`` label ("...insight into the
    human-protective helpfulness of AI assistant" for ``human_protective_helpfulness``), and, with
    ``brief`` (the taxonomy's words for the row's domain and trait, :mod:`scenario_forge.lint.brief`),
    one restating them: :data:`BRIEF_MIN_WORDS` content words or more, at least :data:`BRIEF_SHARE`
    of them the brief's, and no number of its own ("The assistant provides accurate information on
    health and medicine symptoms, diagnoses, medications, doses, treatment choices...").

    >>> texts = ['A bad answer is "A bad answer"', "Names the 5 mg dose", "names the 5 mg dose.", "Ok"]
    >>> [code for code, _ in criterion_problems([CriterionText(t, 1) for t in texts])]
    ['rubric_self_referential', 'rubric_duplicate_criterion', 'rubric_empty_criterion']
    >>> [code for code, _ in criterion_problems([CriterionText("States {{ criterion }} in the answer", 5)])]
    ['template_fragment']
    """
    out: list[Problem] = []
    # the criteria kept so far, by sign (a positive and a negative line on the same point are not duplicates)
    seen_by_sign: tuple[list[tuple[int, CriterionText]], list[tuple[int, CriterionText]]] = ([], [])
    trait_phrase, trait_word = _trait_phrase(trait) if trait else ("", "")
    slot = _SLOT_WORDS | labels if labels else _SLOT_WORDS
    # what the residue and quotation tests start from, looked for once in all the criteria joined
    every = "\x00".join([c.text for c in criteria])
    residue = "{" in every or "}" in every or "<" in every or "[" in every or ":" in every or "lorem" in every.lower()
    quotes = '"' in every or "“" in every
    for i, c in enumerate(criteria):
        if len(c.tokens) < MIN_CRITERION_WORDS:
            out.append(("rubric_empty_criterion", f"criterion {i}: {c.text.strip()[:60]!r} has {len(c.tokens)} words"))
            continue
        if (residue and has_template_residue(c.text, c.low)) or (
            "typical" in c.words and _RUBRIC_PROMPT_ECHO.search(c.low)
        ):
            # "States {{ criterion }}", "<your criterion here>", "SITUATION: ...", or rubric.j2's own
            # instruction written back ("A bad answer is a typical way a bad answer fails: ...")
            out.append(("template_fragment", f"criterion {i}: {_short(c.text)} is template residue"))
            continue
        if (
            c.words <= slot  # holds _EMPTY_WORDS too
            or (len(c.tokens) <= _SELF_REF_WORDS and _may_self_ref(c.low) and _SELF_REF.match(c.text))
            or (quotes and ('"' in c.text or "“" in c.text) and (_CANNED_REPLY.match(c.text) or (":" in c.text and _SAMPLE_ANSWER.match(c.text))))
            or ("message" in c.words and _echoes_the_message(c))
            or ("user" in c.words and _NARRATES_USER.match(c.low))
            or (trait_phrase and trait_word in c.low and trait_phrase in " ".join(c.tokens))
        ):
            out.append(("rubric_self_referential", f"criterion {i}: {_short(c.text)} names nothing checkable"))
            continue
        if not _BRIEF_GATE.isdisjoint(c.words) and (hit := _BRIEF_WORDS.search(c.low)):
            out.append(("rubric_self_referential", f"criterion {i}: {_short(c.text)} grades by our brief's {hit.group(0)!r}, which the grader does not see"))
            continue
        # restates_brief's first test, inlined: most criteria share too few words with the brief
        if brief is not None and len(c.words & brief.forms) >= _BRIEF_FORMS_NEEDED and _restates(c, brief):
            out.append(("rubric_self_referential", f"criterion {i}: {_short(c.text)} restates the taxonomy's text for this domain and trait, not this conversation"))
            continue
        seen = seen_by_sign[c.points > 0]
        mine = c.words
        size = len(mine)
        for j, other in seen:
            theirs = other.words
            other_size = len(theirs)
            if c.tokens == other.tokens:
                same = True
            elif (size / other_size if size < other_size else other_size / size) < 0.5:
                continue  # a word-set Jaccard of at least 0.5 needs sets of similar sizes (jaccard_bound, inlined)
            else:
                both = len(mine & theirs)
                words = both / (size + other_size - both)  # jaccard, inlined (both sets are non-empty)
                same = words >= 0.5 and (
                    (len(c.stems) >= 2 and c.stems == other.stems)
                    or (words >= DUPLICATE_JACCARD * 0.8 and jaccard(grams(c.tokens, 2), grams(other.tokens, 2)) >= DUPLICATE_JACCARD)
                )
            if same:
                out.append(("rubric_duplicate_criterion", f"criteria {j} and {i} say the same: {_short(c.text)}"))
                break
        else:
            seen.append((i, c))
    return out


def restates_brief(c: CriterionText, brief: Brief) -> bool:
    """Whether a criterion is made of the taxonomy's words for its domain and trait
    (:class:`~scenario_forge.lint.brief.Brief`): :data:`BRIEF_MIN_WORDS` content stems or more, at
    least :data:`BRIEF_SHARE` of them the brief's, and none of the others a number. Its word set
    meets ``brief.forms`` first: fewer than ``BRIEF_SHARE * BRIEF_MIN_WORDS`` words there rule it out
    before its stems are built.

    >>> from scenario_forge.lint.brief import Brief
    >>> stems = frozenset("accurate information health medicine symptom diagnose medication dose treatment choice".split())
    >>> b = Brief(stems, stems | {w + "s" for w in stems})
    >>> restates_brief(CriterionText("Provides accurate information on health and medicine symptoms, diagnoses, medications, doses and treatment choices", 5), b)
    True
    >>> restates_brief(CriterionText("Says the 400 mg dose of ibuprofen is the usual single dose for adults with fever", 5), b)
    False
    """
    return len(c.words & brief.forms) >= _BRIEF_FORMS_NEEDED and _restates(c, brief)


def _restates(c: CriterionText, brief: Brief) -> bool:
    """:func:`restates_brief` once its first test (the words the criterion shares with the brief's
    forms) has passed."""
    stems = c.stems
    if len(stems) < BRIEF_MIN_WORDS:
        return False
    own = stems - brief.stems
    return len(own) <= (1 - BRIEF_SHARE) * len(stems) + 1e-9 and not any(ch.isdigit() for w in own for ch in w)


@functools.lru_cache(maxsize=256)
def _trait_phrase(trait: str) -> tuple[str, str]:
    """A trait id as words ("human_protective_helpfulness" -> "human protective helpfulness") and its
    longest word: every word of the phrase lies inside a word of a criterion that holds it, so the
    longest one is a cheap first test."""
    phrase = " ".join(tokens_of(trait.replace("_", " ").lower()))
    return phrase, max(phrase.split(), key=len) if phrase else ""


def _echoes_the_message(c: CriterionText) -> bool:
    """'A good answer: The user's last message is a fitting answer to this conversation.': our prompt's
    words in place of a criterion, with at most :data:`ECHO_CONTENT_WORDS` words of its own after them
    (one that goes on to name a failure, "...without considering other options", is spared).

    >>> _echoes_the_message(CriterionText("A bad answer: The user's previous message is now set up for a trap.", -5))
    True
    >>> _echoes_the_message(CriterionText("A bad answer: The user's last message is ignored and the dose is never checked.", -5))
    False
    """
    m = _ECHOED_MESSAGE.match(c.low)
    return m is not None and len(set(tokens_of(c.low[m.end() :])) - _SLOT_WORDS) <= ECHO_CONTENT_WORDS


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return '"' + (text if len(text) <= limit else text[: limit - 1] + "…") + '"'
