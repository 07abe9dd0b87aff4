"""The records between evaluation stages: an answer to a held-out row, and its grade.

``GradeRow`` is also the row of ``grades.parquet`` (one per model per answer), which a later run
can read back as its baseline (``--baseline OLD_EVAL_FOLDER``); ``Answer`` the row of the answers
file. Both files' columns are derived from the records (:mod:`scenario_forge.parquet`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..parquet import read_records, write_records
from ..records import Record


class Answer(Record):
    """One model's answer to one row; ``text`` is None when generation failed (``error`` says why)."""

    split: str
    row_id: str
    text: str | None
    finish_reason: str
    completion_tokens: int = 0
    error: str | None = None


class GradeRow(Record):
    """One graded answer. ``score`` is None when it could not be scored (``status`` says why):
    ``generation_failed`` (no answer), ``unscoreable`` (the judge gave no usable verdict) or
    ``no_reference`` (an exact-match row without an answer). Unscored rows are excluded from every
    mean and counted in the report."""

    model: str
    split: str
    row_id: str
    scenario_id: str | None
    source: str
    reward_type: str
    domain: str | None
    trait: str | None
    task: str | None
    persona_variant: str | None
    answer: str | None
    score: float | None
    status: str  # scored | generation_failed | unscoreable | no_reference
    criteria: int = 0
    unscoreable_criteria: int = 0
    met: str = "[]"  # JSON list of true/false/null per criterion
    refused: bool | None = None
    #: refusal | decline_false_premise | decline_harmful_step | engaged (evaluation/refusal.py);
    #: None when unknown. ``refused`` is True for ``refusal`` only.
    refusal_class: str | None = None

    @property
    def pair_key(self) -> str:
        """What pairs a persistence probe with its plain version: the scenario, else the row."""
        return self.scenario_id or self.row_id


def write_grades(path: Path, grades: list[GradeRow]) -> None:
    write_records(path, GradeRow, grades)


def read_grades(path: Path) -> list[GradeRow]:
    if not path.is_file():
        raise ConfigError(f"no grades file at {path}")
    try:
        return read_records(path, GradeRow)
    except Exception as exc:  # noqa: BLE001 - reported in one line
        raise ConfigError(f"{path} is not a grades file from `scenario-forge eval` ({type(exc).__name__})") from None


def write_answers(path: Path, answers: list[Answer]) -> None:
    write_records(path, Answer, answers)


def read_answers(path: Path) -> list[Answer]:
    return read_records(path, Answer)
