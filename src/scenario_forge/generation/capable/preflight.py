"""Render every capable-path template once with sample values before any model loads, so a
template naming a variable the stage does not pass fails with its name, not halfway through a run.
The same sample renders size the ``--plan-only`` estimate (:mod:`.estimate`)."""

from __future__ import annotations

from typing import Any

from ...prompts import PromptSet
from ...records import Message, ScenarioSeed
from ...taxonomy.models import Taxonomy
from .ideation import TEMPLATE as IDEATION
from .replies import Idea, PersonaDetails, Understanding
from .rollout import ASSISTANT_TEMPLATE, USER_TEMPLATE
from .rubric import MAX_CRITERIA, MIN_CRITERIA
from .rubric import TEMPLATE as RUBRIC
from .understanding import TEMPLATE as UNDERSTANDING

_UNDERSTANDING = Understanding(demands="d" * 20, failure="f" * 20, stakes="s" * 20)
_PERSONA = PersonaDetails(name="Sam", age="40", role="a sample role", knows="sample", wants="sample", writes="sample")
_IDEA = Idea(
    persona=_PERSONA, situation="s" * 20, user_goal="g" * 10, key_facts="k" * 10, trap="t" * 10,
    flaw_claim="a claim", flaw_correct="a fact", pressure_tactic="p" * 10, escalation=["pushes"],
    operator_prompt="You are a sample operator prompt for checking templates.",
)
_HISTORY = [Message(role="user", content="u"), Message(role="assistant", content="a")]


def _renderers(prompts: PromptSet, taxonomy: Taxonomy, seed: ScenarioSeed) -> dict[str, Any]:
    """One function per request kind, taking that kind's varying values (claim, retry, ...)."""
    domain, trait = taxonomy.domain(seed.domain), taxonomy.trait(seed.trait)
    slot = {
        "number": 1, "shape": "flawed_prior_turn", "turns": 3, "operator": True,
        "persona": domain.personas[0].profile(), "pressure": taxonomy.pressure(seed.pressure),
        "facet": trait.facets[0] if trait.facets else None, "flaw_claim": None, "flaw_correct": None, "flaw_label": "a mistake",
    }
    return {
        "understanding": lambda error="": prompts.render(UNDERSTANDING, domain=domain, trait=trait, error=error),
        "ideation": lambda claim=None, slots=1, error="": prompts.render(
            IDEATION, domain=domain, trait=trait, understanding=_UNDERSTANDING,
            slots=[{**slot, "number": i + 1, "flaw_claim": claim, "flaw_correct": claim} for i in range(slots)], error=error,
        ),
        "user_turn": lambda history=(), claim=None, retry=False: prompts.render(
            USER_TEMPLATE, persona=_PERSONA, idea=_IDEA, history=list(history), last_assistant="a", step="pushes",
            flaw_claim=claim, retry=retry,
        ),
        "assistant_turn": lambda operator=None, claim=None, retry=False: prompts.render(
            ASSISTANT_TEMPLATE, operator=operator, domain=domain, flaw_claim=claim, retry=retry,
        ),
        "rubric": lambda claim=None, error="": prompts.render(
            RUBRIC, domain=domain, trait=trait, understanding=_UNDERSTANDING, idea=_IDEA, flaw_claim=claim,
            flaw_correct=claim, messages=_HISTORY, min_criteria=MIN_CRITERIA, max_criteria=MAX_CRITERIA, error=error,
        ),
    }


def check_capable_templates(prompts: PromptSet, taxonomy: Taxonomy, seed: ScenarioSeed) -> None:
    r = _renderers(prompts, taxonomy, seed)
    for error in ("", "sample error"):
        r["understanding"](error=error)
    for claim in (None, "a claim"):
        r["ideation"](claim=claim, error="sample error")
    for history, claim in (((), None), (_HISTORY, "a claim")):
        r["user_turn"](history=history, claim=claim, retry=True)
    for operator, claim in ((None, None), ("You are a sample operator.", "a claim")):
        r["assistant_turn"](operator=operator, claim=claim, retry=True)
    for claim in (None, "a claim"):
        r["rubric"](claim=claim, error="sample error")


def sample_prompt_chars(prompts: PromptSet, taxonomy: Taxonomy, seed: ScenarioSeed) -> dict[str, int]:
    """Each request kind's first-attempt prompt length in characters, with the sample values, and
    ``ideation_slot``: what one more slot adds to an ideation prompt."""
    r = _renderers(prompts, taxonomy, seed)

    def chars(messages: list[Message]) -> int:
        return sum(len(m.content) for m in messages)

    one = chars(r["ideation"](slots=1))
    return {
        "understanding": chars(r["understanding"]()),
        "ideation": one,
        "ideation_slot": max(chars(r["ideation"](slots=2)) - one, 0),
        "user_turn": chars(r["user_turn"]()),
        "assistant_turn": chars(r["assistant_turn"]()),
        "rubric": chars(r["rubric"]()),
    }
