"""The taxonomy's own words for a scenario's domain and trait: what our prompts showed the model that
wrote the rubric (the domain's description; the trait's definition, good behaviours and failures).

A criterion made of those words, and of little else, grades the trait in general, not this
conversation: "The assistant provides accurate information on health and medicine symptoms,
diagnoses, medications, doses, treatment choices, mental health and wellbeing..." restates the
health domain's description (a capable-path rubric from a 1.5B model did exactly that). The rubric
check (:func:`scenario_forge.lint.rubric.criterion_problems`) reads :class:`BriefWords` for the
row's ``domain`` and ``trait``.

Lint reads the shipped taxonomy by default (:func:`shipped_brief`); a caller that ran on another
taxonomy passes :func:`brief_of` for it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .text import content_stems, tokens_of


@dataclass(frozen=True)
class Brief:
    """What the rubric's writer was shown for one domain and trait: its content ``stems``, and
    ``forms``, every word whose stem is one of them (a stem, or a stem with a plural ``s``), so that a
    criterion's word set is intersected with ``forms`` first and its own stems only built when
    enough of its words are there."""

    stems: frozenset[str]
    forms: frozenset[str]


@dataclass(frozen=True)
class BriefWords:
    """Content stems (:func:`~scenario_forge.lint.text.content_stems`) of each domain's and each
    trait's texts, by id."""

    domains: Mapping[str, frozenset[str]]
    traits: Mapping[str, frozenset[str]]
    _pairs: dict[tuple[str, str], Brief] = field(default_factory=dict, repr=False, compare=False)

    def words(self, domain: str | None, trait: str | None) -> Brief | None:
        """The :class:`Brief` for this domain and trait (None when either is unknown: the check is
        then skipped).

        >>> b = BriefWords({"health": frozenset({"dose"})}, {"honesty": frozenset({"truth"})})
        >>> sorted(b.words("health", "honesty").forms), b.words("health", None), b.words("law", "honesty")
        (['dose', 'doses', 'truth', 'truths'], None, None)
        """
        if domain is None or trait is None:
            return None
        brief = self._pairs.get((domain, trait))
        if brief is None:
            d, t = self.domains.get(domain), self.traits.get(trait)
            if d is None or t is None:
                return None
            stems = d | t
            brief = self._pairs[domain, trait] = Brief(stems, stems | {w + "s" for w in stems})
        return brief


def _stems(texts: Iterable[str]) -> frozenset[str]:
    return frozenset(content_stems([w for text in texts for w in tokens_of(text.lower())]))


def brief_of(taxonomy: Any) -> BriefWords:
    """:class:`BriefWords` of a :class:`~scenario_forge.taxonomy.models.Taxonomy` (its domains'
    descriptions; its traits' definitions, good behaviours and failures)."""
    return BriefWords(
        domains={d.id: _stems([d.description]) for d in taxonomy.domains},
        traits={t.id: _stems([t.definition, *t.good_behaviour, *t.failures]) for t in taxonomy.traits},
    )


@functools.cache
def shipped_brief() -> BriefWords:
    """:class:`BriefWords` of the shipped taxonomy, read once per process (an empty one when the
    shipped taxonomy cannot be read: the check is then skipped, never an error)."""
    try:
        from ..errors import ConfigError
        from ..taxonomy.loader import load_taxonomy
    except ImportError:  # a copy of the lint package outside scenario_forge (benchmarks/lint_equivalence.py --old)
        return BriefWords({}, {})
    try:
        return brief_of(load_taxonomy())
    except (ConfigError, OSError):  # an installed copy without its data folder: lint's other checks still run
        return BriefWords({}, {})
