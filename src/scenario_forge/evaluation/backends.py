"""Loading the backend that answers or judges, and a reachability probe.

A judge is probed with one tiny request before any work starts, so an unreachable server fails in
one line instead of after an hour of generation. Model specs are read by :mod:`scenario_forge.modelspec`.
"""

from __future__ import annotations

from ..backends.base import Backend, ChatRequest
from ..backends.factory import get_backend
from ..config import BackendConfig, SamplingParams
from ..errors import BackendError, ForgeError
from ..records import Message

_PROBE = ChatRequest(
    id="probe",
    messages=[Message(role="user", content="Reply with the single word YES.")],
    sampling=SamplingParams(temperature=0.0, max_tokens=2, repeat_penalty=1.0),
)


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
