"""Render every generation template once with sample values before any model loads.

A template that names a variable the stage does not pass fails here, with the template's name,
instead of halfway through a run.
"""

from __future__ import annotations

from ..prompts import PromptSet
from ..records import Brief, Message, ScenarioSeed
from ..taxonomy.models import Taxonomy
from .brief import FIELDS
from .rubric import MAX_CRITERIA, MIN_CRITERIA, SLOTS, flaw_slots


def check_templates(prompts: PromptSet, taxonomy: Taxonomy, seed: ScenarioSeed) -> None:
    domain = taxonomy.domain(seed.domain)
    trait = taxonomy.trait(seed.trait)
    base = {
        "domain": domain,
        "trait": trait,
        "facet": trait.facets[0] if trait.facets else None,
        "pressure": taxonomy.pressure(seed.pressure),
        "persona": domain.personas[0].description,
        "flaw": domain.flaws[0].label,
        "prefix": "Sample",
        "retry": True,
    }
    brief = Brief(situation="s s s s s.", user_goal="g g g g.", key_facts="f f f f.", trap="t t t t.")
    history = [Message(role="user", content="u"), Message(role="assistant", content="a")]
    for field in FIELDS:
        prompts.render("brief.j2", **base, field=field, written=brief.model_dump())
    prompts.render("brief_json.j2", **base, error="sample error")
    prompts.render("operator.j2", **base, brief=brief)
    for challenge in (False, True):
        prompts.render(
            "user_turn.j2", **base, brief=brief, history=history, turn=1, escalation="asks again",
            challenge_flaw=challenge, claim="A sample claim." if challenge else "", stance="rely",
        )
    for plant in (False, True):
        prompts.render("assistant_turn.j2", **base, history=history, plant_flaw=plant, operator="You are o.")
    for slot in (*SLOTS, *flaw_slots(seed.model_copy(update={"shape": "flawed_prior_turn", "flaw": "erred"}))):
        prompts.render("rubric.j2", **base, slot=slot.name, brief=brief, last_user="u", claim="c", correct="k")
    prompts.render(
        "rubric_json.j2", **base, brief=brief, messages=history, min_criteria=MIN_CRITERIA,
        max_criteria=MAX_CRITERIA, error="sample error", claim="c", correct="k",
    )
