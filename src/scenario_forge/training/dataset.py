"""Mixture rows as the dataset TRL's GRPOTrainer reads.

TRL wants a conversational ``prompt`` column (``[{"role", "content"}, ...]``) and hands every other
column to the reward function as a keyword argument. We keep the columns the router needs
(``reward_type``, ``rubric`` as JSON text, ``answer``) and the ones it logs by (``id``, ``source``,
``trait``, ``domain``). The rubric travels as JSON text so every row has the same column type
whatever its rubric length, including standard rows with none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..mixture import read_meta, read_split
from ..records import MixtureRow

COLUMNS = ("prompt", "id", "source", "reward_type", "rubric", "answer", "trait", "domain", "task")


def training_rows(folder: Path, split: str | None = None, max_rows: int | None = None) -> tuple[str, list[MixtureRow]]:
    """The rows to train on (``split`` or the mixture's ``train_split``), checked before any model loads."""
    meta = read_meta(folder)
    name = split or meta.train_split
    if name != meta.train_split and name.startswith(("heldout", "persistence_")):
        raise ConfigError(f"split {name!r} of {folder} is held out for evaluation; train on {meta.train_split!r}")
    rows = read_split(folder, name)
    if max_rows is not None:
        rows = rows[:max_rows]
    if not rows:
        raise ConfigError(f"mixture {folder}: split {name!r} has no rows to train on")
    for row in rows:
        problem = row_problem(row)
        if problem:
            raise ConfigError(f"mixture {folder}: row {row.id} of split {name!r} {problem}")
    return name, rows


def row_problem(row: MixtureRow) -> str | None:
    """Why a row cannot be trained on (``None`` if it can)."""
    if not row.prompt or row.prompt[-1].role != "user":
        return "has no prompt ending with a user turn"
    if row.reward_type == "rubric" and not any(c.points > 0 for c in row.rubric):
        return "has reward_type 'rubric' but no positive rubric criterion"
    if row.reward_type == "exact_match" and not (row.answer or "").strip():
        return "has reward_type 'exact_match' but no answer"
    return None


def row_record(row: MixtureRow) -> dict[str, Any]:
    return {
        "prompt": [{"role": m.role, "content": m.content} for m in row.prompt],
        "id": row.id,
        "source": row.source,
        "reward_type": row.reward_type,
        "rubric": json.dumps([c.model_dump() for c in row.rubric]),
        "answer": row.answer,
        "trait": row.trait,
        "domain": row.domain,
        "task": row.task,
    }


def to_dataset(rows: Sequence[MixtureRow]) -> Any:
    """A ``datasets.Dataset`` with :data:`COLUMNS`."""
    from datasets import Dataset

    records = [row_record(r) for r in rows]
    return Dataset.from_dict({c: [rec[c] for rec in records] for c in COLUMNS})
