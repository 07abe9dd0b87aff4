"""Submitting the generate job's shard tasks to a task runner and collecting them as they finish
(the :data:`~.prefect_steps.FanOut` of the ``generate-shard`` step in ``flows/generate.py``).

Two things keep Prefect's per-task cost flat however large a run is:

- each task receives the run *without the other shards' seeds*
  (:func:`~scenario_forge.generation.run.shard_parts`), so what is sent to a Dask or Ray worker
  grows with the shard, not with the run;
- on the threads runner, inputs are wrapped in :func:`prefect.utilities.annotations.quote`, so
  Prefect does not walk them looking for futures (walking a whole 1,000-scenario plan costs ~0.2 s
  per task). prefect-dask turns a ``quote`` into a plain tuple on the worker, so distributed
  runners get the (small) inputs as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import AccountingError, ConfigError, MissingExtraError
from ..generation.run import GenerateJob, ShardWork
from ..steps import AnyStep, Runner
from ..store import ShardSummary
from .artifacts import RunArtifacts
from .prefect_steps import run_steps_as_tasks
from .runners import TaskRunnerConfig, build_task_runner
from .slots import ShardInterrupted, run_slots

if TYPE_CHECKING:
    from prefect import Task
    from prefect.client.schemas.objects import State, TaskRun
    from prefect.futures import PrefectFuture

OnShardDone = Callable[[ShardSummary, int], None]


def run_shards(
    task: Task[..., Any],
    parts: Sequence[ShardWork],
    runner: TaskRunnerConfig,
    on_done: OnShardDone | None = None,
) -> list[ShardSummary]:
    """Run ``task(part)`` for every shard on ``runner``; summaries in shard order.

    Every shard is waited for before a failure is raised, so whatever could finish is saved and a
    rerun only redoes the shards that failed. ``on_done(summary, finished_so_far)`` is called in
    the flow's thread as each shard finishes.
    """
    from prefect.futures import as_completed
    from prefect.utilities.annotations import quote

    if not parts:
        return []
    run = parts[0].run
    wrap: Callable[[Any], Any] = quote if runner.kind == "threads" else (lambda value: value)
    summaries: dict[int, ShardSummary] = {}
    failures: list[tuple[ShardWork, BaseException]] = []
    threads = runner.kind == "threads"
    workers = run.config.shard_workers
    with run_slots(run.run_id, workers, threads) as slots, build_task_runner(runner, workers) as pool:
        futures: dict[PrefectFuture[Any], ShardWork] = {pool.submit(task, {"work": wrap(part)}): part for part in parts}
        try:
            for future in as_completed(list(futures)):
                try:
                    summary: ShardSummary = future.result()
                except Exception as exc:  # noqa: BLE001 - raised below, once every shard has ended
                    failures.append((futures[future], exc))
                    continue
                summaries[summary.index] = summary
                if on_done is not None:
                    on_done(summary, len(summaries))
        except BaseException:
            # Ctrl-C: before the runner waits for its threads, keep shards still waiting for a
            # slot from starting (the shards at work finish and are saved).
            if slots is not None:
                slots.stop.set()
            raise
    if failures:
        _, first = min(failures, key=lambda f: f[0].shard.index)  # the first failed shard's error
        raise first
    return [summaries[p.shard.index] for p in parts]


#: Failures a retry would only repeat: bad input (``ConfigError``), a missing extra, counts that
#: do not add up (a bug), and a shard that an interrupted run did not start.
NOT_RETRIED: tuple[type[BaseException], ...] = (ConfigError, MissingExtraError, AccountingError, ShardInterrupted)


def worth_retrying(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's ``retry_condition_fn`` for shard tasks: retry what may pass on a second try (a
    model server that went away, a lost worker, an out-of-memory), not :data:`NOT_RETRIED`."""
    return not isinstance(state.data, NOT_RETRIED)


def with_retries(task: Task[..., Any], runner: TaskRunnerConfig) -> Task[..., Any]:
    """``task`` retried ``runner.retries`` times, ``runner.retry_delay_s`` apart (see :func:`worth_retrying`).

    Shard tasks are idempotent: a shard's files are named by its content key and its done-marker
    is written last, so a retry redoes that shard only (or returns it at once if it had finished)."""
    return task.with_options(
        retries=runner.retries, retry_delay_seconds=runner.retry_delay_s, retry_condition_fn=worth_retrying
    )


def prefect_runner(runner: TaskRunnerConfig) -> Runner[GenerateJob]:
    """The generate job's Prefect runner: its steps as tasks, the shards on ``runner`` (each
    retried as :func:`with_retries` says), and the run's artifacts (progress as each shard
    finishes; counts and report at the end)."""

    def run(steps: Sequence[AnyStep[GenerateJob]], job: GenerateJob) -> GenerateJob:
        artifacts = RunArtifacts("generate", job.run.run_id, len(job.run.shards))

        def fan_out(task: Task[..., Any], parts: Sequence[Any]) -> list[Any]:
            return list(run_shards(with_retries(task, runner), parts, runner, artifacts.shard_done))

        job = run_steps_as_tasks(steps, job, fan_out=fan_out)
        manifest = job.need_manifest()
        artifacts.finish(job.run.shards, job.run.root / manifest.files["scenarios"], manifest.model_dump(mode="json"))
        return job

    return run
