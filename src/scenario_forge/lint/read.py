"""Stream scenario rows out of the files ``scenario-forge lint`` accepts, checking each row.

Accepted inputs:

* JSONL (any extension but ``.parquet``): one JSON object per line with at least ``id``,
  ``messages`` (a list of ``{role, content}``) and ``rubric`` (a list of ``{criterion, points}``);
  ``flaw``, ``flawed_turn_index``, ``shape``, ``domain`` and ``trait`` are used when present.
* The project's ``scenarios.parquet`` / ``generated.parquet`` (or any parquet with those columns).
* A run folder (``OUT/RUN_ID``: its ``scenarios.parquet``, else ``generated.parquet``).
* A published dataset folder (``data/<config>/*.parquet``): the configs holding scenarios
  (``messages`` + ``rubric``) or mixture rows (``prompt`` + ``rubric``; only the beneficial rows,
  as standard-task rows carry no rubric). Export configs (``trl``, ``verl``) repeat those rows in
  another layout and are skipped.

Rows are read lazily (JSONL line by line, parquet one row group at a time), so memory stays flat
whatever the file's size. A bad row raises :class:`LintInputError` naming the file and the row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ForgeError

ROLES = frozenset({"system", "user", "assistant"})
_BATCH = 2048
_SCENARIO_COLUMNS = ("id", "messages", "rubric", "flaw", "flawed_turn_index", "shape", "domain", "trait")
_EXPORT_COLUMNS = frozenset({"rubric_rar", "reward_model", "extra_info"})


class LintInputError(ForgeError):
    """A file or row lint cannot read: the message names the file and the row."""


@dataclass(frozen=True)
class Row:
    """One scenario to lint, as read from a file (``number`` is 1-based within its file)."""

    source: str
    number: int
    id: str
    messages: list[tuple[str, str]]
    rubric: list[tuple[str, int]]
    flaw: str | None = None
    flawed_turn_index: int | None = None
    shape: str | None = None
    domain: str | None = None
    trait: str | None = None


def check_row(data: Any, source: str, number: int, *, messages_key: str = "messages") -> Row:
    """Validate one raw row; returns a :class:`Row` or raises :class:`LintInputError`.

    >>> check_row({"id": "a", "messages": [{"role": "user", "content": "hi"}], "rubric": []}, "f.jsonl", 1).messages
    [('user', 'hi')]
    >>> check_row({"id": "a", "messages": [{"role": "robot", "content": "hi"}], "rubric": []}, "f.jsonl", 3)
    Traceback (most recent call last):
    ...
    scenario_forge.lint.read.LintInputError: f.jsonl: row 3: message 0 has role 'robot' (expected system, user or assistant)
    """
    where = f"{source}: row {number}"
    if not isinstance(data, dict):
        raise LintInputError(f"{where}: expected a JSON object, got {type(data).__name__}")
    for key in ("id", messages_key, "rubric"):
        if data.get(key) is None:
            raise LintInputError(f"{where}: missing {key!r}")
    rid = data["id"]
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise LintInputError(f"{where}: 'id' must be a string")
    raw_messages = data[messages_key]
    if not isinstance(raw_messages, list):
        raise LintInputError(f"{where}: {messages_key!r} must be a list of {{role, content}}")
    messages: list[tuple[str, str]] = []
    for i, m in enumerate(raw_messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise LintInputError(f"{where}: message {i} must be an object with 'role' and 'content'")
        role, content = m["role"], m["content"]
        if role not in ROLES:
            raise LintInputError(f"{where}: message {i} has role {role!r} (expected system, user or assistant)")
        if not isinstance(content, str):
            raise LintInputError(f"{where}: message {i} content is {type(content).__name__}, not a string")
        messages.append((role, content))
    raw_rubric = data["rubric"]
    if not isinstance(raw_rubric, list):
        raise LintInputError(f"{where}: 'rubric' must be a list of {{criterion, points}}")
    rubric: list[tuple[str, int]] = []
    for i, c in enumerate(raw_rubric):
        if not isinstance(c, dict) or "criterion" not in c or "points" not in c:
            raise LintInputError(f"{where}: rubric item {i} must be an object with 'criterion' and 'points'")
        text, points = c["criterion"], c["points"]
        if not isinstance(text, str):
            raise LintInputError(f"{where}: rubric item {i} criterion is {type(text).__name__}, not a string")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points != int(points):
            raise LintInputError(f"{where}: rubric item {i} points must be a whole number, got {points!r}")
        rubric.append((text, int(points)))
    index = data.get("flawed_turn_index")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise LintInputError(f"{where}: 'flawed_turn_index' must be an integer")
    return Row(
        source=source, number=number, id=str(rid), messages=messages, rubric=rubric,
        flaw=_text(data.get("flaw")), flawed_turn_index=index, shape=_text(data.get("shape")),
        domain=_text(data.get("domain")), trait=_text(data.get("trait")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def iter_jsonl(path: Path) -> Iterator[Row]:
    """Rows of a JSONL file, one line at a time (blank lines skipped)."""
    source = str(path)
    seen = 0
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
                what = "not parquet or JSONL" if seen == 0 else "invalid JSON"
                detail = getattr(exc, "msg", None) or type(exc).__name__
                raise LintInputError(f"{source}: row {number}: {what} ({detail})") from None
            seen += 1
            yield check_row(data, source, number)
    if seen == 0:
        raise LintInputError(f"{source}: empty file (no rows)")


def iter_parquet(path: Path, *, published: bool = False) -> Iterator[Row]:
    """Rows of a parquet file, one row group batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = str(path)
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:  # what pyarrow raises for a file that is not parquet
        raise LintInputError(f"{source}: not a parquet file ({' '.join(str(exc).split())[:120]})") from None
    names = set(pf.schema_arrow.names)
    messages_key = "messages" if "messages" in names else "prompt"
    if messages_key not in names or "rubric" not in names or "id" not in names:
        missing = [k for k in ("id", "messages", "rubric") if k not in names and not (k == "messages" and "prompt" in names)]
        raise LintInputError(f"{source}: row 1: missing {missing[0]!r} (columns: {', '.join(sorted(names))[:200]})")
    mixture = messages_key == "prompt"
    columns = [c for c in (*_SCENARIO_COLUMNS, "prompt", "source") if c in names]
    if pf.metadata.num_rows == 0:
        raise LintInputError(f"{source}: empty file (no rows)")
    number = 0
    for batch in pf.iter_batches(batch_size=_BATCH, columns=columns):
        for data in batch.to_pylist():
            number += 1
            if mixture:
                if data.get("source") == "standard":
                    continue  # standard-task rows are graded by their answer, not a rubric
                # mixture rows do not carry the flawed turn's index: the flaw check needs it
                data = {**data, "shape": None}
            yield check_row(data, source, number, messages_key=messages_key)


def published_files(folder: Path) -> list[Path]:
    """The parquet files of a published dataset folder that hold scenarios or mixture rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = []
    for path in sorted((folder / "data").glob("*/*.parquet")):
        try:
            names = set(pq.read_schema(path).names)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise LintInputError(f"{path}: not a parquet file ({' '.join(str(exc).split())[:120]})") from None
        if names & _EXPORT_COLUMNS:
            continue
        if "rubric" in names and ("messages" in names or "prompt" in names):
            out.append(path)
    return out


def input_files(path: Path) -> list[Path]:
    """The files a command-line argument stands for (a file, a run folder, a published folder)."""
    if not path.exists():
        raise LintInputError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    if (path / "data").is_dir():
        files = published_files(path)
        if not files:
            raise LintInputError(f"{path}: a dataset folder with no scenario or mixture parquet under data/")
        return files
    for name in ("scenarios.parquet", "generated.parquet"):
        if (path / name).is_file():
            return [path / name]
    raise LintInputError(f"{path}: a folder that is neither a run (scenarios.parquet) nor a published dataset (data/)")


def iter_file(path: Path) -> Iterator[Row]:
    """Rows of one file: parquet by its magic bytes (or extension), JSONL otherwise."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if not head:
        raise LintInputError(f"{path}: empty file (no rows)")
    if head == b"PAR1" or path.suffix == ".parquet":
        yield from iter_parquet(path)
    else:
        yield from iter_jsonl(path)


def iter_rows(paths: list[Path]) -> Iterator[Row]:
    """Every row of every input, lazily, in order."""
    for path in paths:
        for file in input_files(path):
            yield from iter_file(file)
