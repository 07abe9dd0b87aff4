"""Submitting shard tasks to a task runner and collecting them as they finish.

Two things keep Prefect's per-task cost flat however large a run is:

- each task receives the run *without the other shards' seeds* (:func:`shard_inputs`), so what is
  sent to a Dask or Ray worker grows with the shard, not with the run;
- on the threads runner, inputs are wrapped in :func:`prefect.utilities.annotations.quote`, so
  Prefect does not walk them looking for futures (walking a whole 1,000-scenario plan costs ~0.2 s
  per task). prefect-dask turns a ``quote`` into a plain tuple on the worker, so distributed
  runners get the (small) inputs as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from ..generation.run import PreparedRun
from ..store import ShardSpec, ShardSummary
from .runners import TaskRunnerConfig, build_task_runner

if TYPE_CHECKING:
    from prefect import Task

OnShardDone = Callable[[ShardSummary, int], None]

class ShardSlots:
    """``shard_workers`` slots for one run on a threads runner, and a stop flag: once the run is
    interrupted, a shard still waiting for a slot does not start (the shards at work finish)."""

    def __init__(self, workers: int) -> None:
        self._free = threading.Semaphore(workers)
        self.stop = threading.Event()

    def __enter__(self) -> None:
        while not self._free.acquire(timeout=0.2):
            if self.stop.is_set():
                raise RuntimeError("the run was interrupted before this shard started")
        if self.stop.is_set():
            self._free.release()
            raise RuntimeError("the run was interrupted before this shard started")

    def __exit__(self, *exc: object) -> None:
        self._free.release()


#: Per run id, the slots that keep a threads runner to ``shard_workers`` shards at a time.
_SLOTS: dict[str, ShardSlots] = {}


def shard_slot(run_id: str) -> Any:
    """Hold one of the run's shard slots while a shard works (the flow's own process, threads
    runner); elsewhere (a Dask or Ray worker) there is nothing to hold."""
    slots = _SLOTS.get(run_id)
    return slots if slots is not None else nullcontext()


@contextmanager
def _slots(run_id: str, workers: int, enabled: bool) -> Iterator[ShardSlots | None]:
    if not enabled:
        yield None
        return
    slots = _SLOTS[run_id] = ShardSlots(workers)
    try:
        yield slots
    finally:
        _SLOTS.pop(run_id, None)


def shard_inputs(run: PreparedRun) -> PreparedRun:
    """``run`` as a shard task receives it: every shard listed (index and key), none with seeds."""
    return run.model_copy(update={"shards": [s.model_copy(update={"seeds": []}) for s in run.shards]})


def shard_task_name(parameters: dict[str, Any]) -> str:
    """``shard-00007-1a2b3c4d`` (index and content key) for a shard task's parameters."""
    from prefect.utilities.annotations import BaseAnnotation

    shard = parameters["shard"]
    shard = shard.unwrap() if isinstance(shard, BaseAnnotation) else shard  # quote(...) until the task runs
    return f"shard-{shard.index:05d}-{shard.key[:8]}"


def run_shards(
    task: Task[..., ShardSummary],
    run: PreparedRun,
    runner: TaskRunnerConfig,
    on_done: OnShardDone | None = None,
) -> list[ShardSummary]:
    """Run ``task(run, shard)`` for every shard on ``runner``; summaries in shard order.

    Every shard is waited for before a failure is raised, so whatever could finish is saved and a
    rerun only redoes the shards that failed. ``on_done(summary, finished_so_far)`` is called in
    the flow's thread as each shard finishes.
    """
    from prefect.futures import as_completed
    from prefect.utilities.annotations import quote

    light = shard_inputs(run)
    wrap: Callable[[Any], Any] = quote if runner.kind == "threads" else (lambda value: value)
    summaries: dict[int, ShardSummary] = {}
    failures: list[tuple[ShardSpec, BaseException]] = []
    threads = runner.kind == "threads"
    with _slots(run.run_id, run.config.shard_workers, threads) as slots, build_task_runner(
        runner, run.config.shard_workers
    ) as pool:
        futures = {pool.submit(task, {"run": wrap(light), "shard": wrap(shard)}): shard for shard in run.shards}
        try:
            for future in as_completed(list(futures)):
                try:
                    summary = future.result()
                except Exception as exc:  # noqa: BLE001 - raised below, once every shard has ended
                    failures.append((futures[future], exc))
                    continue
                summaries[summary.index] = summary
                if on_done is not None:
                    on_done(summary, len(summaries))
        except BaseException:
            # Ctrl-C: before the runner waits for its threads, keep shards still waiting for a
            # slot from starting (the shards at work finish and are saved).
            if slots is not None:
                slots.stop.set()
            raise
    if failures:
        _, exc = min(failures, key=lambda f: f[0].index)  # the first failed shard's error
        raise exc
    return [summaries[s.index] for s in run.shards]
