"""Local GGUF models through llama.cpp, with batched multi-sequence decoding.

llama-cpp-python's high-level ``Llama`` (and distilabel's ``LlamaCppLLM``, which wraps it) decodes
one sequence at a time. On a CPU, one sequence at a time leaves the matrix units waiting on memory:
every token re-reads all weights. Here the whole stage batch shares one llama.cpp context with a
unified KV cache and up to ``parallel`` sequences decode together, each step one ``llama_decode``
call over every active sequence's next token (plus chunks of newly admitted prompts); a finished
sequence's slot is refilled at once (continuous batching). Each request has its own sampler chain
seeded from the request, so results do not depend on what else is in the batch beyond floating-point
effects of batching.

We call llama.cpp's C API (``llama_cpp.llama_*``, the stable surface) rather than distilabel's
wrapper for that reason; see ``benchmarks/bench_backends.py`` for the measured difference.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BackendError, MissingExtraError
from ..records import Message
from .base import Backend, ChatRequest, Generation

_BACKEND_INIT = threading.Lock()
_BACKEND_READY = False


def _llama() -> Any:
    try:
        import llama_cpp
        from llama_cpp import _logger
    except ImportError:  # pragma: no cover - core dependency
        raise MissingExtraError("llama-cpp-python", "embedded", "the llama.cpp backend") from None
    # llama.cpp logs every tensor it loads to stderr; keep errors only (set LLAMA_CPP_VERBOSE=1 for all).
    _logger.set_verbose(bool(os.environ.get("LLAMA_CPP_VERBOSE")))
    return llama_cpp


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """sha256[:12] of a model file (provenance: which weights produced the text)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:12]


@dataclass
class _Slot:
    request: ChatRequest
    seq_id: int
    prompt: list[int]
    reserve: int
    sampler: Any
    fed: int = 0  # prompt tokens already decoded
    out_tokens: list[int] = field(default_factory=list)
    out_bytes: bytearray = field(default_factory=bytearray)
    pending: int | None = None  # last sampled token, to feed in the next step
    finish: str | None = None

    @property
    def pos(self) -> int:
        return self.fed + len(self.out_tokens) - (1 if self.pending is not None else 0)


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
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = self.n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = parallel
        # One KV stream per sequence: a token attends only to its own sequence's cells (a unified
        # cache makes every token scan every sequence's cells).
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
        self._lock = threading.Lock()

    # -- model facts -------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return f"{self.path.name}@sha256:{self._digest}"

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model_id, "parallel": self.parallel}

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

    # -- the batched decode loop -------------------------------------------------------------

    def _generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        with self._lock:
            return self._run(requests)

    def _run(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        ll = self._ll
        results: dict[str, Generation] = {}
        queue: deque[tuple[ChatRequest, list[int]]] = deque()
        for r in requests:
            prompt = self.tokenize(self.format_prompt(r.messages, r.prefix))
            if len(prompt) + r.sampling.max_tokens > self.seq_ctx:
                results[r.id] = Generation.failed(
                    r.id, f"prompt ({len(prompt)} tokens) + max_tokens exceeds the context ({self.seq_ctx})"
                )
                continue
            queue.append((r, prompt))
        free_ids = deque(range(self.parallel))
        active: list[_Slot] = []
        batch = self._batch
        try:
            while queue or active:
                while queue and free_ids:
                    r, prompt = queue.popleft()
                    active.append(
                        _Slot(r, free_ids.popleft(), prompt, len(prompt) + r.sampling.max_tokens, self._sampler(r))
                    )
                # Build one batch: every decoding sequence's pending token, then prompt chunks.
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
                    if logits:
                        wants_logits.append((slot, i))

                for slot in active:
                    if slot.pending is not None:
                        add(slot, slot.pending, slot.fed + len(slot.out_tokens) - 1, True)
                        slot.pending = None
                for slot in active:
                    room = self.n_batch - batch.n_tokens
                    if room <= 0:
                        break
                    if slot.fed < len(slot.prompt):
                        take = min(room, len(slot.prompt) - slot.fed)
                        for k in range(take):
                            pos = slot.fed + k
                            add(slot, slot.prompt[pos], pos, pos == len(slot.prompt) - 1)
                        slot.fed += take
                rc = ll.llama_decode(self._ctx, batch)
                if rc != 0:
                    raise BackendError(f"llama.cpp decode failed (code {rc}); try a smaller --parallel")
                for slot, i in wants_logits:
                    token = ll.llama_sampler_sample(slot.sampler, self._ctx, i)
                    self._advance(slot, token)
                still: list[_Slot] = []
                for slot in active:
                    if slot.finish is None:
                        still.append(slot)
                        continue
                    text = bytes(slot.out_bytes).decode("utf-8", "replace")
                    results[slot.request.id] = Generation(
                        request_id=slot.request.id,
                        text=text,
                        finish_reason="length" if slot.finish == "length" else "stop",
                        prompt_tokens=len(slot.prompt),
                        completion_tokens=len(slot.out_tokens),
                    )
                    self._release(slot)
                    free_ids.append(slot.seq_id)
                active = still
        finally:
            for slot in active:
                self._release(slot)
        return [results[r.id] for r in requests if r.id in results]

    def _advance(self, slot: _Slot, token: int) -> None:
        ll = self._ll
        if ll.llama_vocab_is_eog(self._vocab, token):
            slot.finish = "stop"
            return
        slot.out_tokens.append(token)
        slot.out_bytes += self._piece(token)
        stops = slot.request.sampling.stop
        if stops:
            tail = bytes(slot.out_bytes[-256:]).decode("utf-8", "ignore")
            for stop in stops:
                if stop and stop in tail:
                    cut = bytes(slot.out_bytes).decode("utf-8", "ignore")
                    slot.out_bytes = bytearray(cut[: cut.rfind(stop)].encode("utf-8"))
                    slot.finish = "stop"
                    return
        if len(slot.out_tokens) >= slot.request.sampling.max_tokens:
            slot.finish = "length"
            return
        slot.pending = token

    def _release(self, slot: _Slot) -> None:
        self._ll.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
        if slot.sampler is not None:
            self._ll.llama_sampler_free(slot.sampler)
            slot.sampler = None

    def close(self) -> None:
        ll = getattr(self, "_ll", None)
        if ll is None:
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
