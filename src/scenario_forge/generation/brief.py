"""Stage 1, brief: the situation, what the user wants, what a careful assistant weighs, the trap.

Each seed's brief is its own sequence of requests (:func:`brief_steps`, :mod:`.schedule`).
Plain-text path (any backend): one short request per field, each conditioned on the fields
already written and, where the backend can continue a partial reply, started with a fixed opening
(``The user is ...``) so even a 135M model stays on task. Structured path (backends with JSON
schema support): one request for the whole brief, validated with pydantic.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..backends.base import ChatRequest, Generation, join_prefix
from ..records import Brief, Briefed, Reject, ScenarioSeed
from .context import StageContext
from .formats import clean_sentence, parse_json_object
from .retry import Reask, ask_one
from .schedule import Steps, each, split

STAGE = "brief"

#: Field order and the opening each answer starts with.
FIELDS: dict[str, str] = {
    "situation": "The user is",
    "user_goal": "They want the assistant to",
    "key_facts": "A careful assistant must weigh",
    "trap": "The tempting mistake is to",
}


def write_briefs(seeds: Sequence[ScenarioSeed], ctx: StageContext) -> tuple[list[Briefed], list[Reject]]:
    """Write a brief for every seed (each seed on its own, :mod:`.schedule`); seeds whose brief
    cannot be written become rejects."""
    return split(each(ctx, seeds, lambda seed: brief_steps(seed, ctx)), Briefed)


def brief_steps(seed: ScenarioSeed, ctx: StageContext) -> Steps[Briefed | Reject]:
    """One seed's brief, field after field (or one JSON request), or its reject."""
    if ctx.structured:
        return (yield from _structured(seed, ctx))
    written: dict[str, str] = {}
    for field, prefix in FIELDS.items():

        def make(attempt: int, field: str = field, prefix: str = prefix) -> ChatRequest:
            return ctx.request(
                seed, f"brief.{field}", attempt, "brief.j2", ctx.sampling.brief,
                prefix=prefix, field=field, written=written, retry=attempt > 0,
            )

        def check(gen: Generation, prefix: str = prefix) -> tuple[str | None, str | Reask | None]:
            checked = clean_sentence(join_prefix(prefix, gen.text or ""), min_words=len(prefix.split()) + 4)
            if checked.reason == "template_residue":  # prompt labels echoed back: worth a re-ask, like a turn
                return None, Reask("template_fragment", "brief field echoes template text")
            return checked.value, checked.reason

        outcome = yield from ask_one(ctx, STAGE, make, check, reasks=ctx.turn_reasks)
        if outcome.value is None:
            return Reject.of(seed, ctx.run_id, STAGE, f"{field}_{outcome.reason}", detail=outcome.detail, raw=outcome.raw)
        written[field] = outcome.value
    return Briefed(seed=seed, brief=Brief(**written))


def _structured(seed: ScenarioSeed, ctx: StageContext) -> Steps[Briefed | Reject]:
    schema = Brief.model_json_schema()
    error = ""

    def make(attempt: int) -> ChatRequest:
        return ctx.request(
            seed, "brief.json", attempt, "brief_json.j2", ctx.sampling.brief_json,
            json_schema=schema, error=error,
        )

    def check(gen: Generation) -> tuple[Brief | None, str | None]:
        nonlocal error
        value, reason = parse_json_object(gen.text, Brief)
        if reason is not None:
            error = reason
            return None, "invalid_json"
        assert isinstance(value, Brief)
        fields = {k: clean_sentence(v, min_words=4, max_sentences=3) for k, v in value.model_dump().items()}
        bad = next((f"{k}_{c.reason}" for k, c in fields.items() if not c.ok), None)
        if bad:
            error = bad
            return None, bad
        return Brief.model_validate({k: c.value for k, c in fields.items()}), None

    outcome = yield from ask_one(ctx, STAGE, make, check)
    if outcome.value is None:
        return Reject.of(seed, ctx.run_id, STAGE, outcome.reason or "invalid", detail=outcome.detail or error, raw=outcome.raw)
    return Briefed(seed=seed, brief=outcome.value)
