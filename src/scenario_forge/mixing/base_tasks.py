"""The embedded standard RL data: verifiable tasks with exact answers, and their exact-match reward.

The paper trains on 95% standard RL data. When no ``--base`` set is given, the mixer draws that
share from this deterministic generator, which needs no download: arithmetic word problems, unit
conversions with exact results, and calendar arithmetic. Every row has a prompt, a canonical
answer string and a ``task`` name; rows are scored with :func:`exact_match_reward`.

Rows are generated in fixed-size blocks, each from its own seeded numpy generator, so row ``i``
depends only on ``(seed, i)``: any number of rows streams in bounded memory, and a larger request
starts with the same rows as a smaller one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
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
        s, e, b = (pl.col(c).dt.strftime("%Y-%m-%d") for c in ("start", "end", "back"))
        weekday = pl.col("start").dt.weekday().cast(pl.Int64) - 1  # Monday = 0
        frames.append(
            base.select(
                "row",
                prompt=pl.when(pl.col("t") == 0)
                .then(pl.format("What date is {} days after {}? Answer in YYYY-MM-DD format.", pl.col("days"), s))
                .when(pl.col("t") == 1)
                .then(pl.format("What date was {} days before {}? Answer in YYYY-MM-DD format.", pl.col("days"), s))
                .when(pl.col("t") == 2)
                .then(pl.format("How many days are there from {} to {}?", s, e))
                .otherwise(pl.format("What day of the week was {}?", s)),
                answer=pl.when(pl.col("t") == 0)
                .then(e)
                .when(pl.col("t") == 1)
                .then(b)
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


# -- the reward ------------------------------------------------------------------------------------

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_HASHES = re.compile(r"####\s*(.+)")
_ANSWER_IS = re.compile(r"(?:final answer|answer)\s*(?:is\s*:?|:)\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WORD = re.compile(r"[A-Za-z]+")


def completion_text(completion: Any) -> str:
    """Plain text of a completion: a string, or TRL's conversational ``[{"role", "content"}]``
    (the last assistant message)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, list | tuple):
        texts = [m.get("content") or "" for m in completion if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
        return str(texts[-1]) if texts else ""
    return "" if completion is None else str(completion)


def final_segment(text: str) -> str:
    """Where a completion states its answer: the last ``\\boxed{..}``, else text after the last
    ``####``, else after the last ``answer is``/``answer:``, else the whole text.

    >>> final_segment("so 4 + 3 = 7\\n#### 7"), final_segment("The final answer is: 2024-03-01.")
    ('7', '2024-03-01.')
    """
    for pattern in (_BOXED, _HASHES, _ANSWER_IS):
        found = pattern.findall(text)
        if found:
            return found[-1].strip()
    return text.strip()


def normalize_answer(text: str) -> str:
    """Lower case, single spaces, no surrounding quotes, ``*``, ``$`` or final full stop, no
    thousands separators in numbers, and numbers in canonical decimal form.

    >>> normalize_answer(" **3,500.** "), normalize_answer("Tuesday."), normalize_answer("12.50")
    ('3500', 'tuesday', '12.5')
    """
    t = " ".join(text.strip().split()).lower()
    t = t.strip("*`\"' $").rstrip(".").strip()
    if _NUMBER.fullmatch(t):
        return _canonical_number(t) or t
    return t


def _canonical_number(text: str) -> str | None:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def exact_match_reward(completion: Any, answer: str | None) -> float:
    """1.0 if the completion's final answer equals ``answer``, else 0.0 (the standard rows' reward).

    Normalization: the answer is read from :func:`final_segment` of the completion (a string or
    TRL's conversational messages). Both sides go through :func:`normalize_answer`; if they are
    not equal, a numeric reference is compared with the *last* number of that segment (numerically:
    ``3,500`` = ``3500.0`` = ``3500``), a date (``YYYY-MM-DD``) with the last date, and a one-word
    reference (a weekday) with the last word. Taking only the last one means listing candidates
    earns nothing.

    >>> exact_match_reward("3,500 metres", "3500"), exact_match_reward("#### 278", "278")
    (1.0, 1.0)
    >>> exact_match_reward("It is 2023-04-28.", "2023-04-28"), exact_match_reward("That was a Tuesday.", "Tuesday")
    (1.0, 1.0)
    >>> exact_match_reward("Maybe 41 or 42? I'd say 41.", "42"), exact_match_reward("", "42")
    (0.0, 0.0)
    >>> exact_match_reward([{"role": "assistant", "content": "The answer is 12.5"}], "12.50")
    1.0
    """
    if answer is None:
        return 0.0
    want = normalize_answer(str(answer))
    segment = final_segment(completion_text(completion))
    if not want or not segment:
        return 0.0
    if normalize_answer(segment) == want:
        return 1.0
    if _NUMBER.fullmatch(want):
        numbers = _NUMBER.findall(segment)
        return float(bool(numbers) and _canonical_number(numbers[-1]) == want)
    if _DATE.fullmatch(want):
        dates = _DATE.findall(segment)
        return float(bool(dates) and dates[-1] == want)
    if _WORD.fullmatch(want):
        words = _WORD.findall(segment)
        return float(bool(words) and words[-1].lower() == want)
    return 0.0


def exact_match_rewards(completions: list[Any], answer: list[str | None], **_: Any) -> list[float | None]:
    """TRL reward function: one reward per completion; ``None`` (not applicable) for rows without an
    answer, so rubric rows in the same batch are left to their own reward.

    >>> exact_match_rewards(["#### 7", "no idea", "x"], answer=["7", "7", None])
    [1.0, 0.0, None]
    """
    return [None if a is None else exact_match_reward(c, a) for c, a in zip(completions, answer)]
