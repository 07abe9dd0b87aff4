"""``scenario-forge lint FILE...``: say, without a model, which scenarios are usable RL prompts."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..lint import DESCRIPTIONS, LintResult, lint_scenario
from ..lint.brief import BriefWords, brief_of
from ..lint.read import Row, iter_rows
from ..taxonomy.loader import load_taxonomy
from ._common import guarded


def lint_row(row: Row, brief_words: BriefWords | None = None) -> LintResult:
    """Lint one row read from a file (its flaw, shape, domain and trait are used when present;
    ``brief_words``: the taxonomy's texts, default the shipped taxonomy's)."""
    return lint_scenario(
        row.id, row.messages, row.rubric,
        flaw=row.flaw, flawed_turn_index=row.flawed_turn_index, shape=row.shape, trait=row.trait,
        domain=row.domain, brief_words=brief_words,
    )


def lint(
    files: Annotated[list[Path], typer.Argument(help="JSONL or parquet files, run folders or published dataset folders.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per row: {id, usable, reasons}.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any row is unusable.")] = False,
    taxonomy: Annotated[Path | None, typer.Option(
        "--taxonomy", help="Taxonomy folder whose domain and trait texts a criterion must not merely restate (default: the shipped one).",
    )] = None,
) -> None:
    """Lint scenarios: conversation shape, role confusion, leftovers, repetition, truncation, rubric, flaw."""
    _run(files, as_json, strict, taxonomy)


@guarded
def _run(files: list[Path], as_json: bool, strict: bool, taxonomy: Path | None = None) -> None:
    brief_words = brief_of(load_taxonomy(taxonomy)) if taxonomy is not None else None
    # First pass: read and check every row (streaming), so bad input fails before anything is printed.
    for _ in iter_rows(files):
        pass
    rows = usable = 0
    by_reason: Counter[str] = Counter()
    by_file: dict[str, list[int]] = {}
    out = sys.stdout
    for row in iter_rows(files):
        result = lint_row(row, brief_words)
        rows += 1
        usable += result.usable
        by_reason.update(result.reasons)
        counts = by_file.setdefault(row.source, [0, 0])
        counts[0] += 1
        counts[1] += result.usable
        if as_json:
            out.write(json.dumps({"id": result.id, "usable": result.usable, "reasons": result.reasons}) + "\n")
    if not as_json:
        _print_summary(rows, usable, by_reason, by_file)
    if strict and usable < rows:
        raise typer.Exit(1)


def _print_summary(rows: int, usable: int, by_reason: Counter[str], by_file: dict[str, list[int]]) -> None:
    console = Console()
    share = f" ({usable / rows:.1%})" if rows else ""
    files = Table(title=f"lint: {usable} of {rows} scenarios usable{share}")
    files.add_column("file")
    files.add_column("rows", justify="right")
    files.add_column("usable", justify="right")
    files.add_column("usable %", justify="right")
    for name, (n, ok) in by_file.items():
        files.add_row(name, str(n), str(ok), f"{ok / n:.1%}" if n else "-")
    console.print(files)
    if not by_reason:
        return
    reasons = Table(title="unusable rows by reason (a row can have several)")
    reasons.add_column("reason")
    reasons.add_column("rows", justify="right")
    reasons.add_column("share", justify="right")
    reasons.add_column("meaning")
    for code in DESCRIPTIONS:
        if by_reason[code]:
            reasons.add_row(code, str(by_reason[code]), f"{by_reason[code] / rows:.1%}", DESCRIPTIONS[code])
    console.print(reasons)
