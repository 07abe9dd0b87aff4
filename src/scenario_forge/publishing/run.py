"""The publish job, declared once: :data:`PUBLISH_STEPS` (build the Hub-layout folder, push it)
over one state record, :class:`PublishJob`.

:func:`run_publish` runs the list in this process; the Prefect ``publish`` flow
(``flows/publish.py``) runs the same list with each step a task of the same name
(:func:`publish_with` is the one wrapper both use).

>>> from scenario_forge.steps import step_names
>>> step_names(PUBLISH_STEPS)
['build-hub-folder', 'push-to-hub']
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from .. import runlock
from ..steps import AnyStep, Runner, Step, run_steps
from .build import PublishResult, build_hub_folder
from .config import PublishConfig
from .push import push_folder


def build_stage(config: PublishConfig) -> PublishResult:
    """Build into ``--local``, or into a temporary folder when only pushing."""
    if config.local is not None:
        return build_hub_folder(config)
    tmp = Path(tempfile.mkdtemp(prefix="scenario-forge-publish-"))
    return build_hub_folder(config, tmp / "dataset")


def push_stage(config: PublishConfig, result: PublishResult) -> PublishResult:
    """Upload the built folder when ``--repo-id`` is set; a temporary build folder is removed after."""
    if config.repo_id is None:
        return result
    try:
        result.url = push_folder(config, result.folder)
    finally:
        if config.local is None:
            shutil.rmtree(result.folder.parent, ignore_errors=True)
    return result


@dataclass(frozen=True)
class PublishJob:
    """The publish job's state: its config, then the built (and maybe pushed) folder."""

    config: PublishConfig
    result: PublishResult | None = None

    def need_result(self) -> PublishResult:
        if self.result is None:
            raise RuntimeError("publish step order: the folder is not built yet")  # a wrong PUBLISH_STEPS
        return self.result


def build_step(job: PublishJob) -> PublishJob:
    return replace(job, result=build_stage(job.config))


def push_step(job: PublishJob) -> PublishJob:
    return replace(job, result=push_stage(job.config, job.need_result()))


#: The publish job: the one list both runners run (the names are the Prefect task names).
PUBLISH_STEPS: list[AnyStep[PublishJob]] = [
    Step("build-hub-folder", build_step, needs=("config",), gives=("result",)),
    Step("push-to-hub", push_step, needs=("config", "result"), gives=("result",)),
]


@contextmanager
def _writer(config: PublishConfig) -> Iterator[None]:
    """One writer per ``--local`` folder (re-entrant); a push-only publish builds in a fresh temp folder."""
    if config.local is None:
        yield
        return
    with runlock.hold(runlock.sibling_lock(config.local), f"publish folder {config.local}"):
        yield


def publish_with(config: PublishConfig, runner: Runner[PublishJob]) -> PublishResult:
    """Run :data:`PUBLISH_STEPS` with ``runner``, holding the ``--local`` folder's lock."""
    with _writer(config):
        return runner(PUBLISH_STEPS, PublishJob(config=config)).need_result()


def run_publish(config: PublishConfig) -> PublishResult:
    """The publish job without an orchestrator: :data:`PUBLISH_STEPS`, called in order in this process."""
    return publish_with(config, run_steps)
