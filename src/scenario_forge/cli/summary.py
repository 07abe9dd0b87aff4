"""The progress bar during a run and the summary table after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import progress


@contextmanager
def shard_progress(console: Console) -> Iterator[None]:
    """A progress bar over shards, fed by :mod:`scenario_forge.progress` events."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    task_id = bar.add_task("shards", total=None, status="planning")
    # Not a terminal (a log file, CI): rich draws the bar only at the end, so say each step as a line.
    lines = not console.is_terminal

    def on_event(event: str, data: dict[str, Any]) -> None:
        if lines and event == "curation":
            console.print(f"curation: {data['step']}", highlight=False)
        if event in ("shard_start", "shard_done"):
            bar.update(task_id, total=data["total"])
        if event == "shard_start":
            bar.update(task_id, status=f"shard {data['index']}: {data['planned']} scenarios")
        elif event == "batch":
            bar.update(task_id, status=f"{data['stage']}: {data['requests']} requests")
        elif event == "shard_done":
            summary = data["summary"]
            note = "resumed" if summary.resumed else f"kept {summary.kept}/{summary.planned}"
            bar.update(task_id, advance=1, status=f"shard {data['index']} {note}")
            if lines:
                console.print(f"shard {data['index']} done ({note})", highlight=False)
        elif event == "curation":
            bar.update(task_id, status=f"curation: {data['step']}")

    stop = progress.listen(on_event)
    try:
        with bar:
            yield
    finally:
        stop()


def print_quality(manifest: dict[str, Any], console: Console) -> None:
    """The quality figures, the training-ready verdict and, when it is no, what to use instead."""
    from ..curation.quality import figures_line, verdict_line

    quality = manifest.get("quality")
    reasks = sum(int(u.get("reasks", 0)) for u in manifest.get("usage", {}).values())
    if quality:
        console.print(f"{figures_line(quality)}; turns and rubric lines re-asked for lint findings: {reasks}", highlight=False, soft_wrap=True)
    line = verdict_line(quality)
    ready = bool(quality and quality["verdict"]["training_ready"])
    console.print(Text(line, style="green" if ready else "yellow"), soft_wrap=True)
    advice = (quality or {}).get("verdict", {}).get("advice")
    if advice:
        console.print(f"instead: {advice}", highlight=False, soft_wrap=True)


#: The stages whose time ``generation_wall_s`` covers (curation's judge and embedder run after it).
GENERATION_STAGES = ("brief", "dialogue", "rubric")


def print_run_summary(manifest: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    counts = manifest["counts"]
    table = Table(title=f"run {manifest['run_id']}", show_header=True)
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_row("planned", str(counts["planned"]))
    table.add_row("kept", str(counts["kept"]))
    table.add_row("deduplicated", str(counts["deduplicated"]))
    table.add_row("rejected", str(counts["rejected"]))
    for reason, n in sorted(counts["rejected_by_reason"].items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {reason}", str(n))
    console.print(table)

    # A stage's seconds are summed over the shards that ran it side by side (shard-seconds), so its
    # tok/s is per shard stream; the line below gives the run's overall throughput.
    usage = Table(title="model usage by stage (seconds summed over concurrent shards)")
    for col in ("stage", "requests", "prompt tok", "completion tok", "shard s", "tok/s", "retries", "re-asks", "failures"):
        usage.add_column(col, justify="right" if col != "stage" else "left")
    for stage, u in manifest["usage"].items():
        usage.add_row(
            stage, str(u["requests"]), str(u["prompt_tokens"]), str(u["completion_tokens"]),
            f"{u['wall_s']:.1f}", f"{u['tokens_per_s']:.1f}", str(u["retries"]), str(u.get("reasks", 0)), str(u["failures"]),
        )
    console.print(usage)
    if manifest.get("curation"):
        from ..curation.report import summary_line

        console.print(summary_line(manifest))
    print_quality(manifest, console)
    t = manifest["timings"]
    wall = t.get("generation_wall_s", 0)
    generated = sum(u["completion_tokens"] for stage, u in manifest["usage"].items() if stage in GENERATION_STAGES)
    rate = f", {generated / wall:.1f} completion tok/s overall" if wall > 0 and t.get("shards_resumed", 0) == 0 else ""
    console.print(
        f"generation {wall:.1f} s over {t.get('shards', 0)} shards "
        f"({t.get('shards_resumed', 0)} resumed){rate}; output: {manifest['config']['out']}/{manifest['run_id']}"
    )
