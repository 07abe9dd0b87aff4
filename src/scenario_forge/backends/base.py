"""Our one narrow interface to model runtimes: a whole stage's batch of chats in, generations out.

Every backend returns exactly one :class:`Generation` per :class:`ChatRequest`, in order. A request
that failed comes back with ``text=None`` and an ``error``: the stage turns it into a reject with
that reason. Nothing is dropped silently; :meth:`Backend.generate` enforces it for every backend.
A failure that makes the whole backend unusable (server down, model missing) raises
:class:`~scenario_forge.errors.BackendError` instead, so the run stops with a clear message and
everything already finished stays on disk.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..config import SamplingParams
from ..redact import redact_optional
from ..records import Message

FinishReason = Literal["stop", "length", "error"]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    messages: list[Message]
    sampling: SamplingParams
    seed: int = Field(default=0, ge=0)
    #: The start of the assistant's reply. Backends that can continue a partial reply
    #: (``supports_prefix``) decode from it and return only the continuation; others ignore it,
    #: and the prompt itself asks for a reply starting with it (see ``join_prefix``).
    prefix: str | None = None
    json_schema: dict[str, Any] | None = None


class Generation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str
    text: str | None
    finish_reason: FinishReason
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    error: str | None = None

    @field_validator("error")
    @classmethod
    def _no_secrets(cls, value: str | None) -> str | None:
        return redact_optional(value)  # server error bodies may echo the API key

    @property
    def ok(self) -> bool:
        return self.text is not None

    @classmethod
    def failed(cls, request_id: str, error: str, retries: int = 0) -> Generation:
        return cls(request_id=request_id, text=None, finish_reason="error", error=error, retries=retries)


class StageUsage(BaseModel):
    """Per-stage accounting, summed over shards into the manifest and the CLI summary.

    ``wall_s`` sums the stage's call times over shards, including shards that ran side by side
    (shard-seconds), so ``tokens_per_s`` is the throughput of one shard stream; the run's overall
    throughput is its completion tokens over ``timings.generation_wall_s``."""

    model_config = ConfigDict(extra="forbid")

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0
    retries: int = 0
    failures: int = 0
    #: Conversation turns asked again because they failed a turn-level lint detector.
    reasks: int = 0
    #: The stage's share of the backend's busy time, times its servers (:mod:`.busy`): server-seconds.
    server_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.wall_s if self.wall_s > 0 else 0.0

    def add(self, generations: Sequence[Generation], wall_s: float, server_s: float = 0.0) -> None:
        self.requests += len(generations)
        self.prompt_tokens += sum(g.prompt_tokens for g in generations)
        self.completion_tokens += sum(g.completion_tokens for g in generations)
        self.retries += sum(g.retries for g in generations)
        self.failures += sum(1 for g in generations if not g.ok)
        self.wall_s += wall_s
        self.server_s += server_s

    def merge(self, other: StageUsage) -> None:
        for field in ("requests", "prompt_tokens", "completion_tokens", "retries", "failures", "reasks"):
            setattr(self, field, getattr(self, field) + getattr(other, field))
        self.wall_s += other.wall_s
        self.server_s += other.server_s

    def summary(self) -> dict[str, float | int]:
        return {**self.model_dump(), "tokens_per_s": round(self.tokens_per_s, 2)}


class Backend(ABC):
    """A model runtime. Subclasses implement :meth:`_generate`; callers use :meth:`generate`."""

    kind: str = "base"
    #: Whether requests may carry ``json_schema`` (schema-constrained decoding).
    supports_json_schema: bool = False
    #: Whether the backend continues ``ChatRequest.prefix`` instead of ignoring it.
    supports_prefix: bool = False
    #: Servers the backend spreads requests over (all busy together): its busy seconds times this
    #: are its server-seconds (see :mod:`.busy`).
    servers: int = 1

    @property
    def auto_json_schema(self) -> bool:
        """Whether ``auto`` choices (``--structured-output auto``, ``--path auto``) take the JSON-schema
        path here: a backend may take schemas yet run a model too small to fill them (the embedded one)."""
        return self.supports_json_schema

    def __init__(self) -> None:
        self.calls = 0  # number of generate() calls (tests count them to check resume)

    @property
    @abstractmethod
    def model_id(self) -> str:
        """What produced the text: a file name with its hash, or a server-side model name."""

    @abstractmethod
    def _generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        """Run a batch; may return results in any order, but one per request id."""

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        """Run a whole batch and return one generation per request, in request order."""
        if not requests:
            return []
        ids = [r.id for r in requests]
        if len(set(ids)) != len(ids):
            raise ValueError("request ids in one batch must be unique")
        self.calls += 1
        results = {g.request_id: g for g in self._generate(requests)}
        return [
            results.get(rid) or Generation.failed(rid, f"{self.kind} backend returned no result")
            for rid in ids
        ]

    def describe(self) -> dict[str, Any]:
        return {"backend": self.kind, "model": self.model_id}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model or connections."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def join_prefix(prefix: str | None, text: str) -> str:
    """The full reply for a request with ``prefix``, whether or not the backend continued it.

    >>> join_prefix("A good answer", " names the risk.")
    'A good answer names the risk.'
    >>> join_prefix("A good answer", "A good answer names the risk.")
    'A good answer names the risk.'
    """
    if not prefix:
        return text.strip()
    stripped = text.strip()
    if stripped.lower().startswith(prefix.lower()):
        return stripped
    sep = "" if text[:1].isspace() or text[:1] in ",.;:!?'" else " "
    return (prefix + sep + text).strip()


def timed_generate(backend: Backend, requests: Sequence[ChatRequest], usage: StageUsage) -> list[Generation]:
    """``backend.generate`` with its wall time, server-seconds and token counts added to ``usage``."""
    from .busy import busy_clock

    clock = busy_clock(backend)
    start = time.perf_counter()
    token = clock.enter(len(requests), now=start)
    try:
        out = backend.generate(requests)
    finally:
        end = time.perf_counter()
        share = clock.leave(token, now=end)
    usage.add(out, end - start, share * backend.servers)
    return out
