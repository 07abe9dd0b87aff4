"""The ``publish`` flow: build the Hub-layout folder, then push it (one task each)."""

from __future__ import annotations

from typing import Any

from flows import _prefect_env

_prefect_env.apply()

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from scenario_forge import runlock  # noqa: E402
from scenario_forge.publishing.build import PublishResult  # noqa: E402
from scenario_forge.publishing.config import PublishConfig  # noqa: E402
from scenario_forge.publishing.run import build_stage, push_stage  # noqa: E402


@task(name="build-hub-folder", cache_policy=NO_CACHE)
def build_task(config: PublishConfig) -> PublishResult:
    return build_stage(config)


@task(name="push-to-hub", cache_policy=NO_CACHE, retries=0)
def push_task(config: PublishConfig, result: PublishResult) -> dict[str, Any]:
    return push_stage(config, result).summary()


@flow(name="publish", validate_parameters=True)
def publish_flow(config: PublishConfig) -> dict[str, Any]:
    """Publish a run or a mixture; returns the folder, its configs and the repo URL if pushed."""
    if config.local is None:
        return push_task(config, build_task(config))
    # One writer per --local folder (re-entrant: the CLI that started this flow already holds it).
    with runlock.hold(runlock.sibling_lock(config.local), f"publish folder {config.local}"):
        return push_task(config, build_task(config))
