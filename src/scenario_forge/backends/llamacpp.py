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

The work is split along those jobs: :mod:`~scenario_forge.backends.llama_engine` binds llama.cpp's
C API (model, context, tokenizer, decode, samplers, KV edits), :mod:`~scenario_forge.backends.llama_scheduler`
is the queue and the decode loop (continuous batching), :mod:`~scenario_forge.backends.prefix_cache`
decides where a prompt starts and what KV it reuses; this module is the :class:`Backend` over them.

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

JSON schemas: a request's ``json_schema`` is compiled (once per schema) into a llama.cpp grammar that
constrains its decoding, so the reply is a JSON document of that schema unless ``max_tokens`` cuts it
short (``finish_reason="length"``). Every GGUF takes schemas, the embedded one included; but ``auto``
choices keep the embedded 135M model on its plain-text path (:attr:`LlamaCppBackend.auto_json_schema`):
it fills a schema's shape with little content.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import BackendError
from ..records import Message
from .base import Backend, ChatRequest, Generation
from .llama_engine import LlamaEngine
from .llama_scheduler import DecodeScheduler, Job, SchedulerStats, Ticket


class LlamaCppBackend(Backend):
    """Any local GGUF model. ``parallel`` sequences decode together in one llama.cpp context."""

    kind = "llamacpp"
    supports_json_schema = True
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
        json_schema: bool = True,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.supports_json_schema = json_schema  # False: requests' schemas are dropped (structured output off)
        self.path = Path(model_path)
        self.parallel = parallel
        self._engine: LlamaEngine | None = None
        self._scheduler: DecodeScheduler | None = None
        engine = LlamaEngine(self.path, n_seq=parallel, n_ctx_per_seq=n_ctx_per_seq, n_batch=n_batch, n_threads=n_threads)
        self._engine = engine
        self.seq_ctx = engine.seq_ctx
        self.n_ctx = self.seq_ctx * parallel
        self.n_batch = n_batch
        self._digest = engine.digest
        self._scheduler = DecodeScheduler(engine, parallel, prefix_sharing=prefix_sharing, name=kind)
        #: what the decode loop did so far (the benchmark and tests read it)
        self.stats: SchedulerStats = self._scheduler.stats

    @property
    def prefix_sharing(self) -> bool:
        """Whether prompts reuse cached KV prefixes (settable: the benchmark turns it off to compare)."""
        return self._scheduler.prefix_sharing if self._scheduler is not None else False

    @prefix_sharing.setter
    def prefix_sharing(self, value: bool) -> None:
        if self._scheduler is not None:
            self._scheduler.prefix_sharing = value

    def _live(self) -> tuple[LlamaEngine, DecodeScheduler]:
        engine, scheduler = self._engine, self._scheduler
        if engine is None or scheduler is None or engine.closed:
            raise BackendError("the llama.cpp backend is closed")
        return engine, scheduler

    # -- model facts and prompts ---------------------------------------------------------------

    @property
    def auto_json_schema(self) -> bool:
        """Schema paths by default for any GGUF but the embedded SmolLM2-135M (too small to fill them)."""
        return self.supports_json_schema and self.kind != "embedded"

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

    def format_prompt(self, messages: Sequence[Message], prefix: str | None = None) -> str:
        return self._live()[0].format_prompt(messages, prefix)

    def tokenize(self, text: str) -> list[int]:
        return self._live()[0].tokenize(text)

    # -- callers -------------------------------------------------------------------------------

    def _generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        engine, scheduler = self._live()
        if scheduler.closing:
            raise BackendError("the llama.cpp backend is closed")
        ticket = Ticket(len(requests))
        jobs: list[Job] = []
        for i, r in enumerate(requests):
            schema_key = None
            if r.json_schema is not None and self.supports_json_schema:
                if r.prefix:
                    ticket.deliver(i, Generation.failed(r.id, "a request cannot carry both json_schema and prefix"))
                    continue
                try:
                    schema_key = engine.compile_schema(r.json_schema)
                except ValueError as exc:
                    ticket.deliver(i, Generation.failed(r.id, str(exc)))
                    continue
            prompt = engine.tokenize(engine.format_prompt(r.messages, r.prefix))
            if len(prompt) + r.sampling.max_tokens > self.seq_ctx:
                ticket.deliver(i, Generation.failed(
                    r.id, f"prompt ({len(prompt)} tokens) + max_tokens exceeds the context ({self.seq_ctx})"
                ))
                continue
            jobs.append(Job(r, prompt, ticket, i, schema_key))
        scheduler.submit(jobs)
        return ticket.wait()

    def close(self) -> None:
        scheduler = getattr(self, "_scheduler", None)
        if scheduler is not None and not scheduler.close():
            return  # still inside llama_decode: freeing the context under it would crash
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.close()

    def __del__(self) -> None:
        if sys.is_finalizing():
            # interpreter exit: the daemon decode thread may be stopped holding its lock; the OS frees
            # the model, and waiting on that lock would hang the exit
            return
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
