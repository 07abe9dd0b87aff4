"""The progress display during a run and the summary table after it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import progress
from ..progress import STAGE_KINDS, RunProgress, format_duration

if TYPE_CHECKING:
    from ..config import GenerateConfig

#: Seconds between status lines when stdout is not a terminal (a log file, CI, a container).
LINE_INTERVAL_S = 30.0


def planned_requests(config: GenerateConfig, structured: bool, path: str = "short") -> int:
    """The plan estimate's first-attempt generation requests (``generate --plan-only``'s figures)
    on the path the run takes (``capable`` or ``short``; ``structured`` picks the short path's form)."""
    from ..generation.estimate import estimate_run

    plan = estimate_run(config)
    if path == "capable":
        return sum(est.requests for est in plan.capable.values())
    stages = plan.structured if structured else plan.plain
    kinds = {kind for kinds in STAGE_KINDS.values() for kind in kinds}
    return sum(est.requests for name, est in stages.items() if name in kinds)


class Heartbeat:
    """Calls ``emit(line())`` when ``interval`` seconds have passed since the last line; :meth:`tick`
    is the whole rule (tests drive it with a fake clock), :meth:`start` runs it on a daemon thread."""

    def __init__(
        self, line: Callable[[], str], emit: Callable[[str], None], interval: float = LINE_INTERVAL_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.line, self.emit, self.interval = line, emit, interval
        self.clock = clock or time.monotonic
        self.last = self.clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> bool:
        """Emit a line if one is due; True when it did."""
        now = self.clock()
        if now - self.last < self.interval:
            return False
        self.last = now
        self.emit(self.line())
        return True

    def said(self) -> None:
        """A line was printed for another reason: the next one is due ``interval`` from now."""
        self.last = self.clock()

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(min(1.0, self.interval / 4)):
                try:
                    self.tick()
                except Exception:  # noqa: BLE001 - a display problem must not stop generation
                    return

        self._thread = threading.Thread(target=loop, name="progress-lines", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


@contextmanager
def run_progress(
    console: Console, planned: int = 0, requests: int = 0, interval: float | None = None
) -> Iterator[RunProgress]:
    """Stage-level progress fed by :mod:`scenario_forge.progress` events: scenarios done / planned,
    the stage, planned requests answered, tokens/s and an ETA. On a terminal, a rich bar; otherwise
    (rich would draw the bar only at the end) a line at each shard and curation step and at least
    every ``interval`` seconds."""
    state = RunProgress(planned, requests)
    lock = threading.Lock()
    if not console.is_terminal:
        def say(text: str) -> None:
            console.print(f"progress: {text}", highlight=False, soft_wrap=True)

        def line() -> str:
            with lock:
                return state.line()

        beat = Heartbeat(line, say, LINE_INTERVAL_S if interval is None else interval)

        def on_line_event(event: str, data: dict[str, Any]) -> None:
            with lock:  # shards report from their own threads
                on_line(event, data)

        def on_line(event: str, data: dict[str, Any]) -> None:
            state.on_event(event, data)
            if event == "curation":
                console.print(f"curation: {data['step']}", highlight=False)
                beat.said()
            elif event == "shard_done":
                summary = data["summary"]
                note = "resumed" if summary.resumed else f"kept {summary.kept}/{summary.planned}"
                say(f"shard {data['index']} done ({note}); {state.line()}")
                beat.said()

        stop = progress.listen(on_line_event)
        beat.start()
        try:
            yield state
        finally:
            stop()
            beat.stop()
        return

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[scenarios]}"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    task_id = bar.add_task("planning", total=1000, scenarios="", rate="", eta="")

    def on_bar_event(event: str, data: dict[str, Any]) -> None:
        with lock:
            update(event, data)

    def update(event: str, data: dict[str, Any]) -> None:
        state.on_event(event, data)
        eta = state.eta_s()
        bar.update(
            task_id,
            completed=round(1000 * state.fraction) if planned else 0,
            description=state.stage,
            scenarios=f"{state.done}/{planned} scenarios" if planned else "",
            rate=f"{state.tokens_per_s():.1f} tok/s" if state.completion_tokens else "",
            eta=f"ETA {format_duration(eta)}" if eta is not None else "",
        )

    stop = progress.listen(on_bar_event)
    try:
        with bar:
            yield state
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
    for col in ("stage", "requests", "prompt tok", "completion tok", "shard s", "server s", "tok/s", "retries", "re-asks", "failures"):
        usage.add_column(col, justify="right" if col != "stage" else "left")
    for stage, u in manifest["usage"].items():
        usage.add_row(
            stage, str(u["requests"]), str(u["prompt_tokens"]), str(u["completion_tokens"]),
            f"{u['wall_s']:.1f}", f"{u.get('server_s', 0.0):.1f}", f"{u['tokens_per_s']:.1f}", str(u["retries"]),
            str(u.get("reasks", 0)), str(u["failures"]),
        )
    console.print(usage)
    total = (manifest.get("cost") or {}).get("total") or {}
    if "tokens_per_kept" in total:
        console.print(
            f"cost per kept scenario: {total['tokens_per_kept']:,.0f} tokens ({total['prompt_tokens_per_kept']:,.0f} prompt, "
            f"{total['completion_tokens_per_kept']:,.0f} completion), {total['requests_per_kept']:.1f} requests, "
            f"{total['server_s_per_kept']:.3f} server-s"
        )
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
