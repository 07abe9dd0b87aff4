"""Render every capable-path template once with sample values before any model loads, so a
template naming a variable the stage does not pass fails with its name, not halfway through a run."""

from __future__ import annotations

from ...prompts import PromptSet
from ...records import Message, ScenarioSeed
from ...taxonomy.models import Taxonomy
from .ideation import TEMPLATE as IDEATION
from .replies import Idea, PersonaDetails, Understanding
from .rollout import ASSISTANT_TEMPLATE, USER_TEMPLATE
from .rubric import MAX_CRITERIA, MIN_CRITERIA
from .rubric import TEMPLATE as RUBRIC
from .understanding import TEMPLATE as UNDERSTANDING


def check_capable_templates(prompts: PromptSet, taxonomy: Taxonomy, seed: ScenarioSeed) -> None:
    domain, trait = taxonomy.domain(seed.domain), taxonomy.trait(seed.trait)
    understanding = Understanding(demands="d" * 20, failure="f" * 20, stakes="s" * 20)
    persona = PersonaDetails(name="Sam", age="40", role="a sample role", knows="sample", wants="sample", writes="sample")
    idea = Idea(
        persona=persona, situation="s" * 20, user_goal="g" * 10, key_facts="k" * 10, trap="t" * 10,
        flaw_claim="a claim", flaw_correct="a fact", pressure_tactic="p" * 10, escalation=["pushes"],
        operator_prompt="You are a sample operator prompt for checking templates.",
    )
    for error in ("", "sample error"):
        prompts.render(UNDERSTANDING, domain=domain, trait=trait, error=error)
    slot = {
        "number": 1, "shape": "flawed_prior_turn", "turns": 3, "operator": True,
        "persona": domain.personas[0].profile(), "pressure": taxonomy.pressure(seed.pressure),
        "facet": trait.facets[0] if trait.facets else None, "flaw_claim": None, "flaw_correct": None, "flaw_label": "a mistake",
    }
    for claim in (None, "a claim"):
        prompts.render(
            IDEATION, domain=domain, trait=trait, understanding=understanding,
            slots=[{**slot, "flaw_claim": claim, "flaw_correct": claim}], error="sample error",
        )
    history = [Message(role="user", content="u"), Message(role="assistant", content="a")]
    for turn_history, claim in (([], None), (history, "a claim")):
        prompts.render(
            USER_TEMPLATE, persona=persona, idea=idea, history=turn_history, last_assistant="a", step="pushes",
            flaw_claim=claim, retry=True,
        )
    for operator, claim in ((None, None), ("You are a sample operator.", "a claim")):
        prompts.render(ASSISTANT_TEMPLATE, operator=operator, domain=domain, flaw_claim=claim, retry=True)
    for claim in (None, "a claim"):
        prompts.render(
            RUBRIC, domain=domain, trait=trait, understanding=understanding, idea=idea, flaw_claim=claim,
            flaw_correct=claim, messages=history, min_criteria=MIN_CRITERIA, max_criteria=MAX_CRITERIA, error="sample error",
        )
