"""Shard slots: on a Prefect threads runner, ``shard_workers`` shards of a run at a time.

The threads runner has spare threads for Prefect's per-task API calls (see
:func:`~.runners.build_task_runner`); the slots bound the shards themselves, and once the run is
interrupted a shard still waiting for a slot does not start. Elsewhere (the direct runner's own
thread pool, a Dask or Ray worker) no slots are registered and there is nothing to hold.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext


class ShardInterrupted(RuntimeError):
    """The run was interrupted before this shard started (never retried)."""


class ShardSlots:
    """``shard_workers`` slots for one run on a threads runner, and a stop flag: once the run is
    interrupted, a shard still waiting for a slot does not start (the shards at work finish)."""

    def __init__(self, workers: int) -> None:
        self._free = threading.Semaphore(workers)
        self.stop = threading.Event()

    def __enter__(self) -> None:
        while not self._free.acquire(timeout=0.2):
            if self.stop.is_set():
                raise ShardInterrupted("the run was interrupted before this shard started")
        if self.stop.is_set():
            self._free.release()
            raise ShardInterrupted("the run was interrupted before this shard started")

    def __exit__(self, *exc: object) -> None:
        self._free.release()


#: Per run id, the slots that keep a threads runner to ``shard_workers`` shards at a time.
_SLOTS: dict[str, ShardSlots] = {}


def shard_slot(run_id: str) -> AbstractContextManager[None]:
    """Hold one of the run's shard slots while a shard works (the flow's own process, threads
    runner); elsewhere there is nothing to hold."""
    slots = _SLOTS.get(run_id)
    return slots if slots is not None else nullcontext()


@contextmanager
def run_slots(run_id: str, workers: int, enabled: bool) -> Iterator[ShardSlots | None]:
    """Register ``workers`` slots for ``run_id`` while the run's shards are submitted (if ``enabled``)."""
    if not enabled:
        yield None
        return
    slots = _SLOTS[run_id] = ShardSlots(workers)
    try:
        yield slots
    finally:
        _SLOTS.pop(run_id, None)
