"""A Hugging Face causal LM through transformers (extra ``[train]``): batched ``generate`` with left padding.

The model is a local folder (``config.json`` + weights), a GGUF file (dequantized by transformers
on load: ``from_pretrained(folder, gguf_file=NAME)``), or a hub id already in the local cache. It
is the raw-runtime baseline in ``benchmarks/bench_backends.py`` and a way to generate with the
exact weights a GRPO run trains.

Requests are grouped by sampling parameters (one ``generate`` call takes one set), sorted by prompt
length so a batch pads little, and cut into batches of ``batch_size``. ``generate`` has one random
stream per call, not one per request: a fixed seed and the same batch give the same text, but a
request's text depends on its batch mates (the llama.cpp backend seeds per request). Stop strings
end a row (``stop_strings``) and are cut from the text.

We call transformers directly rather than distilabel's ``TransformersLLM``: that class runs a
``pipeline("text-generation")`` without a ``batch_size``, i.e. one sequence at a time, and returns
neither finish reasons nor stop-string handling; it would also hide failures of a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import BackendError, MissingExtraError
from ..hashing import content_key
from .base import Backend, ChatRequest, Generation
from .coalesce import Coalescer


def _import_transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError:
        raise MissingExtraError("transformers", "train", "the transformers backend") from None
    return torch, transformers


def resolve_model(model: str) -> tuple[str, str | None]:
    """``(folder or hub id, gguf file name or None)`` for a model argument."""
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise BackendError(f"model file not found: {path}")
        return str(path.parent), path.name
    if path.exists() and not path.is_dir():
        raise BackendError(f"{path} is neither a model folder nor a .gguf file")
    return (str(path) if path.is_dir() else model), None


class TransformersBackend(Backend):
    """Batched generation with a transformers causal LM on CPU (or whatever torch defaults to)."""

    kind = "transformers"
    supports_prefix = True

    def __init__(self, model: str, *, batch_size: int = 32, n_threads: int | None = None, dtype: str = "float32") -> None:
        super().__init__()
        torch, transformers = _import_transformers()
        self._torch = torch
        if n_threads:
            torch.set_num_threads(n_threads)
        folder, gguf = resolve_model(model)
        self.model_name = model
        self.batch_size = batch_size
        kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **kwargs)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                folder, dtype=getattr(torch, dtype), **kwargs
            )
        except (OSError, ValueError) as exc:
            raise BackendError(f"transformers could not load {model!r}: {' '.join(str(exc).split())[:300]}") from None
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not getattr(self.tokenizer, "chat_template", None):
            raise BackendError(f"{model} has no chat template")
        self._eos = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        self._eos |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        self._eos.discard(None)
        # transformers' StopStringCriteria cannot map every tokenizer's vocabulary (it raises for some
        # word-level ones); then rows run to max_tokens and the stop strings are cut afterwards.
        try:
            transformers.StopStringCriteria(self.tokenizer, ["\n"])
            self._stop_strings = True
        except ValueError:
            self._stop_strings = False
        self._coalescer: Coalescer[ChatRequest, Generation] = Coalescer(self._run)

    @classmethod
    def from_config(cls, cfg: Any) -> TransformersBackend:
        return cls(cfg.model, batch_size=cfg.parallel_sequences, n_threads=cfg.n_threads)

    @property
    def model_id(self) -> str:
        return self.model_name

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model_name, "batch_size": self.batch_size}

    def prompt_text(self, r: ChatRequest) -> str:
        text: str = self.tokenizer.apply_chat_template(
            [m.model_dump() for m in r.messages], tokenize=False, add_generation_prompt=True
        )
        return text + (r.prefix or "")

    def _generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        return self._coalescer.submit(requests)

    def _run(self, requests: list[ChatRequest]) -> list[Generation]:
        prompts = [self.prompt_text(r) for r in requests]
        lengths = [len(self.tokenizer(p, add_special_tokens=False).input_ids) for p in prompts]
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.sampling.model_dump_json(), []).append(i)
        out: dict[int, Generation] = {}
        for idx in groups.values():
            idx.sort(key=lambda i: lengths[i])
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                try:
                    gens = self._batch([requests[i] for i in chunk], [prompts[i] for i in chunk])
                except (RuntimeError, ValueError) as exc:  # out of memory, bad inputs: this chunk fails
                    gens = [Generation.failed(requests[i].id, f"transformers: {type(exc).__name__}: {exc}") for i in chunk]
                out.update(zip(chunk, gens))
        return [out[i] for i in range(len(requests))]

    def _batch(self, requests: list[ChatRequest], prompts: list[str]) -> list[Generation]:
        torch = self._torch
        s = requests[0].sampling
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        # One random stream per call: seed it from the batch's request seeds (reproducible batch).
        torch.manual_seed(int(content_key([r.seed for r in requests], length=8), 16))
        kwargs: dict[str, Any] = {
            "max_new_tokens": s.max_tokens,
            "repetition_penalty": s.repeat_penalty,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=40)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if s.stop and self._stop_strings:
            kwargs.update(stop_strings=list(s.stop), tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        gens = []
        for r, tokens, n_prompt in zip(requests, new, prompt_lens):
            n = next((k for k, t in enumerate(tokens) if t in self._eos), None)
            ended = n is not None
            tokens = tokens[:n] if ended else tokens
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            hits = [i for i in (text.find(x) for x in s.stop if x) if i >= 0]
            if hits:
                text, ended = text[: min(hits)], True
                if not self._stop_strings:  # generated past the stop: count what the text keeps
                    tokens = self.tokenizer(text, add_special_tokens=False).input_ids
            gens.append(
                Generation(
                    request_id=r.id,
                    text=text,
                    finish_reason="stop" if ended or len(tokens) < s.max_tokens else "length",
                    prompt_tokens=int(n_prompt),
                    completion_tokens=len(tokens),
                )
            )
        return gens

    def close(self) -> None:
        self.model = None

