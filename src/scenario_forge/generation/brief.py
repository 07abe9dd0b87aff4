"""Stage 1, brief: the situation, what the user wants, what a careful assistant weighs, the trap.

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
from .retry import Reask, ask_with_repair

STAGE = "brief"

#: Field order and the opening each answer starts with.
FIELDS: dict[str, str] = {
    "situation": "The user is",
    "user_goal": "They want the assistant to",
    "key_facts": "A careful assistant must weigh",
    "trap": "The tempting mistake is to",
}


def write_briefs(seeds: Sequence[ScenarioSeed], ctx: StageContext) -> tuple[list[Briefed], list[Reject]]:
    """Write a brief for every seed; seeds whose brief cannot be written become rejects."""
    if ctx.structured:
        return _structured(seeds, ctx)
    written: list[dict[str, str]] = [{} for _ in seeds]
    alive = list(range(len(seeds)))
    rejects: list[Reject] = []
    for field, prefix in FIELDS.items():
        if not alive:
            break

        def make(i: int, attempt: int, field: str = field, prefix: str = prefix) -> ChatRequest:
            return ctx.request(
                seeds[i], f"brief.{field}", attempt, "brief.j2", ctx.sampling.brief,
                prefix=prefix, field=field, written=written[i], retry=attempt > 0,
            )

        def check(i: int, gen: Generation, prefix: str = prefix) -> tuple[str | None, str | Reask | None]:
            checked = clean_sentence(join_prefix(prefix, gen.text or ""), min_words=len(prefix.split()) + 4)
            if checked.reason == "template_residue":  # prompt labels echoed back: worth a re-ask, like a turn
                return None, Reask("template_fragment", "brief field echoes template text")
            return checked.value, checked.reason

        outcomes = ask_with_repair(ctx, STAGE, alive, make, check, reasks=ctx.turn_reasks)
        still: list[int] = []
        for i, outcome in zip(alive, outcomes):
            if outcome.value is None:
                rejects.append(
                    Reject.of(seeds[i], ctx.run_id, STAGE, f"{field}_{outcome.reason}", detail=outcome.detail, raw=outcome.raw)
                )
            else:
                written[i][field] = outcome.value
                still.append(i)
        alive = still
    return [Briefed(seed=seeds[i], brief=Brief(**written[i])) for i in alive], rejects


def _structured(seeds: Sequence[ScenarioSeed], ctx: StageContext) -> tuple[list[Briefed], list[Reject]]:
    schema = Brief.model_json_schema()
    errors: dict[int, str] = {}

    def make(i: int, attempt: int) -> ChatRequest:
        return ctx.request(
            seeds[i], "brief.json", attempt, "brief_json.j2", ctx.sampling.brief_json,
            json_schema=schema, error=errors.get(i, ""),
        )

    def check(i: int, gen: Generation) -> tuple[Brief | None, str | None]:
        value, reason = parse_json_object(gen.text, Brief)
        if reason is not None:
            errors[i] = reason
            return None, "invalid_json"
        assert isinstance(value, Brief)
        fields = {k: clean_sentence(v, min_words=4, max_sentences=3) for k, v in value.model_dump().items()}
        bad = next((f"{k}_{c.reason}" for k, c in fields.items() if not c.ok), None)
        if bad:
            errors[i] = bad
            return None, bad
        return Brief.model_validate({k: c.value for k, c in fields.items()}), None

    outcomes = ask_with_repair(ctx, STAGE, list(range(len(seeds))), make, check)
    kept: list[Briefed] = []
    rejects: list[Reject] = []
    for i, (seed, outcome) in enumerate(zip(seeds, outcomes)):
        if outcome.value is None:
            rejects.append(
                Reject.of(seed, ctx.run_id, STAGE, outcome.reason or "invalid", detail=outcome.detail or errors.get(i, ""), raw=outcome.raw)
            )
        else:
            kept.append(Briefed(seed=seed, brief=outcome.value))
    return kept, rejects
