"""Continuous scheduling: every scenario advances on its own, as soon as its own request returns.

A scenario's work is written as a generator of :class:`Ask` (:data:`Steps`): it yields the
requests it needs next (one, or several that do not depend on each other, like a rubric's slots),
receives their generations and decides what to ask next, returning its result (a record or a
reject) when it is done. Nothing in it waits for another scenario.

:func:`each` runs many such generators, ``workers`` at a time, each in a thread of a pool that
sends its asks straight to the backend (:meth:`StageContext.send`). The backends merge concurrent
callers into their own batches (llama.cpp's decode loop, the vLLM/transformers coalescer, the
OpenAI client's connection pool), so a scenario's next turn joins the running batch the moment
its previous turn returns, instead of waiting at a stage or turn boundary for the slowest
scenario of the shard. Sampling seeds are keyed on each request's content
(:meth:`StageContext.request`), so what a scenario gets does not depend on what else is in flight.

:func:`together` runs sub-steps of one scenario side by side (one ask holds all their current
requests), for work that fans out inside a scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ..backends.base import ChatRequest, Generation
from ..records import Reject
from .context import StageContext

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K")


@dataclass(frozen=True)
class Ask:
    """Requests of one stage that a scenario needs answered before it can go on (in order)."""

    stage: str
    requests: tuple[ChatRequest, ...]


#: A scenario's work: yields asks, is sent their generations (same order), returns its result.
Steps = Generator[Ask, list[Generation], R]


def ask(stage: str, request: ChatRequest) -> Generator[Ask, list[Generation], Generation]:
    """One request's generation (``gen = yield from ask(stage, request)``)."""
    answers = yield Ask(stage, (request,))
    return answers[0]


def drive(ctx: StageContext, steps: Steps[R]) -> R:
    """Run one scenario's steps to the end, each ask sent as soon as the previous one returned."""
    try:
        pending = next(steps)
        while True:
            pending = steps.send(ctx.send(pending.stage, pending.requests))
    except StopIteration as stop:
        result: R = stop.value
        return result


def each(ctx: StageContext, items: Sequence[T], steps: Callable[[T], Steps[R]], workers: int | None = None) -> list[R]:
    """``steps(item)`` for every item, ``workers`` (default ``ctx.workers``) side by side, each
    advancing on its own; results in item order. An exception (a backend that became unusable)
    cancels the items not started yet and propagates."""
    workers = ctx.workers if workers is None else workers
    if len(items) <= 1 or workers <= 1:
        return [drive(ctx, steps(item)) for item in items]
    def one(item: T) -> R:
        return drive(ctx, steps(item))

    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="scenario")
    try:
        futures: list[Future[R]] = [pool.submit(one, item) for item in items]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def together(parts: Sequence[Steps[Any]]) -> Generator[Ask, list[Generation], list[Any]]:
    """Run ``parts`` of one scenario side by side: each round asks every unfinished part's current
    requests at once (one ask per stage), and sends each part its own answers. Returns the parts'
    results in order."""
    results: list[Any] = [None] * len(parts)
    current: dict[int, Ask] = {}
    for i, part in enumerate(parts):
        try:
            current[i] = next(part)
        except StopIteration as stop:
            results[i] = stop.value
    while current:
        stages = list(dict.fromkeys(a.stage for a in current.values()))
        answers: dict[int, list[Generation]] = {}
        for stage in stages:
            asking = [i for i, a in current.items() if a.stage == stage]
            out = yield Ask(stage, tuple(r for i in asking for r in current[i].requests))
            start = 0
            for i in asking:
                n = len(current[i].requests)
                answers[i] = out[start : start + n]
                start += n
        following: dict[int, Ask] = {}
        for i, got in answers.items():
            try:
                following[i] = parts[i].send(got)
            except StopIteration as stop:
                results[i] = stop.value
        current = following
    return results


def split(results: Sequence[K | Reject], kind: type[K]) -> tuple[list[K], list[Reject]]:
    """Results of :func:`each` as (the records of ``kind``, the rejects), each in item order."""
    kept = [r for r in results if isinstance(r, kind)]
    return kept, [r for r in results if isinstance(r, Reject)]
