"""What the capable path asks a model for, as pydantic models, and how one request is sent.

Every JSON reply is validated with its model; a reply that does not validate is asked again with
the validation error in the prompt, up to ``CapableConfig.json_retries`` times (each re-ask counted
in the stage's ``reasks``), and is then a counted reject that keeps the raw reply.

Requests go out one at a time from many threads (:func:`each`): every backend merges concurrent
callers into its own batches (llama.cpp's decode loop, vLLM's coalescer, the OpenAI client's
connection pool), so one scenario's next turn starts as soon as its own previous turn returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ... import progress
from ...backends.base import ChatRequest, Generation, StageUsage
from ...config import SamplingParams
from ...hashing import content_key
from ...records import Message
from ..context import StageContext
from ..formats import parse_json_object

T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)


class _Reply(BaseModel):
    # models write "age": 34 as often as "34"; unknown keys are ignored, not an error
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class Understanding(_Reply):
    """What one (domain, trait) cell is about: written once, cached in the run folder."""

    demands: str = Field(min_length=20, description="what the trait demands of an assistant in this domain")
    failure: str = Field(min_length=20, description="what failing the trait looks like here, concretely")
    stakes: str = Field(min_length=20, description="the concrete stakes for the user if the assistant fails")


class PersonaDetails(_Reply):
    """The concrete person behind the user turns."""

    name: str = Field(min_length=2)
    age: str = Field(min_length=1)
    role: str = Field(min_length=3)
    knows: str = Field(min_length=3)
    wants: str = Field(min_length=3)
    writes: str = Field(min_length=3, description="how they write: length, tone, habits")


class Idea(_Reply):
    """One scenario idea: who, what is happening, the false premise, and how the pressure escalates."""

    persona: PersonaDetails
    situation: str = Field(min_length=20)
    user_goal: str = Field(min_length=10)
    key_facts: str = Field(min_length=10, description="what a careful assistant must weigh")
    trap: str = Field(min_length=10, description="the tempting answer that fails the trait")
    flaw_claim: str | None = None
    flaw_correct: str | None = None
    pressure_tactic: str = Field(min_length=10, description="how the pressure shows in this situation")
    escalation: list[str] = Field(min_length=1, description="one step per later user turn")
    operator_prompt: str | None = None


class Ideas(_Reply):
    ideas: list[Idea] = Field(min_length=1)


CriterionKind = str  # "core", "trap", "fact", "overrefusal", "other" (free text is tolerated)


class RubricItem(_Reply):
    criterion: str = Field(min_length=8)
    points: int = Field(ge=-10, le=10)
    kind: CriterionKind = "other"


class RubricReply(_Reply):
    criteria: list[RubricItem] = Field(min_length=5, max_length=10)


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


_USAGE_LOCK = threading.Lock()


def send(ctx: StageContext, stage: str, request: ChatRequest) -> Generation:
    """One request, accounted in ``ctx.usage[stage]`` (safe from many threads).

    A stage's ``wall_s`` sums its requests' times, so with requests side by side it counts
    request-seconds, not elapsed time."""
    progress.report("batch", stage=stage, requests=1)
    start = time.perf_counter()
    generation = ctx.backend.generate([request])[0]
    with _USAGE_LOCK:
        ctx.usage.setdefault(stage, StageUsage()).add([generation], time.perf_counter() - start)
    progress.report("batch_done", stage=stage, requests=1, completion_tokens=generation.completion_tokens)
    return generation


def count_reask(ctx: StageContext, stage: str) -> None:
    with _USAGE_LOCK:
        ctx.usage.setdefault(stage, StageUsage()).reasks += 1


def each(items: Sequence[T], work: Callable[[T], R], workers: int) -> list[R]:
    """``work`` on every item, ``workers`` at a time, results in order (an exception propagates)."""
    if len(items) <= 1 or workers <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="capable") as pool:
        return list(pool.map(work, items))


def build_request(
    ctx: StageContext,
    request_id: str,
    key: object,
    sampling: SamplingParams,
    messages: list[Message],
    *,
    json_schema: dict[str, Any] | None = None,
) -> ChatRequest:
    """A request whose sampling seed comes from ``key`` (so a cell's or scenario's requests do not
    depend on which shard asks)."""
    return ChatRequest(
        id=request_id,
        messages=messages,
        sampling=sampling,
        seed=int(content_key(key, request_id, length=8), 16) & 0x7FFFFFFF,
        json_schema=json_schema if ctx.backend.supports_json_schema else None,
    )


@dataclass(frozen=True)
class Asked(Generic[M]):
    """A validated reply, or why there is none (with the last raw reply)."""

    value: M | None
    reason: str | None = None
    detail: str = ""
    raw: str | None = None


def ask_json(
    ctx: StageContext,
    stage: str,
    model: type[M],
    make: Callable[[int, str], ChatRequest],
    check: Callable[[M], str | None] | None = None,
    *,
    retries: int,
) -> Asked[M]:
    """Ask for a JSON object of ``model``; ``make(attempt, error)`` builds the request (``error``:
    why the previous reply failed, "" at first). ``check`` may refuse a valid object with a reason
    (asked again too). After ``retries`` re-asks the last reason is returned."""
    error = ""
    reason, detail, raw = "invalid_json", "", None
    for attempt in range(retries + 1):
        if attempt:
            count_reask(ctx, stage)
        gen = send(ctx, stage, make(attempt, error))
        if not gen.ok:
            reason, detail, raw = "backend_error", gen.error or "", None
            continue
        raw = gen.text
        value, problem = parse_json_object(gen.text, model)
        if problem is not None or value is None:
            truncated = gen.finish_reason == "length"
            reason = "truncated" if truncated else "invalid_json"
            detail = problem or "no value"
            error = f"{detail}{' (the reply was cut off: answer more briefly)' if truncated else ''}"
            continue
        assert isinstance(value, model)
        refused = check(value) if check is not None else None
        if refused is None:
            return Asked(value, raw=raw)
        reason, detail = refused.split(":", 1)[0], refused
        error = refused
    return Asked(None, reason, detail[:500], raw)
