"""The output store: one folder per run, resumable shard by shard.

``OUT/RUN_ID/``::

    .scenario-forge.lock  the one-writer lock (``runlock``): its holder's pid@host
    run.json              the run's fingerprint, written first; a different run may not reuse the folder
    shards/NNNNN-KEY.*    per shard: scenarios and rejects (parquet) and a ``.done.json`` marker
    generated.parquet     every generated scenario, before curation
    scenarios.parquet     the scenarios kept after curation
    rejects.parquet       every dropped row with its stage and reason
    manifest.json         config, counts, provenance, timings, token usage

Shard files are written through a temp file and renamed, and the ``.done.json`` marker goes last,
so a crash leaves either a finished shard or none. A shard's key hashes its seeds, the prompt
templates, the model, the sampling parameters and the taxonomy: a rerun skips exactly the shards
whose inputs have not changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .backends.base import StageUsage
from .errors import ConfigError
from .records import Reject, Scenario, ScenarioSeed
from .runlock import LOCK_NAME
from .atomic import atomic_write_text
from .schema import read_rejects, read_scenarios, write_rejects, write_scenarios


class ShardSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int
    key: str
    seeds: list[ScenarioSeed]

    @property
    def name(self) -> str:
        return f"{self.index:05d}-{self.key}"


class ShardSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    key: str
    planned: int
    kept: int
    rejected: dict[str, int] = Field(default_factory=dict)
    usage: dict[str, StageUsage] = Field(default_factory=dict)
    wall_s: float = 0.0
    resumed: bool = False


class RunStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- well-known paths ----------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"

    @property
    def generated_path(self) -> Path:
        return self.root / "generated.parquet"

    @property
    def scenarios_path(self) -> Path:
        return self.root / "scenarios.parquet"

    @property
    def rejects_path(self) -> Path:
        return self.root / "rejects.parquet"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    # -- claiming the folder -------------------------------------------------------------------
    @classmethod
    def check(cls, root: Path, fingerprint: dict[str, Any]) -> bool:
        """Whether ``root`` already holds this run (True) or is free (False); read-only.

        Raises :class:`ConfigError` if it holds a different run or other files.
        """
        store = cls(root)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"output path {root} exists and is not a folder")
        if store.run_json.is_file():
            try:
                existing = json.loads(store.run_json.read_text(encoding="utf-8")).get("fingerprint", {})
            except json.JSONDecodeError:
                raise ConfigError(f"{store.run_json} is not valid JSON; not touching {root}") from None
            if existing != fingerprint:
                diff = sorted(k for k in set(fingerprint) | set(existing) if fingerprint.get(k) != existing.get(k))
                raise ConfigError(
                    f"output folder {root} already holds a different run (differs in: {', '.join(diff)}); "
                    "choose another --run-id or --out"
                )
            return True
        if root.is_dir() and any(p.name not in (".gitkeep", LOCK_NAME) for p in root.iterdir()):
            raise ConfigError(
                f"output folder {root} is not empty and holds no scenario-forge run; choose another --run-id or --out"
            )
        return False

    @classmethod
    def open(cls, root: Path, fingerprint: dict[str, Any]) -> RunStore:
        """Create the run folder, or reopen it if it holds this same run (see :meth:`check`)."""
        if not cls.check(root, fingerprint):
            root.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cls(root).run_json, json.dumps({"fingerprint": fingerprint}, indent=2, sort_keys=True))
        return cls(root)

    # -- shards ----------------------------------------------------------------------------------
    def _shard_files(self, spec: ShardSpec) -> tuple[Path, Path, Path]:
        base = self.shards_dir / spec.name
        return (
            base.with_suffix(".scenarios.parquet"),
            base.with_suffix(".rejects.parquet"),
            base.with_suffix(".done.json"),
        )

    def finished(self, spec: ShardSpec) -> ShardSummary | None:
        """The summary of a finished shard, or None if it must be (re)generated."""
        scen, rej, done = self._shard_files(spec)
        if not (done.is_file() and scen.is_file() and rej.is_file()):
            return None
        try:
            summary = ShardSummary.model_validate_json(done.read_text(encoding="utf-8"))
        except ValueError:
            return None
        return summary if summary.key == spec.key else None

    def save_shard(self, spec: ShardSpec, scenarios: list[Scenario], rejects: list[Reject], summary: ShardSummary) -> None:
        scen, rej, done = self._shard_files(spec)
        write_scenarios(scen, scenarios)
        write_rejects(rej, rejects)
        atomic_write_text(done, summary.model_dump_json(indent=2))

    def shard_scenarios(self, specs: list[ShardSpec]) -> list[Scenario]:
        out: list[Scenario] = []
        for spec in specs:
            out.extend(read_scenarios(self._shard_files(spec)[0]))
        return sorted(out, key=lambda s: s.index)

    def shard_rejects(self, specs: list[ShardSpec]) -> list[Reject]:
        out: list[Reject] = []
        for spec in specs:
            out.extend(read_rejects(self._shard_files(spec)[1]))
        return out
