"""Local GGUF models through llama.cpp: one shared decode loop, batched sequences, prefix KV reuse.

llama-cpp-python's high-level ``Llama`` (and distilabel's ``LlamaCppLLM``, which loops over it)
decodes one sequence at a time. On a CPU that leaves the matrix units waiting on memory: every
token re-reads all weights. Here up to ``parallel`` sequences share one llama.cpp context, each in
its own KV stream, and every decode step is one ``llama_decode`` call over every active sequence's
next token plus chunks of newly admitted prompts. We call llama.cpp's C API (``llama_cpp.llama_*``)
for that reason; ``benchmarks/bench_backends.py`` measures the difference.

Keeping the model busy across callers: shards run in threads, so several ``generate()`` calls
arrive at once. They all feed one queue served by one decode loop (a background thread): a finished
sequence's slot is refilled at once from whichever caller is waiting (continuous batching), so a
second shard's requests fill the slots the first shard's long tail leaves free instead of waiting
behind a lock.

Reusing prompt prefixes: many requests share long prompt prefixes (the six rubric slots of one
scenario share everything up to the slot's instruction; a conversation's next turn repeats the
previous prompt). A finished sequence's KV stays in its slot; a new request goes to the free slot
whose cache shares the longest prefix with it and only the rest of its prompt is computed. If
another slot holds a longer shared prefix (or is about to, while its prompt is being fed), the
request copies that slot's KV (``llama_memory_seq_cp``; with one KV stream per sequence it copies
the stream's buffer, about 10 ms for this model, far less than recomputing a long prefix) and
trims it to the shared part. The reused KV holds exactly the values a fresh computation would.

Each request has its own sampler chain seeded from the request, so results do not depend on what
else is in the batch beyond floating-point effects of batching.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BackendError, MissingExtraError
from ..hashing import file_digest
from ..records import Message
from .base import Backend, ChatRequest, Generation

_BACKEND_INIT = threading.Lock()
_BACKEND_READY = False
#: Copy another slot's KV only if it saves at least this many prompt tokens over the best free slot.
MIN_SHARED_GAIN = 16


def _llama() -> Any:
    # llama.cpp's CPU backend synchronises its threads with OpenMP barriers. libgomp's default is to
    # spin at a barrier, so when the cores are shared (other processes, other helpers, CI) a thread
    # burns its time slice waiting for one that is not running. Measured here (2 cores, load ~10):
    # the same 16-request batch took 113-132 s with the default policy and 11 s with passive waiting
    # (16 s with one thread). libgomp reads the policy once, when llama.cpp's library loads: set it
    # before the first import (a value the user set wins).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import llama_cpp
        from llama_cpp import _logger
    except ImportError:  # pragma: no cover - core dependency
        raise MissingExtraError("llama-cpp-python", "embedded", "the llama.cpp backend") from None
    # llama.cpp logs every tensor it loads to stderr; keep errors only (set LLAMA_CPP_VERBOSE=1 for all).
    _logger.set_verbose(bool(os.environ.get("LLAMA_CPP_VERBOSE")))
    return llama_cpp


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of two token lists (binary search over C-speed slice compares).

    >>> common_prefix([1, 2, 3, 4], [1, 2, 9])
    2
    >>> common_prefix([1, 2], [1, 2, 3])
    2
    """
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


class _Ticket:
    """One ``generate()`` call waiting for its results."""

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


@dataclass
class _Job:
    request: ChatRequest
    prompt: list[int]
    ticket: _Ticket
    index: int


@dataclass
class _Slot:
    job: _Job
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

    def reset(self) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, type(getattr(self, name))())


class LlamaCppBackend(Backend):
    """Any local GGUF model. ``parallel`` sequences decode together in one llama.cpp context."""

    kind = "llamacpp"
    supports_json_schema = False
    supports_prefix = True

    def __init__(
        self,
        model_path: str | Path,
        *,
        parallel: int = 16,
        n_ctx_per_seq: int = 2048,
        n_threads: int | None = None,
        n_batch: int = 512,
        kind: str = "llamacpp",
        prefix_sharing: bool = True,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.path = Path(model_path)
        if not self.path.is_file():
            raise BackendError(f"model file not found: {self.path}")
        llama_cpp = _llama()
        self._ll = llama_cpp
        global _BACKEND_READY
        with _BACKEND_INIT:
            if not _BACKEND_READY:
                llama_cpp.llama_backend_init()
                _BACKEND_READY = True
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0
        self._model = llama_cpp.llama_model_load_from_file(str(self.path).encode(), mparams)
        if not self._model:
            raise BackendError(f"llama.cpp could not load {self.path} (not a GGUF model file?)")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self.parallel = parallel
        n_train = llama_cpp.llama_model_n_ctx_train(self._model)
        self.seq_ctx = min(n_ctx_per_seq, n_train) if n_train > 0 else n_ctx_per_seq
        self.n_ctx = self.seq_ctx * parallel
        self.n_batch = n_batch
        self.prefix_sharing = prefix_sharing
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = self.n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = parallel
        # One KV stream per sequence: a token attends only to its own sequence's cells (a unified
        # cache makes every token scan every sequence's cells). Prefix reuse across streams copies.
        cparams.kv_unified = False
        threads = n_threads or max(1, os.cpu_count() or 1)
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        self._ctx = llama_cpp.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            llama_cpp.llama_model_free(self._model)
            raise BackendError(f"llama.cpp could not create a context for {self.path}")
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._template = self._chat_template()
        self._digest = file_digest(self.path)
        # The scheduler: callers enqueue jobs; one decode-loop thread owns the context.
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._active: list[_Slot] = []
        self._free: list[int] = list(range(parallel))
        self._kv: list[list[int]] = [[] for _ in range(parallel)]  # tokens in each slot's KV stream
        self._thread: threading.Thread | None = None
        self._closing = False
        self.stats = SchedulerStats()

    # -- model facts -------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return f"{self.path.name}@sha256:{self._digest}"

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.kind,
            "model": self.model_id,
            "parallel": self.parallel,
            "n_ctx_per_seq": self.seq_ctx,
            "prefix_sharing": self.prefix_sharing,
        }

    def _meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = self._ll.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def _token_text(self, token: int) -> str:
        buf = ctypes.create_string_buffer(64)
        n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
        return buf.raw[: max(n, 0)].decode("utf-8", "replace")

    def _chat_template(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._meta("tokenizer.chat_template")
        if not template:
            raise BackendError(f"{self.path.name} has no chat template in its GGUF metadata")
        bos = self._token_text(self._ll.llama_vocab_bos(self._vocab))
        eos = self._token_text(self._ll.llama_vocab_eos(self._vocab))
        self._bos_text = bos
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    # -- prompts -----------------------------------------------------------------------------

    def format_prompt(self, messages: Sequence[Message], prefix: str | None = None) -> str:
        result = self._template(messages=[m.model_dump() for m in messages])
        text = result.prompt
        if self._bos_text and text.startswith(self._bos_text):
            text = text[len(self._bos_text) :]
        return text + (prefix or "")

    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 16
        arr = (self._ll.llama_token * cap)()
        n = self._ll.llama_tokenize(self._vocab, data, len(data), arr, cap, True, True)
        if n < 0:
            raise ValueError("tokenization overflow")
        return list(arr[:n])

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        return buf.raw[:n]

    def _sampler(self, request: ChatRequest) -> Any:
        ll = self._ll
        s = request.sampling
        chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        # top-k first: the penalty sampler is slow over a full vocabulary (llama.h says so).
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_k(40))
        if s.repeat_penalty != 1.0:
            ll.llama_sampler_chain_add(
                chain,
                ll.llama_sampler_init_penalties(
                    ll.llama_vocab_n_tokens(self._vocab), 64, s.repeat_penalty, 0.0, 0.0
                ),
            )
        if s.temperature <= 0.0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
        else:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_p(s.top_p, 1))
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_temp(s.temperature))
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_dist(request.seed & 0xFFFFFFFF))
        return chain

    # -- callers -------------------------------------------------------------------------------

    def _generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        if self._closing or self._ctx is None:
            raise BackendError("the llama.cpp backend is closed")
        ticket = _Ticket(len(requests))
        jobs: list[_Job] = []
        for i, r in enumerate(requests):
            prompt = self.tokenize(self.format_prompt(r.messages, r.prefix))
            if len(prompt) + r.sampling.max_tokens > self.seq_ctx:
                ticket.deliver(i, Generation.failed(
                    r.id, f"prompt ({len(prompt)} tokens) + max_tokens exceeds the context ({self.seq_ctx})"
                ))
                continue
            jobs.append(_Job(r, prompt, ticket, i))
        if jobs:
            with self._cond:
                if self._closing:
                    raise BackendError("the llama.cpp backend is closed")
                self._queue.extend(jobs)
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._serve, args=(weakref.ref(self),), name=f"{self.kind}-decode", daemon=True
                    )
                    self._thread.start()
                self._cond.notify_all()
        ticket.done.wait()
        if ticket.error is not None:
            raise ticket.error
        return [g for g in ticket.results if g is not None]

    # -- the decode loop -----------------------------------------------------------------------

    @staticmethod
    def _serve(ref: weakref.ReferenceType[LlamaCppBackend]) -> None:
        """The decode loop. Holds the backend only weakly while idle, so a dropped backend is freed."""
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
        deferred: deque[_Job] = deque()
        while self._queue and self._free:
            job = self._queue.popleft()
            if job.ticket.error is not None:  # its caller already failed
                continue
            placed = self._place(job, fresh) if self.prefix_sharing else self._place_plain(job)
            if not placed:
                deferred.append(job)
        deferred.extend(self._queue)
        self._queue = deferred
        self.stats.peak_active = max(self.stats.peak_active, len(self._active))

    def _place_plain(self, job: _Job) -> bool:
        seq = min(self._free)
        self._ll.llama_memory_seq_rm(self._mem, seq, -1, -1)
        self._kv[seq] = []
        self._free.remove(seq)
        self._start(job, seq, 0)
        return True

    def _place(self, job: _Job, fresh: set[int]) -> bool:
        # Always the lowest free sequence id: llama.cpp computes a batch's attention over the whole
        # range of KV streams the batch touches, so active sequences spread over 32 streams cost up
        # to 3x more per step than the same sequences packed into the first few.
        seq = min(self._free)
        prompt = job.prompt
        cap = len(prompt) - 1  # the last prompt token is always decoded: its logits start the reply
        own = min(cap, common_prefix(prompt, self._kv[seq]))
        src_seq, src = -1, 0
        for s in range(self.parallel):
            if s == seq or s in fresh:
                continue
            n = min(cap, common_prefix(prompt, self._kv[s]))
            if n > src:
                src_seq, src = s, n
        # A running slot whose prompt shares more than any cache will hold that prefix in a step
        # or two: wait for it rather than compute the same prefix twice.
        for slot in self._active:
            if slot.fed >= len(slot.prompt):
                continue
            ahead = min(cap, common_prefix(prompt, slot.prompt))
            if ahead >= max(own, src) + MIN_SHARED_GAIN and slot.fed < ahead:
                return False
        ll = self._ll
        if src >= own + MIN_SHARED_GAIN:
            ll.llama_memory_seq_cp(self._mem, src_seq, seq, -1, -1)  # whole stream, then trim
            ll.llama_memory_seq_rm(self._mem, seq, src, -1)
            self._kv[seq] = self._kv[src_seq][:src]
            self.stats.kv_copies += 1
            reuse = src
        else:
            reuse = own
            ll.llama_memory_seq_rm(self._mem, seq, reuse, -1)
            del self._kv[seq][reuse:]
        self._free.remove(seq)
        fresh.add(seq)
        self._start(job, seq, reuse)
        return True

    def _start(self, job: _Job, seq: int, reuse: int) -> None:
        slot = _Slot(job, seq, self._sampler(job.request), fed=reuse, reused=reuse)
        self.stats.prompt_tokens += len(job.prompt)
        self.stats.prompt_tokens_reused += reuse
        self._active.append(slot)

    def _step(self) -> None:
        """One ``llama_decode`` over every active slot's next token plus prompt chunks."""
        ll = self._ll
        batch = self._batch
        batch.n_tokens = 0
        wants_logits: list[tuple[_Slot, int]] = []

        def add(slot: _Slot, token: int, pos: int, logits: bool) -> None:
            i = batch.n_tokens
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = slot.seq_id
            batch.logits[i] = logits
            batch.n_tokens = i + 1
            self._kv[slot.seq_id].append(token)
            if logits:
                wants_logits.append((slot, i))

        for slot in self._active:
            if slot.pending is not None:
                add(slot, slot.pending, slot.fed + len(slot.out_tokens) - 1, True)
                slot.pending = None
        for slot in self._active:
            room = self.n_batch - batch.n_tokens
            if room <= 0:
                break
            if slot.fed < len(slot.prompt):
                take = min(room, len(slot.prompt) - slot.fed)
                last = len(slot.prompt) - 1
                for pos in range(slot.fed, slot.fed + take):
                    add(slot, slot.prompt[pos], pos, pos == last)
                slot.fed += take
        if batch.n_tokens == 0:  # pragma: no cover - every active slot always has work
            return
        start = time.perf_counter()
        rc = ll.llama_decode(self._ctx, batch)
        self.stats.decode_s += time.perf_counter() - start
        self.stats.decode_calls += 1
        self.stats.tokens_decoded += batch.n_tokens
        if rc != 0:
            raise BackendError(f"llama.cpp decode failed (code {rc}); try a smaller --parallel")
        for slot, i in wants_logits:
            token = ll.llama_sampler_sample(slot.sampler, self._ctx, i)
            self._advance(slot, token)
        still: list[_Slot] = []
        finished: list[_Slot] = []
        for slot in self._active:
            (finished if slot.finish is not None else still).append(slot)
        if not finished:
            return
        with self._cond:
            self._active = still
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
        ll = self._ll
        if ll.llama_vocab_is_eog(self._vocab, token):
            slot.finish = "stop"
            return
        slot.out_tokens.append(token)
        slot.out_bytes += self._piece(token)
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

    def _free_slot(self, slot: _Slot) -> None:
        """The slot's KV stays cached for later requests that share its prefix."""
        if slot.sampler is not None:
            self._ll.llama_sampler_free(slot.sampler)
            slot.sampler = None
        if not self.prefix_sharing:
            self._ll.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
            self._kv[slot.seq_id] = []
        self._free.append(slot.seq_id)

    def _drop(self, slot: _Slot) -> None:
        """A slot whose state is unknown after an error: forget its KV."""
        self._ll.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
        self._kv[slot.seq_id] = []
        if slot.sampler is not None:
            self._ll.llama_sampler_free(slot.sampler)
            slot.sampler = None
        self._free.append(slot.seq_id)

    def close(self) -> None:
        ll = getattr(self, "_ll", None)
        if ll is None:
            return
        cond = getattr(self, "_cond", None)
        thread = getattr(self, "_thread", None)
        if cond is not None:
            with cond:
                self._closing = True
                cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)
            if thread.is_alive():  # still inside llama_decode: freeing the context under it would crash
                return
        if getattr(self, "_batch", None) is not None:
            ll.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "_ctx", None):
            ll.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            ll.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
