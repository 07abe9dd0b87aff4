"""Parquet schemas of the files a run writes, as Hugging Face ``Features``.

Files are written with these schemas (their Arrow form carries the ``datasets`` metadata), so
``datasets.load_dataset("parquet", ...)`` and polars both read them back with the right types.
Provenance dictionaries (sampling, template hashes) are stored as JSON strings.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .records import Reject, Scenario


@cache
def scenario_features() -> Any:
    from datasets import Features, List, Value

    s = Value("string")
    return Features(
        {
            "id": s,
            "index": Value("int64"),
            "domain": s,
            "trait": s,
            "facet": s,
            "pressure": s,
            "persona": s,
            "shape": s,
            "flaw": s,
            "flawed_turn_index": Value("int64"),
            "operator_persona": Value("bool"),
            "brief": {"situation": s, "user_goal": s, "key_facts": s, "trap": s},
            "messages": List({"role": s, "content": s}),
            "rubric": List({"criterion": s, "points": Value("int64"), "tags": List(s)}),
            "provenance": {
                "run_id": s,
                "generator": s,
                "backend": s,
                "model": s,
                "sampling": s,
                "templates": s,
                "taxonomy_name": s,
                "taxonomy_version": s,
                "taxonomy_hash": s,
                "plan_seed": Value("int64"),
            },
            "quality": {
                "realism": Value("float64"),
                "tests_trait": Value("float64"),
                "gradable": Value("float64"),
                "score": Value("float64"),
                "judge_model": s,
            },
        }
    )


@cache
def reject_features() -> Any:
    from datasets import Features, Value

    s = Value("string")
    return Features(
        {k: s for k in ("id", "run_id", "stage", "reason", "detail", "domain", "trait", "pressure", "raw")}
    )


def scenario_row(scenario: Scenario) -> dict[str, Any]:
    row = scenario.model_dump(mode="json")
    prov = row["provenance"]
    prov["sampling"] = json.dumps(prov["sampling"], sort_keys=True)
    prov["templates"] = json.dumps(prov["templates"], sort_keys=True)
    return row


def scenario_from_row(row: dict[str, Any]) -> Scenario:
    row = dict(row)
    prov = dict(row["provenance"])
    prov["sampling"] = json.loads(prov["sampling"])
    prov["templates"] = json.loads(prov["templates"])
    row["provenance"] = prov
    if row.get("quality") is not None and all(v is None for v in row["quality"].values()):
        row["quality"] = None
    return Scenario.model_validate(row)


def _table(rows: Sequence[dict[str, Any]], features: Any) -> pa.Table:
    schema = features.arrow_schema
    if not rows:
        return schema.empty_table()
    return pa.Table.from_pylist(list(rows), schema=schema)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Write through a temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_scenarios(path: Path, scenarios: Iterable[Scenario]) -> int:
    rows = [scenario_row(s) for s in scenarios]
    table = _table(rows, scenario_features())
    atomic_write_bytes(path, lambda tmp: pq.write_table(table, tmp))
    return len(rows)


def write_rejects(path: Path, rejects: Iterable[Reject]) -> int:
    rows = [r.model_dump(mode="json") for r in rejects]
    table = _table(rows, reject_features())
    atomic_write_bytes(path, lambda tmp: pq.write_table(table, tmp))
    return len(rows)


def read_scenarios(path: Path) -> list[Scenario]:
    return [scenario_from_row(r) for r in pq.read_table(path).to_pylist()]


def read_rejects(path: Path) -> list[Reject]:
    return [Reject.model_validate(r) for r in pq.read_table(path).to_pylist()]
