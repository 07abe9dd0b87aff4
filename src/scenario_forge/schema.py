"""The run's two parquet files: scenarios (``generated``/``scenarios.parquet``, shards) and rejects.

Their columns are derived from :class:`~scenario_forge.records.Scenario` and
:class:`~scenario_forge.records.Reject` by :mod:`scenario_forge.parquet`; provenance dictionaries
(sampling, template hashes) are stored as JSON strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .parquet import read_records, write_records
from .records import Reject, Scenario


def write_scenarios(path: Path, scenarios: Iterable[Scenario]) -> int:
    """Write a scenarios file atomically; returns its row count."""
    return write_records(path, Scenario, scenarios)


def write_rejects(path: Path, rejects: Iterable[Reject]) -> int:
    """Write a rejects file atomically; returns its row count."""
    return write_records(path, Reject, rejects)


def read_scenarios(path: Path) -> list[Scenario]:
    return read_records(path, Scenario)


def read_rejects(path: Path) -> list[Reject]:
    return read_records(path, Reject)
