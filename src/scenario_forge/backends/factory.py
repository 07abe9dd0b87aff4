"""Build a backend from its config; one loaded backend per config per process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import BackendConfig
from ..errors import BackendError
from ..hashing import canonical_json, file_digest, weights_digest
from .base import Backend

_CACHE: dict[str, Backend] = {}
_LOCK = threading.Lock()


def backend_identity(cfg: BackendConfig) -> str:
    """What will produce the text, known without loading anything (for shard keys and run ids)."""
    if cfg.kind == "embedded":
        from .embedded import embedded_model_path

        path = embedded_model_path()
        return f"embedded:{path.name}@sha256:{file_digest(path)}"
    if cfg.kind == "llamacpp":
        path = Path(cfg.model or "")
        if not path.is_file():
            raise BackendError(f"model file not found: {path}")
        return f"llamacpp:{path.name}@sha256:{file_digest(path)}"
    if cfg.kind == "fake":
        return f"fake:{cfg.model or 'default'}"
    if cfg.kind == "openai":
        # The served model's name is the identity: a server restarted on another address still
        # resumes the run. Without --model, the server's only model (or the error the backend gives).
        if cfg.model:
            return f"openai:{cfg.model}"
        from .openai_compat import served_model

        # Never a fallback to the URL: a slow answer would silently start a different run.
        # Several servers: each must serve the one model (the URLs are not part of the identity).
        served = {url: served_model(url, cfg.api_key_env) for url in cfg.servers or [""]}
        if len(set(served.values())) > 1:
            raise BackendError(
                "the --base-url servers serve different models ("
                + ", ".join(f"{url}: {m}" for url, m in served.items()) + "); give --model or servers of one model"
            )
        return f"openai:{next(iter(served.values()))}"
    if cfg.kind == "transformers":
        return f"transformers:{local_model_identity(cfg.model or '')}"
    if cfg.kind == "distilabel":
        from .distilabel_backend import distilabel_identity

        return distilabel_identity(cfg.llm or "", cfg.llm_kwargs)
    if cfg.kind == "vllm" and (cfg.max_model_len is not None or cfg.engine_kwargs):
        # the engine's own settings (revision, dtype, quantization, ...) change what it generates
        engine = {"max_model_len": cfg.max_model_len, **cfg.engine_kwargs}
        return f"vllm:{cfg.model}:{canonical_json(engine)}"
    return f"{cfg.kind}:{cfg.model}"


def local_model_identity(model: str) -> str:
    """A GGUF file's name and hash, a model folder's name and a hash of its config and weights (a
    folder retrained in place is another model), or the hub id as given."""
    path = Path(model).expanduser()
    if path.is_file():
        return f"{path.name}@sha256:{file_digest(path)}"
    if path.is_dir():
        return f"{path.name}@sha256:{weights_digest(path)}"
    return model


def make_backend(cfg: BackendConfig) -> Backend:
    """Load a fresh backend for ``cfg`` (errors name what is missing and how to fix it)."""
    if cfg.kind in ("embedded", "llamacpp"):
        from .embedded import converted_gguf, embedded_model_path
        from .llamacpp import LlamaCppBackend

        if cfg.kind == "embedded":
            path = converted_gguf(embedded_model_path(), "f16")
        else:
            path = Path(cfg.model or "")
        return LlamaCppBackend(
            path,
            parallel=cfg.parallel_sequences,
            n_ctx_per_seq=cfg.n_ctx,
            n_threads=cfg.n_threads,
            kind=cfg.kind,
            json_schema=cfg.structured_output == "auto",
        )
    if cfg.kind == "fake":
        from .fake import FakeBackend

        return FakeBackend.from_spec(cfg.model)
    if cfg.kind == "openai":
        from .openai_compat import OpenAIBackend

        return OpenAIBackend.from_config(cfg)
    if cfg.kind == "vllm":
        from .vllm_backend import VLLMBackend

        return VLLMBackend.from_config(cfg)
    if cfg.kind == "transformers":
        from .transformers_backend import TransformersBackend

        return TransformersBackend.from_config(cfg)
    if cfg.kind == "distilabel":
        from .distilabel_backend import DistilabelBackend

        return DistilabelBackend.from_config(cfg)
    raise BackendError(f"unknown backend {cfg.kind!r}")


def get_backend(cfg: BackendConfig) -> Backend:
    """The process-wide backend for ``cfg``: a model is loaded once per worker, not per shard."""
    key = canonical_json(cfg)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = make_backend(cfg)
        return _CACHE[key]


@contextmanager
def use_backend(cfg: BackendConfig, backend: Backend) -> Iterator[Backend]:
    """Serve ``backend`` for ``cfg`` inside the block (tests inject fakes this way)."""
    key = canonical_json(cfg)
    with _LOCK:
        previous = _CACHE.get(key)
        _CACHE[key] = backend
    try:
        yield backend
    finally:
        with _LOCK:
            if previous is None:
                _CACHE.pop(key, None)
            else:
                _CACHE[key] = previous


def close_backends() -> None:
    with _LOCK:
        for backend in _CACHE.values():
            backend.close()
        _CACHE.clear()
