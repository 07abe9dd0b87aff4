"""Where shard tasks run: threads in the flow's process, a Dask cluster or a Ray cluster.

The choice is a flow parameter (:class:`TaskRunnerConfig`), not a property of the flow object, so
one deployment serves a laptop (threads), a Dask cluster and a Ray cluster: a run picks with
``--param runner='{"kind": "dask", "address": "tcp://scheduler:8786"}'``. Results do not depend on
the choice (shards are content-addressed and each is generated from its own seeds), so it is kept
out of :class:`~scenario_forge.config.GenerateConfig` and out of the run's fingerprint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import MissingExtraError

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner


class TaskRunnerConfig(BaseModel):
    """Where a flow's shard tasks run (a flow parameter; the Prefect UI shows it as a form)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["threads", "dask", "ray"] = Field(
        default="threads",
        description="threads: in the flow run's process (GenerateConfig.shard_workers at once); "
        "dask / ray: spread over a cluster's workers (extras [dask] / [ray])",
    )
    address: str | None = Field(
        default=None,
        description="dask: scheduler address (tcp://host:8786); ray: cluster address (ray://host:10001); "
        "empty: start a local cluster for this run",
    )
    workers: int = Field(default=2, ge=1, le=1024, description="local cluster only: number of workers to start")
    processes: bool = Field(
        default=True,
        description="local Dask cluster only: a process per worker (False: threads of the flow run's process)",
    )

    retries: int = Field(
        default=2,
        ge=0,
        le=20,
        description="times a failed shard task is retried (shards are content-keyed: a retry redoes only that "
        "shard); bad input, a missing extra and an interrupted run are not retried",
    )
    retry_delay_s: float = Field(
        default=10.0, ge=0, le=3600, description="seconds between a shard's failure and its retry"
    )

    @model_validator(mode="after")
    def _address_needs_cluster(self) -> TaskRunnerConfig:
        if self.kind == "threads" and self.address:
            raise ValueError("runner.address is for the dask and ray runners; the threads runner has none")
        return self


#: Threads beyond ``shard_workers`` on the threads runner (see :func:`build_task_runner`).
SPARE_THREADS = 2


def build_task_runner(cfg: TaskRunnerConfig, shard_workers: int) -> TaskRunner:
    """A fresh (not yet started) Prefect task runner for ``cfg``.

    On a cluster each worker process loads the model once and runs ``shard_workers`` shards at a
    time whose requests share its batches, as the threads runner does in the flow's own process.
    """
    if cfg.kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        # More threads than shards at a time: the extra ones do Prefect's per-task API calls
        # (create the task run, set Running, set Completed: ~0.5 s a task against a local SQLite
        # server) while other shards work; :func:`~.shards.shard_slot` keeps the shards themselves
        # to ``shard_workers`` at a time.
        return ThreadPoolTaskRunner(max_workers=shard_workers + SPARE_THREADS)
    if cfg.kind == "dask":
        try:
            from prefect_dask.task_runners import DaskTaskRunner
        except ImportError:
            raise MissingExtraError("prefect-dask", "dask", "the dask task runner") from None
        if cfg.address:
            return DaskTaskRunner(address=cfg.address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": cfg.workers,
                "threads_per_worker": shard_workers,
                "processes": cfg.processes,
                "dashboard_address": None,  # no web UI port to collide with on shared machines
            }
        )
    try:
        from prefect_ray import RayTaskRunner
    except ImportError:
        raise MissingExtraError("prefect-ray", "ray", "the ray task runner") from None
    ray: TaskRunner = RayTaskRunner(address=cfg.address) if cfg.address else RayTaskRunner()
    return ray
