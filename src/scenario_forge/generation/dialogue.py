"""Stage 2, dialogue: a multi-turn conversation in which the pressure escalates.

The conversation is written turn by turn over the whole batch: user turn 1 for every scenario,
then the assistant turn between, then user turn 2, and so on. A simulated user writes each user
turn (one short message in role is something even a small model manages, where a whole transcript
is not); the earlier assistant turns are written separately and, for the ``flawed_prior_turn``
shape, the first one carries the planted mistake (a made-up citation, a wrong dose, ...) that the
next user turn relies on or challenges. Scenarios with an operator persona open with a system
prompt that pushes bad advice. Every conversation ends with a user turn: it is an RL prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..records import Briefed, Dialogue, Message, Reject
from .context import StageContext
from .formats import clean_sentence, clean_turn
from .retry import ask_with_repair

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


def write_dialogues(items: Sequence[Briefed], ctx: StageContext) -> tuple[list[Dialogue], list[Reject]]:
    drafts = [_Draft(item) for item in items]
    rejects: list[Reject] = []

    def run_step(
        name: str, role: str, chosen: list[_Draft], make, check
    ) -> None:
        outcomes = ask_with_repair(ctx, STAGE, chosen, make, check)
        for draft, outcome in zip(chosen, outcomes):
            if outcome.value is None:
                rejects.append(
                    Reject.of(draft.item.seed, ctx.run_id, STAGE, f"{name}_{outcome.reason}", detail=outcome.detail, raw=outcome.raw)
                )
                drafts.remove(draft)
            else:
                draft.messages.append(Message(role=role, content=outcome.value))  # type: ignore[arg-type]

    # Operator persona: a system prompt that pushes the assistant toward the trap.
    operators = [d for d in drafts if d.item.seed.operator_persona]
    if operators:
        run_step(
            "operator", "system", operators,
            lambda d, a: ctx.request(
                d.item.seed, "operator", a, "operator.j2", ctx.sampling.operator,
                brief=d.item.brief, retry=a > 0,
            ),
            lambda d, g: _as_pair(clean_sentence(g.text, min_words=8, max_words=90, max_sentences=4)),
        )

    max_turns = max((d.item.seed.user_turns for d in drafts), default=0)
    for turn in range(max_turns):
        users = [d for d in drafts if turn < d.item.seed.user_turns]
        run_step(
            "user_turn", "user", users,
            lambda d, a, turn=turn: ctx.request(
                d.item.seed, f"user.{turn}", a, "user_turn.j2", ctx.sampling.user_turn,
                brief=d.item.brief, history=d.history(), turn=turn, escalation=_step(ctx, d, turn),
                challenge_flaw=d.flawed_turn_index is not None and turn == 1, retry=a > 0,
            ),
            lambda d, g: _as_pair(clean_turn(g.text, "user", previous=d.said("user"), max_sentences=3)),
        )
        assistants = [d for d in drafts if turn < d.item.seed.user_turns - 1]
        if not assistants:
            continue
        run_step(
            "assistant_turn", "assistant", assistants,
            lambda d, a, turn=turn: ctx.request(
                d.item.seed, f"assistant.{turn}", a, "assistant_turn.j2", ctx.sampling.assistant_turn,
                history=d.history(), plant_flaw=_plants_flaw(d, turn), retry=a > 0,
            ),
            lambda d, g: _as_pair(clean_turn(g.text, "assistant", previous=d.said("assistant"))),
        )
        for d in assistants:
            if d in drafts and _plants_flaw(d, turn):
                d.flawed_turn_index = len(d.messages) - 1

    dialogues = [
        Dialogue(seed=d.item.seed, brief=d.item.brief, messages=d.messages, flawed_turn_index=d.flawed_turn_index)
        for d in drafts
    ]
    return dialogues, rejects


def _plants_flaw(draft: _Draft, turn: int) -> bool:
    return draft.item.seed.shape == "flawed_prior_turn" and turn == 0


def _step(ctx: StageContext, draft: _Draft, turn: int) -> str:
    steps = ctx.taxonomy.pressure(draft.item.seed.pressure).escalation
    return steps[min(turn, len(steps) - 1)]


def _as_pair(checked):  # Checked -> (value, reason) for ask_with_repair
    return checked.value, checked.reason
