"""Which backend answers or judges: model specs on the command line, and a reachability probe.

``--model`` takes ``embedded``, a ``.gguf`` file (llama.cpp), a Hugging Face model folder (e.g. a
trained checkpoint; transformers), or a server's model name with ``--base-url`` (any
OpenAI-compatible server, e.g. ``vllm serve``). A judge is probed with one tiny request before any
work starts, so an unreachable server fails in one line instead of after an hour of generation.
"""

from __future__ import annotations

from pathlib import Path

from ..backends.base import Backend, ChatRequest
from ..backends.factory import get_backend
from ..config import BackendConfig, BackendKind, SamplingParams
from ..errors import BackendError, ConfigError, ForgeError
from ..records import Message

_PROBE = ChatRequest(
    id="probe",
    messages=[Message(role="user", content="Reply with the single word YES.")],
    sampling=SamplingParams(temperature=0.0, max_tokens=2, repeat_penalty=1.0),
)


def model_backend_config(
    spec: str,
    *,
    kind: BackendKind | None = None,
    base_url: str | None = None,
    parallel_sequences: int = 16,
    concurrency: int = 8,
) -> BackendConfig:
    """The backend config a ``--model``/``--baseline`` spec names (see the module docstring)."""
    if kind is None:
        path = Path(spec).expanduser()
        if spec == "embedded":
            kind = "embedded"
        elif spec == "fake" or spec.startswith("fake:"):
            kind, spec = "fake", spec.partition(":")[2] or "default"
        elif base_url:
            kind = "openai"
        elif path.is_file() and path.suffix.lower() == ".gguf":
            kind = "llamacpp"
        elif path.is_dir() and (path / "config.json").is_file():
            kind = "transformers"
        elif path.is_dir():
            raise ConfigError(f"model folder {path} has no config.json (not a Hugging Face model folder)")
        else:
            raise ConfigError(
                f"model {spec!r} not found: give 'embedded', a .gguf file, a Hugging Face model folder, "
                "or a server model name with --base-url"
            )
    if kind == "transformers" and spec == "embedded":
        # the embedded model's weights as the trainer sees them (dequantized fp32 folder): compares a
        # trained checkpoint with its starting point through the same runtime
        from ..training.policy import resolve_policy

        spec = str(resolve_policy("embedded"))
    model = None if kind == "embedded" else spec
    try:
        return BackendConfig(
            kind=kind,
            model=model,
            base_url=base_url,
            parallel_sequences=parallel_sequences,
            concurrency=concurrency,
        )
    except ValueError as exc:
        raise ConfigError(" ".join(str(exc).split())) from None


def load_backend(cfg: BackendConfig) -> Backend:
    """``get_backend(cfg)``; any load failure becomes a one-line :class:`BackendError`."""
    try:
        return get_backend(cfg)
    except ForgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported in one line
        raise BackendError(f"cannot load the {cfg.kind} backend ({cfg.model or 'default'}): {type(exc).__name__}: {exc}") from None


def connect(cfg: BackendConfig, role: str) -> Backend:
    """Load ``cfg`` and send it one tiny request; a one-line :class:`BackendError` if it fails."""
    try:
        backend = load_backend(cfg)
    except BackendError as exc:
        raise BackendError(f"{role} backend: {exc}") from None
    (gen,) = backend.generate([_PROBE])
    if not gen.ok:
        where = cfg.base_url or cfg.model or cfg.kind
        raise BackendError(f"{role} backend {cfg.kind} at {where} is unreachable or failing: {gen.error}")
    return backend


def infer_kind(model: str | None, base_url: str | None) -> BackendKind:
    """The backend a judge/model flag set implies when ``--*-backend`` is not given."""
    if base_url:
        return "openai"
    path = Path(model).expanduser() if model else None
    if path is not None and path.is_file() and path.suffix.lower() == ".gguf":
        return "llamacpp"
    if path is not None and path.is_dir():
        return "transformers"
    return "embedded"
