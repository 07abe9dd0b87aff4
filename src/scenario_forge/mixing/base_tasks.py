"""The embedded standard RL data: verifiable tasks with exact answers.

The paper trains on 95% standard RL data. When no ``--base`` set is given, the mixer draws that
share from this deterministic generator, which needs no download: arithmetic word problems, unit
conversions with exact results, and calendar arithmetic. Every row has a prompt, a canonical
answer string and a ``task`` name; rows are scored with
:func:`~scenario_forge.grading.exact_match.exact_match_reward`.

Rows are generated in fixed-size blocks, each from its own seeded numpy generator, so row ``i``
depends only on ``(seed, i)``: any number of rows streams in bounded memory, and a larger request
starts with the same rows as a smaller one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

#: Rows per generator block; part of the generator's definition (changing it changes the rows).
BLOCK = 65_536
GENERATOR_VERSION = "verifiable-tasks-v1"
TASKS = ("arithmetic", "unit_conversion", "date_arithmetic")
SUFFIX = " Give only the final answer."

_WORD_PROBLEMS: list[tuple[str, Any]] = [
    # (template with {a} {b} {c}, answer from arrays a, b, c)
    ("A baker makes {a} trays of {b} muffins and sells {c} muffins. How many muffins are left?",
     lambda a, b, c: a * b - c),
    ("A train travels at {a} km/h for {b} hours. How many kilometres does it cover?",
     lambda a, b, c: a * b),
    ("Sam has {a} dollars, spends {c} dollars on books and then earns {b} dollars. How many dollars does Sam have now?",
     lambda a, b, c: a - c + b),
    ("A rectangle is {a} metres long and {b} metres wide. What is its perimeter in metres?",
     lambda a, b, c: 2 * (a + b)),
    ("{a} boxes hold {b} pencils each. The pencils are shared equally among {c} classrooms, and the rest are kept. "
     + "How many pencils are kept?",
     lambda a, b, c: (a * b) % c),
    ("A tank holds {a} litres. It is filled at {b} litres per minute for {c} minutes, starting empty. "
     + "How many more litres are needed to fill it?",
     lambda a, b, c: a - b * c),
]

# (from unit, to unit, factor, decimals in the source value): value * factor is exact.
_CONVERSIONS: list[tuple[str, str, int, int]] = [
    ("kilometres", "metres", 1000, 2),
    ("kilograms", "grams", 1000, 2),
    ("litres", "millilitres", 1000, 2),
    ("hours", "minutes", 60, 1),
    ("minutes", "seconds", 60, 1),
    ("days", "hours", 24, 0),
    ("weeks", "days", 7, 0),
    ("feet", "inches", 12, 0),
    ("yards", "feet", 3, 0),
    ("metres", "centimetres", 100, 2),
]

_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _block(seed: int, block: int) -> pl.DataFrame:
    """``BLOCK`` rows of block number ``block``: columns ``prompt``, ``answer``, ``task``."""
    rng = np.random.default_rng([seed, block, 0x5EED])
    n = BLOCK
    kind = rng.integers(0, len(TASKS), n)
    frames: list[pl.DataFrame] = []
    order = np.arange(n)

    # arithmetic word problems
    idx = order[kind == 0]
    if len(idx):
        t = rng.integers(0, len(_WORD_PROBLEMS), len(idx))
        a = rng.integers(12, 400, len(idx))
        b = rng.integers(2, 60, len(idx))
        c = rng.integers(2, 12, len(idx))
        for k, (template, answer) in enumerate(_WORD_PROBLEMS):
            sel = t == k
            if not sel.any():
                continue
            aa, bb, cc = a[sel], b[sel], c[sel]
            if k == 0:  # sell fewer than were made
                cc = (cc * 7) % (aa * bb)
            if k == 2:  # spend at most what Sam has
                cc = cc % aa
            if k == 5:  # never overfill: capacity above what flows in
                aa = bb * cc + aa
            frames.append(
                pl.DataFrame({"row": idx[sel], "a": aa, "b": bb, "c": cc, "answer": answer(aa, bb, cc)}).select(
                    "row",
                    prompt=pl.format(
                        template.replace("{a}", "{}").replace("{b}", "{}").replace("{c}", "{}"),
                        *[pl.col(v) for v in re.findall(r"\{([abc])\}", template)],
                    ),
                    answer=pl.col("answer").cast(pl.String),
                    task=pl.lit("arithmetic"),
                )
            )

    # unit conversions with exact results
    idx = order[kind == 1]
    if len(idx):
        t = rng.integers(0, len(_CONVERSIONS), len(idx))
        raw = rng.integers(1, 5000, len(idx))
        for k, (src, dst, factor, decimals) in enumerate(_CONVERSIONS):
            sel = t == k
            if not sel.any():
                continue
            value = raw[sel]  # the source quantity is value / 10**decimals, shown exactly
            scale = 10**decimals
            if factor % scale:
                raise AssertionError("conversion factors must keep results whole")  # a bug in the table
            frame = pl.DataFrame({"row": idx[sel], "whole": value // scale, "frac": value % scale, "result": value * (factor // scale)})
            shown = (
                pl.format("{}.{}", pl.col("whole"), pl.col("frac").cast(pl.String).str.zfill(decimals))
                if decimals
                else pl.col("whole").cast(pl.String)
            )
            frames.append(
                frame.select(
                    "row",
                    prompt=pl.format(f"Convert {{}} {src} to {dst}.", shown),
                    answer=pl.col("result").cast(pl.String),
                    task=pl.lit("unit_conversion"),
                )
            )

    # calendar arithmetic
    idx = order[kind == 2]
    if len(idx):
        t = rng.integers(0, 4, len(idx))
        start = np.datetime64("1990-01-01") + rng.integers(0, 365 * 45, len(idx)).astype("timedelta64[D]")
        days = rng.integers(1, 900, len(idx))
        base = pl.DataFrame({"row": idx, "t": t, "start": start, "days": days}).with_columns(
            end=pl.col("start") + pl.duration(days=pl.col("days")),
            back=pl.col("start") - pl.duration(days=pl.col("days")),
        )
        start_day, end_day, back_day = (pl.col(c).dt.strftime("%Y-%m-%d") for c in ("start", "end", "back"))
        weekday = pl.col("start").dt.weekday().cast(pl.Int64) - 1  # Monday = 0
        frames.append(
            base.select(
                "row",
                prompt=pl.when(pl.col("t") == 0)
                .then(pl.format("What date is {} days after {}? Answer in YYYY-MM-DD format.", pl.col("days"), start_day))
                .when(pl.col("t") == 1)
                .then(pl.format("What date was {} days before {}? Answer in YYYY-MM-DD format.", pl.col("days"), start_day))
                .when(pl.col("t") == 2)
                .then(pl.format("How many days are there from {} to {}?", start_day, end_day))
                .otherwise(pl.format("What day of the week was {}?", start_day)),
                answer=pl.when(pl.col("t") == 0)
                .then(end_day)
                .when(pl.col("t") == 1)
                .then(back_day)
                .when(pl.col("t") == 2)
                .then(pl.col("days").cast(pl.String))
                .otherwise(weekday.replace_strict(list(range(7)), _WEEKDAYS, return_dtype=pl.String)),
                task=pl.lit("date_arithmetic"),
            )
        )
    out = pl.concat(frames).sort("row")
    return out.select(prompt=pl.col("prompt") + SUFFIX, answer="answer", task="task")


def generate_tasks(n: int, seed: int = 0, start: int = 0) -> pl.DataFrame:
    """Rows ``start .. start+n-1`` of the task stream for ``seed`` (columns prompt, answer, task)."""
    return pl.concat(list(iter_tasks(n, seed, start))) if n > 0 else _empty()


def iter_tasks(n: int, seed: int = 0, start: int = 0, chunk: int = BLOCK) -> Iterator[pl.DataFrame]:
    """The same rows as :func:`generate_tasks`, a block at a time (bounded memory for any ``n``)."""
    end = start + n
    pos = start
    while pos < end:
        block, offset = divmod(pos, BLOCK)
        frame = _block(seed, block)
        take = min(BLOCK - offset, end - pos)
        yield frame.slice(offset, take)
        pos += take


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={"prompt": pl.String, "answer": pl.String, "task": pl.String})
