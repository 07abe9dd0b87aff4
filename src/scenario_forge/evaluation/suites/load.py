"""Read a suite: a local file (JSONL, a JSON list, Parquet) or a Hugging Face dataset id
(``ORG/NAME`` or ``ORG/NAME:SPLIT``, split ``test`` by default, through ``datasets.load_dataset``).

The adapter is picked from the rows' shape (the keys of each row):

=====================================  ===================
keys                                   adapter
=====================================  ===================
``prompt`` + ``rubrics``               ``rubric`` (HealthBench)
``question`` + ``choices`` + ``answer``  ``multiple_choice``
``question`` + ``answer`` + ``pushback`` ``pushback``
``question`` + ``answer``              ``exact_match``
``question`` alone                     ``judged``
=====================================  ===================

Every row must have the same shape. Anything unusable (no such file, a Hub id that cannot be
reached, a row in none of the shapes or with bad values) is one :class:`ConfigError` line naming the
suite and the row; nothing is scored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ...errors import ConfigError
from .items import ChoiceItem, ExactItem, JudgedItem, PushbackItem, RubricItem, Suite, SuiteItem, SuiteKind

ITEM_TYPES: dict[SuiteKind, type[SuiteItem]] = {
    "rubric": RubricItem, "multiple_choice": ChoiceItem, "exact_match": ExactItem, "pushback": PushbackItem, "judged": JudgedItem,
}
#: the judged adapter's per-suite grading prompt: a Jinja file beside the suite file, named ``<stem>.grade.j2``
GRADING_PROMPT_SUFFIX = ".grade.j2"
ID_KEYS = ("id", "prompt_id")
_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet")


def detect_kind(row: dict[str, Any]) -> SuiteKind | None:
    """The adapter a row's keys fit, or None.

    >>> detect_kind({"prompt": [], "rubrics": []}), detect_kind({"question": "q", "choices": ["a", "b"], "answer": 0})
    ('rubric', 'multiple_choice')
    >>> detect_kind({"question": "q", "answer": "4", "pushback": "p"}), detect_kind({"question": "q", "answer": "4"})
    ('pushback', 'exact_match')
    >>> detect_kind({"question": "q"}), detect_kind({"text": "t"}) is None
    ('judged', True)
    """
    keys = set(row)
    if {"prompt", "rubrics"} <= keys:
        return "rubric"
    if {"question", "choices", "answer"} <= keys:
        return "multiple_choice"
    if {"question", "answer", "pushback"} <= keys:
        return "pushback"
    if {"question", "answer"} <= keys:
        return "exact_match"
    if "question" in keys:
        return "judged"
    return None


def is_hub_id(source: str) -> bool:
    """``ORG/NAME`` or ``ORG/NAME:SPLIT`` that is not a path to a file.

    >>> is_hub_id("openai/healthbench:test"), is_hub_id("suites/exact.jsonl"), is_hub_id("./a/b")
    (True, False, False)
    """
    ref = source.split(":", 1)[0]
    return ref.count("/") == 1 and not ref.startswith((".", "/", "~")) and not ref.lower().endswith(_SUFFIXES)


def load_suite(source: str | Path, grading_prompt: Path | None = None) -> Suite:
    """Read and check a suite; ``grading_prompt`` overrides the judged adapter's template."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_file():
        rows, name = _read_file(path), path.name.split(".")[0]
        beside = path.with_name(name + GRADING_PROMPT_SUFFIX)
        if grading_prompt is None and beside.is_file():
            grading_prompt = beside
    elif is_hub_id(text):
        rows, name = _read_hub(text), text.split(":", 1)[0].split("/")[1]
    else:
        raise ConfigError(f"suite not found: {text} (a JSONL/JSON/Parquet file or a Hugging Face dataset id ORG/NAME[:SPLIT])")
    if not rows:
        raise ConfigError(f"suite {text} has no rows")
    kind: SuiteKind | None = None
    items: list[SuiteItem] = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ConfigError(f"suite {text} row {number}: not an object")
        row_kind = detect_kind(row)
        if row_kind is None:
            raise ConfigError(
                f"suite {text} row {number}: in none of the suite shapes (keys: {', '.join(sorted(row)) or 'none'}; "
                "see suites/README.md)"
            )
        if kind is not None and row_kind != kind:
            raise ConfigError(f"suite {text} row {number}: shaped as {row_kind}, the rows before it as {kind}")
        kind = row_kind
        ident = next((str(row[k]) for k in ID_KEYS if row.get(k) not in (None, "")), str(number))
        try:
            items.append(ITEM_TYPES[kind].model_validate({**row, "id": ident}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or kind
            raise ConfigError(f"suite {text} row {number} ({kind}): {where}: {first['msg']}") from None
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"suite {text}: item id {dup!r} appears more than once")
    if grading_prompt is not None and not grading_prompt.is_file():
        raise ConfigError(f"suite {text}: grading prompt not found: {grading_prompt}")
    assert kind is not None
    return Suite(name=name, source=text, kind=kind, items=items, grading_prompt=grading_prompt if kind == "judged" else None)


def _read_file(path: Path) -> list[Any]:
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            rows = []
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ConfigError(f"suite {path} row {number}: not JSON ({exc.msg})") from None
            return rows
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise ConfigError(f"suite {path}: a JSON suite is a list of rows")
            return data
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_table(path).to_pylist())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read suite {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged Parquet file, reported in one line
        raise ConfigError(f"cannot read suite {path}: {type(exc).__name__}") from None
    raise ConfigError(f"suite {path}: unknown file type {suffix or '(none)'} (expected {', '.join(_SUFFIXES)})")


def _read_hub(ref: str) -> list[Any]:
    # The user's HF_HUB_OFFLINE / HF_DATASETS_OFFLINE decide whether the Hub is asked; we set nothing.
    name, _, split = ref.partition(":")
    try:
        from datasets import load_dataset

        ds = load_dataset(name, split=split or "test")
        return list(ds.to_list())
    except Exception as exc:  # noqa: BLE001 - network, cache, split and format errors all end here
        message = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"cannot load suite {ref} ({type(exc).__name__}: {message}); download it first "
            "(`hf download --repo-type dataset ...`, then HF_HUB_OFFLINE=1 uses the cache) or pass a local file"
        ) from None
