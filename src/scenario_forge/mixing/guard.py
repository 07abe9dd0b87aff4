"""The contamination guard: no held-out row may be a near-duplicate of a training row.

Held-out splits only show whether training generalised if none of their scenarios was (nearly)
trained on. We embed the beneficial training scenarios and every held-out scenario with the
curation embedder (:func:`~scenario_forge.curation.embed.scenario_text`, unit vectors) and search
all train x held-out pairs at the curation threshold with
:func:`~scenario_forge.curation.dedup.cross_split_pairs`. Every held-out scenario in such a pair
is removed from its split (and written to ``dropped.parquet`` with the reason); the search is run
again on what is left and must find nothing. Standard rows (verifiable tasks) are not scenarios and
are not compared. :func:`guard_stage` is the mix job's stage; :func:`guard_heldout` the check itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from .. import progress
from ..curation.dedup import cross_split_pairs
from ..curation.embed import scenario_text
from ..errors import ForgeError
from ..records import Reject, Scenario
from .plan import MixPlan, drop
from .selection import TrainSelection


class Guarded(BaseModel):
    """The held-out splits (scenario ids) left after the guard, what it removed, and its report."""

    model_config = ConfigDict(extra="forbid")

    heldout: dict[str, list[str]]
    dropped: list[Reject]
    report: dict[str, Any]


class TextEmbedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def make_embedder(model: str | None, cache_dir: Path | None) -> TextEmbedder:
    """The curation embedder (tests replace this function to inject a small fake)."""
    from ..curation.embed import Embedder

    return Embedder(model=model, cache_dir=cache_dir)


def guard_heldout(
    train: Sequence[Scenario],
    heldout: dict[str, list[Scenario]],
    embedder: TextEmbedder | None,
    threshold: float,
) -> tuple[dict[str, list[Scenario]], dict[str, list[tuple[Scenario, str]]], dict[str, Any]]:
    """``(clean held-out splits, removed per split with the train id it duplicates, report)``."""
    names = [n for n in heldout for _ in heldout[n]]
    flat = [s for n in heldout for s in heldout[n]]
    report: dict[str, Any] = {
        "checked": True,
        "threshold": threshold,
        "train_rows": len(train),
        "heldout_rows": len(flat),
        "pairs": 0,
        "removed": {n: 0 for n in heldout},
        "remaining_pairs": 0,
    }
    if not train or not flat:
        return heldout, {n: [] for n in heldout}, report
    if embedder is None:
        raise ValueError("the contamination guard needs an embedder when there are rows to compare")
    x = embedder.embed([scenario_text(s) for s in flat])
    y = embedder.embed([scenario_text(s) for s in train])
    # (held-out, train) pairs; exact up to 2e9 vector pairs (curation.dedup.cross_split_pairs).
    pairs = cross_split_pairs(y, x, threshold)[:, ::-1]
    report["pairs"] = len(pairs)
    first_match: dict[int, int] = {}
    for i, j in pairs.tolist():
        first_match.setdefault(i, j)
    removed: dict[str, list[tuple[Scenario, str]]] = {n: [] for n in heldout}
    clean: dict[str, list[Scenario]] = {n: [] for n in heldout}
    kept_idx: list[int] = []
    for i, (name, s) in enumerate(zip(names, flat)):
        if i in first_match:
            removed[name].append((s, train[first_match[i]].id))
        else:
            clean[name].append(s)
            kept_idx.append(i)
    report["removed"] = {n: len(v) for n, v in removed.items()}
    remaining = cross_split_pairs(y, x[kept_idx], threshold) if kept_idx else np.zeros((0, 2))
    report["remaining_pairs"] = len(remaining)
    if len(remaining):
        raise ForgeError(f"contamination guard: {len(remaining)} train/held-out near-duplicate pairs remain")  # a bug
    return clean, removed, report


def guard_stage(plan: MixPlan, selection: TrainSelection) -> Guarded:
    """Remove held-out scenarios that nearly duplicate a selected training scenario."""
    config = plan.config
    progress.report("mix", step="contamination guard", heldout=sum(len(v) for v in plan.heldout.values()))
    held = plan.held()
    train = [plan.scenarios[i] for i in selection.train]
    needs = bool(train) and any(held.values())
    embedder = make_embedder(config.embedding_model, config.cache_root() / "embeddings") if needs else None
    clean, removed, report = guard_heldout(train, held, embedder, config.threshold)
    if embedder is not None:
        report["embedding_model"] = getattr(embedder, "model_id", type(embedder).__name__)
    report["compared_with"] = "selected beneficial scenarios" + (" (sized like the beneficial arm)" if plan.resolved.recipe.standard_only else "")
    dropped = [
        drop(s, "near_duplicate_of_train", f"{name}: near-duplicate of training scenario {tid}")
        for name, items in removed.items()
        for s, tid in items
    ]
    return Guarded(heldout={n: [s.id for s in v] for n, v in clean.items()}, dropped=dropped, report=report)
