"""The publish job as two stage functions (build the folder, push it) and their direct composition."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

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


def run_publish(config: PublishConfig) -> PublishResult:
    return push_stage(config, build_stage(config))
