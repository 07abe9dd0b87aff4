"""The generate job as three plain functions: prepare, run a shard, finalize.

Orchestrators (the Prefect flow in ``flows/generate.py``, :func:`run_generate_direct` below, a
Dask or Ray task runner) only call these; they hold no logic of their own.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from .. import __version__, progress, runlock
from ..backends.base import StageUsage
from ..backends.factory import backend_identity, get_backend
from ..config import GenerateConfig
from ..hashing import content_key
from ..manifest import Counts, Manifest
from ..planning import plan
from ..prompts import PromptSet
from ..records import Provenance
from ..schema import atomic_write_text, write_rejects, write_scenarios
from ..store import RunStore, ShardSpec, ShardSummary
from ..taxonomy.loader import load_taxonomy, resolve_domains, resolve_traits, taxonomy_hash
from ..taxonomy.models import Taxonomy
from .brief import write_briefs
from .context import StageContext
from .dialogue import write_dialogues
from .preflight import check_templates
from .rubric import write_rubrics


class PreparedRun(BaseModel):
    """A planned run: where it lives, what produced it, and its shards."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: GenerateConfig
    run_id: str
    root: Path
    provenance: Provenance
    shards: list[ShardSpec]
    fingerprint: dict[str, Any]

    @property
    def planned(self) -> int:
        return sum(len(s.seeds) for s in self.shards)


def _default_run_id(config: GenerateConfig, domains: list[str], fingerprint_key: str) -> str:
    scope = "-".join(domains) if len(domains) <= 3 else f"{len(domains)}domains"
    return f"{scope}-n{config.n}-s{config.seed}-{fingerprint_key[:6]}"


def prepare_run(config: GenerateConfig) -> PreparedRun:
    """Plan the run and claim its folder. Loads no model."""
    run = plan_run(config)
    RunStore.open(run.root, run.fingerprint)
    return run


def plan_run(config: GenerateConfig) -> PreparedRun:
    """Everything :func:`prepare_run` checks and plans, without writing anything.

    Callers run it before starting an orchestrator, so bad input fails in a second.
    """
    taxonomy = load_taxonomy(config.taxonomy)
    prompts = PromptSet(config.prompts)
    seeds = plan(taxonomy, config.domains, config.traits, config.n, config.seed)
    check_templates(prompts, taxonomy, seeds[0])
    model, fingerprint, run_id, root = run_identity(config, taxonomy, prompts)
    RunStore.check(root, fingerprint)
    provenance = Provenance(
        run_id=run_id,
        generator=f"scenario-forge {__version__}",
        backend=config.backend.kind,
        model=model,
        sampling=config.sampling.as_dict(),
        templates=prompts.hashes,
        taxonomy_name=taxonomy.name,
        taxonomy_version=taxonomy.version,
        taxonomy_hash=taxonomy_hash(taxonomy),
        plan_seed=config.seed,
    )
    shard_common = (
        prompts.hashes, model, config.sampling.as_dict(), taxonomy_hash(taxonomy), config.backend.structured_output,
        config.turn_reasks,
    )
    shards = []
    for index, start in enumerate(range(0, len(seeds), config.shard_size)):
        chunk = seeds[start : start + config.shard_size]
        key = content_key([s.id for s in chunk], *shard_common)
        shards.append(ShardSpec(index=index, key=key, seeds=chunk))
    return PreparedRun(
        config=config, run_id=run_id, root=root, provenance=provenance, shards=shards, fingerprint=fingerprint
    )


def run_identity(config: GenerateConfig, taxonomy: Taxonomy, prompts: PromptSet) -> tuple[str, dict[str, Any], str, Path]:
    """``(model identity, run fingerprint, run id, run folder)``; loads no model, writes nothing."""
    model = backend_identity(config.backend)
    fingerprint: dict[str, Any] = {
        "domains": resolve_domains(taxonomy, config.domains),
        "traits": [list(t) for t in resolve_traits(taxonomy, config.traits)],
        "n": config.n,
        "seed": config.seed,
        "shard_size": config.shard_size,
        "model": model,
        "structured_output": config.backend.structured_output,
        "sampling": config.sampling.as_dict(),
        "templates": prompts.hashes,
        "taxonomy": taxonomy_hash(taxonomy),
        "turn_reasks": config.turn_reasks,
    }
    run_id = config.run_id or _default_run_id(config, fingerprint["domains"], content_key(fingerprint))
    return model, fingerprint, run_id, Path(config.out) / run_id


def run_shard(run: PreparedRun, shard: ShardSpec) -> ShardSummary:
    """Generate one shard (or return its summary if a previous attempt finished it)."""
    store = RunStore(run.root)
    done = store.finished(shard)
    if done is not None:
        done.resumed = True
        progress.report("shard_done", index=shard.index, summary=done, total=len(run.shards))
        return done
    start = time.perf_counter()
    config = run.config
    backend = get_backend(config.backend)
    ctx = StageContext(
        backend=backend,
        prompts=PromptSet(config.prompts),
        taxonomy=load_taxonomy(config.taxonomy),
        sampling=config.sampling,
        run_id=run.run_id,
        structured=config.backend.structured_output == "auto" and backend.supports_json_schema,
        turn_reasks=config.turn_reasks,
    )
    progress.report("shard_start", index=shard.index, planned=len(shard.seeds), total=len(run.shards))
    briefed, rejects = write_briefs(shard.seeds, ctx)
    dialogues, more = write_dialogues(briefed, ctx)
    rejects += more
    scenarios, more = write_rubrics(dialogues, ctx, run.provenance)
    rejects += more
    summary = ShardSummary(
        index=shard.index,
        key=shard.key,
        planned=len(shard.seeds),
        kept=len(scenarios),
        rejected=dict(Counter(f"{r.stage}:{r.reason}" for r in rejects)),
        usage=ctx.usage,
        wall_s=time.perf_counter() - start,
    )
    if summary.kept + sum(summary.rejected.values()) != summary.planned:
        raise AssertionError(f"shard {shard.index} lost rows: {summary}")  # a bug, never user input
    store.save_shard(shard, scenarios, rejects, summary)
    progress.report("shard_done", index=shard.index, summary=summary, total=len(run.shards))
    return summary


def merge_usage(summaries: list[ShardSummary]) -> dict[str, StageUsage]:
    """Usage per stage over all shards (a resumed shard counts what it cost when it ran)."""
    total: dict[str, StageUsage] = {}
    for s in summaries:
        for stage, usage in s.usage.items():
            total.setdefault(stage, StageUsage()).merge(usage)
    return total


def finalize_run(run: PreparedRun, summaries: list[ShardSummary], wall_s: float) -> Manifest:
    """Merge the shards, curate (unless disabled), write the run's files and its manifest."""
    store = RunStore(run.root)
    generated = store.shard_scenarios(run.shards)
    rejects = store.shard_rejects(run.shards)
    write_scenarios(store.generated_path, generated)
    timings: dict[str, float | int] = {
        "generation_wall_s": round(wall_s, 3),
        "shards": len(run.shards),
        "shards_resumed": sum(1 for s in summaries if s.resumed),
    }
    usage = merge_usage(summaries)
    kept = generated
    extra: dict[str, Any] = {}
    if run.config.curate:
        from ..curation.run import curate_generated

        result = curate_generated(
            run.root, generated, run.config.curation, run.config.backend, planned=run.planned, prior_rejects=rejects
        )
        kept = result.kept
        rejects = rejects + result.rejects
        usage.update(result.usage)
        timings.update(result.timings)
        extra["curation"] = result.report
        extra["quality"] = result.quality
    else:
        from ..curation.quality import run_quality

        extra["quality"] = run_quality(
            planned=run.planned, generated=generated, kept=kept, kept_vectors=None, curated=False,
            leak_share=run.config.curation.answer_overlap, thresholds=run.config.curation.readiness,
        )
    counts = Counts.tally(run.planned, len(kept), rejects)  # raises before anything is written
    write_scenarios(store.scenarios_path, kept)
    write_rejects(store.rejects_path, rejects)
    manifest = Manifest(
        run_id=run.run_id,
        generator=run.provenance.generator,
        config=run.config.model_dump(mode="json"),
        provenance=run.provenance,
        counts=counts,
        usage={k: v.summary() for k, v in usage.items()},
        timings=timings,
        files={
            "scenarios": store.scenarios_path.name,
            "rejects": store.rejects_path.name,
            "generated": store.generated_path.name,
        },
        **extra,
    )
    atomic_write_text(store.manifest_path, manifest.model_dump_json(indent=2))
    progress.report("run_done", manifest=manifest)
    return manifest


def run_generate_direct(config: GenerateConfig) -> Manifest:
    """The generate job without an orchestrator: the same stage functions, called in a loop."""
    start = time.perf_counter()
    run = plan_run(config)
    with runlock.hold(runlock.run_lock(run.root), f"run folder {run.root}"):  # one writer per run folder
        RunStore.open(run.root, run.fingerprint)  # claims the folder only once the lock is ours
        with ThreadPoolExecutor(max_workers=config.shard_workers) as pool:
            summaries = list(pool.map(lambda shard: run_shard(run, shard), run.shards))
        return finalize_run(run, summaries, time.perf_counter() - start)
