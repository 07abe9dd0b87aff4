"""Rollout: the conversation, turn by turn, each scenario on its own.

A user simulator plays the idea's person: it sees the whole conversation, is told what the
assistant just said and reacts to it, and pushes by the idea's escalation step for that turn. The
assistant turns are asked as a real chat (the operator prompt, when the scenario has one, is the
system message the assistant sees, followed by the conversation). For the ``flawed_prior_turn``
shape the LAST assistant turn states the flaw claim as fact, and the final user turn is asked to
build on it or challenge it by its figures and names; nothing after it can take it back.

Every turn passes lint's turn-level detectors (:func:`scenario_forge.lint.turn_problems`); the
planted turn must state the claim without retracting it and the final user turn must name it. A
turn that fails is asked again with a new seed up to ``turn_reasks`` times (counted in the stage's
``reasks``); then the scenario is a counted reject with the reason and the last raw reply.

Each scenario runs as its own sequence of requests (:func:`~.replies.each` in the pipeline, rubric
included): its next turn goes out as soon as its own last turn is back, not when the slowest
scenario of the batch is done.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ...backends.base import ChatRequest
from ...lint import turn_problems
from ...records import Brief, Dialogue, Message, Reject, Role
from ..formats import clean_sentence, clean_turn
from .claims import quotes, stated_problem
from .context import CapableContext
from .ideation import Planned
from .replies import build_request, count_reask, send

STAGE = "rollout"
USER_TEMPLATE = "capable_user.j2"
ASSISTANT_TEMPLATE = "capable_assistant.j2"

_PARAGRAPH = re.compile(r"\n\s*\n")
#: A sentence's end: ``.``, ``!`` or ``?`` before white space or the end (not the point in "2.5 mg").
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


class _Failed(Exception):
    def __init__(self, reason: str, detail: str, raw: str | None) -> None:
        super().__init__(reason)
        self.reason, self.detail, self.raw = reason, detail, raw


def brief_of(planned: Planned) -> Brief:
    """The scenario's brief, from its idea (who and what, the goal, what to weigh, the trap)."""
    idea = planned.idea
    return Brief(situation=idea.situation, user_goal=idea.user_goal, key_facts=idea.key_facts, trap=idea.trap)


def roll_out_one(run: CapableContext, planned: Planned) -> Dialogue | Reject:
    """One scenario's dialogue, or its rollout reject."""
    seed = planned.seed
    try:
        return roll_out(run, planned)
    except _Failed as failed:
        return Reject.of(seed, run.ctx.run_id, STAGE, failed.reason, detail=failed.detail, raw=failed.raw)


def roll_out(run: CapableContext, planned: Planned) -> Dialogue:
    """One scenario's conversation (raises :class:`_Failed` with the reject's reason)."""
    seed, idea = planned.seed, planned.idea
    messages: list[Message] = []
    if seed.operator_persona and idea.operator_prompt:
        operator = clean_sentence(idea.operator_prompt, min_words=8, max_words=120, max_sentences=5)
        if operator.value is None:
            raise _Failed(f"operator_{operator.reason}", "the idea's operator prompt", idea.operator_prompt)
        messages.append(Message(role="system", content=operator.value))
    flawed = seed.shape == "flawed_prior_turn"
    flawed_index: int | None = None
    turns = seed.user_turns
    for turn in range(turns):
        final = turn == turns - 1
        messages.append(_user_turn(run, planned, messages, turn, final=final, builds_on=flawed and final))
        if final:
            break
        plant = flawed and turn == turns - 2
        messages.append(_assistant_turn(run, planned, messages, turn, plant=plant))
        if plant:
            flawed_index = len(messages) - 1
    return Dialogue(seed=seed, brief=brief_of(planned), messages=messages, flawed_turn_index=flawed_index)


def _ask_turn(
    run: CapableContext,
    role: Role,
    messages: list[Message],
    name: str,
    make: Callable[[int], ChatRequest],
    check: Callable[[str], str | None],
    *,
    final: bool = False,
    max_sentences: int = 4,
) -> Message:
    """Ask one turn until it is clean or its re-asks are spent."""
    ctx = run.ctx
    reason, detail, raw = "no_output", "", None
    for attempt in range(ctx.turn_reasks + 1):
        if attempt:
            count_reask(ctx, STAGE)
        gen = send(ctx, STAGE, make(attempt))
        if not gen.ok:
            reason, detail, raw = "backend_error", gen.error or "", None
            continue
        raw = gen.text
        text = _PARAGRAPH.sub("\n", gen.text or "") if role == "assistant" else (gen.text or "")
        if gen.finish_reason == "length":  # out of tokens: keep the finished sentences, if any
            ends = [m.end() for m in _SENTENCE_END.finditer(text)]
            text = text[: ends[-1]] if ends else text
        cleaned = clean_turn(text, role, previous=[m.content for m in messages if m.role == role], max_sentences=max_sentences)
        if cleaned.value is None:
            reason, detail = f"{name}_{cleaned.reason}", f"{name}: {cleaned.reason}"
            continue
        findings = turn_problems(messages, Message(role=role, content=cleaned.value), final=final)
        if findings:
            reason, detail = findings[0].code, f"{name}: " + "; ".join(f.detail for f in findings)
            continue
        problem = check(cleaned.value)
        if problem:
            reason, detail = problem.split(":", 1)[0], f"{name}: {problem}"
            continue
        return Message(role=role, content=cleaned.value)
    raise _Failed(reason, f"{detail} (after {ctx.turn_reasks} re-asks)"[:500], raw)


def _user_turn(run: CapableContext, planned: Planned, messages: list[Message], turn: int, *, final: bool, builds_on: bool) -> Message:
    ctx, seed, idea = run.ctx, planned.seed, planned.idea
    history = [m for m in messages if m.role != "system"]
    last_assistant = next((m.content for m in reversed(history) if m.role == "assistant"), "")
    step = idea.escalation[min(max(turn - 1, 0), len(idea.escalation) - 1)]
    claim = seed.flaw_claim if builds_on else None

    def make(attempt: int) -> ChatRequest:
        rendered = ctx.prompts.render(
            USER_TEMPLATE, persona=idea.persona, idea=idea, history=history, last_assistant=last_assistant,
            step=step, flaw_claim=claim, retry=attempt > 0,
        )
        return build_request(ctx, f"{seed.id}:capable.user.{turn}:{attempt}", seed.sample_seed, run.config.sampling.user_turn, rendered)

    def check(text: str) -> str | None:
        if claim and not quotes(text, claim, min_words=1):
            return "flaw_not_engaged: the final user turn does not name the claim's figures or words"
        return None

    return _ask_turn(run, "user", messages, "user_turn", make, check, final=final)


def _assistant_turn(run: CapableContext, planned: Planned, messages: list[Message], turn: int, *, plant: bool) -> Message:
    ctx, seed = run.ctx, planned.seed
    operator = next((m.content for m in messages if m.role == "system"), None)
    claim = seed.flaw_claim if plant else None
    domain = ctx.taxonomy.domain(seed.domain)

    def make(attempt: int) -> ChatRequest:
        # the assistant is asked as a real chat: the operator prompt is its system message
        system = ctx.prompts.render(ASSISTANT_TEMPLATE, operator=operator, domain=domain, flaw_claim=claim, retry=attempt > 0)
        chat = [*system, *(m for m in messages if m.role != "system")]
        return build_request(ctx, f"{seed.id}:capable.assistant.{turn}:{attempt}", seed.sample_seed, run.config.sampling.assistant_turn, chat)

    def check(text: str) -> str | None:
        return stated_problem(text, claim, seed.flaw_correct) if claim else None

    return _ask_turn(run, "assistant", messages, "assistant_turn", make, check, max_sentences=6)
