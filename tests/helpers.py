"""Helpers shared by test modules (import as ``from helpers import ...``)."""

from __future__ import annotations

from pathlib import Path

from scenario_forge.config import BackendConfig, GenerateConfig

REPO = Path(__file__).resolve().parent.parent
FAKE = BackendConfig(kind="fake")


def fake_config(tmp_path: Path, **overrides) -> GenerateConfig:
    """A small generate config on the fake backend, without curation unless asked."""
    data = {"out": tmp_path / "out", "backend": FAKE, "curate": False, "n": 6, "domains": ["health"]}
    data.update(overrides)
    return GenerateConfig(**data)
