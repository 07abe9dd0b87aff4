"""The capable path over one shard: understanding -> ideation -> dedup -> rollout -> rubric.

Every seed ends as one kept :class:`~scenario_forge.records.Scenario` or one
:class:`~scenario_forge.records.Reject` (stage ``understanding``, ``ideation``, ``rollout``,
``rubric`` or ``lint``), so ``planned = kept + rejected`` holds per shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ...backends.base import Backend
from ...config import GenerateConfig
from ...records import Provenance, Reject, Scenario, ScenarioSeed
from .context import CapableContext, Embed
from .ideation import Planned, drop_near_duplicates, ideate
from .replies import Understanding, each
from .rollout import roll_out_one
from .rubric import write_rubric
from .understanding import STAGE as UNDERSTANDING
from .understanding import Cell, understand


def resolve_path(config: GenerateConfig, backend: Backend) -> Literal["capable", "short"]:
    """``--path`` with ``auto`` resolved: capable when the backend takes JSON schemas by default
    (:attr:`~scenario_forge.backends.base.Backend.auto_json_schema`) and ``--structured-output`` is
    ``auto``, else short."""
    if config.path != "auto":
        return config.path
    # auto_json_schema: whether JSON decoding is worth choosing by default (the embedded 135M model
    # can decode to a schema but stays on the short path)
    return "capable" if backend.auto_json_schema and config.backend.structured_output == "auto" else "short"


def idea_embedder(config: GenerateConfig) -> Embed:
    """Curation's sentence embedder (MiniLM by default, cached under ``OUT/.cache/embeddings``),
    loaded on first use only; a missing model folder fails here, before the shard sends a request."""
    from ...curation.embed import check_model_folder, get_embedder

    folder = check_model_folder(config.curation.embedding_model)

    def embed(texts: Sequence[str]) -> np.ndarray:
        return get_embedder(folder, Path(config.out) / ".cache" / "embeddings").embed(texts)

    return embed


def write_capable(
    run: CapableContext, seeds: Sequence[ScenarioSeed], provenance: Provenance
) -> tuple[list[Scenario], list[Reject]]:
    """Generate ``seeds`` on the capable path: the kept scenarios and every reject."""
    rejects: list[Reject] = []
    cells: dict[Cell, list[ScenarioSeed]] = {}
    for seed in seeds:
        cells.setdefault((seed.domain, seed.trait), []).append(seed)

    # understanding: once per cell (cached in the run folder across shards and resumes)
    understood: dict[Cell, Understanding] = {}
    for cell, asked in zip(cells, each(list(cells), lambda c: understand(run, c), run.config.rollout_workers)):
        if asked.value is None:
            reason = asked.reason or "invalid_json"
            rejects += [Reject.of(s, run.ctx.run_id, UNDERSTANDING, reason, detail=asked.detail, raw=asked.raw) for s in cells[cell]]
        else:
            understood[cell] = asked.value

    # ideation: one call per cell (per ideas_per_call seeds), then near-duplicates out before rollout
    size = run.config.ideas_per_call
    calls = [
        (cell, cell_seeds[i : i + size], i // size)
        for cell, cell_seeds in cells.items()
        if cell in understood
        for i in range(0, len(cell_seeds), size)
    ]
    ideas = each(calls, lambda c: ideate(run, c[1], understood[c[0]], c[2]), run.config.rollout_workers)
    drafted = [(seed, idea, cell) for (cell, _, _), (kept, _) in zip(calls, ideas) for seed, idea in kept]
    for _, more in ideas:
        rejects += more
    unique, more = drop_near_duplicates(run, [(seed, idea) for seed, idea, _ in drafted])
    rejects += more
    cell_of = {seed.id: cell for seed, _, cell in drafted}
    planned = [Planned(seed, idea, understood[cell_of[seed.id]]) for seed, idea in unique]

    # rollout then rubric, each scenario on its own: its rubric is asked as soon as its dialogue is done
    scenarios: list[Scenario] = []
    for result in each(planned, lambda p: _finish(run, p, provenance), run.config.rollout_workers):
        if isinstance(result, Reject):
            rejects.append(result)
        else:
            scenarios.append(result)
    order = {s.id: s.index for s in seeds}
    scenarios.sort(key=lambda s: order[s.id])
    rejects.sort(key=lambda r: order[r.id])
    return scenarios, rejects


def _finish(run: CapableContext, planned: Planned, provenance: Provenance) -> Scenario | Reject:
    dialogue = roll_out_one(run, planned)
    return dialogue if isinstance(dialogue, Reject) else write_rubric(run, planned, dialogue, provenance)
