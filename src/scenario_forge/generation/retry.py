"""Ask once, repair once: the pattern every generation step follows.

Conversation turns get more: a turn that fails a turn-level lint detector (a placeholder left in,
role labels, a repeated turn, ...) is asked again with a new sampling seed up to
``GenerateConfig.turn_reasks`` times, so one bad sample does not cost the whole scenario. Those
re-asks are counted in the stage's :class:`~scenario_forge.backends.base.StageUsage`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..backends.base import ChatRequest, Generation
from .context import StageContext
from .schedule import Ask, ask

V = TypeVar("V")


@dataclass(frozen=True)
class Reask:
    """A check's verdict that the output fails a turn-level lint detector (``code``, a lint reason
    code): the item is asked again, with a new seed, while its re-ask budget lasts."""

    code: str
    detail: str = ""


@dataclass(frozen=True)
class Outcome(Generic[V]):
    """The value for one item, or why it failed after the repair attempt (and the raw output)."""

    value: V | None
    reason: str | None = None
    raw: str | None = None
    #: The backend's message for ``reason == "backend_error"``, or the lint finding's detail.
    detail: str = ""
    #: True when ``reason`` is a lint code (the last answer failed a turn-level detector).
    lint: bool = False
    #: Re-asks this item got for lint findings.
    reasks: int = 0


def ask_one(
    ctx: StageContext,
    stage: str,
    make_request: Callable[[int], ChatRequest],
    check: Callable[[Generation], tuple[V | None, str | Reask | None]],
    *,
    reasks: int = 1,
) -> Generator[Ask, list[Generation], Outcome[V]]:
    """One item's steps (:mod:`.schedule`): ask (attempt 0), re-ask a failure once (attempt 1).

    ``check`` returns ``(value, None)`` or ``(None, reason)``; a backend error is its own reason.
    A reason given as :class:`Reask` (a lint finding) buys up to ``reasks`` re-asks instead of
    one; each is counted in ``ctx.usage[stage].reasks``. Returns the item's :class:`Outcome`.
    """
    lint_asks = 0
    attempt = 0
    while True:
        gen = yield from ask(stage, make_request(attempt))
        if not gen.ok:
            outcome: Outcome[V] = Outcome(None, "backend_error", None, gen.error or "", reasks=lint_asks)
        else:
            value, reason = check(gen)
            if isinstance(reason, Reask):
                outcome = Outcome(None, reason.code, gen.text, reason.detail, lint=True, reasks=lint_asks)
            else:
                if reason is None and gen.finish_reason == "length" and value is None:
                    reason = "truncated"
                outcome = Outcome(value, reason, gen.text, reasks=lint_asks)
        budget = reasks if outcome.lint else 1
        if outcome.value is not None or attempt >= budget:
            return outcome
        if outcome.lint:
            ctx.count_reask(stage)
            lint_asks += 1
        attempt += 1
