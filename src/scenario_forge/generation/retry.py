"""Ask once, repair once: the pattern every generation step follows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..backends.base import ChatRequest, Generation
from .context import StageContext

T = TypeVar("T")
V = TypeVar("V")


@dataclass(frozen=True)
class Outcome(Generic[V]):
    """The value for one item, or why it failed after the repair attempt (and the raw output)."""

    value: V | None
    reason: str | None = None
    raw: str | None = None
    #: The backend's message for ``reason == "backend_error"`` (reasons stay short codes).
    detail: str = ""


def ask_with_repair(
    ctx: StageContext,
    stage: str,
    items: Sequence[T],
    make_request: Callable[[T, int], ChatRequest],
    check: Callable[[T, Generation], tuple[V | None, str | None]],
) -> list[Outcome[V]]:
    """Send one request per item (attempt 0), re-ask the failures once (attempt 1).

    ``check`` returns ``(value, None)`` or ``(None, reason)``; a backend error is its own reason.
    The result has one :class:`Outcome` per item, in order: nothing is dropped here.
    """
    outcomes: list[Outcome[V] | None] = [None] * len(items)
    pending = list(range(len(items)))
    for attempt in (0, 1):
        if not pending:
            break
        generations = ctx.generate(stage, [make_request(items[i], attempt) for i in pending])
        failed: list[int] = []
        for i, gen in zip(pending, generations):
            if not gen.ok:
                outcome: Outcome[V] = Outcome(None, "backend_error", None, gen.error or "")
            else:
                value, reason = check(items[i], gen)
                if reason is None and gen.finish_reason == "length" and value is None:
                    reason = "truncated"
                outcome = Outcome(value, reason, gen.text)
            outcomes[i] = outcome
            if outcome.value is None:
                failed.append(i)
        pending = failed
    return [o if o is not None else Outcome(None, "not_attempted") for o in outcomes]
