"""The llama.cpp backend's scheduler and prefix reuse, without a model.

``FakeEngine`` stands in for :class:`~scenario_forge.backends.llama_engine.LlamaEngine`: it keeps
each sequence's KV as a token list, checks every decoded token lands at the next position of its
sequence, and "samples" a token that depends on the whole sequence so far. So a scheduler that
reused a wrong prefix, fed a position twice or mixed sequences up would change the text; the tests
compare against runs without reuse. The real engine runs in tests/test_backend_llamacpp.py (slow).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import pytest

from scenario_forge.backends.base import ChatRequest, Generation
from scenario_forge.backends.llama_engine import BatchEntry
from scenario_forge.backends.llama_scheduler import DecodeScheduler, Job, Ticket
from scenario_forge.backends.prefix_cache import MIN_SHARED_GAIN, Feeding, Placement, PrefixCache, common_prefix
from scenario_forge.config import SamplingParams
from scenario_forge.errors import BackendError
from scenario_forge.records import Message

END = 0


def next_token(tokens: Sequence[int]) -> int:
    """The fake model: a digit that depends on every token and its position (0 ends the reply)."""
    return sum((i + 1) * t for i, t in enumerate(tokens)) * 2654435761 % 2**32 % 10


def reply(prompt: Sequence[int], max_tokens: int) -> str:
    """What the fake model answers to ``prompt``, computed directly."""
    tokens, out = list(prompt), []
    while len(out) < max_tokens and (t := next_token(tokens)) != END:
        out.append(t)
        tokens.append(t)
    return "".join(map(str, out))


class FakeEngine:
    n_batch = 8

    def __init__(self) -> None:
        self.kv: dict[int, list[int]] = defaultdict(list)
        self.seen: list[tuple[int, int]] = []
        self.samplers = 0
        self.schema_keys: list[str | None] = []
        self.fail_next = False
        self.batches: list[set[int]] = []

    def decode(self, entries: Sequence[BatchEntry]) -> None:
        assert 0 < len(entries) <= self.n_batch
        if self.fail_next:
            self.fail_next = False
            raise BackendError("llama.cpp decode failed (code 1)")
        self.seen = []
        for e in entries:
            assert e.pos == len(self.kv[e.seq]), f"seq {e.seq}: token at {e.pos}, KV holds {len(self.kv[e.seq])}"
            self.kv[e.seq].append(e.token)
            self.seen.append((e.seq, e.pos + 1))
        self.batches.append({e.seq for e in entries})

    def sample(self, sampler: Any, batch_index: int) -> int:
        seq, n = self.seen[batch_index]
        return next_token(self.kv[seq][:n])

    def new_sampler(self, sampling: SamplingParams, seed: int, schema_key: str | None = None) -> Any:
        self.samplers += 1
        self.schema_keys.append(schema_key)
        return object()

    def free_sampler(self, sampler: Any) -> None:
        self.samplers -= 1

    def is_end(self, token: int) -> bool:
        return token == END

    def piece(self, token: int) -> bytes:
        return str(token).encode()

    def forget(self, seq: int, start: int = 0) -> None:
        del self.kv[seq][start:]

    def copy(self, src: int, dst: int, keep: int) -> None:
        self.kv[dst] = self.kv[src][:keep]


def request(i: int, max_tokens: int = 12, stop: list[str] | None = None) -> ChatRequest:
    return ChatRequest(
        id=f"r{i}", messages=[Message(role="user", content="x")],
        sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens, stop=stop or []), seed=i,
    )


def run(scheduler: DecodeScheduler, prompts: Sequence[list[int]], **kw: Any) -> list[Generation]:
    ticket = Ticket(len(prompts))
    scheduler.submit([Job(request(i, **kw), p, ticket, i) for i, p in enumerate(prompts)])
    return ticket.wait()


SHARED = [11, 12, 13] * 15  # a 45-token prefix


def prompts(tag: int) -> list[list[int]]:
    return [[*SHARED, 100 + tag, 200 + i] for i in range(4)]


def test_prefix_reuse_gives_the_same_text_and_skips_shared_tokens() -> None:
    plain = DecodeScheduler(FakeEngine(), 4, prefix_sharing=False)
    shared_engine = FakeEngine()
    shared = DecodeScheduler(shared_engine, 4)
    try:
        want = run(plain, prompts(0))
        got = run(shared, prompts(0))
        assert [g.text for g in want] == [reply(p, 12) for p in prompts(0)]
        assert [g.text for g in got] == [g.text for g in want]
        assert [g.request_id for g in got] == ["r0", "r1", "r2", "r3"]
        assert plain.stats.prompt_tokens_reused == 0
        assert shared.stats.kv_copies == 3  # three prompts waited for the first one's prefix, then copied it
        # they stop waiting once the rest of the prefix is no longer worth a wait (MIN_SHARED_GAIN)
        assert 3 * (len(SHARED) + 1 - MIN_SHARED_GAIN) <= shared.stats.prompt_tokens_reused <= 3 * (len(SHARED) + 1)
        before = shared.stats.prompt_tokens_reused
        again = run(shared, prompts(0))  # asked again: every prompt but its last token comes from a cache
        assert [g.text for g in again] == [g.text for g in want]
        assert shared.stats.prompt_tokens_reused - before == sum(len(p) - 1 for p in prompts(0))
        assert shared_engine.samplers == 0  # every sampler freed
    finally:
        plain.close()
        shared.close()


def test_length_and_stop_strings_end_a_reply() -> None:
    long = next(p for p in ([k, k + 1] for k in range(100)) if len(reply(p, 30)) >= 6)
    short = next(p for p in ([k, 3] for k in range(100)) if 0 < len(reply(p, 30)) < 6)
    scheduler = DecodeScheduler(FakeEngine(), 2)
    try:
        (cut,) = run(scheduler, [long], max_tokens=3)
        assert (cut.finish_reason, cut.text, cut.completion_tokens) == ("length", reply(long, 3), 3)
        (ended,) = run(scheduler, [short], max_tokens=30)
        assert (ended.finish_reason, ended.text) == ("stop", reply(short, 30))  # the model's end token
        text = reply(long, 30)
        (stopped,) = run(scheduler, [long], max_tokens=30, stop=[text[4:6]])
        assert stopped.finish_reason == "stop" and stopped.text == text[: text.find(text[4:6])]
    finally:
        scheduler.close()


def test_a_failed_decode_fails_its_callers_and_the_loop_keeps_serving() -> None:
    engine = FakeEngine()
    scheduler = DecodeScheduler(engine, 2)
    try:
        engine.fail_next = True
        with pytest.raises(BackendError, match="decode failed"):
            run(scheduler, [[1, 2, 3], [4, 5, 6]])
        ok = run(scheduler, [[1, 2, 3]])
        assert ok[0].ok and ok[0].text == reply([1, 2, 3], 12)
        assert engine.samplers == 0
    finally:
        scheduler.close()


def test_concurrent_callers_fill_free_slots() -> None:
    engine = FakeEngine()
    scheduler = DecodeScheduler(engine, 4, prefix_sharing=False)
    results: dict[int, list[Generation]] = {}

    def call(k: int) -> None:
        results[k] = run(scheduler, [[k, k + 1, k + 2 + i] for i in range(3)], max_tokens=30)

    threads = [threading.Thread(target=call, args=(k,)) for k in (1, 20)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(results) == [1, 20]
        for k, got in results.items():
            assert [g.text for g in got] == [reply([k, k + 1, k + 2 + i], 30) for i in range(3)]
        assert scheduler.stats.peak_active <= 4 and max(len(b) for b in engine.batches) <= 4
    finally:
        scheduler.close()


def test_each_job_gets_a_sampler_for_its_own_schema() -> None:
    engine = FakeEngine()
    scheduler = DecodeScheduler(engine, 2)
    try:
        ticket = Ticket(3)
        keys = ["schema-a", None, "schema-b"]
        scheduler.submit([Job(request(i), [i, i + 1, 7], ticket, i, key) for i, key in enumerate(keys)])
        got = ticket.wait()
        assert [g.text for g in got] == [reply([i, i + 1, 7], 12) for i in range(3)]
        assert sorted(engine.schema_keys, key=str) == sorted(keys, key=str)
        assert engine.samplers == 0  # grammar samplers are freed with their chains
    finally:
        scheduler.close()


def test_a_closed_scheduler_refuses_work() -> None:
    scheduler = DecodeScheduler(FakeEngine(), 2)
    assert scheduler.close()
    with pytest.raises(BackendError, match="closed"):
        run(scheduler, [[1, 2, 3]])


def test_common_prefix() -> None:
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2, 3], [1, 2, 3]) == 3
    assert common_prefix(list(range(1000)), [*range(637), -1]) == 637
    assert common_prefix([5], [6]) == 0


def test_placement_prefers_own_slot_unless_a_copy_saves_enough() -> None:
    cache = PrefixCache(3)
    prompt = list(range(50))
    cache.tokens[0] = list(range(10))  # the lowest free slot shares 10 tokens
    cache.tokens[2] = list(range(10 + MIN_SHARED_GAIN - 1))  # one short of paying for a copy
    assert cache.place(prompt, free=[0, 1]) == Placement(0, 10)
    cache.tokens[2] = list(range(10 + MIN_SHARED_GAIN))
    assert cache.place(prompt, free=[0, 1]) == Placement(0, 10 + MIN_SHARED_GAIN, 2)
    assert cache.place(prompt, free=[0, 1], fresh=[2]) == Placement(0, 10)  # slot 2 is being replaced
    # never the whole prompt: the last token is decoded for the reply's first logits
    cache.tokens[1] = list(range(50))
    assert cache.place(prompt, free=[1]) == Placement(1, 49)


def test_placement_waits_for_a_prefix_being_fed() -> None:
    cache = PrefixCache(2)
    prompt = list(range(40))
    assert cache.place(prompt, free=[1], feeding=[Feeding(list(range(40)), fed=8)]) is None
    assert cache.place(prompt, free=[1], feeding=[Feeding(list(range(40)), fed=40)]) == Placement(1, 0)


def test_apply_keeps_only_the_reused_prefix() -> None:
    cache = PrefixCache(2)
    cache.tokens[0] = [1, 2, 3, 4]
    cache.tokens[1] = [1, 2, 9]
    cache.apply(Placement(1, 3, copy_from=0))
    assert cache.tokens[1] == [1, 2, 3]
    cache.apply(Placement(0, 2))
    assert cache.tokens[0] == [1, 2]


def test_close_gives_up_on_a_lock_held_for_good() -> None:
    """At interpreter exit the daemon decode thread can be stopped holding the loop's lock; a close
    from the final garbage collection must not wait for it forever (a process once hung at exit)."""
    scheduler = DecodeScheduler(FakeEngine(), 2)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with scheduler._cond:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(5)
    try:
        start = time.perf_counter()
        assert scheduler.close(timeout=0.2) is False
        assert time.perf_counter() - start < 5
    finally:
        release.set()
        holder.join(5)
    assert scheduler.close(timeout=5) is True  # free again: closes as before
    assert scheduler.closing
