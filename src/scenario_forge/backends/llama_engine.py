"""llama.cpp's C API bound to one GGUF model and one multi-sequence context.

:class:`LlamaEngine` is the only place that calls ``llama_cpp.llama_*``: it loads the model, creates
a context with ``n_seq`` KV streams (one per sequence), renders chat prompts with the model's own
template, tokenizes, decodes one batch of ``(sequence, position, token)`` entries, samples, and
edits the KV streams (drop, copy). It holds no scheduling state: which sequence decodes what is the
scheduler's business (:mod:`scenario_forge.backends.llama_scheduler`). Decoding, sampling and KV
edits come from one thread (the decode loop); rendering and tokenizing prompts and compiling JSON
schemas into grammars only read the model's vocabulary and template, and callers' threads do that.

Schema-constrained decoding: a request's JSON schema becomes a GBNF grammar (llama-cpp-python's
converter, :func:`schema_grammar`), compiled once per schema into a llama.cpp grammar sampler that
each request clones. Sampling checks the sampled token against the grammar and only when it is not
allowed re-samples with the grammar applied to the whole vocabulary (llama.cpp's own ``common_sampler``
does the same): the grammar costs one token's check on most steps, not a pass over 150k tokens.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ..config import SamplingParams
from ..errors import BackendError, MissingExtraError
from ..hashing import file_digest
from ..records import Message

_BACKEND_INIT = threading.Lock()
_BACKEND_READY = False


def load_llama() -> Any:
    """The ``llama_cpp`` module, loaded with quiet logging and passive OpenMP waiting."""
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


def amx_compiled(ll: Any) -> bool:
    """Whether this llama.cpp build holds its AMX kernels (``AMX_INT8 = 1`` in its system info: built
    with ``-march=native`` on a CPU that has AMX, without ``-mno-amx-int8``; ``scripts/setup.sh``
    builds it without them)."""
    return b"AMX_INT8 = 1" in ll.llama_print_system_info()


#: llama-cpp-python's converter lets a JSON string hold raw control characters (a bare newline),
#: which JSON parsers reject; llama.cpp's own converter excludes them, and so do we.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def schema_grammar(schema: dict[str, Any]) -> str:
    r"""The GBNF grammar (root rule ``root``) of the JSON documents ``schema`` allows.

    Raises ``ValueError`` for a schema the converter cannot express.

    >>> grammar = schema_grammar({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    >>> grammar.splitlines()[-2:]
    ['root ::= "{" space n-kv "}" space', 'space ::= " "?']
    >>> r'[^"\\\x7F\x00-\x1F]' in schema_grammar({"type": "string"})  # no raw newline in a string
    True
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar: str = json_schema_to_gbnf(json.dumps(_bounded_integers(schema)))
    except Exception as exc:  # noqa: BLE001 - the converter raises bare Exception/ValueError/KeyError
        raise ValueError(f"cannot turn the JSON schema into a grammar: {exc}") from None
    return grammar.replace(_LOOSE_CHAR, _JSON_CHAR)


#: Integer ranges up to this wide become an explicit list of values in the grammar.
_MAX_INT_CHOICES = 201


def _bounded_integers(node: Any) -> Any:
    """``node`` with every small ``{"type": "integer", "minimum": a, "maximum": b}`` turned into
    ``{"enum": [a, ..., b]}``: llama-cpp-python's converter ignores integer bounds (a rubric's points
    could come out as 48320), and an enum it does enforce.

    >>> _bounded_integers({"properties": {"p": {"type": "integer", "minimum": -2, "maximum": 2, "title": "P"}}})
    {'properties': {'p': {'enum': [-2, -1, 0, 1, 2], 'title': 'P'}}}
    """
    if isinstance(node, list):
        return [_bounded_integers(item) for item in node]
    if not isinstance(node, dict):
        return node
    low, high = node.get("minimum"), node.get("maximum")
    if (
        node.get("type") == "integer"
        and isinstance(low, int)
        and isinstance(high, int)
        and 0 <= high - low < _MAX_INT_CHOICES
        and not {"exclusiveMinimum", "exclusiveMaximum", "multipleOf", "enum", "const"} & node.keys()
    ):
        rest = {k: v for k, v in node.items() if k not in ("type", "minimum", "maximum")}
        return {"enum": list(range(low, high + 1)), **rest}
    return {k: _bounded_integers(v) for k, v in node.items()}


@dataclass
class RequestSampler:
    """One request's sampler chain, and its grammar sampler when the request carries a JSON schema."""

    chain: Any
    grammar: Any = None


class BatchEntry(NamedTuple):
    """One token of a decode batch: its sequence, its position there, and whether to keep its logits.

    A tuple, not a dataclass: a step builds one per prompt token (up to ``n_batch``)."""

    seq: int
    token: int
    pos: int
    logits: bool


class LlamaEngine:
    """One model and one context of ``n_seq`` KV streams of ``seq_ctx`` tokens each."""

    def __init__(
        self, path: Path, *, n_seq: int, n_ctx_per_seq: int, n_batch: int, n_threads: int | None = None
    ) -> None:
        if not path.is_file():
            raise BackendError(f"model file not found: {path}")
        self.path = path
        ll = load_llama()
        self._ll = ll
        global _BACKEND_READY
        with _BACKEND_INIT:
            if not _BACKEND_READY:
                ll.llama_backend_init()
                _BACKEND_READY = True
        mparams = ll.llama_model_default_params()
        mparams.n_gpu_layers = 0
        if amx_compiled(ll):
            # llama.cpp's AMX kernels (built in by -march=native on a CPU with AMX) crash on quantized
            # weights (Q4_1: a segfault in ggml_backend_amx_mul_mat at the first decode, seen here;
            # ggml-org/llama.cpp#20824, #16315). They are an "extra buffer type": without extra
            # buffer types the weights stay in the plain CPU buffer (which also skips the repacked
            # Q4_0 layout; F16, what the embedded model runs as, never used either).
            mparams.use_extra_bufts = False
        self._model: Any = ll.llama_model_load_from_file(str(path).encode(), mparams)
        if not self._model:
            raise BackendError(f"llama.cpp could not load {path} (not a GGUF model file?)")
        self._vocab: Any = ll.llama_model_get_vocab(self._model)
        n_train = ll.llama_model_n_ctx_train(self._model)
        self.seq_ctx: int = min(n_ctx_per_seq, n_train) if n_train > 0 else n_ctx_per_seq
        self.n_batch = n_batch
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = self.seq_ctx * n_seq
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = n_seq
        # One KV stream per sequence: a token attends only to its own sequence's cells (a unified
        # cache makes every token scan every sequence's cells). Prefix reuse across streams copies.
        cparams.kv_unified = False
        threads = n_threads or max(1, os.cpu_count() or 1)
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        self._ctx: Any = ll.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            ll.llama_model_free(self._model)
            self._model = None
            raise BackendError(f"llama.cpp could not create a context for {path}")
        self._mem: Any = ll.llama_get_memory(self._ctx)
        self._batch: Any = ll.llama_batch_init(n_batch, 0, 1)
        self._grammars: dict[str, Any] = {}  # schema (canonical JSON) -> compiled grammar sampler to clone
        self._grammar_lock = threading.Lock()
        self._n_vocab: int = ll.llama_vocab_n_tokens(self._vocab)
        self._candidates: Any = None  # the whole vocabulary as llama_token_data, for grammar re-sampling
        self._bos_text = ""
        try:
            self._template = self._chat_template()
            self.digest = file_digest(path)
        except BaseException:
            self.close()
            raise

    @property
    def closed(self) -> bool:
        return self._ctx is None

    # -- model facts and prompts -----------------------------------------------------------------

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

    def format_prompt(self, messages: Sequence[Message], prefix: str | None = None) -> str:
        """The chat rendered with the model's template (without its BOS text), then ``prefix``."""
        text: str = self._template(messages=[m.model_dump() for m in messages]).prompt
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

    def piece(self, token: int) -> bytes:
        """The bytes a generated token stands for (special tokens not rendered)."""
        buf = ctypes.create_string_buffer(64)
        n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
        return bytes(buf.raw[:n])

    def is_end(self, token: int) -> bool:
        """Whether ``token`` ends generation (end of turn or of text)."""
        return bool(self._ll.llama_vocab_is_eog(self._vocab, token))

    # -- sampling ---------------------------------------------------------------------------------

    def compile_schema(self, schema: dict[str, Any]) -> str:
        """Compile ``schema`` into a grammar sampler (once per schema); the key :meth:`new_sampler` takes.

        Raises ``ValueError`` naming the problem for a schema that has no grammar."""
        key = json.dumps(schema, sort_keys=True)
        with self._grammar_lock:
            if key in self._grammars:
                return key
            if self._model is None:
                raise BackendError("the llama.cpp backend is closed")
            grammar = schema_grammar(schema)
            sampler = self._ll.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
            if not sampler:
                raise ValueError("llama.cpp could not parse the grammar made from the JSON schema")
            self._grammars[key] = sampler
            return key

    def new_sampler(self, sampling: SamplingParams, seed: int, schema_key: str | None = None) -> RequestSampler:
        """One request's samplers: top-k 40, repetition penalty, then greedy or top-p/temperature;
        plus a fresh copy of the grammar compiled for ``schema_key`` (:meth:`compile_schema`)."""
        grammar = None
        if schema_key is not None:
            with self._grammar_lock:
                grammar = self._ll.llama_sampler_clone(self._grammars[schema_key])
        return RequestSampler(self._new_chain(sampling, seed), grammar)

    def _new_chain(self, sampling: SamplingParams, seed: int) -> Any:
        ll = self._ll
        chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        # top-k first: the penalty sampler is slow over a full vocabulary (llama.h says so).
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_k(40))
        if sampling.repeat_penalty != 1.0:
            ll.llama_sampler_chain_add(
                chain,
                ll.llama_sampler_init_penalties(ll.llama_vocab_n_tokens(self._vocab), 64, sampling.repeat_penalty, 0.0, 0.0),
            )
        if sampling.temperature <= 0.0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
        else:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_p(sampling.top_p, 1))
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_temp(sampling.temperature))
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    def free_sampler(self, sampler: RequestSampler) -> None:
        self._ll.llama_sampler_free(sampler.chain)
        if sampler.grammar is not None:
            self._ll.llama_sampler_free(sampler.grammar)

    def sample(self, sampler: RequestSampler, batch_index: int) -> int:
        """The next token of the sequence whose logits sit at ``batch_index`` of the last batch.

        With a grammar: the chain samples from the raw logits; if the grammar does not allow that
        token, the chain samples again from the logits with every disallowed token masked. Both
        samplers then accept the token. Should the grammar allow no token at all (it always allows
        an end token once the document is complete), the reply ends there."""
        ll = self._ll
        if sampler.grammar is None:
            return int(ll.llama_sampler_sample(sampler.chain, self._ctx, batch_index))
        cur = self._fill_candidates(batch_index)
        ll.llama_sampler_apply(sampler.chain, ctypes.byref(cur))
        token = int(cur.data[cur.selected].id)
        if not self._grammar_allows(sampler.grammar, token):
            cur = self._fill_candidates(batch_index)
            ll.llama_sampler_apply(sampler.grammar, ctypes.byref(cur))
            ll.llama_sampler_apply(sampler.chain, ctypes.byref(cur))
            picked = cur.data[cur.selected]
            if math.isinf(picked.logit) and picked.logit < 0:
                return int(ll.llama_vocab_eos(self._vocab))  # nothing allowed: end (the caller's parse fails)
            token = int(picked.id)
        ll.llama_sampler_accept(sampler.grammar, token)
        ll.llama_sampler_accept(sampler.chain, token)
        return token

    def _grammar_allows(self, grammar: Any, token: int) -> bool:
        ll = self._ll
        one = ll.llama_token_data(token, 1.0, 0.0)
        arr = ll.llama_token_data_array(ctypes.pointer(one), 1, -1, False)
        ll.llama_sampler_apply(grammar, ctypes.byref(arr))
        return not math.isinf(arr.data[0].logit)

    def _fill_candidates(self, batch_index: int) -> Any:
        """The logits at ``batch_index`` as a ``llama_token_data_array`` over the whole vocabulary
        (one reused buffer: samplers sort and trim it in place)."""
        import numpy as np

        ll, n = self._ll, self._n_vocab
        if self._candidates is None:
            buf = (ll.llama_token_data * n)()
            view = np.ctypeslib.as_array(buf)
            self._candidates = (buf, view, np.arange(n, dtype=np.int32))
        buf, view, ids = self._candidates
        logits = np.ctypeslib.as_array(ll.llama_get_logits_ith(self._ctx, batch_index), shape=(n,))
        view["id"] = ids
        view["logit"] = logits
        view["p"] = 0.0
        return ll.llama_token_data_array(ctypes.cast(buf, ctypes.POINTER(ll.llama_token_data)), n, -1, False)

    # -- KV streams and decoding ------------------------------------------------------------------

    def forget(self, seq: int, start: int = 0) -> None:
        """Drop sequence ``seq``'s KV from position ``start`` on (all of it by default)."""
        self._ll.llama_memory_seq_rm(self._mem, seq, start if start > 0 else -1, -1)

    def copy(self, src: int, dst: int, keep: int) -> None:
        """Make ``dst``'s KV the first ``keep`` positions of ``src``'s (a whole-stream copy, then a trim)."""
        self._ll.llama_memory_seq_cp(self._mem, src, dst, -1, -1)
        self._ll.llama_memory_seq_rm(self._mem, dst, keep, -1)

    def decode(self, entries: Sequence[BatchEntry]) -> None:
        """One ``llama_decode`` over ``entries`` (at most ``n_batch``); entry ``i``'s logits are at index ``i``."""
        batch = self._batch
        for i, e in enumerate(entries):
            batch.token[i] = e.token
            batch.pos[i] = e.pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = e.seq
            batch.logits[i] = e.logits
        batch.n_tokens = len(entries)
        rc = self._ll.llama_decode(self._ctx, batch)
        if rc != 0:
            raise BackendError(f"llama.cpp decode failed (code {rc}); try a smaller --parallel")

    def close(self) -> None:
        """Free the batch, the context and the model (idempotent)."""
        ll = self._ll
        with self._grammar_lock:
            for sampler in self._grammars.values():
                ll.llama_sampler_free(sampler)
            self._grammars.clear()
        if self._batch is not None:
            ll.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx:
            ll.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            ll.llama_model_free(self._model)
            self._model = None
