"""Cheap text helpers shared by every text check in the project (lint, generation, curation).

They work on lower-cased word lists and word n-gram shingles, so a check costs a few
microseconds per turn.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Final

_NON_WORD: Final = re.compile(r"[^a-z0-9]+")
_TEMPLATE_RESIDUE: Final = re.compile(
    r"\{\{|\}\}|\{%|%\}|<\|im_(?:start|end)\|>|\[(?:system|user|assistant)\]|"
    r"<one sentence|<your |\bSITUATION:|\bTRAP:|\bGOAL:|\bFACTS:|lorem ipsum",
    re.IGNORECASE,
)


_PUNCT: Final = bytes.maketrans(string.punctuation.encode(), b" " * len(string.punctuation))
_WIDE_PUNCT: Final = ("“", "”", "‘", "’", "…", "—", "–", "«", "»", "¿", "¡", "\u00a0")


def tokens_of(lower: str) -> list[str]:
    """Words of an already lower-cased text, punctuation dropped.

    ASCII punctuation goes in one bytes translate (str.translate with a dict is ten times slower),
    the few wide punctuation marks by replace; other non-ASCII letters stay inside words.

    >>> tokens_of("don't take 50 mg!")
    ['don', 't', 'take', '50', 'mg']
    >>> tokens_of("café—“ok”…")
    ['café', 'ok']
    """
    if not lower.isascii():
        for mark in _WIDE_PUNCT:
            if mark in lower:
                lower = lower.replace(mark, " ")
    return lower.encode().translate(_PUNCT).decode().split()


def grams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    """Word ``n``-grams as tuples (the whole list when shorter than ``n``).

    >>> sorted(grams(["a", "b", "c", "d"], 3))
    [('a', 'b', 'c'), ('b', 'c', 'd')]
    """
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    if n == 3:  # lint's n, spelled out: no list of slices to build and unpack
        return set(zip(tokens, tokens[1:], tokens[2:]))
    return set(zip(*[tokens[i:] for i in range(n)]))


def normalized(text: str) -> str:
    """Lower-case words only: for comparing texts regardless of punctuation and case.

    >>> normalized("  Hello, World!  It's 5 mg. ")
    'hello world it s 5 mg'
    """
    return _NON_WORD.sub(" ", text.lower()).strip()


def word_count(text: str) -> int:
    """Whitespace-separated words."""
    return len(text.split())


#: The section labels of :data:`_TEMPLATE_RESIDUE`, searched in the few characters before each colon.
_SECTION_LABEL: Final = re.compile(r"\b(?:SITUATION|TRAP|GOAL|FACTS):", re.IGNORECASE)
_SECTION_LABEL_SPAN: Final = len("SITUATION") + 1


def has_template_residue(text: str, low: str | None = None) -> bool:
    """Jinja markers, chat-template tokens or our own prompt's section labels left in a text
    (``low``: the text already lower-cased, when the caller has it).

    The full case-insensitive pattern only runs on a text holding a bracket or brace, or "lorem";
    otherwise only the section labels ("SITUATION:") can match, and they are looked for just before
    each colon (the same answer, many times faster).

    >>> has_template_residue("Hello {{ name }}"), has_template_residue("Hello there")
    (True, False)
    >>> has_template_residue("Trap: the user asks twice"), has_template_residue("It's a trap: twice")
    (True, True)
    >>> has_template_residue("Mousetrap: a game"), has_template_residue("Note: dose at 9:00")
    (False, False)
    """
    if "{" in text or "}" in text or "<" in text or "[" in text or "lorem" in (text.lower() if low is None else low):
        return bool(_TEMPLATE_RESIDUE.search(text))
    colon = text.find(":")
    while colon >= 0:
        if _SECTION_LABEL.search(text, max(0, colon - _SECTION_LABEL_SPAN), colon + 1):
            return True
        colon = text.find(":", colon + 1)
    return False


def jaccard(a: AbstractSet[object], b: AbstractSet[object]) -> float:
    """Jaccard similarity of two sets (0 when both are empty).

    >>> jaccard({1, 2, 3}, {2, 3, 4})
    0.5
    """
    both = len(a & b)
    union = len(a) + len(b) - both
    return both / union if union else 0.0


def jaccard_bound(a: AbstractSet[object], b: AbstractSet[object]) -> float:
    """The largest Jaccard similarity two sets of these sizes can have (the smaller size over the
    larger): below a threshold, the sets need not be intersected. Never below :func:`jaccard` of
    the same sets, in floating point too (division is monotonic).

    >>> jaccard_bound({"a", "b"}, {"a", "b", "c", "d"}), jaccard({"a", "b"}, {"a", "b", "c", "d"})
    (0.5, 0.5)
    """
    x, y = len(a), len(b)
    return (x / y if x < y else y / x) if x and y else 0.0


#: Stop words and rubric boilerplate ("a good answer"), left out of content words.
STOP_WORDS: Final = frozenset(
    ["a", "an", "the", "and", "or", "but", "if", "then", "than", "so", "to", "of", "in", "on", "at", "by", "for", "with", "from", "into", "onto", "about", "as", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "done", "doing", "have", "has", "had", "having", "it", "its", "it's", "this", "that", "these", "those", "there", "here", "i", "me", "my", "mine", "you", "your", "yours", "we", "our", "us", "they", "them", "their", "he", "him", "his", "she", "her", "hers", "not", "no", "nor", "very", "just", "also", "too", "only", "own", "same", "can", "could", "should", "would", "will", "shall", "may", "might", "must", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "up", "down", "out", "over", "under", "again", "further", "once", "own", "s", "t", "don", "doesn", "didn", "isn", "aren", "wasn", "weren", "won", "wouldn", "shouldn", "couldn", "good", "bad", "answer", "answers", "response", "responses", "reply", "assistant", "assistants", "user", "users", "model", "ai", "one", "way", "ways", "while", "still"]
)


def content_stems(words: Iterable[str]) -> set[str]:
    """Words that are not stop words, with a plural ``s`` stripped (``doses`` -> ``dose``).

    >>> sorted(content_stems(["a", "good", "answer", "corrects", "the", "doses", "to", "5", "mg", "class"]))
    ['5', 'class', 'correct', 'dose', 'mg']
    """
    kept = (words if isinstance(words, (set, frozenset)) else set(words)) - STOP_WORDS
    return {w[:-1] if len(w) > 3 and w[-1] == "s" and w[-2] != "s" else w for w in kept}


def copies_from(text: str, sources: Iterable[str], n: int = 10) -> bool:
    """True if ``text`` repeats a run of ``n`` words from any of ``sources``.

    >>> copies_from("a b c d e f g h i j k", ["x a b c d e f g h i j y"])
    True
    >>> copies_from("a b c", ["a b c"], n=4)
    False
    """
    tokens = normalized(text).split()
    if len(tokens) < n:
        return False
    runs = {" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}
    for source in sources:
        sw = normalized(source).split()
        if any(" ".join(sw[i : i + n]) in runs for i in range(len(sw) - n + 1)):
            return True
    return False


class Words:
    """A text with its lower-cased form, word tokens and word set computed once, and its content
    words on first use: what every detector reads (a turn, a rubric criterion)."""

    __slots__ = ("_stems", "low", "text", "tokens", "words")

    def __init__(self, text: str) -> None:
        self.text = text
        self.low = low = text.lower()
        # tokens_of, inlined: one object per turn and per criterion, the hottest constructor of lint
        if low.isascii():
            self.tokens = tokens = low.encode().translate(_PUNCT).decode().split()
        else:
            self.tokens = tokens = tokens_of(low)
        self.words = set(tokens)
        self._stems: set[str] | None = None

    @property
    def stems(self) -> set[str]:
        """Content words (stop words out, plural ``s`` stripped)."""
        if self._stems is None:
            self._stems = content_stems(self.words)
        return self._stems
