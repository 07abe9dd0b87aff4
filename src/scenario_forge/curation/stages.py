"""The curation stages, each a plain function from a :class:`Batch` to the next.

A batch holds the candidates of one curation job (one run during ``generate``; one or more runs
for ``scenario-forge curate``), the rows dropped so far with their reasons, and what each stage
cost. The order is cheap to expensive: gates (no model) -> quality judge -> sign checks -> embed ->
near-duplicates. The judge runs before dedup because the keep-one policy prefers the higher
judge score. :data:`CURATION_STEPS` is the one declaration of that order: ``curate`` runs it between
loading and writing the runs, ``generate`` between merging its shards and writing the run, each with
the direct runner or as Prefect tasks of the same names (see :mod:`scenario_forge.steps`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import progress
from ..backends.base import StageUsage
from ..backends.factory import get_backend
from ..config import BackendConfig, CurationConfig
from ..manifest import DEDUP_STAGE
from ..prompts import PromptSet
from ..records import Reject, Scenario
from ..steps import Step, run_steps
from .cache import CachedBackend
from .dedup import components, keep_one, near_duplicate_pairs, nearest_neighbour_similarity, uses_flat
from .embed import get_embedder, scenario_text
from .gates import apply_gates
from .index import StoreIndex
from .judge import TEMPLATE as JUDGE_TEMPLATE
from .judge import apply_judge
from .signs import apply_sign_checks

#: Usage keys curation writes into a manifest (a re-curation replaces exactly these).
USAGE_KEYS = ("judge", "sign_check", "embed")
POLICY = (
    "visit candidates by higher judge score (unscored last), then earlier run on the command line, then lower "
    "plan index, then lower id; keep one unless it is a near-duplicate of one already kept"
)
NEAR_DUPLICATE = "near_duplicate"
NEAR_DUPLICATE_OF_STORE = "near_duplicate_of_earlier_run"
_NN_SAMPLE = 20_000


@dataclass
class Batch:
    """The candidates of one curation job and everything decided about them so far."""

    store: Path
    #: Run ids (as in the rows' provenance) in tie-break order.
    runs: list[str]
    #: Run folder names inside ``store``: their own index segments are never deduplicated against.
    folders: list[str]
    candidates: list[Scenario]
    config: CurationConfig
    #: The judge's backend: ``config.judge_backend``, else the generation backend.
    judge: BackendConfig
    rejects: list[Reject] = field(default_factory=list)
    usage: dict[str, StageUsage] = field(default_factory=dict)
    timings: dict[str, float | int] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    #: One row per candidate, once embedded.
    vectors: np.ndarray | None = None
    #: Every candidate's nearest-neighbour cosine before deduplication (for the report).
    nn_similarity: np.ndarray | None = None
    embedding_model: str | None = None
    #: ``time.perf_counter()`` when the batch was started (for ``curation_wall_s``).
    started: float = field(default_factory=time.perf_counter)

    def but(self, **changes: Any) -> Batch:
        return dataclasses.replace(self, **changes)


def start_batch(
    store: Path,
    runs: list[str],
    folders: list[str],
    scenarios: list[Scenario],
    config: CurationConfig,
    judge: BackendConfig,
) -> Batch:
    """A batch of ``scenarios`` before any stage: ``judge`` is the judge's backend (already resolved)."""
    return Batch(
        store=store,
        runs=runs,
        folders=folders,
        candidates=list(scenarios),
        config=config,
        judge=judge,
        report={"config": config.model_dump(mode="json"), "input": len(scenarios)},
    )


def _timed(batch: Batch, name: str, start: float, **more: float) -> dict[str, float | int]:
    return {**batch.timings, f"curation_{name}_s": round(time.perf_counter() - start, 3), **more}


def gate_stage(batch: Batch) -> Batch:
    config = batch.config
    progress.report("curation", step="quality gates")
    start = time.perf_counter()
    kept, rejects, by_reason = apply_gates(batch.candidates, config)
    report = {**batch.report, "gates": {"checked": len(batch.candidates), "rejected": len(rejects), "by_reason": by_reason}}
    return batch.but(candidates=kept, rejects=batch.rejects + rejects, report=report, timings=_timed(batch, "gates", start))


def judge_backend(batch: Batch) -> CachedBackend:
    """The batch's judge, with a reply cache in the store."""
    return CachedBackend(get_backend(batch.judge), batch.store / ".cache" / "judge")


def judge_stage(batch: Batch) -> Batch:
    config = batch.config
    if not config.judge:
        return batch.but(report={**batch.report, "judge": None})
    progress.report("curation", step=f"judge: {len(batch.candidates)} scenarios")
    start = time.perf_counter()
    prompts = PromptSet(config.prompts)
    judge = judge_backend(batch) if batch.candidates else None
    usage = StageUsage()
    if judge is None:
        outcome_kept, outcome_rejects = [], []
        report: dict[str, Any] = {
            "judged": 0, "scored": 0, "partial": 0, "unscoreable": 0, "failed_requests": 0, "rejected_low_quality": 0,
            "rejected_unscoreable": 0, "kept_unscoreable": 0, "threshold": config.judge_threshold, "mean_score": None,
            "judge_model": None,
        }
    else:
        outcome = apply_judge(batch.candidates, config, judge, prompts, usage)
        outcome_kept, outcome_rejects, report = outcome.kept, outcome.rejects, outcome.report
        report["cache_hits"] = judge.hits
    report["template"] = {JUDGE_TEMPLATE: prompts.hashes.get(JUDGE_TEMPLATE)}
    return batch.but(
        candidates=outcome_kept,
        rejects=batch.rejects + outcome_rejects,
        usage={**batch.usage, "judge": usage},
        report={**batch.report, "judge": report},
        timings=_timed(batch, "judge", start),
    )


def sign_stage(batch: Batch) -> Batch:
    config = batch.config
    if not (config.judge and config.sign_checks):
        return batch.but(report={**batch.report, "sign_checks": None})
    progress.report("curation", step=f"sign checks: {sum(len(s.rubric) for s in batch.candidates)} criteria")
    start = time.perf_counter()
    prompts = PromptSet(config.prompts)
    usage = StageUsage()
    judge = judge_backend(batch) if batch.candidates else None
    if judge is None:
        kept, rejects = [], []
        report: dict[str, Any] = {
            "checked_criteria": 0, "removed_criteria": 0, "unscoreable_verdicts": 0, "scenarios_pruned": 0,
            "rejected": 0, "removed_examples": [],
        }
    else:
        outcome = apply_sign_checks(batch.candidates, judge, prompts, usage)
        kept, rejects, report = outcome.kept, outcome.rejects, outcome.report
        report["judge_model"] = judge.model_id
        report["cache_hits"] = judge.hits
    report["template"] = {"sign_check.j2": prompts.hashes.get("sign_check.j2")}
    return batch.but(
        candidates=kept,
        rejects=batch.rejects + rejects,
        usage={**batch.usage, "sign_check": usage},
        report={**batch.report, "sign_checks": report},
        timings=_timed(batch, "sign_checks", start),
    )


def embed_stage(batch: Batch) -> Batch:
    config = batch.config
    progress.report("curation", step=f"embedding {len(batch.candidates)} scenarios")
    start = time.perf_counter()
    embedder = get_embedder(config.embedding_model, batch.store / ".cache" / "embeddings")
    before_embedded, before_hits, before_wall = embedder.embedded, embedder.cache_hits, embedder.wall_s
    vectors = embedder.embed([scenario_text(s) for s in batch.candidates])
    usage = StageUsage(requests=embedder.embedded - before_embedded, wall_s=round(embedder.wall_s - before_wall, 3))
    return batch.but(
        vectors=vectors,
        embedding_model=embedder.model_id,
        usage={**batch.usage, "embed": usage},
        report={**batch.report, "embedding_model": embedder.model_id},
        timings=_timed(
            batch, "embed", start,
            curation_embedded_texts=embedder.embedded - before_embedded,
            curation_embedding_cache_hits=embedder.cache_hits - before_hits,
        ),
    )


def priority(batch: Batch) -> list[int]:
    """Candidate positions, best first: the order of the keep-one policy (see :data:`POLICY`)."""
    run_pos = {run: i for i, run in enumerate(batch.runs)}

    def key(i: int) -> tuple[bool, float, int, int, str]:
        s = batch.candidates[i]
        score = s.quality.score if s.quality is not None else None
        return (score is None, -(score or 0.0), run_pos.get(s.provenance.run_id, len(run_pos)), s.index, s.id)

    return sorted(range(len(batch.candidates)), key=key)


def dedup_stage(batch: Batch) -> Batch:
    """Drop near-duplicates of scenarios kept by other runs of the store, then within the batch."""
    config = batch.config
    if batch.vectors is None or batch.embedding_model is None:
        raise ValueError("dedup_stage needs embed_stage first")
    progress.report("curation", step=f"near-duplicates among {len(batch.candidates)} scenarios")
    start = time.perf_counter()
    cands, vectors, t = batch.candidates, batch.vectors, config.threshold
    n = len(cands)
    index = StoreIndex(batch.store, batch.embedding_model)
    prior = index.load(exclude=set(batch.folders)) if config.cross_run else None
    blocked = np.zeros(n, dtype=bool)
    rejects: list[Reject] = []
    if prior is not None and len(prior) and n:
        cross = near_duplicate_pairs(vectors, t, prior.vectors)
        sims = np.einsum("ij,ij->i", vectors[cross[:, 0]], prior.vectors[cross[:, 1]]) if len(cross) else np.zeros(0)
        best: dict[int, tuple[float, int]] = {}
        for (i, j), sim in zip(cross.tolist(), sims.tolist()):
            if i not in best or sim > best[i][0]:
                best[i] = (sim, j)
        for i, (sim, j) in sorted(best.items()):
            blocked[i] = True
            rejects.append(
                Reject.of_scenario(
                    cands[i], DEDUP_STAGE, NEAR_DUPLICATE_OF_STORE,
                    f"near-duplicate of {prior.ids[j]} kept by run {prior.run_ids[j]} (cosine {sim:.3f})",
                )
            )
    pairs = near_duplicate_pairs(vectors, t) if n > 1 else np.zeros((0, 2), dtype=np.int64)
    nn = nearest_neighbour_similarity(vectors, max_rows=_NN_SAMPLE) if n > 1 else np.full(n, np.nan, dtype=np.float32)
    dropped = keep_one(pairs, priority(batch), blocked.tolist())
    pair_sim = {(a, b): float(vectors[a] @ vectors[b]) for a, b in pairs.tolist()}
    for i, j in sorted(dropped.items()):
        sim = pair_sim[(min(i, j), max(i, j))]
        rejects.append(
            Reject.of_scenario(cands[i], DEDUP_STAGE, NEAR_DUPLICATE, f"near-duplicate of {cands[j].id} (cosine {sim:.3f})")
        )
    keep = [i for i in range(n) if not blocked[i] and i not in dropped]
    kept_set = set(keep)
    clusters = components(n, pairs)
    report = {
        "candidates": n,
        "threshold": t,
        "method": "flat" if uses_flat(n) else "lsh",
        "pairs": len(pairs),
        "clusters": len(clusters),
        "cluster_sizes": {str(k): v for k, v in sorted(_sizes(clusters).items())},
        "largest_clusters": [
            {
                "size": len(c),
                "kept": [cands[i].id for i in c if i in kept_set][:20],
                "dropped": [cands[i].id for i in c if i not in kept_set][:20],
            }
            for c in clusters[:10]
        ],
        "dropped_within": len(dropped),
        "dropped_cross_run": int(blocked.sum()),
        "index_size": len(prior) if prior is not None else 0,
        "index_runs": sorted(set(prior.run_ids)) if prior is not None else [],
        "stale_index_runs": prior.stale if prior is not None else [],
        "policy": POLICY,
        "nn_similarity_sampled": n > _NN_SAMPLE,
    }
    return batch.but(
        candidates=[cands[i] for i in keep],
        vectors=vectors[keep] if n else vectors,
        nn_similarity=nn,
        rejects=batch.rejects + rejects,
        report={**batch.report, "dedup": report},
        timings=_timed(batch, "dedup", start),
    )


def _sizes(clusters: list[list[int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for c in clusters:
        out[len(c)] = out.get(len(c), 0) + 1
    return out


#: The curation job's stages, in order (the one declaration; see the module docstring).
CURATION_STEPS: list[Step[Batch]] = [
    Step("quality-gates", gate_stage),
    Step("quality-judge", judge_stage, tags=("llm",)),
    Step("sign-checks", sign_stage, tags=("llm",)),
    Step("embed", embed_stage, gives=("vectors", "embedding_model")),
    Step("near-duplicates", dedup_stage, needs=("vectors",), gives=("nn_similarity",)),
]


def with_wall_time(batch: Batch) -> Batch:
    """``batch`` with ``curation_wall_s``: the time since it was started."""
    return batch.but(timings={**batch.timings, "curation_wall_s": round(time.perf_counter() - batch.started, 3)})


def run_stages(batch: Batch) -> Batch:
    """:data:`CURATION_STEPS` in this process, with the wall time recorded."""
    return with_wall_time(run_steps(CURATION_STEPS, batch))
