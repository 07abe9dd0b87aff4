"""Any distilabel LLM class behind our backend interface (optional extra ``[distilabel]``).

``--backend distilabel --llm CLASS --llm-kwargs JSON`` builds ``CLASS(**kwargs)`` and calls its
``load()`` once; each stage batch then goes to ``generate_outputs`` (one call per distinct sampling,
so distilabel's own batching or async concurrency sees the whole batch). ``CLASS`` is a short name
exported by ``distilabel.models.llms`` (``LlamaCppLLM``, ``OpenAILLM``, ``vLLM``,
``InferenceEndpointsLLM``, ``AnthropicLLM``, ...; distilabel 1.5 layout, with the older
``distilabel.llms`` as a fallback) or an import path (``package.module.Class`` or
``package.module:Class``) naming a subclass of ``distilabel.models.llms.LLM``.

Our sampling reaches the class under the names its ``generate`` (``agenerate`` for async classes)
accepts: ``max_new_tokens``, ``temperature``, ``top_p``, and ``stop``/``repetition_penalty`` where
taken; ``LlamaCppLLM`` takes the stop strings, repeat penalty and seed through
``extra_generation_kwargs``. distilabel has no per-request seed or partial-reply continuation, so
``supports_prefix`` and ``supports_json_schema`` are false (the prompts ask for the prefix instead).

A ``None`` generation (how distilabel reports a failed request) or a raised error is a
``Generation.failed`` with its reason, never a dropped row: a batch that raises is re-run request by
request so only the requests that fail are rejected. The class and its arguments are checked when the
config is built (:func:`check_llm`), before any model loads.

>>> split_class_path("LlamaCppLLM"), split_class_path("my_pkg.llms:MyLLM"), split_class_path("a.b.C")
((None, 'LlamaCppLLM'), ('my_pkg.llms', 'MyLLM'), ('a.b', 'C'))
"""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config import BackendConfig, SamplingParams
from ..errors import BackendError, ConfigError, MissingExtraError
from ..hashing import canonical_json, file_digest
from ..redact import is_secret
from .base import Backend, ChatRequest, Generation
from .coalesce import Coalescer

#: Where short class names are looked up, in order (distilabel 1.5 first, then its pre-1.5 alias).
SHORT_NAME_MODULES = ("distilabel.models.llms", "distilabel.llms")


def split_class_path(name: str) -> tuple[str | None, str]:
    """``(module, class)`` of an ``--llm`` value; module None for a short name."""
    if ":" in name:
        module, _, cls = name.partition(":")
        return module, cls
    module, dot, cls = name.rpartition(".")
    return (module, cls) if dot else (None, name)


def _base_class() -> type[Any]:
    try:
        with warnings.catch_warnings():  # distilabel's own pydantic models warn on import
            warnings.simplefilter("ignore")
            from distilabel.models.llms.base import LLM
    except ImportError:
        raise MissingExtraError("distilabel", "distilabel", "the distilabel backend") from None
    base: type[Any] = LLM
    return base


@functools.lru_cache(maxsize=32)
def resolve_llm_class(name: str) -> type[Any]:
    """The distilabel LLM class ``name`` names (a short name or an import path).

    Raises :class:`ConfigError` for a missing class or one that is not a distilabel LLM, and
    :class:`MissingExtraError` when distilabel is not installed."""
    base = _base_class()
    module_name, cls_name = split_class_path(name.strip())
    modules = (module_name,) if module_name else SHORT_NAME_MODULES
    found: Any = None
    for mod in modules:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(mod)
        except ImportError as exc:
            if module_name:
                raise ConfigError(f"distilabel LLM {name!r}: cannot import {mod!r} ({exc})") from None
            continue
        found = getattr(module, cls_name, None)
        if found is not None:
            break
    if found is None:
        where = module_name or " or ".join(SHORT_NAME_MODULES)
        raise ConfigError(
            f"distilabel LLM {name!r} not found in {where}: give a class such as LlamaCppLLM or OpenAILLM, "
            "or an import path package.module.Class"
        )
    if not (isinstance(found, type) and issubclass(found, base)):
        raise ConfigError(f"{name!r} is not a distilabel LLM class (a subclass of distilabel.models.llms.LLM)")
    if inspect.isabstract(found):
        raise ConfigError(f"{name!r} is an abstract distilabel class; name a concrete LLM such as LlamaCppLLM")
    return found


def class_path(cls: type[Any]) -> str:
    """``module.Class``: what the manifest and the run identity record."""
    return f"{cls.__module__}.{cls.__qualname__}"


def build_llm(name: str, kwargs: dict[str, Any]) -> Any:
    """``CLASS(**kwargs)``, not loaded: argument errors surface here, before any model loads."""
    cls = resolve_llm_class(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(**kwargs)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{cls.__name__}: {problems}") from None
    except Exception as exc:  # noqa: BLE001 - the class's own check, as one line
        raise ConfigError(f"{cls.__name__}: {type(exc).__name__}: {exc}") from None


def check_llm(name: str, kwargs: dict[str, Any]) -> None:
    """Check the class and its arguments without loading anything; credentials are refused (the
    config, ``llm_kwargs`` included, is written to the run's manifest)."""
    secrets = sorted(key for key, value in kwargs.items() if is_secret(key) and value is not None)
    if secrets:
        raise ConfigError(
            f"{', '.join(secrets)}: pass credentials through the environment variable the class reads "
            "(e.g. OPENAI_API_KEY, ANTHROPIC_API_KEY, HF_TOKEN), not --llm-kwargs: the config is written to manifest.json"
        )
    build_llm(name, kwargs)


def distilabel_identity(name: str, kwargs: dict[str, Any]) -> str:
    """The run identity: class path and arguments (a model file by name and hash; secrets left out).

    >>> distilabel_identity("LlamaCppLLM", {"model_path": "/no/such.gguf", "n_ctx": 2048, "api_key": None})
    'distilabel:LlamaCppLLM{"model_path":"/no/such.gguf","n_ctx":2048}'
    """
    shown: dict[str, Any] = {}
    for key, value in sorted(kwargs.items()):
        if is_secret(key):
            continue
        if isinstance(value, str) and Path(value).expanduser().is_file():
            path = Path(value).expanduser()
            value = f"{path.name}@sha256:{file_digest(path)}"
        shown[key] = value
    return f"distilabel:{split_class_path(name)[1]}{canonical_json(shown)}"


def generation_kwargs(params: set[str], s: SamplingParams, seed: int) -> dict[str, Any]:
    """Our sampling under the names a distilabel ``generate`` signature (``params``) accepts.

    >>> sp = SamplingParams(temperature=0.5, top_p=0.9, max_tokens=64, repeat_penalty=1.1, stop=["\\n\\n"])
    >>> generation_kwargs({"max_new_tokens", "temperature", "top_p", "stop"}, sp, 7)
    {'max_new_tokens': 64, 'temperature': 0.5, 'top_p': 0.9, 'stop': ['\\n\\n']}
    >>> generation_kwargs({"max_new_tokens", "extra_generation_kwargs"}, sp, 7)["extra_generation_kwargs"]
    {'stop': ['\\n\\n'], 'repeat_penalty': 1.1, 'seed': 7}
    """
    wanted: dict[str, Any] = {
        "max_new_tokens": s.max_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "stop": list(s.stop) or None,
        "repetition_penalty": s.repeat_penalty,
    }
    out = {k: v for k, v in wanted.items() if k in params and v is not None}
    if "extra_generation_kwargs" in params:  # LlamaCppLLM: llama_cpp's create_chat_completion names
        extra: dict[str, Any] = {"repeat_penalty": s.repeat_penalty, "seed": seed}
        if s.stop:
            extra = {"stop": list(s.stop), **extra}
        out["extra_generation_kwargs"] = extra
    return out


def _generate_params(llm: Any) -> set[str]:
    method = llm.agenerate if hasattr(llm, "agenerate") else llm.generate
    return set(inspect.signature(method).parameters)


class DistilabelBackend(Backend):
    """A loaded distilabel LLM; concurrent shard batches are merged into one call (see coalesce)."""

    kind = "distilabel"

    def __init__(self, llm: Any, identity: str) -> None:
        super().__init__()
        self.llm = llm
        self.identity = identity
        self._params = _generate_params(llm)
        self._coalescer: Coalescer[ChatRequest, Generation] = Coalescer(self._run)

    @classmethod
    def from_config(cls, cfg: BackendConfig) -> DistilabelBackend:
        if not cfg.llm:
            raise ConfigError("the distilabel backend needs --llm CLASS")
        llm = build_llm(cfg.llm, cfg.llm_kwargs)
        try:
            llm.load()
        except Exception as exc:  # noqa: BLE001 - any library's load failure, as one line
            raise BackendError(f"distilabel {type(llm).__name__} could not load: {type(exc).__name__}: {exc}") from None
        return cls(llm, distilabel_identity(cfg.llm, cfg.llm_kwargs))

    @property
    def model_id(self) -> str:
        return self.identity

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.identity, "llm": class_path(type(self.llm))}

    def _generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        return self._coalescer.submit(list(requests))

    def _run(self, requests: list[ChatRequest]) -> list[Generation]:
        """One ``generate_outputs`` call per distinct sampling (a stage batch shares one); per
        distinct seed too where the class takes one (``extra_generation_kwargs``), so a request's
        text does not depend on which other requests shared its batch."""
        seeded = "extra_generation_kwargs" in self._params
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            key = canonical_json([r.sampling.model_dump(mode="json"), r.seed if seeded else None])
            groups.setdefault(key, []).append(i)
        out: dict[int, Generation] = {}
        for idx in groups.values():
            for i, gen in zip(idx, self._call([requests[i] for i in idx])):
                out[i] = gen
        return [out[i] for i in range(len(requests))]

    def _call(self, group: list[ChatRequest]) -> list[Generation]:
        kwargs = generation_kwargs(self._params, group[0].sampling, group[0].seed)
        try:
            outputs = self.llm.generate_outputs(
                inputs=[[m.model_dump() for m in r.messages] for r in group], num_generations=1, **kwargs
            )
        except Exception as exc:  # noqa: BLE001 - a library's error is a reject with its reason
            if len(group) == 1:
                return [Generation.failed(group[0].id, f"distilabel: {type(exc).__name__}: {exc}")]
            return [g for r in group for g in self._call([r])]  # isolate the request that raises
        if not isinstance(outputs, list) or len(outputs) != len(group):
            got = len(outputs) if isinstance(outputs, list) else type(outputs).__name__
            raise BackendError(f"distilabel {type(self.llm).__name__} returned {got} outputs for {len(group)} chats")
        return [self._generation(r, o) for r, o in zip(group, outputs)]

    @staticmethod
    def _generation(r: ChatRequest, output: Any) -> Generation:
        generations = output.get("generations") if isinstance(output, dict) else None
        text = generations[0] if generations else None
        if not isinstance(text, str):
            return Generation.failed(r.id, "distilabel returned no generation (None)")
        stats = output.get("statistics") or {}

        def first(key: str) -> int:
            values = stats.get(key) or []
            return int(values[0]) if values and values[0] is not None else 0

        completion = first("output_tokens")
        return Generation(
            request_id=r.id,
            text=text,
            # distilabel does not pass the finish reason on: a reply that used its whole budget was cut
            finish_reason="length" if completion >= r.sampling.max_tokens else "stop",
            prompt_tokens=first("input_tokens"),
            completion_tokens=completion,
        )

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            try:
                llm.unload()
            except Exception:  # noqa: BLE001, S110 - closing must not fail a finished run
                pass
