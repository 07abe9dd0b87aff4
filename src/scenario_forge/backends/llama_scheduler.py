"""Continuous batching over one llama.cpp context: many callers, one decode loop.

Shards run in threads, so several ``generate()`` calls arrive at once. They all feed one queue of
:class:`Job` served by one decode loop (a background thread that alone drives the
:class:`~scenario_forge.backends.llama_engine.LlamaEngine`): every step is one decode over every
active slot's next token plus chunks of newly admitted prompts, and a finished sequence's slot is
refilled at once from whichever caller is waiting, so a second shard's requests fill the slots the
first shard's long tail leaves free instead of waiting behind a lock. Where a new prompt starts is
:mod:`~scenario_forge.backends.prefix_cache`'s decision (``prefix_sharing``).

Each request has its own sampler chain seeded from the request, so results do not depend on what
else is in the batch beyond floating-point effects of batching. A request with a JSON schema also
gets its own copy of that schema's grammar sampler (``Job.schema_key``, compiled by the caller).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from ..config import SamplingParams
from ..errors import BackendError
from .base import ChatRequest, Generation
from .llama_engine import BatchEntry
from .prefix_cache import Feeding, Placement, PrefixCache


class Engine(Protocol):
    """What the decode loop needs of an engine (:class:`~scenario_forge.backends.llama_engine.LlamaEngine`)."""

    @property
    def n_batch(self) -> int: ...

    def decode(self, entries: Sequence[BatchEntry]) -> None: ...

    def sample(self, sampler: Any, batch_index: int) -> int: ...

    def new_sampler(self, sampling: SamplingParams, seed: int, schema_key: str | None = None) -> Any: ...

    def free_sampler(self, sampler: Any) -> None: ...

    def is_end(self, token: int) -> bool: ...

    def piece(self, token: int) -> bytes: ...

    def forget(self, seq: int, start: int = 0) -> None: ...

    def copy(self, src: int, dst: int, keep: int) -> None: ...


class Ticket:
    """One caller's batch of jobs, waiting for its results."""

    def __init__(self, n: int) -> None:
        self.results: list[Generation | None] = [None] * n
        self.remaining = n
        self.done = threading.Event()
        self.error: BaseException | None = None
        if n == 0:
            self.done.set()

    def deliver(self, index: int, gen: Generation) -> None:
        self.results[index] = gen
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()

    def wait(self) -> list[Generation]:
        """The results in request order, once all are in; re-raises the loop's error."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        return [g for g in self.results if g is not None]


@dataclass
class Job:
    """One tokenized request; its result goes to ``ticket.results[index]``. ``schema_key``: the
    grammar the engine compiled for the request's JSON schema, if it has one."""

    request: ChatRequest
    prompt: list[int]
    ticket: Ticket
    index: int
    schema_key: str | None = None


@dataclass
class _Slot:
    job: Job
    seq_id: int
    sampler: Any
    fed: int = 0  # prompt tokens in the KV cache (reused or decoded)
    reused: int = 0  # of which taken from a cache
    out_tokens: list[int] = field(default_factory=list)
    out_bytes: bytearray = field(default_factory=bytearray)
    pending: int | None = None  # last sampled token, to feed in the next step
    finish: str | None = None

    @property
    def prompt(self) -> list[int]:
        return self.job.prompt


@dataclass
class SchedulerStats:
    """What the decode loop did (the benchmark reads it)."""

    decode_calls: int = 0
    tokens_decoded: int = 0
    prompt_tokens: int = 0
    prompt_tokens_reused: int = 0
    kv_copies: int = 0
    decode_s: float = 0.0
    peak_active: int = 0
    #: Decode-batch occupancy: active sequences summed over decode steps, and weighted by each
    #: step's seconds. Mean per step: ``active_sum / (decode_calls * parallel)``; over a wall time
    #: ``W`` (idle gaps count as empty): ``active_s / (W * parallel)`` (see :func:`occupancy`).
    active_sum: int = 0
    active_s: float = 0.0

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, type(getattr(self, f.name))())


def occupancy(stats: SchedulerStats, parallel: int, wall_s: float | None = None) -> dict[str, float]:
    """Decode-batch occupancy from ``stats``: ``per_step`` (mean active sequences / slots over
    decode steps), ``decode_time`` (weighted by each step's seconds) and, given the wall time the
    work took, ``wall`` (time with no decode step counts as empty: the batch drained).

    >>> s = SchedulerStats(decode_calls=4, active_sum=12, active_s=3.0, decode_s=1.0)
    >>> occupancy(s, parallel=4, wall_s=2.0)
    {'per_step': 0.75, 'decode_time': 0.75, 'wall': 0.375}
    """
    out: dict[str, float] = {}
    if stats.decode_calls and parallel:
        out["per_step"] = round(stats.active_sum / (stats.decode_calls * parallel), 4)
    if stats.decode_s > 0 and parallel:
        out["decode_time"] = round(stats.active_s / (stats.decode_s * parallel), 4)
    if wall_s and parallel:
        out["wall"] = round(stats.active_s / (wall_s * parallel), 4)
    return out


class DecodeScheduler:
    """Serves :class:`Job` from any thread on ``engine``'s ``parallel`` sequences, in one loop thread."""

    def __init__(self, engine: Engine, parallel: int, *, prefix_sharing: bool = True, name: str = "llamacpp") -> None:
        self.engine = engine
        self.parallel = parallel
        self.prefix_sharing = prefix_sharing
        self.name = name
        self.stats = SchedulerStats()
        self._cond = threading.Condition()
        self._queue: deque[Job] = deque()
        self._active: list[_Slot] = []
        self._free: list[int] = list(range(parallel))
        self._cache = PrefixCache(parallel)
        self._thread: threading.Thread | None = None
        self._closing = False

    @property
    def closing(self) -> bool:
        return self._closing

    def submit(self, jobs: Sequence[Job]) -> None:
        """Queue ``jobs`` (starting the loop thread on first use); their tickets get the results."""
        if not jobs:
            return
        with self._cond:
            if self._closing:
                raise BackendError("the llama.cpp backend is closed")
            self._queue.extend(jobs)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=DecodeScheduler._serve, args=(weakref.ref(self),), name=f"{self.name}-decode", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def close(self, timeout: float = 60) -> bool:
        """Stop the loop (failing what still waits); False if it is still inside a decode after ``timeout``,
        or if the loop's lock cannot be had within ``timeout``.

        The lock is taken with a timeout: at interpreter exit the decode thread (a daemon) is stopped
        wherever it is, possibly holding the lock for good, and a close run by the final garbage
        collection would otherwise wait for it forever (seen: a process hung at exit)."""
        if not self._cond.acquire(timeout=timeout):
            return False
        try:
            self._closing = True
            self._cond.notify_all()
        finally:
            self._cond.release()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout)
            return not thread.is_alive()
        return True

    # -- the decode loop -----------------------------------------------------------------------

    @staticmethod
    def _serve(ref: weakref.ReferenceType[DecodeScheduler]) -> None:
        """The decode loop. Holds the scheduler only weakly while idle, so a dropped backend is freed."""
        while True:
            self = ref()
            if self is None:
                return
            cond = self._cond
            with cond:
                if not self._queue and not self._active and not self._closing:
                    del self
                    cond.wait(timeout=1.0)
                    continue
                if self._closing:
                    error = BackendError("the llama.cpp backend was closed while requests were running")
                    for slot in self._active:
                        slot.job.ticket.fail(error)
                    for job in self._queue:
                        job.ticket.fail(error)
                    return
            try:
                with cond:
                    self._admit()
                self._step()
            except Exception as exc:  # noqa: BLE001 - fail every waiting caller, keep serving
                error = exc if isinstance(exc, BackendError) else BackendError(f"llama.cpp decode loop failed: {exc!r}")
                with cond:
                    for slot in self._active:
                        slot.job.ticket.fail(error)
                        self._drop(slot)
                    self._active = []
                    for job in self._queue:
                        job.ticket.fail(error)
                    self._queue.clear()
            del self

    def _admit(self) -> None:
        """Move queued jobs into free slots, reusing cached prefixes where that pays."""
        if not self._free or not self._queue:
            return
        fresh: set[int] = set()  # slots whose KV is being replaced this round: not a copy source
        deferred: deque[Job] = deque()
        while self._queue and self._free:
            job = self._queue.popleft()
            if job.ticket.error is not None:  # its caller already failed
                continue
            placement = self._placement(job, fresh)
            if placement is None:
                deferred.append(job)
                continue
            self._start(job, placement)
            fresh.add(placement.seq)
        deferred.extend(self._queue)
        self._queue = deferred
        self.stats.peak_active = max(self.stats.peak_active, len(self._active))

    def _placement(self, job: Job, fresh: set[int]) -> Placement | None:
        if not self.prefix_sharing:
            return Placement(min(self._free), 0)
        feeding = (Feeding(s.prompt, s.fed) for s in self._active)
        return self._cache.place(job.prompt, self._free, fresh=fresh, feeding=feeding)

    def _start(self, job: Job, placement: Placement) -> None:
        seq, reuse = placement.seq, placement.reuse
        if placement.copy_from is not None:
            self.engine.copy(placement.copy_from, seq, reuse)
            self.stats.kv_copies += 1
        else:
            self.engine.forget(seq, reuse)
        self._cache.apply(placement)
        self._free.remove(seq)
        sampler = self.engine.new_sampler(job.request.sampling, job.request.seed, job.schema_key)
        self._active.append(_Slot(job, seq, sampler, fed=reuse, reused=reuse))
        self.stats.prompt_tokens += len(job.prompt)
        self.stats.prompt_tokens_reused += reuse

    def _step(self) -> None:
        """One decode over every active slot's next token plus prompt chunks."""
        entries: list[BatchEntry] = []
        wants_logits: list[tuple[_Slot, int]] = []

        def add(slot: _Slot, token: int, pos: int, logits: bool) -> None:
            if logits:
                wants_logits.append((slot, len(entries)))
            entries.append(BatchEntry(slot.seq_id, token, pos, logits))
            self._cache.tokens[slot.seq_id].append(token)

        for slot in self._active:
            if slot.pending is not None:
                add(slot, slot.pending, slot.fed + len(slot.out_tokens) - 1, True)
                slot.pending = None
        for slot in self._active:
            room = self.engine.n_batch - len(entries)
            if room <= 0:
                break
            if slot.fed < len(slot.prompt):
                take = min(room, len(slot.prompt) - slot.fed)
                last = len(slot.prompt) - 1
                for pos in range(slot.fed, slot.fed + take):
                    add(slot, slot.prompt[pos], pos, pos == last)
                slot.fed += take
        if not entries:  # pragma: no cover - every active slot always has work
            return
        start = time.perf_counter()
        try:
            self.engine.decode(entries)
        finally:
            step_s = time.perf_counter() - start
            self.stats.decode_s += step_s
            self.stats.decode_calls += 1
            self.stats.tokens_decoded += len(entries)
            self.stats.active_sum += len(self._active)
            self.stats.active_s += len(self._active) * step_s
        for slot, i in wants_logits:
            self._advance(slot, self.engine.sample(slot.sampler, i))
        finished = [s for s in self._active if s.finish is not None]
        if not finished:
            return
        with self._cond:
            self._active = [s for s in self._active if s.finish is None]
            for slot in finished:
                text = bytes(slot.out_bytes).decode("utf-8", "replace")
                slot.job.ticket.deliver(slot.job.index, Generation(
                    request_id=slot.job.request.id,
                    text=text,
                    finish_reason="length" if slot.finish == "length" else "stop",
                    prompt_tokens=len(slot.prompt),
                    completion_tokens=len(slot.out_tokens),
                ))
                self._free_slot(slot)

    def _advance(self, slot: _Slot, token: int) -> None:
        if self.engine.is_end(token):
            slot.finish = "stop"
            return
        slot.out_tokens.append(token)
        slot.out_bytes += self.engine.piece(token)
        stops = slot.job.request.sampling.stop
        if stops:
            tail = bytes(slot.out_bytes[-256:]).decode("utf-8", "ignore")
            for stop in stops:
                if stop and stop in tail:
                    cut = bytes(slot.out_bytes).decode("utf-8", "ignore")
                    slot.out_bytes = bytearray(cut[: cut.rfind(stop)].encode("utf-8"))
                    slot.finish = "stop"
                    return
        if len(slot.out_tokens) >= slot.job.request.sampling.max_tokens:
            slot.finish = "length"
            return
        slot.pending = token

    def _release_sampler(self, slot: _Slot) -> None:
        if slot.sampler is not None:
            self.engine.free_sampler(slot.sampler)
            slot.sampler = None

    def _free_slot(self, slot: _Slot) -> None:
        """The slot's KV stays cached for later requests that share its prefix."""
        self._release_sampler(slot)
        if not self.prefix_sharing:
            self.engine.forget(slot.seq_id)
            self._cache.forget(slot.seq_id)
        self._free.append(slot.seq_id)

    def _drop(self, slot: _Slot) -> None:
        """A slot whose state is unknown after an error: forget its KV."""
        self.engine.forget(slot.seq_id)
        self._cache.forget(slot.seq_id)
        self._release_sampler(slot)
        self._free.append(slot.seq_id)
