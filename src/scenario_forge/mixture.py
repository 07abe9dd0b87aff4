"""A mixture folder on disk: ``mixture.json`` plus one ``<split>.parquet`` per split.

Every split file holds :class:`~scenario_forge.records.MixtureRow` rows with a fixed schema, so the
mixer, the trainer, the evaluation and the publisher read and write them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from .atomic import atomic_write_text
from .errors import ConfigError
from .parquet import features, read_records, records_table, write_table
from .records import MixtureRow

META_FILE = "mixture.json"
#: Every loaded scenario the mix left out of all splits, with its stage and reason (Reject rows).
DROPPED_FILE = "dropped.parquet"


class MixtureMeta(BaseModel):
    """``mixture.json``: what the mixture is and how it was built."""

    model_config = ConfigDict(extra="allow")

    recipe: dict[str, Any]
    seed: int
    splits: dict[str, int] = Field(description="rows per split file")
    train_split: str = "train"
    sources: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    trained_domains: list[str] | None = Field(
        default=None,
        description="domains of the beneficial training rows actually drawn (the arm's beneficial share; "
        "[] for a standard-only arm); the evaluation's transfer domains are the others. "
        "None: a mixture written before this field (the evaluation reads the train split instead)",
    )
    counts: dict[str, Any] = Field(
        default_factory=dict, description="scenarios loaded = train beneficial + held out + dropped, by split and reason"
    )
    ratio: dict[str, Any] = Field(default_factory=dict, description="the beneficial share asked for and built (exact p/q)")
    spread_check: dict[str, Any] = Field(default_factory=dict, description="the rubric spread check's summary")
    contamination: dict[str, Any] = Field(default_factory=dict, description="the train vs held-out near-duplicate guard's report")
    persistence: dict[str, Any] | None = Field(default=None, description="the persistence probes; None: the recipe has none")
    quality: dict[str, Any] = Field(default_factory=dict, description="the source runs' quality figures")
    files: dict[str, str] = Field(default_factory=dict, description="other files in the folder (dropped.parquet)")
    created_at: str | None = None


def mixture_features() -> Any:
    """The split files' schema as ``datasets.Features``, derived from :class:`MixtureRow`."""
    return features(MixtureRow)


def mixture_table(rows: Iterable[MixtureRow]) -> pa.Table:
    return records_table(MixtureRow, rows)


def write_split(folder: Path, split: str, rows: Iterable[MixtureRow] | pa.Table) -> int:
    """Write one split atomically; returns its row count."""
    return write_table(folder / f"{split}.parquet", rows if isinstance(rows, pa.Table) else mixture_table(rows))


def write_meta(folder: Path, meta: MixtureMeta) -> None:
    atomic_write_text(folder / META_FILE, meta.model_dump_json(indent=2))


def read_meta(folder: Path) -> MixtureMeta:
    """The folder's metadata; a one-line :class:`ConfigError` if the folder is not a mixture."""
    path = Path(folder) / META_FILE
    if not Path(folder).is_dir():
        raise ConfigError(f"mixture folder not found: {folder}")
    if not path.is_file():
        raise ConfigError(f"{folder} is not a mixture folder (no {META_FILE}); build one with `scenario-forge mix`")
    try:
        meta = MixtureMeta.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a valid mixture description: {type(exc).__name__}") from None
    for split in meta.splits:
        if not (Path(folder) / f"{split}.parquet").is_file():
            raise ConfigError(f"{folder} is missing split file {split}.parquet listed in {META_FILE}")
    return meta


def read_split(folder: Path, split: str) -> list[MixtureRow]:
    meta = read_meta(folder)
    if split not in meta.splits:
        raise ConfigError(f"mixture {folder} has no split {split!r}; it has: {', '.join(meta.splits)}")
    return read_records(Path(folder) / f"{split}.parquet", MixtureRow)


def trained_domains(folder: Path, meta: MixtureMeta | None = None) -> list[str]:
    """The domains the mixture's beneficial training rows come from (sorted): ``mixture.json``'s
    ``trained_domains``, or, for a mixture written before that field, the domains of the train
    split's ``source == "beneficial"`` rows (only those two columns are read)."""
    meta = meta or read_meta(folder)
    if meta.trained_domains is not None:
        return sorted(meta.trained_domains)
    table = pq.read_table(Path(folder) / f"{meta.train_split}.parquet", columns=["source", "domain"])
    return sorted({d for s, d in zip(table.column("source").to_pylist(), table.column("domain").to_pylist()) if s == "beneficial" and d})
