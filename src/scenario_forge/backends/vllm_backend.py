"""In-process vLLM (optional extra ``[gpu]``): a whole stage batch goes to ``LLM.chat`` at once.

vLLM schedules what it is given with continuous batching and paged attention; the way to keep a
GPU busy from Python is to hand it everything at once, not a request at a time. Each request keeps
its own ``SamplingParams`` (temperature, top-p, max tokens, repetition penalty, stop strings and a
per-request seed), and schema-constrained output goes through vLLM's current API,
``SamplingParams(structured_outputs=StructuredOutputsParams(json=schema))`` (the older
``guided_decoding``/``GuidedDecodingParams`` were removed in vLLM 0.12). Requests that carry a
``prefix`` end with a partial assistant message and go out with ``continue_final_message=True``
(vLLM continues it), so ``supports_prefix`` is true here.

Concurrent ``generate()`` calls (shards run in threads) are merged into one ``LLM.chat`` call by
:class:`~scenario_forge.backends.coalesce.Coalescer`: ``vllm.LLM`` is not thread-safe, and a batch
that arrives while the engine is busy joins the next call instead of waiting behind a lock for a
call of its own. (``vllm serve`` with the ``openai`` backend admits new requests mid-flight too.)

A batch that vLLM rejects as a whole (one prompt longer than ``max_model_len`` raises for the whole
call) is re-run request by request, so only the bad request becomes ``Generation.failed``.

We call vLLM directly rather than distilabel's ``vLLM`` class: distilabel 1.5.3 builds structured
output as an outlines logits processor passed in ``SamplingParams(logits_processors=...)``, which
vLLM's V1 engine no longer accepts per request, and it returns ``None`` for failed generations
instead of a reason.

This module was written against vLLM's documented API and unit-tested with a stand-in ``vllm``
module; it has not been run on a GPU here (see ``docs/backends.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import BackendConfig
from ..errors import BackendError, MissingExtraError
from .base import Backend, ChatRequest, Generation
from .coalesce import Coalescer

_FINISH = {"stop": "stop", "length": "length"}


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise MissingExtraError("vllm", "gpu", "the vllm backend") from None
    return vllm


class VLLMBackend(Backend):
    """``vllm.LLM`` in this process; one ``chat()`` call per stage batch (merged across shards)."""

    kind = "vllm"
    supports_prefix = True

    def __init__(
        self,
        model: str,
        *,
        max_model_len: int | None = None,
        structured_output: str = "auto",
        llm: Any = None,
        **engine_kwargs: Any,
    ) -> None:
        super().__init__()
        vllm = _import_vllm()
        self._sampling_cls = vllm.SamplingParams
        self._structured_cls: Any = None
        if structured_output == "auto":
            try:
                from vllm.sampling_params import StructuredOutputsParams
            except ImportError:  # vLLM < 0.11: no current structured-outputs API; plain text then
                StructuredOutputsParams = None
            self._structured_cls = StructuredOutputsParams
        self.supports_json_schema = self._structured_cls is not None
        self.model = model
        if llm is None:
            kwargs = dict(engine_kwargs)
            if max_model_len is not None:
                kwargs["max_model_len"] = max_model_len
            try:
                llm = vllm.LLM(model=model, **kwargs)
            except (OSError, ValueError, RuntimeError) as exc:
                raise BackendError(f"vLLM could not load {model!r}: {type(exc).__name__}: {exc}") from None
        self.llm = llm
        self._coalescer: Coalescer[ChatRequest, Generation] = Coalescer(self._run)

    @classmethod
    def from_config(cls, cfg: BackendConfig) -> VLLMBackend:
        """vLLM's own context length (``--max-model-len``; None: the model's) and ``--engine-kwargs``
        (``tensor_parallel_size``, ``gpu_memory_utilization``, ...) go to ``vllm.LLM`` as given;
        llama.cpp's per-sequence ``n_ctx`` does not apply here."""
        return cls(
            cfg.model or "",
            max_model_len=cfg.max_model_len,
            structured_output=cfg.structured_output,
            **cfg.engine_kwargs,
        )

    @property
    def model_id(self) -> str:
        return self.model

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.kind,
            "model": self.model,
            "structured_output": "structured_outputs" if self.supports_json_schema else None,
        }

    # -- argument mapping ------------------------------------------------------------------------

    def sampling_params(self, r: ChatRequest) -> Any:
        """vLLM ``SamplingParams`` for one request."""
        s = r.sampling
        kwargs: dict[str, Any] = {
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "repetition_penalty": s.repeat_penalty,
            "stop": list(s.stop) or None,
            "seed": r.seed,
        }
        if r.json_schema is not None and self._structured_cls is not None:
            kwargs["structured_outputs"] = self._structured_cls(json=r.json_schema)
        return self._sampling_cls(**kwargs)

    @staticmethod
    def conversation(r: ChatRequest) -> list[dict[str, str]]:
        """The chat for one request; a prefix becomes a partial assistant message to continue."""
        messages = [m.model_dump() for m in r.messages]
        if r.prefix:
            messages.append({"role": "assistant", "content": r.prefix})
        return messages

    # -- running ---------------------------------------------------------------------------------

    def _generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        return self._coalescer.submit(requests)

    def _run(self, requests: list[ChatRequest]) -> list[Generation]:
        """One engine call per kind of request (plain chats, chats continuing a prefix)."""
        out: dict[int, Generation] = {}
        for continues in (False, True):
            idx = [i for i, r in enumerate(requests) if bool(r.prefix) == continues]
            if not idx:
                continue
            group = [requests[i] for i in idx]
            for i, gen in zip(idx, self._chat(group, continues)):
                out[i] = gen
        return [out[i] for i in range(len(requests))]

    def _call(self, group: list[ChatRequest], continues: bool) -> list[Any]:
        outputs: list[Any] = self.llm.chat(  # vllm.RequestOutput (vllm is not installed here: untyped)
            [self.conversation(r) for r in group],
            sampling_params=[self.sampling_params(r) for r in group],
            use_tqdm=False,
            add_generation_prompt=not continues,
            continue_final_message=continues,
        )
        return outputs

    def _chat(self, group: list[ChatRequest], continues: bool) -> list[Generation]:
        try:
            outputs = self._call(group, continues)
        except (ValueError, TypeError, RuntimeError) as exc:
            if len(group) == 1:
                return [Generation.failed(group[0].id, f"vllm: {type(exc).__name__}: {exc}")]
            # One bad request (e.g. a prompt over max_model_len) fails the whole call: isolate it.
            return [g for r in group for g in self._chat([r], continues)]
        if len(outputs) != len(group):
            raise BackendError(f"vLLM returned {len(outputs)} outputs for {len(group)} chats")
        return [self._generation(r, o) for r, o in zip(group, outputs)]

    @staticmethod
    def _generation(r: ChatRequest, output: Any) -> Generation:
        completions = getattr(output, "outputs", None) or []
        if not completions:
            return Generation.failed(r.id, "vllm returned no completion")
        c = completions[0]
        finish = getattr(c, "finish_reason", None)
        if finish not in _FINISH:
            return Generation.failed(r.id, f"vllm finished with {finish!r}")
        prompt_ids = getattr(output, "prompt_token_ids", None) or []
        return Generation(
            request_id=r.id,
            text=c.text,
            finish_reason=_FINISH[finish],  # type: ignore[arg-type]
            prompt_tokens=len(prompt_ids),
            completion_tokens=len(getattr(c, "token_ids", None) or []),
        )

    def close(self) -> None:
        self.llm = None
