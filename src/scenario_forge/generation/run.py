"""The generate job, declared once as steps (:func:`generate_steps`): claim the run folder,
generate shard by shard, merge the shards, curate (the steps of
:data:`~scenario_forge.curation.stages.CURATION_STEPS`) and write the run.

:func:`run_generate_direct` runs the list in this process; the Prefect flow in
``flows/generate.py`` runs the same list as tasks of the same names (the shards on a thread pool,
a Dask or a Ray cluster). Both hold no logic of their own.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from .. import __version__, progress, runlock
from ..atomic import atomic_write_text
from ..backends.base import StageUsage
from ..backends.factory import backend_identity, get_backend
from ..config import GenerateConfig
from ..curation.run import CurationResult, finish_generated, start_generated
from ..curation.stages import CURATION_STEPS, Batch, with_wall_time
from ..hashing import content_key
from ..manifest import Counts, Manifest, cost_markdown
from ..orchestration.slots import shard_slot
from ..planning import plan_selection
from ..prompts import PromptSet
from ..records import Provenance, Reject, Scenario, ScenarioSeed
from ..schema import write_rejects, write_scenarios
from ..steps import AnyStep, ForEach, Runner, Step, on, run_steps
from ..store import RunStore, ShardSpec, ShardSummary
from .brief import brief_steps
from .capable import CapableContext, check_capable_templates, idea_embedder, resolve_path, write_capable
from .context import StageContext
from .dialogue import dialogue_steps
from .keep import replacement_seeds, round_row
from .preflight import check_templates
from .rubric import rubric_steps
from .schedule import Steps, each, split


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
    size = f"k{config.keep}" if config.keep is not None else f"n{config.n}"
    return f"{scope}-{size}-s{config.seed}-{fingerprint_key[:6]}"


def _shard_common(config: GenerateConfig, prompts: PromptSet, model: str) -> tuple[Any, ...]:
    """What every shard key of a run hashes besides its seed ids."""
    return (
        prompts.hashes, model, config.sampling.as_dict(), config.selection.hash, config.backend.structured_output,
        config.turn_reasks, config.path, config.capable.model_dump(mode="json"),
    )


def _shard_specs(config: GenerateConfig, common: tuple[Any, ...], seeds: Sequence[ScenarioSeed], first_index: int) -> list[ShardSpec]:
    shards = []
    for index, start in enumerate(range(0, len(seeds), config.shard_size), start=first_index):
        chunk = list(seeds[start : start + config.shard_size])
        key = content_key([s.id for s in chunk], *common)
        shards.append(ShardSpec(index=index, key=key, seeds=chunk))
    return shards


def plan_run(config: GenerateConfig) -> PreparedRun:
    """Everything :func:`prepare_run` checks and plans, without writing anything.

    Callers run it before starting an orchestrator, so bad input fails in a second. Plans from the
    taxonomy and names the config's validator resolved (:attr:`GenerateConfig.selection`).
    """
    selection = config.selection
    taxonomy = selection.taxonomy
    prompts = PromptSet(config.prompts)
    seeds = plan_selection(selection, config.n, config.seed)
    check_templates(prompts, taxonomy, seeds[0])
    if config.path != "short":
        check_capable_templates(prompts, taxonomy, seeds[0])
    model, fingerprint, run_id, root = run_identity(config, prompts)
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
        taxonomy_hash=selection.hash,
        plan_seed=config.seed,
    )
    shards = _shard_specs(config, _shard_common(config, prompts, model), seeds, 0)
    return PreparedRun(
        config=config, run_id=run_id, root=root, provenance=provenance, shards=shards, fingerprint=fingerprint
    )


def run_identity(config: GenerateConfig, prompts: PromptSet) -> tuple[str, dict[str, Any], str, Path]:
    """``(model identity, run fingerprint, run id, run folder)``; loads no model, writes nothing."""
    model = backend_identity(config.backend)
    selection = config.selection
    fingerprint: dict[str, Any] = {
        "domains": selection.domains,
        "traits": [list(t) for t in selection.traits],
        "n": config.n,
        "seed": config.seed,
        "shard_size": config.shard_size,
        "model": model,
        "structured_output": config.backend.structured_output,
        "sampling": config.sampling.as_dict(),
        "templates": prompts.hashes,
        "taxonomy": selection.hash,
        "turn_reasks": config.turn_reasks,
        # auto resolves from the backend (in "model") and structured_output, both already here
        "path": config.path,
        "capable": config.capable.model_dump(mode="json"),
    }
    if config.keep is not None:  # only then: the fingerprints (and run ids) of other runs stay as they were
        fingerprint["keep"] = {"keep": config.keep, "max_attempts": config.attempt_budget}
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
        taxonomy=config.selection.taxonomy,  # what the validator loaded: shards do not reload it
        sampling=config.sampling,
        run_id=run.run_id,
        structured=config.backend.structured_output == "auto" and backend.auto_json_schema,
        turn_reasks=config.turn_reasks,
        workers=config.scenario_workers,
    )
    progress.report("shard_start", index=shard.index, planned=len(shard.seeds), total=len(run.shards))
    if resolve_path(config, backend) == "capable":
        capable = CapableContext(ctx, config.capable, run.root / ".cache", idea_embedder(config))
        scenarios, rejects = write_capable(capable, shard.seeds, run.provenance)
    else:
        scenarios, rejects = write_short(shard.seeds, ctx, run.provenance)
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


def write_short(seeds: Sequence[ScenarioSeed], ctx: StageContext, provenance: Provenance) -> tuple[list[Scenario], list[Reject]]:
    """The short path over ``seeds``: brief, dialogue and rubric, each scenario on its own
    (``ctx.workers`` side by side, :mod:`.schedule`): its next request goes out as soon as its own
    previous one is back. Kept scenarios and rejects, each in seed order."""
    return split(each(ctx, seeds, lambda seed: short_steps(seed, ctx, provenance)), Scenario)


def short_steps(seed: ScenarioSeed, ctx: StageContext, provenance: Provenance) -> Steps[Scenario | Reject]:
    """One seed through the short path's stages: the scenario, or the first stage's reject."""
    briefed = yield from brief_steps(seed, ctx)
    if isinstance(briefed, Reject):
        return briefed
    dialogue = yield from dialogue_steps(briefed, ctx)
    if isinstance(dialogue, Reject):
        return dialogue
    return (yield from rubric_steps(dialogue, ctx, provenance))


class ShardWork(BaseModel):
    """One shard's task input: the run without the other shards' seeds, and the shard.

    What a Dask or Ray worker receives grows with the shard, not with the run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: PreparedRun
    shard: ShardSpec

    @property
    def name(self) -> str:
        """``shard-00007-1a2b3c4d``: the shard's index and content key (its task run's name)."""
        return f"shard-{self.shard.index:05d}-{self.shard.key[:8]}"


def shard_parts(run: PreparedRun) -> list[ShardWork]:
    """Every shard of ``run`` as a task input (each listing every shard, none with seeds)."""
    light = run.model_copy(update={"shards": [s.model_copy(update={"seeds": []}) for s in run.shards]})
    return [ShardWork(run=light, shard=shard) for shard in run.shards]


def generate_shard(work: ShardWork) -> ShardSummary:
    """:func:`run_shard` in one of the run's shard slots (held only on a Prefect threads runner)."""
    with shard_slot(work.run.run_id):  # shard_workers at a time; Prefect's API calls overlap the work
        return run_shard(work.run, work.shard)


@dataclass(frozen=True)
class GenerateJob:
    """The state of a generate job as its steps fill it in."""

    run: PreparedRun
    #: ``time.perf_counter()`` when the job started (for ``generation_wall_s``).
    started: float = field(default_factory=time.perf_counter)
    summaries: list[ShardSummary] = field(default_factory=list)
    generated: list[Scenario] = field(default_factory=list)
    #: Generation rejects, from the shard files.
    rejects: list[Reject] = field(default_factory=list)
    generation_wall_s: float = 0.0
    #: The curation batch (``curate`` on), from the merged shards.
    batch: Batch | None = None
    manifest: Manifest | None = None

    def need_batch(self) -> Batch:
        if self.batch is None:
            raise RuntimeError("the generate job has no curation batch yet (merge-shards comes first)")
        return self.batch

    def need_manifest(self) -> Manifest:
        if self.manifest is None:
            raise RuntimeError("the generate job has not written its run yet (finalize-run comes last)")
        return self.manifest


def claim_folder(job: GenerateJob) -> GenerateJob:
    """Claim the run folder (writes ``run.json``: the same bytes for the same run)."""
    RunStore.open(job.run.root, job.run.fingerprint)
    return job


def merge_shards(job: GenerateJob) -> GenerateJob:
    """Read the shards' rows back, write ``generated.parquet`` and start curation's batch."""
    run = job.run
    store = RunStore(run.root)
    generated = store.shard_scenarios(run.shards)
    write_scenarios(store.generated_path, generated)
    batch = start_generated(run.root, generated, run.config.curation, run.config.backend) if run.config.curate else None
    return replace(
        job, generated=generated, rejects=store.shard_rejects(run.shards), batch=batch,
        generation_wall_s=time.perf_counter() - job.started,
    )


def merge_usage(summaries: list[ShardSummary]) -> dict[str, StageUsage]:
    """Usage per stage over all shards (a resumed shard counts what it cost when it ran)."""
    total: dict[str, StageUsage] = {}
    for s in summaries:
        for stage, usage in s.usage.items():
            total.setdefault(stage, StageUsage()).merge(usage)
    return total


def finalize_run(job: GenerateJob) -> GenerateJob:
    """Finish curation (report, index), write the run's files and its manifest."""
    run = job.run
    store = RunStore(run.root)
    timings: dict[str, float | int] = {
        "generation_wall_s": round(job.generation_wall_s, 3),
        "shards": len(run.shards),
        "shards_resumed": sum(1 for s in job.summaries if s.resumed),
    }
    usage = merge_usage(job.summaries)
    kept, rejects = job.generated, job.rejects
    extra: dict[str, Any] = {}
    if run.config.curate:
        result: CurationResult = finish_generated(
            with_wall_time(job.need_batch()), run.root, job.generated, planned=run.planned, prior_rejects=job.rejects
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
            planned=run.planned, generated=job.generated, kept=kept, kept_vectors=None, curated=False,
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
    report = store.root / "report.md"  # written by curation, before the run's whole usage was known
    if report.is_file():
        before = report.read_text().split("\n## Cost\n")[0].rstrip()  # a rerun replaces its own section
        atomic_write_text(report, before + "\n\n" + "\n".join(cost_markdown(manifest.cost)))
    atomic_write_text(store.manifest_path, manifest.model_dump_json(indent=2))
    progress.report("run_done", manifest=manifest)
    return replace(job, manifest=manifest)


def _put_batch(job: GenerateJob, batch: Batch) -> GenerateJob:
    return replace(job, batch=batch)


#: Tag of every step that sends requests to a model: cap them with
#: ``prefect concurrency-limit create llm N`` (see docs/prefect.md).
LLM_TAG = "llm"

SHARDS: ForEach[GenerateJob, ShardWork, ShardSummary] = ForEach(
    "generate-shard",
    parts=lambda job: shard_parts(job.run),
    run=generate_shard,
    merge=lambda job, summaries: replace(job, summaries=summaries),
    tags=(LLM_TAG,),
    gives=("summaries",),
    workers=lambda job: job.run.config.shard_workers,
    part_name=lambda work: work.name,
)


def generate_steps(config: GenerateConfig) -> list[AnyStep[GenerateJob]]:
    """The generate job's steps for ``config`` (curation's only with ``curate`` on)."""
    batch = ("batch",) if config.curate else ()
    curation = on(CURATION_STEPS, GenerateJob.need_batch, _put_batch, needs=batch, gives=batch) if config.curate else []
    return [
        Step("prepare-run", claim_folder),
        SHARDS,
        Step("merge-shards", merge_shards, gives=("generated", "rejects", *batch)),
        *curation,
        Step("finalize-run", finalize_run, needs=batch, gives=("manifest",)),
    ]


def generate_with(config: GenerateConfig, runner: Runner[GenerateJob]) -> Manifest:
    """Plan the run and run :func:`generate_steps` with ``runner``, holding the run folder's lock
    (one writer per run folder; re-entrant: a CLI that started this already holds it). With
    ``keep``, round after round (:func:`keep_rounds`)."""
    job = GenerateJob(plan_run(config))
    with runlock.hold(runlock.run_lock(job.run.root), f"run folder {job.run.root}"):
        if config.keep is not None:
            return keep_rounds(config, runner, job.run)
        return runner(generate_steps(config), job).need_manifest()


def extend_run(run: PreparedRun, seeds: Sequence[ScenarioSeed]) -> PreparedRun:
    """``run`` with shards for ``seeds`` appended (indices and keys continue the run's)."""
    config = run.config
    prompts = PromptSet(config.prompts)
    common = _shard_common(config, prompts, backend_identity(config.backend))
    return run.model_copy(update={"shards": run.shards + _shard_specs(config, common, seeds, len(run.shards))})


def keep_rounds(config: GenerateConfig, runner: Runner[GenerateJob], run: PreparedRun) -> Manifest:
    """``--keep N``: run :func:`generate_steps` over the run so far, round after round, each round
    adding replacements (:mod:`.keep`) until N are kept or the attempt budget is spent.

    Every round regenerates nothing already generated (finished shards are read back) and curates
    the whole run, so dedup and the judge see every attempt. The final manifest's counts cover
    every attempt; its ``keep`` section holds the target, the budget, each round's accounting and,
    when fewer than N were kept, why.
    """
    keep, budget = config.keep, config.attempt_budget
    assert keep is not None and budget is not None  # generate_with checked
    rounds: list[dict[str, Any]] = []
    round_seeds = [s for shard in run.shards for s in shard.seeds]
    while True:
        manifest = runner(generate_steps(config), GenerateJob(run)).need_manifest()
        kept_ids = set(pq.read_table(RunStore(run.root).scenarios_path, columns=["id"]).column("id").to_pylist())
        attempted = [s for shard in run.shards for s in shard.seeds]
        rounds.append(round_row(len(rounds), round_seeds, kept_ids, len(attempted)))
        progress.report("keep_round", **rounds[-1], keep=keep, budget=budget)
        if len(kept_ids) >= keep or len(attempted) >= budget:
            break
        round_seeds = replacement_seeds(config, attempted, kept_ids, len(rounds))
        run = extend_run(run, round_seeds)
    kept = manifest.counts.kept
    section: dict[str, Any] = {"target": keep, "max_attempts": budget, "kept": kept, "attempted": run.planned, "met": kept >= keep, "rounds": rounds}
    if kept < keep:
        section["reason"] = (
            f"kept {kept} of --keep {keep}: the attempt budget (--max-attempts {budget}) is spent after "
            f"{len(rounds)} rounds; see rejects.parquet for each reason"
        )
    final = Manifest.model_validate({**manifest.model_dump(mode="json"), "keep": section})
    atomic_write_text(RunStore(run.root).manifest_path, final.model_dump_json(indent=2))
    return final


def run_generate_direct(config: GenerateConfig) -> Manifest:
    """The generate job without an orchestrator: :func:`generate_steps` in this process."""
    return generate_with(config, run_steps)
