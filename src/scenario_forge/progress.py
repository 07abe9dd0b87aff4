"""A hook for progress displays: the CLI's progress bar listens, Prefect artifacts listen.

Stages call :func:`report`; whoever wants to show progress calls :func:`listen`. Nothing listens by
default, and a failing listener never breaks a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]
_LISTENERS: list[Listener] = []
log = logging.getLogger(__name__)


def listen(listener: Listener) -> Callable[[], None]:
    """Register ``listener(event, data)``; returns a function that unregisters it."""
    _LISTENERS.append(listener)
    return lambda: _LISTENERS.remove(listener) if listener in _LISTENERS else None


def report(event: str, **data: Any) -> None:
    for listener in list(_LISTENERS):
        try:
            listener(event, data)
        except Exception:  # noqa: BLE001 - a display problem must not stop generation
            log.debug("progress listener failed", exc_info=True)


#: The generation stages (``StageContext.generate``'s names) and the request kinds the plan
#: estimate (``generate --plan-only``) counts for each.
STAGE_KINDS: dict[str, tuple[str, ...]] = {
    "brief": ("brief",),
    "dialogue": ("operator", "user_turn", "assistant_turn"),
    "rubric": ("rubric",),
}


def format_duration(seconds: float) -> str:
    """``95`` -> ``1m35s``; hours when long.

    >>> format_duration(42.4), format_duration(95), format_duration(3725)
    ('42s', '1m35s', '1h02m')
    """
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class RunProgress:
    """Where a generate run stands, from :func:`report` events: scenarios done / planned, the stage
    running, requests answered against the plan's first-attempt requests, tokens/s and an ETA.

    Scenarios count as done when their shard finishes (kept or rejected; resumed shards at once).
    Inside a shard, progress is measured in requests: ``planned_requests`` is the plan estimate's
    first attempts (re-asks and retries come on top, so the fraction is capped below 100 % until the
    run ends). The ETA is the time per answered request so far times the requests left. ``clock``
    is injectable (tests use a fake one).

    >>> t = [0.0]
    >>> p = RunProgress(planned=10, planned_requests=100, clock=lambda: t[0])
    >>> p.on_event("batch", {"stage": "brief", "requests": 40})
    >>> t[0] = 20.0
    >>> p.on_event("batch_done", {"stage": "brief", "requests": 40, "completion_tokens": 800})
    >>> p.line()
    'brief: 0/10 scenarios done, 40/100 planned requests (40%), 40.0 tok/s, elapsed 20s, ETA 30s'
    """

    def __init__(self, planned: int, planned_requests: int = 0, clock: Callable[[], float] | None = None) -> None:
        import time

        self.clock = clock or time.monotonic
        self.planned = planned
        self.planned_requests = planned_requests
        self.started = self.clock()
        self.stage = "planning"
        self.done = 0  #: scenarios whose shard finished
        self.resumed = 0  #: of those, scenarios of shards a previous attempt finished
        self.requests_done = 0
        self.completion_tokens = 0
        self.finished = False

    def on_event(self, event: str, data: dict[str, Any]) -> None:
        if event == "batch":
            self.stage = str(data["stage"])
        elif event == "batch_done":
            self.stage = str(data["stage"])
            self.requests_done += int(data["requests"])
            self.completion_tokens += int(data.get("completion_tokens", 0))
        elif event == "shard_done":
            summary = data["summary"]
            self.done += int(summary.planned)
            if summary.resumed:
                self.resumed += int(summary.planned)
        elif event == "curation":
            self.stage = f"curation: {data['step']}"
        elif event == "run_done":
            self.finished = True
            self.stage = "done"

    @property
    def requests_expected(self) -> int:
        """The plan's first-attempt requests for the scenarios not resumed."""
        if self.planned <= 0:
            return 0
        return round(self.planned_requests * (self.planned - self.resumed) / self.planned)

    @property
    def fraction(self) -> float:
        """Share of the generation work done (0-1; below 1 until every shard finished)."""
        if self.planned <= 0 or self.done >= self.planned:
            return 1.0
        expected = self.requests_expected
        inside = min(self.requests_done / expected, 0.99) if expected else 0.0
        return max(self.done / self.planned, inside)

    def tokens_per_s(self) -> float:
        elapsed = self.clock() - self.started
        return self.completion_tokens / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        """Seconds left for generation, or None before the first answer and once it is done."""
        expected = self.requests_expected
        if self.requests_done <= 0 or not expected or self.done >= self.planned:
            return None
        elapsed = self.clock() - self.started
        left = max(expected - self.requests_done, 0)
        return elapsed / self.requests_done * left

    def line(self) -> str:
        """One status line (what a log gets every 30 s)."""
        if self.planned <= 0:  # a job without a generation plan (curate): the step and the time
            return f"{self.stage}, elapsed {format_duration(self.clock() - self.started)}"
        parts = [f"{self.stage}: {self.done}/{self.planned} scenarios done"]
        expected = self.requests_expected
        if expected:
            parts.append(f"{self.requests_done}/{expected} planned requests ({self.fraction:.0%})")
        parts.append(f"{self.tokens_per_s():.1f} tok/s")
        parts.append(f"elapsed {format_duration(self.clock() - self.started)}")
        eta = self.eta_s()
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        return ", ".join(parts)
