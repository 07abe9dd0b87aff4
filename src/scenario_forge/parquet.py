"""Parquet files of pydantic records: the schema is derived from the record, never written by hand.

Every parquet file the project writes holds one record type (:class:`~scenario_forge.records.Scenario`,
:class:`~scenario_forge.records.Reject`, :class:`~scenario_forge.records.MixtureRow`,
:class:`~scenario_forge.evaluation.records.GradeRow`, ...). :func:`arrow_schema` reads the record's
field annotations and maps them to Arrow types, so adding a field to a record is the only edit a
new column needs:

=============================  ==================================================
annotation                     Arrow type
=============================  ==================================================
``str``, ``Literal["a", ...]``  ``string``
``int`` / ``float`` / ``bool``  ``int64`` / ``float64`` / ``bool``
``list[X]``                    ``list<X>``
a nested record                ``struct<...>`` of its fields, in declaration order
``dict[...]``                  ``string``: the value stored as JSON (sorted keys)
``X | None``                   ``X`` (every column is nullable)
=============================  ==================================================

:func:`features` is the same schema as Hugging Face ``Features``; files are written with its Arrow
form (carrying the ``datasets`` metadata), so ``datasets.load_dataset("parquet", ...)`` and polars
both read them back with the right types.

>>> from pydantic import BaseModel
>>> class Point(BaseModel):
...     name: str
...     xy: list[float]
...     tags: dict[str, int] = {}
...     weight: int | None = None
>>> arrow_schema(Point).names, str(arrow_schema(Point).field("xy").type)
(['name', 'xy', 'tags', 'weight'], 'list<item: double>')
>>> row = record_row(Point(name="a", xy=[1.0, 2.0], tags={"k": 1}))
>>> row["tags"]
'{"k": 1}'
>>> record_from_row(Point, row)
Point(name='a', xy=[1.0, 2.0], tags={'k': 1}, weight=None)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from .annotations import without_none
from .atomic import atomic_write_bytes

R = TypeVar("R", bound=BaseModel)

_SCALARS: dict[type, pa.DataType] = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def _is_record(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_json(annotation: Any) -> bool:
    return annotation is dict or get_origin(annotation) is dict


def _arrow_type(annotation: Any, where: str) -> pa.DataType:
    annotation = without_none(annotation)
    if _is_record(annotation):
        return pa.struct(
            [pa.field(name, _arrow_type(f.annotation, f"{where}.{name}")) for name, f in annotation.model_fields.items()]
        )
    if _is_json(annotation):
        return pa.string()
    origin = get_origin(annotation)
    if origin is list:
        (item,) = get_args(annotation)
        return pa.list_(_arrow_type(item, f"{where}[]"))
    if origin is Literal:
        kinds = {type(v) for v in get_args(annotation)}
        if len(kinds) == 1 and next(iter(kinds)) in _SCALARS:
            return _SCALARS[next(iter(kinds))]
    if isinstance(annotation, type) and annotation in _SCALARS:
        return _SCALARS[annotation]
    raise TypeError(f"no parquet column type for {where}: {annotation!r}")


@cache
def arrow_schema(record: type[BaseModel]) -> pa.Schema:
    """The Arrow schema of a file of ``record`` rows (one column per field, in declaration order)."""
    return pa.schema(
        [pa.field(name, _arrow_type(f.annotation, f"{record.__name__}.{name}")) for name, f in record.model_fields.items()]
    )


@cache
def features(record: type[BaseModel]) -> Any:
    """:func:`arrow_schema` as Hugging Face ``datasets.Features`` (the dataset card and hub configs use it)."""
    from datasets import Features

    return Features.from_arrow_schema(arrow_schema(record))


@cache
def _coded(annotation: Any, *, reading: bool) -> bool:
    """Whether values of ``annotation`` change on the way to (or, ``reading``, from) a parquet row:
    they hold a ``dict`` (stored as JSON) or, when reading, an optional nested record."""
    inner = without_none(annotation)
    if _is_json(inner):
        return True
    if _is_record(inner):
        return (reading and inner is not annotation) or any(
            _coded(f.annotation, reading=reading) for f in inner.model_fields.values()
        )
    if get_origin(inner) is list:
        return _coded(get_args(inner)[0], reading=reading)
    return False


def _encode(value: Any, annotation: Any) -> Any:
    if value is None or not _coded(annotation, reading=False):
        return value
    annotation = without_none(annotation)
    if _is_json(annotation):
        return json.dumps(value, sort_keys=True)
    if _is_record(annotation):
        return {name: _encode(value[name], f.annotation) for name, f in annotation.model_fields.items()}
    (item,) = get_args(annotation)  # a list
    return [_encode(v, item) for v in value]


def _decode(value: Any, annotation: Any) -> Any:
    if value is None or not _coded(annotation, reading=True):
        return value
    inner = without_none(annotation)
    if _is_json(inner):
        return json.loads(value)
    if _is_record(inner):
        if inner is not annotation and all(v is None for v in value.values()):
            return None  # a null struct some writers store as a struct of nulls
        return {name: _decode(value.get(name), f.annotation) for name, f in inner.model_fields.items()}
    (item,) = get_args(inner)  # a list
    return [_decode(v, item) for v in value]


@cache
def _coded_fields(record: type[BaseModel], *, reading: bool) -> tuple[tuple[str, Any], ...]:
    """The fields of ``record`` whose values change on the way to (or from) a row: see :func:`_coded`."""
    annotations: dict[str, Any] = {name: f.annotation for name, f in record.model_fields.items()}
    return tuple((name, a) for name, a in annotations.items() if _coded(a, reading=reading))


def record_row(record: BaseModel) -> dict[str, Any]:
    """One record as a parquet row of :func:`arrow_schema` (``dict`` fields JSON-encoded)."""
    row = record.model_dump(mode="json")
    for name, annotation in _coded_fields(type(record), reading=False):
        row[name] = _encode(row[name], annotation)
    return row


def record_from_row(record: type[R], row: Mapping[str, Any]) -> R:
    """The record a parquet row holds (the inverse of :func:`record_row`); validates it (a column the
    record does not know fails like any unknown field)."""
    data = dict(row)
    for name, annotation in _coded_fields(record, reading=True):
        if name in data:
            data[name] = _decode(data[name], annotation)
    return record.model_validate(data)


def records_table(record: type[BaseModel], records: Iterable[BaseModel]) -> pa.Table:
    """``records`` (all of type ``record``) as an Arrow table with the record's derived schema."""
    schema = features(record).arrow_schema
    rows = [record_row(r) for r in records]
    return pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()


def write_table(path: Path, table: pa.Table) -> int:
    """Write an Arrow table as parquet, atomically; returns its row count."""
    atomic_write_bytes(path, lambda tmp: pq.write_table(table, tmp))
    return int(table.num_rows)


def write_records(path: Path, record: type[BaseModel], records: Iterable[BaseModel]) -> int:
    """Write ``records`` as one parquet file of ``record`` rows, atomically; returns the row count."""
    return write_table(path, records_table(record, records))


def read_records(path: Path, record: type[R]) -> list[R]:
    """Every row of a parquet file of ``record`` rows, validated."""
    return [record_from_row(record, row) for row in pq.read_table(path).to_pylist()]
