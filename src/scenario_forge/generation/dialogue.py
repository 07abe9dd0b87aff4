"""Stage 2, dialogue: a multi-turn conversation in which the pressure escalates.

The conversation is written turn by turn, each scenario on its own (:func:`dialogue_steps`,
:mod:`.schedule`): user turn 1, the assistant turn after it, user turn 2, and so on, each asked as
soon as the scenario's previous turn is back (not when the whole batch's is). A simulated user writes each user
turn (one short message in role is something even a small model manages, where a whole transcript
is not); the earlier assistant turns are written separately. Scenarios with an operator persona
open with a system prompt that pushes bad advice, and every assistant turn is written with that
prompt as its request's system message, so the assistant answers as the deployed assistant would.
Every conversation ends with a user turn: it is an RL prompt.

For the ``flawed_prior_turn`` shape the planted mistake goes into the LAST assistant turn (so no
later assistant turn can take it back before the final user turn), ``flawed_turn_index`` points at
it, and the final user turn is asked to rely on it or challenge it, with the flawed claim shown in
its prompt. Where the seed carries a specific claim (``flaw_claim``, from the flaw catalogue) the
flawed turn opens with that claim (handed to the backend as the reply's opening, like the brief's
fields) and the model writes the rest, so the turn states a checkable claim by construction; a seed
with only the flaw's label gets the label as an instruction, as before.

Every turn passes the turn-level lint detectors (:func:`scenario_forge.lint.turn_problems`:
role confusion, placeholders, template fragments, repetition, copying, a truncated final turn)
before it joins the conversation; a turn that fails is asked again with a new seed up to
``turn_reasks`` times, and a scenario whose turn still fails is rejected with the lint code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

from ..backends.base import ChatRequest, Generation, join_prefix
from ..lint import turn_problems
from ..records import Briefed, Dialogue, Message, Reject, Role
from .context import StageContext
from . import flaw as flaws
from .formats import Checked, clean_sentence, clean_turn
from .retry import Reask, ask_one
from .schedule import Ask, Steps, each, split

STAGE = "dialogue"


@dataclass(eq=False)
class _Draft:
    item: Briefed
    messages: list[Message] = field(default_factory=list)
    flawed_turn_index: int | None = None

    def history(self) -> list[Message]:
        return [m for m in self.messages if m.role != "system"]

    def said(self, role: str) -> list[str]:
        return [m.content for m in self.messages if m.role == role]

    def operator(self) -> str:
        """The operator (system) prompt, or "" when the scenario has none."""
        return self.messages[0].content if self.messages and self.messages[0].role == "system" else ""


def write_dialogues(items: Sequence[Briefed], ctx: StageContext) -> tuple[list[Dialogue], list[Reject]]:
    """Every briefed seed's conversation (each on its own, :mod:`.schedule`), or its reject."""
    return split(each(ctx, items, lambda item: dialogue_steps(item, ctx)), Dialogue)


def dialogue_steps(item: Briefed, ctx: StageContext) -> Steps[Dialogue | Reject]:
    """One scenario's conversation, turn after turn, or its reject."""
    d = _Draft(item)
    seed = item.seed

    def run_step(
        name: str,
        role: Role,
        make: Callable[[_Draft, int], ChatRequest],
        check: Callable[[_Draft, Generation], _Checked],
    ) -> Generator[Ask, list[Generation], Reject | None]:
        reasks = ctx.turn_reasks if role != "system" else 1
        outcome = yield from ask_one(ctx, STAGE, lambda a: make(d, a), lambda g: check(d, g), reasks=reasks)
        if outcome.value is not None:
            d.messages.append(Message(role=role, content=outcome.value))
            return None
        if outcome.lint:  # a turn-level lint finding survived every re-ask: the lint code is the reason
            reason = outcome.reason or "lint"
            detail = f"{name} after {outcome.reasks} re-asks: {outcome.detail}"
        else:
            reason, detail = f"{name}_{outcome.reason}", outcome.detail
        return Reject.of(seed, ctx.run_id, STAGE, reason, detail=detail, raw=outcome.raw)

    # Operator persona: a system prompt that pushes the assistant toward the trap.
    if seed.operator_persona:
        rejected = yield from run_step(
            "operator", "system",
            lambda d, a: ctx.request(
                d.item.seed, "operator", a, "operator.j2", ctx.sampling.operator,
                brief=d.item.brief, retry=a > 0,
            ),
            lambda d, g: _as_pair(clean_sentence(g.text, min_words=8, max_words=90, max_sentences=4)),
        )
        if rejected is not None:
            return rejected

    for turn in range(seed.user_turns):

        def ask_user(d: _Draft, a: int, turn: int = turn) -> ChatRequest:
            return ctx.request(
                d.item.seed, f"user.{turn}", a, "user_turn.j2", ctx.sampling.user_turn,
                brief=d.item.brief, history=d.history(), turn=turn, escalation=_step(ctx, d, turn),
                challenge_flaw=d.flawed_turn_index is not None and turn == d.item.seed.user_turns - 1,
                claim=flaws.claim(d.item.seed) or "", stance=_stance(d), retry=a > 0,
            )

        def check_user(d: _Draft, g: Generation, turn: int = turn) -> _Checked:
            return _linted(
                d, "user", clean_turn(_whole_sentences(g), "user", previous=d.said("user"), max_sentences=3),
                final=turn == d.item.seed.user_turns - 1,
            )

        def ask_assistant(d: _Draft, a: int, turn: int = turn) -> ChatRequest:
            plant = _plants_flaw(d, turn)
            return ctx.request(
                d.item.seed, f"assistant.{turn}", a, "assistant_turn.j2", ctx.sampling.assistant_turn,
                prefix=flaws.opening(d.item.seed) if plant else None,
                history=d.history(), plant_flaw=plant, operator=d.operator(), retry=a > 0,
            )

        def check_assistant(d: _Draft, g: Generation, turn: int = turn) -> _Checked:
            opening = flaws.opening(d.item.seed) if _plants_flaw(d, turn) else None
            text = _whole_sentences(g, opening)
            return _linted(d, "assistant", clean_turn(text, "assistant", previous=d.said("assistant")))

        rejected = yield from run_step("user_turn", "user", ask_user, check_user)
        if rejected is not None:
            return rejected
        if turn >= seed.user_turns - 1:
            break
        rejected = yield from run_step("assistant_turn", "assistant", ask_assistant, check_assistant)
        if rejected is not None:
            return rejected
        if _plants_flaw(d, turn):
            d.flawed_turn_index = len(d.messages) - 1

    return Dialogue(seed=seed, brief=item.brief, messages=d.messages, flawed_turn_index=d.flawed_turn_index)


def _plants_flaw(draft: _Draft, turn: int) -> bool:
    """The assistant turn after user turn ``turn`` carries the flaw: the last assistant turn."""
    seed = draft.item.seed
    return flaws.is_flawed(seed) and turn == seed.user_turns - 2


def _stance(draft: _Draft) -> str:
    """How the final user turn meets the flaw: ``rely`` (builds on it) or ``challenge`` (asks for
    proof), alternating by the scenario's sampling seed so a run holds both."""
    return "rely" if draft.item.seed.sample_seed % 2 == 0 else "challenge"


def _step(ctx: StageContext, draft: _Draft, turn: int) -> str:
    steps = ctx.taxonomy.pressure(draft.item.seed.pressure).escalation
    return steps[min(turn, len(steps) - 1)]


#: what a turn check gives ask_one: the turn, or why not (a lint finding asks again)
_Checked = tuple["str | None", "str | Reask | None"]


def _as_pair(checked: Checked) -> _Checked:
    return checked.value, checked.reason


def _whole_sentences(gen: Generation, opening: str | None = None) -> str | None:
    """The generation's text (after ``opening``, the reply's given first words, when there is
    one); when it ran out of tokens, cut back to its last finished sentence (if it has one), so a
    turn never ends mid-sentence because of ``max_tokens``.

    >>> from types import SimpleNamespace as G
    >>> _whole_sentences(G(text="I took two pills. Can you tell me if the", finish_reason="length"))
    'I took two pills.'
    >>> _whole_sentences(G(text="I took two pills and", finish_reason="length"))
    'I took two pills and'
    >>> _whole_sentences(G(text="My dad takes 2.5 mg. He wants to", finish_reason="length"))  # not at "2."
    'My dad takes 2.5 mg.'
    >>> _whole_sentences(G(text="My dad takes 2.5 mg and he wants to", finish_reason="length"))
    'My dad takes 2.5 mg and he wants to'
    >>> _whole_sentences(G(text=" Give it with food and", finish_reason="length"), "500 mg is fine.")
    '500 mg is fine.'
    """
    text = gen.text
    if opening is not None and text is not None:
        text = join_prefix(opening, text)
    if text is None or gen.finish_reason != "length":
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].rstrip() if ends else text


#: A sentence's end: ``.``, ``!`` or ``?`` followed by white space or the end of the text (so the
#: point inside "2.5 mg" or "e.g" is not one).
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


def _linted(draft: _Draft, role: Role, checked: Checked, *, final: bool = False) -> _Checked:
    """A cleaned turn, then the turn-level lint detectors: a finding asks the turn again."""
    if checked.value is None:
        return checked.value, checked.reason
    # A retraction of the planted flaw is caught at curation (lint's flaw_retracted needs the whole
    # dialogue), not here: no turn-level detector reads the flaw.
    findings = turn_problems(draft.messages, Message(role=role, content=checked.value), final=final)
    if findings:
        return None, Reask(findings[0].code, "; ".join(f.detail for f in findings)[:300])
    return checked.value, None
