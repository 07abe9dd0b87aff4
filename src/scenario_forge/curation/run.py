"""Curation jobs: at the end of ``generate`` (:func:`start_generated`, the stages,
:func:`finish_generated`: steps of the generate job; :func:`curate_generated` runs the three in a
row) and standalone over existing runs (:func:`curate_runs`, ``scenario-forge curate RUN...``).

A standalone job (:data:`CURATE_STEPS`: ``load-runs``, the stages of :data:`.stages.CURATION_STEPS`,
``write-runs``) reads each run's ``generated.parquet`` and its generation rejects (from the
finished shard files), runs the stages of :mod:`.stages` over all runs together (so near-duplicates
across them are found too), checks ``planned = kept + rejected + deduplicated`` for every run
*before* writing anything, then rewrites each run's ``scenarios.parquet``, ``rejects.parquet``,
``manifest.json``, ``report.md`` and figures (each file through a temp file and a rename) and
updates the store's index. A run's files are never deleted.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import progress, runlock
from ..atomic import atomic_write_text
from ..backends.base import StageUsage
from ..config import BackendConfig, CurationConfig
from ..errors import AccountingError, ConfigError
from ..manifest import Counts, Manifest
from ..records import Reject, Scenario
from ..schema import read_rejects, read_scenarios, write_rejects, write_scenarios
from ..steps import AnyStep, Runner, Step, on, run_steps
from ..store import RunStore
from .config import CurateConfig
from .index import StoreIndex
from .quality import run_quality
from .report import write_report
from .stages import CURATION_STEPS, USAGE_KEYS, Batch, run_stages, start_batch, with_wall_time


@dataclass
class CurationResult:
    """What :func:`curate_generated` hands back to ``finalize_run``."""

    kept: list[Scenario]
    rejects: list[Reject]
    usage: dict[str, StageUsage]
    timings: dict[str, float | int]
    report: dict[str, Any]
    #: The run's quality figures and training-ready verdict (``manifest.json`` ``quality``).
    quality: dict[str, Any] = field(default_factory=dict)


def curate_generated(
    run_root: Path,
    generated: list[Scenario],
    config: CurationConfig,
    backend: BackendConfig,
    *,
    planned: int | None = None,
    prior_rejects: list[Reject] | tuple[Reject, ...] = (),
) -> CurationResult:
    """Curate one freshly generated run: gates, judge, sign checks, dedup, report, index update.

    ``prior_rejects`` are the run's generation rejects and ``planned`` its planned count; with
    them the report shows the run's whole accounting (``planned`` defaults to generated + prior
    rejects). Raises :class:`AccountingError` if the counts do not add up.
    """
    batch = run_stages(start_generated(Path(run_root), generated, config, backend))
    return finish_generated(batch, Path(run_root), generated, planned=planned, prior_rejects=prior_rejects)


def start_generated(run_root: Path, generated: list[Scenario], config: CurationConfig, backend: BackendConfig) -> Batch:
    """The batch of one freshly generated run (``backend``: the generation backend, the judge's default)."""
    run_id = generated[0].provenance.run_id if generated else run_root.name
    return start_batch(run_root.parent, [run_id], [run_root.name], generated, config, config.judge_backend or backend)


def finish_generated(
    batch: Batch,
    run_root: Path,
    generated: list[Scenario],
    *,
    planned: int | None = None,
    prior_rejects: list[Reject] | tuple[Reject, ...] = (),
) -> CurationResult:
    """After the stages: check the run's accounting, write its report and update the store's index."""
    run_id = batch.runs[0]
    planned = len(generated) + len(prior_rejects) if planned is None else planned
    counts = Counts.tally(planned, len(batch.candidates), list(prior_rejects) + batch.rejects)
    report, quality = _finish_report(batch, run_root, run_id, counts, [], generated)
    if batch.embedding_model is not None:
        StoreIndex(batch.store, batch.embedding_model).save(
            run_root.name, [s.id for s in batch.candidates], _vectors(batch)
        )
    return CurationResult(
        kept=batch.candidates, rejects=batch.rejects, usage=batch.usage, timings=batch.timings, report=report,
        quality=quality,
    )


def _vectors(batch: Batch) -> np.ndarray:
    return batch.vectors if batch.vectors is not None else np.zeros((0, 0), dtype=np.float32)


def _finish_report(
    batch: Batch,
    root: Path,
    run_id: str,
    counts: Counts,
    others: list[str],
    generated: list[Scenario],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the report and figures for one run; returns the manifest's ``curation`` and
    ``quality`` sections (``generated`` are the run's rows that went into curation)."""
    progress.report("curation", step=f"report for {run_id}")
    mine = [i for i, s in enumerate(batch.candidates) if s.provenance.run_id == run_id]
    kept = [batch.candidates[i] for i in mine]
    vectors = batch.vectors[mine] if batch.vectors is not None and len(batch.vectors) else None
    report = {**batch.report, "curated_with": others}
    judge = report.get("judge") or {}
    quality = run_quality(
        planned=counts.planned,
        generated=generated,
        kept=kept,
        kept_vectors=vectors,
        embedding_model=batch.embedding_model,
        judge_model=judge.get("judge_model"),
        judge_backend=batch.judge,
        leak_share=batch.config.answer_overlap,
        thresholds=batch.config.readiness,
    )
    files = write_report(root, run_id, counts, report, kept, vectors, batch.nn_similarity, quality=quality)
    return {**report, "files": files}, quality


# -- standalone re-curation ---------------------------------------------------------------------


@dataclass
class RunInput:
    """An existing run, read back for re-curation."""

    root: Path
    run_id: str
    planned: int
    generated: list[Scenario]
    generation_rejects: list[Reject]
    manifest: dict[str, Any]
    backend: BackendConfig | None = field(default=None)


def load_run(root: Path) -> RunInput:
    """Read a run folder; one-line errors for a folder that is not a finished run or is empty."""
    store = RunStore(root)
    if not root.is_dir():
        raise ConfigError(f"run folder not found: {root}")
    if not store.run_json.is_file():
        raise ConfigError(f"{root} is not a scenario-forge run (no run.json)")
    if not store.manifest_path.is_file() or not store.generated_path.is_file():
        raise ConfigError(f"run {root} has not finished generating (no manifest.json / generated.parquet); rerun generate")
    try:
        manifest = json.loads(store.manifest_path.read_text(encoding="utf-8"))
        planned = int(manifest["counts"]["planned"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{store.manifest_path} is not a valid run manifest") from None
    generated = read_scenarios(store.generated_path)
    if not generated:
        raise ConfigError(f"run {root} has no generated scenarios to curate")
    rejects: list[Reject] = []
    for done in sorted(store.shards_dir.glob("*.done.json")):
        shard_rejects = done.with_name(done.name.replace(".done.json", ".rejects.parquet"))
        if shard_rejects.is_file():
            rejects.extend(read_rejects(shard_rejects))
    if planned != len(generated) + len(rejects):
        raise AccountingError(
            f"run {root}: planned {planned} != generated {len(generated)} + generation rejects {len(rejects)} "
            "in its shard files; the run's files are inconsistent"
        )
    backend_cfg = manifest.get("config", {}).get("backend")
    # context stored: the manifest is data, so the validators import nothing it names (a distilabel
    # class is resolved only if curation actually builds that backend)
    backend = BackendConfig.model_validate(backend_cfg, context={"stored": True}) if backend_cfg else None
    return RunInput(
        root=root,
        run_id=str(manifest.get("run_id") or root.name),
        planned=planned,
        generated=generated,
        generation_rejects=rejects,
        manifest=manifest,
        backend=backend,
    )


def load_runs(config: CurateConfig) -> list[RunInput]:
    runs = [load_run(Path(p)) for p in config.runs]
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"two of the runs share a run id ({', '.join(sorted({i for i in ids if ids.count(i) > 1}))})")
    return runs


def judge_backend_config(config: CurateConfig, runs: list[RunInput]) -> BackendConfig:
    """``curation.judge_backend``, else the first run's generation backend."""
    if config.curation.judge_backend is not None:
        return config.curation.judge_backend
    for run in runs:
        if run.backend is not None:
            return run.backend
    return BackendConfig()


def start_from_runs(config: CurateConfig, runs: list[RunInput]) -> Batch:
    scenarios = [s for run in runs for s in run.generated]
    store = runs[0].root.resolve().parent
    return start_batch(
        store, [r.run_id for r in runs], [r.root.name for r in runs], scenarios, config.curation,
        judge_backend_config(config, runs),
    )


@dataclass
class _Planned:
    run: RunInput
    kept: list[Scenario]
    rejects: list[Reject]
    counts: Counts
    rows: list[int]


def write_runs(batch: Batch, runs: list[RunInput]) -> list[Manifest]:
    """Check every run's accounting, then write each run's files; returns the new manifests."""
    plans: list[_Planned] = []
    for run in runs:
        rows = [i for i, s in enumerate(batch.candidates) if s.provenance.run_id == run.run_id]
        kept = [batch.candidates[i] for i in rows]
        rejects = run.generation_rejects + [r for r in batch.rejects if r.run_id == run.run_id]
        try:
            counts = Counts.tally(run.planned, len(kept), rejects)
        except AccountingError as exc:
            raise AccountingError(f"run {run.root}: {exc}; nothing was written") from None
        plans.append(_Planned(run, kept, rejects, counts, rows))
    manifests = []
    for plan in plans:
        run = plan.run
        others = [r.run_id for r in runs if r is not run]
        report, quality = _finish_report(batch, run.root, run.run_id, plan.counts, others, run.generated)
        store = RunStore(run.root)
        write_scenarios(store.scenarios_path, plan.kept)
        write_rejects(store.rejects_path, plan.rejects)
        data = dict(run.manifest)
        usage = {k: v for k, v in data.get("usage", {}).items() if k not in USAGE_KEYS}
        usage.update({k: v.summary() for k, v in batch.usage.items()})
        timings = {k: v for k, v in data.get("timings", {}).items() if not k.startswith("curation_")}
        timings.update(batch.timings)
        data.update(
            counts=plan.counts.model_dump(),
            usage=usage,
            timings=timings,
            curation=report,
            quality=quality,
            files={**data.get("files", {}), "report": "report.md"},
        )
        manifest = Manifest.model_validate(data)
        atomic_write_text(store.manifest_path, manifest.model_dump_json(indent=2))
        if batch.embedding_model is not None:
            vectors = batch.vectors[plan.rows] if batch.vectors is not None and len(batch.vectors) else np.zeros((0, 0))
            StoreIndex(batch.store, batch.embedding_model).save(run.root.name, [s.id for s in plan.kept], vectors)
        manifests.append(manifest)
    return manifests


def check_inputs(config: CurateConfig) -> list[RunInput]:
    """Everything that can be checked before a model loads: runs readable, embedding model folder."""
    from .embed import check_model_folder

    runs = load_runs(config)
    check_model_folder(config.curation.embedding_model)
    return runs


@dataclass(frozen=True)
class CurateJob:
    """The state of a ``curate`` job: its config, then the runs read, the batch, the new manifests."""

    config: CurateConfig
    runs: list[RunInput] = field(default_factory=list)
    batch: Batch | None = None
    manifests: list[Manifest] = field(default_factory=list)

    def need_batch(self) -> Batch:
        if self.batch is None:
            raise RuntimeError("the curate job's runs are not loaded yet (load-runs comes first)")
        return self.batch


def load_runs_step(job: CurateJob) -> CurateJob:
    runs = check_inputs(job.config)
    return replace(job, runs=runs, batch=start_from_runs(job.config, runs))


def write_runs_step(job: CurateJob) -> CurateJob:
    return replace(job, manifests=write_runs(with_wall_time(job.need_batch()), job.runs))


#: ``scenario-forge curate``: read the runs, curate them together, write each run's files.
CURATE_STEPS: list[AnyStep[CurateJob]] = [
    Step("load-runs", load_runs_step, gives=("runs", "batch")),
    *on(CURATION_STEPS, CurateJob.need_batch, lambda job, batch: replace(job, batch=batch), needs=("batch",), gives=("batch",)),
    Step("write-runs", write_runs_step, needs=("runs", "batch"), gives=("manifests",)),
]


def curate_with(config: CurateConfig, runner: Runner[CurateJob]) -> list[Manifest]:
    """Run :data:`CURATE_STEPS` with ``runner``, holding every run folder's lock (one writer per
    run folder; re-entrant: a CLI that started this already holds them)."""
    with ExitStack() as locks:
        for run in sorted({Path(r).resolve() for r in config.runs}):
            locks.enter_context(runlock.hold(runlock.run_lock(run), f"run folder {run}"))
        return runner(CURATE_STEPS, CurateJob(config)).manifests


def curate_runs(config: CurateConfig) -> list[Manifest]:
    """``scenario-forge curate`` without an orchestrator: :data:`CURATE_STEPS` in this process."""
    return curate_with(config, run_steps)
