"""The output store's near-duplicate index: the embedding of every scenario each run kept.

``OUT/.index/<embedding model>/<run folder>.npz`` holds one run's kept ids and unit vectors.
One file per run makes the update atomic (a run's segment is replaced through a temp file and a
rename when the run is curated) and makes re-curation simple: a run is deduplicated against every
*other* run's segment, never against its own. A segment whose run folder no longer has a
``scenarios.parquet`` (a deleted run) is ignored and reported as stale. Vectors from different
embedding models are never compared: each model has its own folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes


@dataclass
class IndexView:
    """The kept scenarios of other runs: ids, their runs, and their vectors (row-aligned)."""

    ids: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    stale: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


class StoreIndex:
    def __init__(self, store: Path, model_id: str) -> None:
        self.store = store
        self.model_id = model_id
        self.folder = store / ".index" / re.sub(r"[^A-Za-z0-9._-]+", "-", model_id)

    def segment(self, run: str) -> Path:
        return self.folder / f"{run}.npz"

    def runs(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.npz")) if self.folder.is_dir() else []

    def load(self, exclude: set[str] | frozenset[str] = frozenset()) -> IndexView:
        view = IndexView()
        parts: list[np.ndarray] = []
        for run in self.runs():
            if run in exclude:
                continue
            if not (self.store / run / "scenarios.parquet").is_file():
                view.stale.append(run)
                continue
            with np.load(self.segment(run), allow_pickle=False) as data:
                ids = data["ids"].tolist()
                vectors = data["vectors"].astype(np.float32)
            if not ids:  # a run that kept nothing: its (0, 0) segment has no dimension to join
                continue
            view.ids.extend(ids)
            view.run_ids.extend([run] * len(ids))
            parts.append(vectors)
        if parts:
            view.vectors = np.ascontiguousarray(np.concatenate(parts))
        return view

    def save(self, run: str, ids: list[str], vectors: np.ndarray) -> Path:
        """Replace ``run``'s segment with these kept scenarios (atomically)."""
        if len(ids) != len(vectors):
            raise ValueError("one vector per id")
        path = self.segment(run)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, ids=np.array(ids, dtype=str), vectors=np.asarray(vectors, dtype=np.float32))

        atomic_write_bytes(path, write)
        return path
