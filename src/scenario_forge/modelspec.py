"""One way to name a model, for every command that takes one.

``generate --model``, ``curate``/``mix``/``train``/``eval``/``judge check``'s ``--judge-model``,
``mix --policy-model``, ``train --policy`` and ``eval --model``/``--baseline`` all read a model spec
with :func:`parse_model_spec`; a ``--*backend`` flag, when given, names the backend instead of
inferring it. The table (docs/models.md):

=======================================  =====================================================
spec                                     backend
=======================================  =====================================================
``embedded`` (or nothing)                ``embedded``: the packaged SmolLM2-135M-Instruct GGUF
``fake``, ``fake:NAME``                  ``fake``: deterministic placeholder text (tests)
``KIND:MODEL``                           ``KIND`` (one of :data:`~scenario_forge.config.BackendKind`)
a ``.gguf`` file                         ``llamacpp``
a folder with ``config.json``            ``transformers`` (a Hugging Face model folder)
a model name, with a base URL            ``openai`` (any OpenAI-compatible server)
=======================================  =====================================================

>>> parse_model_spec(None), parse_model_spec("embedded"), parse_model_spec("fake:judge")
(('embedded', None), ('embedded', None), ('fake', 'judge'))
>>> parse_model_spec("vllm:Qwen/Qwen2.5-7B-Instruct"), parse_model_spec("qwen", base_url="http://h:8000/v1")
(('vllm', 'Qwen/Qwen2.5-7B-Instruct'), ('openai', 'qwen'))
>>> parse_model_spec("/models/m.gguf", kind="llamacpp")
('llamacpp', '/models/m.gguf')
>>> parse_model_spec("no/such/model")
Traceback (most recent call last):
...
scenario_forge.errors.ConfigError: model 'no/such/model' not found: give 'embedded', a .gguf file, ...
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from .config import BackendConfig, BackendKind
from .errors import ConfigError

#: Every backend kind, as a ``KIND:MODEL`` spec may name it.
KINDS: tuple[BackendKind, ...] = get_args(BackendKind)
#: Specs that name a backend needing no model.
_BARE: dict[str, tuple[BackendKind, str | None]] = {"embedded": ("embedded", None), "fake": ("fake", "default")}


def parse_model_spec(
    spec: str | None, *, kind: BackendKind | None = None, base_url: str | None = None, role: str = "model"
) -> tuple[BackendKind, str | None]:
    """The backend kind and the model name a spec names (see the module docstring).

    ``kind`` (a ``--*backend`` flag) wins over inference; the embedded backend takes no model name.
    ``role`` names the model in error messages (``policy``, ``judge``).
    """
    if kind is not None:
        if kind == "embedded":
            return "embedded", None
        if kind == "transformers" and spec == "embedded":
            # the embedded weights as the trainer sees them (the dequantized fp32 folder): compares a
            # trained checkpoint with its starting point through the same runtime
            from .training.policy import resolve_policy

            return kind, str(resolve_policy("embedded"))
        return kind, spec
    if spec is None or spec in _BARE:
        if spec is None and base_url:
            return "openai", None  # the server's only model
        return _BARE[spec or "embedded"]
    prefix, sep, rest = spec.partition(":")
    named = next((k for k in KINDS if k == prefix), None) if sep else None
    if named is not None:
        if not rest:
            return _BARE.get(named, (named, None))
        return parse_model_spec(rest, kind=named, base_url=base_url, role=role)
    if base_url:
        return "openai", spec
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ConfigError(f"{role} {path} is a file but not a .gguf model; give a GGUF file or a model folder")
        return "llamacpp", spec
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{role} folder {path} has no config.json (not a Hugging Face model folder)")
        return "transformers", spec
    raise ConfigError(
        f"{role} {spec!r} not found: give 'embedded', a .gguf file, a Hugging Face model folder, "
        "KIND:MODEL (e.g. vllm:Qwen/Qwen2.5-7B-Instruct), or a server model name with a base URL"
    )


def parse_kind(value: str | None, flag: str) -> BackendKind | None:
    """A ``--*-backend`` flag's value as a backend kind (None when not given).

    >>> parse_kind("vllm", "--model-backend"), parse_kind(None, "--model-backend")
    ('vllm', None)
    """
    if value is None:
        return None
    for kind in KINDS:
        if value == kind:
            return kind
    raise ConfigError(f"{flag}: Input should be " + ", ".join(f"'{k}'" for k in KINDS[:-1]) + f" or '{KINDS[-1]}'")


def model_backend_config(
    spec: str,
    *,
    kind: BackendKind | None = None,
    base_url: str | None = None,
    parallel_sequences: int = 16,
    concurrency: int = 8,
) -> BackendConfig:
    """The backend config of a model under evaluation (``eval --model``/``--baseline``)."""
    kind, model = parse_model_spec(spec, kind=kind, base_url=base_url)
    try:
        return BackendConfig(
            kind=kind, model=model, base_url=base_url, parallel_sequences=parallel_sequences, concurrency=concurrency
        )
    except ValueError as exc:
        raise ConfigError(" ".join(str(exc).split())) from None
