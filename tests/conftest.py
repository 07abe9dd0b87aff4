"""Shared fixtures. Tests run offline: hub access is disabled and Prefect stays local and quiet."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("DISTILABEL_CACHE_DIR", "/tmp/scenario-forge-tests-distilabel")
# judge qualifications (scenario-forge judge check) land in a fresh folder, never the user's cache
os.environ.setdefault("SCENARIO_FORGE_JUDGES_DIR", tempfile.mkdtemp(prefix="scenario-forge-tests-judges-"))

from scenario_forge.backends.factory import use_backend  # noqa: E402
from scenario_forge.backends.fake import FakeBackend  # noqa: E402
from scenario_forge.resources import resource_dir  # noqa: E402
from scenario_forge.taxonomy.loader import load_taxonomy  # noqa: E402

from helpers import FAKE  # noqa: E402


@pytest.fixture(scope="session")
def taxonomy():
    return load_taxonomy()


@pytest.fixture
def taxonomy_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped taxonomy folder."""
    dst = tmp_path / "taxonomy"
    shutil.copytree(resource_dir("taxonomy"), dst)
    return dst


@pytest.fixture
def prompts_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "prompts"
    shutil.copytree(resource_dir("prompts"), dst)
    return dst


@pytest.fixture
def fake_backend() -> Iterator[FakeBackend]:
    backend = FakeBackend()
    with use_backend(FAKE, backend):
        yield backend
