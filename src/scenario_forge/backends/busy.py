"""Server-seconds: how long a backend was busy, shared out among the calls that kept it busy.

A backend is busy while at least one ``generate()`` call is in flight. Calls overlap (shards run
side by side, and a batching server serves them together), so each moment of busy time is split
among the calls in flight then, in proportion to their request counts (processor sharing). Summed
over a run's calls the shares add up to the backend's busy wall time exactly, so a stage's share is
the part of the server time it caused; multiplied by the servers a backend spreads over
(``Backend.servers``: several ``--base-url`` servers, all kept busy together) it is what the user
rents: server-seconds (GPU-seconds on a GPU server).

The clock counts one process's calls. Several client processes sharing one server (a Dask or Ray
runner) each count the time they kept it busy, so their sum overstates the server's busy time.

>>> clock = BusyClock()
>>> a = clock.enter(1, now=0.0)           # one request alone for 1 s,
>>> b = clock.enter(3, now=1.0)           # then 3 more beside it for 2 s (a: 1/4, b: 3/4 of it)
>>> round(clock.leave(a, now=3.0), 3), round(clock.leave(b, now=4.0), 3)
(1.5, 2.5)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class BusyToken:
    """A call in flight: its weight (requests) and the virtual time it started at."""

    weight: int
    start: float


class BusyClock:
    """Virtual time ``V(t) = integral of dt / (requests in flight)`` over busy time; a call's share
    of the busy time is its weight times the virtual time that passed while it was in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._virtual = 0.0
        self._weight = 0
        self._last = 0.0

    def _advance(self, now: float) -> None:
        if self._weight > 0:
            self._virtual += (now - self._last) / self._weight
        self._last = now

    def enter(self, weight: int, now: float | None = None) -> BusyToken:
        """A call of ``weight`` requests starts."""
        weight = max(1, weight)
        with self._lock:
            self._advance(time.perf_counter() if now is None else now)
            self._weight += weight
            return BusyToken(weight, self._virtual)

    def leave(self, token: BusyToken, now: float | None = None) -> float:
        """The call ends: its share of the busy seconds since it entered."""
        with self._lock:
            self._advance(time.perf_counter() if now is None else now)
            self._weight -= token.weight
            return token.weight * (self._virtual - token.start)


_CLOCKS_LOCK = threading.Lock()


def busy_clock(owner: object) -> BusyClock:
    """The clock of ``owner`` (a backend), made on first use."""
    clock = getattr(owner, "_busy_clock", None)
    if clock is None:
        with _CLOCKS_LOCK:
            clock = getattr(owner, "_busy_clock", None)
            if clock is None:
                clock = BusyClock()
                setattr(owner, "_busy_clock", clock)  # noqa: B010 - any backend, no base-class field needed
    assert isinstance(clock, BusyClock)
    return clock
