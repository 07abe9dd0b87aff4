"""Merge concurrent ``generate()`` calls into one engine call, for engines that take one batch at a time.

Shards run in threads, so several callers reach the same backend at once. An engine such as
``vllm.LLM`` or a transformers model cannot run two batches at the same time, and a plain lock
would make the second shard wait for the first one's whole batch, long tail included. Here a
caller that arrives while the engine is busy leaves its requests in a queue; when the engine
frees up, everything queued goes in as one batch (so the engine's own batching sees all of it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

R = TypeVar("R")
G = TypeVar("G")


class _Ticket(Generic[R, G]):
    def __init__(self, requests: list[R]) -> None:
        self.requests = requests
        self.results: list[G] | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[R, G]):
    """Runs ``run_batch`` for one caller at a time, merging the requests of callers that wait.

    ``run_batch`` must return one result per request, in order. If it raises, every caller whose
    requests were in that batch gets the exception.
    """

    def __init__(self, run_batch: Callable[[list[R]], list[G]]) -> None:
        self._run_batch = run_batch
        self._cond = threading.Condition()
        self._pending: list[_Ticket[R, G]] = []
        self._busy = False
        self.batches = 0  # engine calls made (tests check that waiting callers were merged)

    def submit(self, requests: Sequence[R]) -> list[G]:
        ticket: _Ticket[R, G] = _Ticket(list(requests))
        with self._cond:
            self._pending.append(ticket)
            while ticket.results is None and ticket.error is None:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                tickets, self._pending = self._pending, []
                self._cond.release()
                try:
                    self._run(tickets)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
        assert ticket.results is not None
        return ticket.results

    def _run(self, tickets: list[_Ticket[R, G]]) -> None:
        merged = [r for t in tickets for r in t.requests]
        self.batches += 1
        try:
            results = self._run_batch(merged)
            if len(results) != len(merged):
                raise RuntimeError(f"batch returned {len(results)} results for {len(merged)} requests")
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of this batch
            for t in tickets:
                t.error = exc
            return
        start = 0
        for t in tickets:
            t.results = results[start : start + len(t.requests)]
            start += len(t.requests)
