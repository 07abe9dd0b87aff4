"""The standard RL share (the other 95%): where it comes from, and streaming it into the train split.

A base set is a local parquet / JSONL / CSV file, a dataset folder, a Hugging Face dataset id (read
offline from the local cache), or -- by default -- the embedded generator of verifiable tasks
(:mod:`.base_tasks`). It needs a prompt column (text, or chat messages ``[{role, content}]``) and,
where rewards are verifiable, an answer column; rows with an answer get ``reward_type
exact_match``, rows without one ``generic_judge``.

Large base sets never sit in memory: polars lazy frames scan them in slices of ``CHUNK`` rows, a
seeded boolean mask picks exactly the rows the ratio needs, and each slice goes straight into the
train split's parquet writer, with the beneficial rows spread evenly between standard rows (so every
stretch of ``1/ratio`` rows holds about one beneficial row). Up to ``shuffle_limit`` standard rows
are also put in a seeded random order; above it they keep the base set's order (trainers shuffle).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConfigError
from ..mixture import mixture_features
from .base_tasks import GENERATOR_VERSION, iter_tasks

CHUNK = 262_144
ROLES = ("system", "user", "assistant")
DICTIONARY_COLUMNS = ["split", "source", "reward_type", "task", "domain", "trait", "facet", "pressure", "shape", "persona_variant"]
PromptKind = Literal["text", "messages"]


class BaseSource:
    """An opened base set: normalised columns ``prompt``, ``answer``, ``task`` behind a lazy frame."""

    def __init__(
        self,
        kind: Literal["builtin", "file", "dataset"],
        name: str,
        lazy: pl.LazyFrame | None,
        n_rows: int | None,
        prompt_kind: PromptKind,
        columns: dict[str, str | None],
        seed: int = 0,
    ) -> None:
        self.kind = kind
        self.name = name
        self.lazy = lazy
        self.n_rows = n_rows
        self.prompt_kind = prompt_kind
        self.columns = columns
        self.seed = seed

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "rows_available": self.n_rows}
        if self.kind == "builtin":
            out.update(generator=GENERATOR_VERSION, tasks=["arithmetic", "unit_conversion", "date_arithmetic"])
        else:
            out.update(columns=self.columns, prompt_format=self.prompt_kind)
        return out


# -- opening ---------------------------------------------------------------------------------------


def open_base(
    base: str | None,
    *,
    split: str = "train",
    prompt_column: str = "prompt",
    answer_column: str | None = None,
    task_column: str | None = None,
    staging: Path | None = None,
    seed: int = 0,
) -> BaseSource:
    """Open and check a base set; one-line :class:`ConfigError` for anything unusable."""
    if base is None:
        return BaseSource("builtin", GENERATOR_VERSION, None, None, "text", {"prompt": "prompt", "answer": "answer", "task": "task"}, seed)
    path = Path(base).expanduser()
    kind: Literal["file", "dataset"]
    if path.is_file():
        lazy, kind, name = _scan_file(path, staging), "file", str(path)
    elif path.is_dir():
        lazy, kind, name = _load_dataset(str(path), split), "dataset", str(path)
    elif (
        base.count("/") == 1 and not base.startswith((".", "/", "~"))
        and not base.lower().endswith((".parquet", ".jsonl", ".ndjson", ".json", ".csv"))
    ):
        lazy, kind, name = _load_dataset(base, split), "dataset", base
    else:
        raise ConfigError(f"base set not found: {base} (a parquet/JSONL/CSV file, a dataset folder or a Hugging Face id ORG/NAME)")
    schema = lazy.collect_schema()
    names = list(schema.names())
    if prompt_column not in schema:
        raise ConfigError(
            f"base set {name} has no prompt column {prompt_column!r} (columns: {', '.join(names) or 'none'}); "
            "name it with --base-prompt-column"
        )
    if answer_column is None and "answer" in schema:
        answer_column = "answer"
    elif answer_column is not None and answer_column not in schema:
        raise ConfigError(f"base set {name} has no answer column {answer_column!r} (columns: {', '.join(names)})")
    if task_column is not None and task_column not in schema:
        raise ConfigError(f"base set {name} has no task column {task_column!r} (columns: {', '.join(names)})")
    prompt_kind = _prompt_kind(schema[prompt_column], name, prompt_column)
    for col in (answer_column, task_column):
        if col is not None and not (schema[col] == pl.String or schema[col].is_numeric() or schema[col] == pl.Boolean):
            raise ConfigError(f"base set {name}: column {col!r} has type {schema[col]}; expected text or a number")
    prompt = pl.col(prompt_column)
    if prompt_kind == "messages":
        prompt = prompt.list.eval(
            pl.struct(
                role=pl.element().struct.field("role").cast(pl.String),
                content=pl.element().struct.field("content").cast(pl.String),
            )
        )
    label = Path(name).stem if kind == "file" else name
    norm = lazy.select(
        prompt=prompt,
        answer=pl.col(answer_column).cast(pl.String) if answer_column else pl.lit(None, pl.String),
        task=pl.col(task_column).cast(pl.String) if task_column else pl.lit(label),
    )
    n_rows, bad = _check_rows(norm, prompt_kind)
    if bad:
        raise ConfigError(f"base set {name}: {bad}")
    return BaseSource(
        kind, name, norm, n_rows, prompt_kind,
        {"prompt": prompt_column, "answer": answer_column, "task": task_column}, seed,
    )


def _scan_file(path: Path, staging: Path | None) -> pl.LazyFrame:
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.scan_parquet(path)
        if suffix in (".jsonl", ".ndjson", ".json"):
            lazy = pl.scan_ndjson(path, infer_schema_length=1000)
        elif suffix == ".csv":
            lazy = pl.scan_csv(path)
        else:
            raise ConfigError(f"base file {path}: unsupported format {path.suffix!r} (use .parquet, .jsonl or .csv)")
        lazy.collect_schema()
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader error means "not a readable base file"
        raise ConfigError(f"cannot read base file {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    if staging is None:
        return lazy
    # Row-wise formats cannot be sliced without rereading from the start: stream them once into parquet.
    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / "base.parquet"
    try:
        lazy.sink_parquet(tmp)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"cannot read base file {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    return pl.scan_parquet(tmp)


def _load_dataset(ref: str, split: str) -> pl.LazyFrame:
    # The user's HF_HUB_OFFLINE / HF_DATASETS_OFFLINE decide whether the Hub is asked; we set nothing.
    try:
        from datasets import load_dataset

        ds = load_dataset(ref, split=split)
    except ValueError as exc:
        if "split" in str(exc).lower():
            raise ConfigError(f"base set {ref} has no split {split!r}: {str(exc).splitlines()[0][:200]}") from None
        raise ConfigError(f"cannot load base set {ref}: {str(exc).splitlines()[0][:200]}") from None
    except Exception as exc:  # noqa: BLE001 - network, cache and format errors all end here
        message = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"cannot load base set {ref} ({type(exc).__name__}: {message}); download it first "
            "(e.g. `hf download --repo-type dataset ...`, then HF_HUB_OFFLINE=1 uses the cache) or pass a local file"
        ) from None
    return pl.from_arrow(ds.data.table, rechunk=False).lazy()  # type: ignore[union-attr]


def _prompt_kind(dtype: pl.DataType, name: str, column: str) -> PromptKind:
    if dtype == pl.String:
        return "text"
    if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
        fields = {f.name for f in dtype.inner.fields}
        if {"role", "content"} <= fields:
            return "messages"
    raise ConfigError(
        f"base set {name}: prompt column {column!r} has type {dtype}; expected text or chat messages [{{role, content}}]"
    )


def _check_rows(norm: pl.LazyFrame, prompt_kind: PromptKind) -> tuple[int, str | None]:
    """Row count, and a problem with the prompts if any (one pass over the prompt column)."""
    if prompt_kind == "text":
        stats = norm.select(n=pl.len(), missing=pl.col("prompt").is_null().sum()).collect()
        n, missing = stats.row(0)
        bad_roles = 0
    else:
        stats = norm.select(
            n=pl.len(),
            missing=(pl.col("prompt").is_null() | (pl.col("prompt").list.len() == 0)).sum(),
            bad_roles=pl.col("prompt").list.eval(pl.element().struct.field("role").is_in(ROLES).not_().any()).list.first().fill_null(False).sum(),
        ).collect()
        n, missing, bad_roles = stats.row(0)
    if missing:
        return n, f"{missing} of {n} rows have no prompt; remove them first"
    if bad_roles:
        return n, f"{bad_roles} rows have chat roles other than {', '.join(ROLES)}"
    return n, None


# -- streaming the standard rows ---------------------------------------------------------------------


def selection_mask(n: int, k: int, seed: int) -> np.ndarray:
    """Exactly ``k`` of ``n`` positions, chosen by ``seed`` (cheap when ``k`` is near ``n`` too)."""
    rng = np.random.default_rng([seed, 0x57D])
    if k >= n:
        return np.ones(n, dtype=bool)
    if k > n // 2:
        mask = np.ones(n, dtype=bool)
        mask[rng.choice(n, size=n - k, replace=False)] = False
    else:
        mask = np.zeros(n, dtype=bool)
        mask[rng.choice(n, size=k, replace=False)] = True
    return mask


def standard_chunks(source: BaseSource, count: int, seed: int, shuffle_limit: int) -> Iterator[pa.Table]:
    """``count`` standard rows in the mixture schema, a slice at a time."""
    if count <= 0:
        return
    if source.kind == "builtin":
        start = 0
        for frame in iter_tasks(count, seed=seed):
            yield _to_mixture(frame.with_row_index("row", offset=start), "text", "gen")
            start += frame.height
        return
    assert source.lazy is not None and source.n_rows is not None
    mask = selection_mask(source.n_rows, count, seed)
    tables = (_to_mixture(frame, source.prompt_kind, "std") for frame in _selected_slices(source, mask))
    if count > shuffle_limit:
        yield from tables
        return
    # Small enough to hold (as compact arrow tables): a seeded random order.
    table = pa.concat_tables(list(tables))
    order = np.random.default_rng([seed, 0x5F1]).permutation(table.num_rows)
    for off in range(0, table.num_rows, CHUNK):
        yield table.take(pa.array(order[off : off + CHUNK]))


def prefetch(items: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """Produce the next slices in a background thread while the caller writes the current one
    (polars decoding and parquet encoding both release the GIL); at most ``depth`` slices wait."""
    import queue
    import threading

    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                box.put(item)
            box.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            box.put(exc)

    thread = threading.Thread(target=work, name="mix-standard-rows", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                box.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def _selected_slices(source: BaseSource, mask: np.ndarray) -> Iterator[pl.DataFrame]:
    assert source.lazy is not None
    for off in range(0, len(mask), CHUNK):
        part = mask[off : off + CHUNK]
        if not part.any():
            continue
        frame = source.lazy.slice(off, CHUNK).collect().with_row_index("row", offset=off)
        yield frame.filter(pl.Series(part[: frame.height]))


def _const(value: str, n: int) -> pa.Array:
    """A string column of one repeated value, built from buffers (no Python loop)."""
    data = value.encode("utf-8")
    offsets = np.arange(0, len(data) * (n + 1), len(data) or 1, dtype=np.int32)[: n + 1] if data else np.zeros(n + 1, np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * n))


def _small_strings(array: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``large_string`` (what polars hands over) as ``string`` without copying the characters: only
    the offsets are narrowed to 32 bits (pyarrow's cast copies everything)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string() or array.offset != 0 or len(array) == 0:
        return array.cast(pa.string())
    validity, offsets, data = array.buffers()
    wide = np.frombuffer(offsets, dtype=np.int64, count=len(array) + 1)
    if wide[-1] - wide[0] >= 2**31:
        return array.cast(pa.string())  # more than 2 GiB of text in one slice: let arrow say so
    narrow = (wide - wide[0]).astype(np.int32)
    data = data.slice(int(wide[0])) if data is not None else pa.py_buffer(b"")
    return pa.StringArray.from_buffers(len(array), pa.py_buffer(narrow), data, validity, array.null_count)


def _to_mixture(frame: pl.DataFrame, prompt_kind: PromptKind, prefix: str) -> pa.Table:
    """Selected base rows (``row``, ``prompt``, ``answer``, ``task``) as a mixture-schema table.

    Per-row columns are computed by polars; the constant and nested columns are assembled from
    arrow buffers, so a slice costs no Python loop over its rows.
    """
    schema = mixture_features().arrow_schema
    n = frame.height
    has_answer = pl.col("answer").is_not_null() & (pl.col("answer").str.strip_chars().str.len_bytes() > 0)
    a = frame.select(
        id=pl.format(f"{prefix}-{{}}", pl.col("row")),
        reward_type=pl.when(has_answer).then(pl.lit("exact_match")).otherwise(pl.lit("generic_judge")),
        prompt="prompt",
        answer="answer",
        task="task",
    ).to_arrow(compat_level=pl.CompatLevel.oldest())
    if prompt_kind == "text":
        content = _small_strings(a["prompt"])
        prompt = pa.ListArray.from_arrays(
            pa.array(np.arange(n + 1, dtype=np.int32)),
            pa.StructArray.from_arrays([_const("user", n), content], names=["role", "content"]),
        )
    else:
        prompt = a["prompt"].combine_chunks().cast(schema.field("prompt").type)
    columns = {
        "id": _small_strings(a["id"]),
        "split": _const("train", n),
        "source": _const("standard", n),
        "reward_type": _small_strings(a["reward_type"]),
        "prompt": prompt,
        "rubric": pa.ListArray.from_arrays(
            pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], schema.field("rubric").type.value_type)
        ),
        "answer": _small_strings(a["answer"]),
        "task": _small_strings(a["task"]),
    }
    return pa.Table.from_arrays(
        [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema], schema=schema
    )


def write_train(path: Path, beneficial: pa.Table, chunks: Iterator[pa.Table], standard_count: int) -> tuple[int, int]:
    """Write the train split: standard chunks with the beneficial rows spread evenly between them.

    Beneficial row ``j`` goes right before standard row ``j * S // B``. Returns ``(beneficial,
    standard)`` rows written.
    """
    schema = mixture_features().arrow_schema
    b = beneficial.num_rows
    insert_at = (np.arange(b, dtype=np.int64) * standard_count) // b if b else np.zeros(0, dtype=np.int64)
    done = j = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    # Dictionary-encode only the few-valued columns: trying it on millions of distinct prompts costs
    # ~40% of the write time for nothing.
    with pq.ParquetWriter(path, schema, use_dictionary=DICTIONARY_COLUMNS) as writer:
        for chunk in chunks:
            m = chunk.num_rows
            j_end = int(np.searchsorted(insert_at, done + m, side="left"))
            if j_end > j:
                # zero-copy: slices of the standard chunk with one beneficial row between them
                pieces, start = [], 0
                for k in range(j, j_end):
                    cut = int(insert_at[k]) - done
                    pieces += [chunk.slice(start, cut - start), beneficial.slice(k, 1)]
                    start = cut
                pieces.append(chunk.slice(start))
                chunk = pa.concat_tables(pieces)
            writer.write_table(chunk)
            done += m
            j = j_end
        if j < b:  # no standard rows at all, or fewer than planned
            writer.write_table(beneficial.slice(j))
            j = b
    return j, done
