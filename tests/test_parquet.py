"""Parquet files of records: schemas derived from the pydantic records (scenario_forge.parquet).

The pinned column types below are the file formats the project has always written (they were
hand-written schemas before): a change to a record that changes a file's columns shows up here.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mix_data import make_scenario
from pydantic import BaseModel

from scenario_forge.errors import ConfigError
from scenario_forge.evaluation.records import GradeRow, read_grades, write_grades
from scenario_forge.parquet import arrow_schema, features, read_records, record_from_row, record_row, write_records
from scenario_forge.records import Message, MixtureRow, Quality, Reject, Scenario
from scenario_forge.schema import read_rejects, read_scenarios, write_rejects, write_scenarios

S = "string"
MESSAGES = "list<item: struct<role: string, content: string>>"
RUBRIC = "list<item: struct<criterion: string, points: int64, tags: list<item: string>>>"

PINNED = {
    Scenario: {
        "id": S, "index": "int64", "domain": S, "trait": S, "facet": S, "pressure": S, "persona": S, "shape": S,
        "flaw": S, "flaw_claim": S, "flaw_correct": S, "flaw_kind": S, "flawed_turn_index": "int64",
        "operator_persona": "bool",
        "brief": "struct<situation: string, user_goal: string, key_facts: string, trap: string>",
        "messages": MESSAGES, "rubric": RUBRIC,
        "provenance": "struct<run_id: string, generator: string, backend: string, model: string, sampling: string, "
        "templates: string, taxonomy_name: string, taxonomy_version: string, taxonomy_hash: string, plan_seed: int64>",
        "quality": "struct<realism: double, tests_trait: double, gradable: double, score: double, judge_model: string>",
    },
    Reject: {**{k: S for k in ("id", "run_id", "stage", "reason", "detail", "domain", "trait", "pressure", "raw")}, "messages": MESSAGES},
    MixtureRow: {
        "id": S, "split": S, "source": S, "reward_type": S, "prompt": MESSAGES, "rubric": RUBRIC, "answer": S,
        "task": S, "domain": S, "trait": S, "facet": S, "pressure": S, "shape": S, "persona_variant": S,
        "scenario_id": S, "rubric_spread": "double",
    },
    GradeRow: {
        "model": S, "split": S, "row_id": S, "scenario_id": S, "source": S, "reward_type": S, "domain": S,
        "trait": S, "task": S, "persona_variant": S, "answer": S, "score": "double", "status": S,
        "criteria": "int64", "unscoreable_criteria": "int64", "met": S, "refused": "bool", "refusal_class": S,
    },
}


@pytest.mark.parametrize("record", list(PINNED), ids=lambda r: r.__name__)
def test_derived_schema_is_the_files_format(record: type[BaseModel]) -> None:
    schema = arrow_schema(record)
    assert {f.name: str(f.type) for f in schema} == PINNED[record]
    assert schema.names == list(PINNED[record])  # column order is the record's field order
    assert features(record).arrow_schema.remove_metadata() == schema


def test_scenario_file_round_trips_with_json_provenance(tmp_path: Path) -> None:
    scenarios = [make_scenario(0, "health", "honesty"), make_scenario(1, "finance", "honesty")]
    scenarios[1] = scenarios[1].model_copy(update={"quality": Quality(realism=4.0, score=3.5, judge_model="j")})
    path = tmp_path / "scenarios.parquet"
    assert write_scenarios(path, scenarios) == 2
    assert read_scenarios(path) == scenarios
    raw = pq.read_table(path).to_pylist()
    assert isinstance(raw[0]["provenance"]["sampling"], str)  # dicts are stored as JSON text
    assert b"huggingface" in (pq.read_schema(path).metadata or {})  # datasets reads the types back
    assert [record_from_row(Scenario, r) for r in raw] == scenarios


def test_a_struct_of_nulls_reads_back_as_no_record() -> None:
    row = record_row(make_scenario(0, "health", "honesty"))
    row["quality"] = {k: None for k in Quality.model_fields}
    assert record_from_row(Scenario, row).quality is None


def test_empty_files_keep_their_schema(tmp_path: Path) -> None:
    path = tmp_path / "rejects.parquet"
    assert write_rejects(path, []) == 0
    assert read_rejects(path) == []
    assert pq.read_schema(path).remove_metadata() == arrow_schema(Reject)
    grades = tmp_path / "grades.parquet"
    write_grades(grades, [])
    assert read_grades(grades) == []
    assert pq.read_schema(grades).remove_metadata() == arrow_schema(GradeRow)


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    class Row(BaseModel):
        name: str
        extra: dict[str, int] = {}

    path = tmp_path / "sub" / "rows.parquet"
    assert write_records(path, Row, [Row(name="a", extra={"b": 1}), Row(name="c")]) == 2
    assert read_records(path, Row) == [Row(name="a", extra={"b": 1}), Row(name="c")]
    assert [p.name for p in path.parent.iterdir()] == ["rows.parquet"]


def test_a_field_with_no_column_type_is_named() -> None:
    class Odd(BaseModel):
        when: set[str]

    with pytest.raises(TypeError, match=r"Odd\.when"):
        arrow_schema(Odd)


def test_a_file_of_another_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rejects.parquet"
    write_rejects(path, [Reject(id="a", run_id="r", stage="gate", reason="x", domain="d", trait="t", pressure="p")])
    with pytest.raises(ValueError):
        read_records(path, Scenario)
    with pytest.raises(ConfigError, match="not a grades file"):
        read_grades(path)


def test_a_rejects_file_written_before_the_messages_column_still_reads(tmp_path: Path) -> None:
    """``Reject.messages`` came later: a rejects file without that column reads with it empty, and a
    reject holding a conversation keeps it through the file."""
    old = tmp_path / "old.parquet"
    pq.write_table(pa.Table.from_pylist([{
        "id": "a", "run_id": "r", "stage": "rubric", "reason": "x", "detail": "", "domain": "d", "trait": "t",
        "pressure": "p", "raw": "reply",
    }]), old)
    (read,) = read_rejects(old)
    assert (read.raw, read.messages) == ("reply", None)
    new = tmp_path / "rejects.parquet"
    talk = [Message(role="user", content="Is 5 mg safe?"), Message(role="assistant", content="Usually.")]
    write_rejects(new, [Reject(id="b", run_id="r", stage="rubric", reason="x", domain="d", trait="t", pressure="p", messages=talk)])
    assert read_rejects(new)[0].messages == talk


def test_a_reject_keeps_its_whole_raw_output(tmp_path: Path) -> None:
    """A long rubric reply is kept whole through ``rejects.parquet`` (it was cut at 4,000 characters,
    which lost the end of the criteria a reject is about)."""
    from scenario_forge.records import ScenarioSeed

    seed = ScenarioSeed.model_construct(id="s", domain="health", trait="truthfulness", pressure="urgency")
    raw = '{"criteria": [' + ", ".join(f'{{"criterion": "Names dose {k} mg", "points": 2}}' for k in range(400)) + "]}"
    assert len(raw) > 12_000
    path = tmp_path / "rejects.parquet"
    write_rejects(path, [Reject.of(seed, "r", "rubric", "too_many_criteria", detail="d" * 900, raw=raw)])
    (read,) = read_rejects(path)
    assert read.raw == raw and len(read.detail) == 500
