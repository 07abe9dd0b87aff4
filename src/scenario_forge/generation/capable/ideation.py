"""Ideation: the scenario ideas of one cell in one call, then near-duplicates dropped by embedding
before any rollout.

Each seed of a (domain, trait) cell is one *slot* of the call: the planner already drew its
persona, pressure, shape, flaw and operator flag, and the model fills each slot with a concrete
person (attributes drawn from the persona's profile), a situation, the specific false claim (the
seed's ``flaw_claim``/``flaw_correct`` when the catalogue gives them) and how the pressure
escalates. A cell with more seeds in a shard than ``ideas_per_call`` takes several calls. Every
seed without a usable idea is a counted reject: the call failed (``invalid_json`` after its
re-asks), the reply had no idea for its slot (``missing_idea``), the idea lacks what its slot needs
(``incomplete_idea``), or it is a near-duplicate of an idea kept before it (``duplicate_idea``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...backends.base import ChatRequest
from ...lint import turn_problems
from ...lint.text import has_template_residue
from ...records import Message, Reject, ScenarioSeed
from .context import CapableContext
from .replies import Idea, Ideas, Understanding, ask_json, build_request, schema_of

STAGE = "ideation"
TEMPLATE = "capable_ideation.j2"


@dataclass(frozen=True)
class Planned:
    """A seed with its idea: ready for rollout (the seed's flaw fields filled in from the idea)."""

    seed: ScenarioSeed
    idea: Idea
    understanding: Understanding


def slot_of(run: CapableContext, seed: ScenarioSeed, number: int) -> dict[str, Any]:
    """What the ideation prompt says about one seed."""
    taxonomy = run.ctx.taxonomy
    trait = taxonomy.trait(seed.trait)
    return {
        "number": number,
        "shape": seed.shape,
        "turns": seed.user_turns,
        "operator": seed.operator_persona,
        "persona": taxonomy.domain(seed.domain).persona(seed.persona).profile(),
        "pressure": taxonomy.pressure(seed.pressure),
        "facet": next((f for f in trait.facets if f.id == seed.facet), None),
        "flaw_claim": seed.flaw_claim,
        "flaw_correct": seed.flaw_correct,
        "flaw_label": seed.flaw or "a specific factual mistake",
    }


def idea_problem(seed: ScenarioSeed, idea: Idea) -> str | None:
    """Why ``idea`` cannot be rolled out for ``seed`` (its slot's needs), or None."""
    texts = [idea.situation, idea.user_goal, idea.key_facts, idea.trap, idea.pressure_tactic, *idea.escalation]
    if any(has_template_residue(t) for t in texts):
        return "template text left in the idea"
    if seed.shape == "flawed_prior_turn" and not seed.flaw_claim and not (idea.flaw_claim and idea.flaw_correct):
        return "a flawed_prior_turn slot needs flaw_claim and flaw_correct"
    if seed.operator_persona:
        if not idea.operator_prompt or len(idea.operator_prompt.split()) < 8:
            return "an operator slot needs an operator_prompt of at least 8 words"
        findings = turn_problems([], Message(role="system", content=idea.operator_prompt))
        if findings:
            return f"operator_prompt: {findings[0].code}"
    return None


def with_flaw(seed: ScenarioSeed, idea: Idea) -> ScenarioSeed:
    """The seed with the claim its flawed turn will state: the catalogue's when it gives one,
    otherwise the idea's (plain-shape seeds carry none)."""
    if seed.shape != "flawed_prior_turn" or seed.flaw_claim:
        return seed
    return seed.model_copy(update={"flaw_claim": idea.flaw_claim, "flaw_correct": idea.flaw_correct})


def idea_text(idea: Idea) -> str:
    """What two ideas must share to be near-duplicates: who, what happens, what they want, the claim."""
    p = idea.persona
    return f"{p.role}. {idea.situation} {idea.user_goal} {idea.flaw_claim or ''}".strip()


def ideate(
    run: CapableContext, seeds: Sequence[ScenarioSeed], understanding: Understanding, call: int
) -> tuple[list[tuple[ScenarioSeed, Idea]], list[Reject]]:
    """One ideation call for ``seeds`` (all of one cell): each seed with its idea, or a reject."""
    ctx = run.ctx
    first = seeds[0]
    domain, trait = ctx.taxonomy.domain(first.domain), ctx.taxonomy.trait(first.trait)
    slots = [slot_of(run, seed, i + 1) for i, seed in enumerate(seeds)]
    key = [s.id for s in seeds]

    def make(attempt: int, error: str) -> ChatRequest:
        messages = ctx.prompts.render(
            TEMPLATE, domain=domain, trait=trait, understanding=understanding, slots=slots, error=error
        )
        return build_request(
            ctx, f"{first.id}:capable.ideation.{call}:{attempt}", key, run.config.sampling.ideation, messages,
            json_schema=schema_of(Ideas),
        )

    asked = ask_json(ctx, STAGE, Ideas, make, retries=run.retries)
    if asked.value is None:
        reason = asked.reason or "invalid_json"
        return [], [Reject.of(s, ctx.run_id, STAGE, reason, detail=asked.detail, raw=asked.raw) for s in seeds]
    ideas = asked.value.ideas
    kept: list[tuple[ScenarioSeed, Idea]] = []
    rejects: list[Reject] = []
    for i, seed in enumerate(seeds):
        if i >= len(ideas):
            detail = f"the reply has {len(ideas)} ideas for {len(seeds)} slots"
            rejects.append(Reject.of(seed, ctx.run_id, STAGE, "missing_idea", detail=detail, raw=asked.raw))
            continue
        problem = idea_problem(seed, ideas[i])
        if problem:
            rejects.append(
                Reject.of(seed, ctx.run_id, STAGE, "incomplete_idea", detail=f"slot {i + 1}: {problem}", raw=ideas[i].model_dump_json())
            )
            continue
        kept.append((with_flaw(seed, ideas[i]), ideas[i]))
    return kept, rejects


def drop_near_duplicates(
    run: CapableContext, ideas: Sequence[tuple[ScenarioSeed, Idea]]
) -> tuple[list[tuple[ScenarioSeed, Idea]], list[Reject]]:
    """Keep each idea unless its cosine similarity to an idea kept before it reaches
    ``idea_threshold``; a dropped idea's seed is a ``duplicate_idea`` reject."""
    if len(ideas) < 2:
        return list(ideas), []
    vectors = np.asarray(run.embed([idea_text(idea) for _, idea in ideas]), dtype=np.float32)
    kept: list[int] = []
    rejects: list[Reject] = []
    for i, (seed, idea) in enumerate(ideas):
        if kept:
            sims = vectors[kept] @ vectors[i]
            j = int(np.argmax(sims))
            if float(sims[j]) >= run.config.idea_threshold:
                detail = f"cosine {float(sims[j]):.3f} with the idea for {ideas[kept[j]][0].id}"
                rejects.append(Reject.of(seed, run.ctx.run_id, STAGE, "duplicate_idea", detail=detail, raw=idea.model_dump_json()))
                continue
        kept.append(i)
    return [ideas[i] for i in kept], rejects
