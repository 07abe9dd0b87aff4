"""Understanding: once per (domain, trait) cell, what the trait demands there, what failure looks
like and the concrete stakes. Cached in the run folder (``.cache/understanding/KEY.json``, the key
a hash of model, template and cell), so every shard of a run, and a resumed run, reuses it."""

from __future__ import annotations

from pathlib import Path

from ...atomic import atomic_write_text
from ...backends.base import ChatRequest
from ...hashing import content_key
from .context import CapableContext
from .replies import Asked, Understanding, ask_json, build_request, schema_of

STAGE = "understanding"
TEMPLATE = "capable_understanding.j2"

Cell = tuple[str, str]  # (domain id, trait id)


def cache_path(run: CapableContext, cell: Cell) -> Path:
    """Where a cell's understanding is kept: keyed by model, template, cell and sampling."""
    ctx = run.ctx
    key = content_key(
        ctx.backend.model_id, ctx.prompts.hashes.get(TEMPLATE, ""), list(cell), ctx.taxonomy.name,
        ctx.taxonomy.version, run.config.sampling.understanding.model_dump(),
    )
    return run.cache_dir / "understanding" / f"{cell[0]}-{cell[1]}-{key[:16]}.json"


def understand(run: CapableContext, cell: Cell) -> Asked[Understanding]:
    """The cell's understanding from the cache, or asked for (and cached when valid)."""
    ctx = run.ctx
    path = cache_path(run, cell)
    if path.is_file():
        try:
            return Asked(Understanding.model_validate_json(path.read_text(encoding="utf-8")))
        except ValueError:
            pass  # a damaged cache entry only costs asking again
    domain, trait = ctx.taxonomy.domain(cell[0]), ctx.taxonomy.trait(cell[1])

    def make(attempt: int, error: str) -> ChatRequest:
        messages = ctx.prompts.render(TEMPLATE, domain=domain, trait=trait, error=error)
        return build_request(
            ctx, f"cell:{cell[0]}:{cell[1]}:capable.understanding:{attempt}", cell,
            run.config.sampling.understanding, messages, json_schema=schema_of(Understanding),
        )

    asked = ask_json(ctx, STAGE, Understanding, make, retries=run.retries)
    if asked.value is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, asked.value.model_dump_json(indent=2))
    return asked
