"""Cheap quality gates: structural checks that need no model, run before the LLM judge.

The first gate is lint (:mod:`scenario_forge.lint`): every lint finding is a gate problem whose
reason is the lint code (``placeholder``, ``rubric_leak``, ...), so ``rejects.parquet`` and
``scenario-forge lint`` speak the same codes. The gates lint does not cover follow: turn length
(``turn_too_short`` / ``turn_too_long``, from the curation config), template residue in the
brief, and the trait-tagged rubric counts (``rubric_no_negative_criterion``,
``rubric_too_few_positive_criteria``).

A scenario is rejected with the *first* failing gate, in the order of :data:`GATE_ORDER`; the
detail lists every problem found (``code: detail; ...``), so one look at a reject says all that
is wrong with it.

The rubric-leak detector (``rubric_leak``, in :mod:`scenario_forge.lint.leak`) replaces "the user
already gives the answer": a user turn quoting a criterion (positive or negative, as a statement
or a question: its verb and ``answer_overlap`` of its word 3-grams), or a rubric placed in the
system message.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import CurationConfig
from ..lint import REASONS, lint_scenario
from ..lint.text import word_count
from ..lint.turns import Turn, template_fragment
from ..records import Reject, Scenario

STAGE = "gate"
GATE_ORDER = (
    *REASONS,
    "turn_too_short",
    "turn_too_long",
    "rubric_no_negative_criterion",
    "rubric_too_few_positive_criteria",
)
MIN_POSITIVE = 3
MIN_NEGATIVE = 1

__all__ = ["GATE_ORDER", "STAGE", "apply_gates", "problems", "rubric_problems"]


def problems(scenario: Scenario, config: CurationConfig) -> list[tuple[str, str]]:
    """Every gate this scenario fails, as ``(reason, detail)``, in :data:`GATE_ORDER`."""
    lint = lint_scenario(
        scenario.id, scenario.messages, scenario.rubric, flaw=scenario.flaw,
        flawed_turn_index=scenario.flawed_turn_index, shape=scenario.shape, trait=scenario.trait,
        domain=scenario.domain, leak_share=config.answer_overlap,
    )
    found: list[tuple[str, str]] = [(f.code, f.detail) for f in lint.findings]
    for field, text in scenario.brief.model_dump().items():
        residue = template_fragment(Turn(0, "system", text))
        if residue:
            found.append(("template_fragment", f"brief {field}: {residue[1]}"))
            break
    for i, m in enumerate(scenario.messages):
        if m.role == "system" or not m.content.strip():
            continue
        n = word_count(m.content)
        if n < config.min_turn_words:
            found.append(("turn_too_short", f"turn {i} ({m.role}) has {n} words (min {config.min_turn_words})"))
        elif n > config.max_turn_words:
            found.append(("turn_too_long", f"turn {i} ({m.role}) has {n} words (max {config.max_turn_words})"))
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
        rejects.append(Reject.of_scenario(s, STAGE, reason, "; ".join(f"{r}: {d}" for r, d in found)))
    return kept, rejects, dict(sorted(counts.items()))
