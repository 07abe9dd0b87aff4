"""Ask once, repair once: the pattern every generation step follows.

Conversation turns get more: a turn that fails a turn-level lint detector (a placeholder left in,
role labels, a repeated turn, ...) is asked again with a new sampling seed up to
``GenerateConfig.turn_reasks`` times, so one bad sample does not cost the whole scenario. Those
re-asks are counted in the stage's :class:`~scenario_forge.backends.base.StageUsage`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..backends.base import ChatRequest, Generation, StageUsage
from .context import StageContext

T = TypeVar("T")
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


def ask_with_repair(
    ctx: StageContext,
    stage: str,
    items: Sequence[T],
    make_request: Callable[[T, int], ChatRequest],
    check: Callable[[T, Generation], tuple[V | None, str | Reask | None]],
    *,
    reasks: int = 1,
) -> list[Outcome[V]]:
    """Send one request per item (attempt 0), re-ask the failures once (attempt 1).

    ``check`` returns ``(value, None)`` or ``(None, reason)``; a backend error is its own reason.
    A reason given as :class:`Reask` (a lint finding) buys up to ``reasks`` re-asks instead of
    one; each is counted in ``ctx.usage[stage].reasks``. The result has one :class:`Outcome` per
    item, in order: nothing is dropped here.
    """
    outcomes: list[Outcome[V] | None] = [None] * len(items)
    pending = list(range(len(items)))
    lint_asks = [0] * len(items)
    attempt = 0
    while pending:
        relinted = [i for i in pending if (previous := outcomes[i]) is not None and previous.lint]
        if relinted:
            ctx.usage.setdefault(stage, StageUsage()).reasks += len(relinted)
            for i in relinted:
                lint_asks[i] += 1
        generations = ctx.generate(stage, [make_request(items[i], attempt) for i in pending])
        failed: list[int] = []
        for i, gen in zip(pending, generations):
            if not gen.ok:
                outcome: Outcome[V] = Outcome(None, "backend_error", None, gen.error or "", reasks=lint_asks[i])
            else:
                value, reason = check(items[i], gen)
                if isinstance(reason, Reask):
                    outcome = Outcome(None, reason.code, gen.text, reason.detail, lint=True, reasks=lint_asks[i])
                else:
                    if reason is None and gen.finish_reason == "length" and value is None:
                        reason = "truncated"
                    outcome = Outcome(value, reason, gen.text, reasks=lint_asks[i])
            outcomes[i] = outcome
            budget = reasks if outcome.lint else 1
            if outcome.value is None and attempt < budget:
                failed.append(i)
        pending = failed
        attempt += 1
    return [o if o is not None else Outcome(None, "not_attempted") for o in outcomes]
