"""``scenario-forge generate``: plan, generate, curate; a progress bar and a summary table."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..config import GenerateConfig
from ._common import as_json, console, fail
from .options import Given, config_command, run_job
from .summary import planned_requests, print_run_summary, run_progress

#: The job this command runs, without and with Prefect (``--orchestrator``).
DIRECT, FLOW = "scenario_forge.generation.run:run_generate_direct", "flows.generate:generate_flow"


@config_command(GenerateConfig)
def generate(
    given: Given[GenerateConfig],
    plan_only: Annotated[bool, typer.Option("--plan-only", help="Print the plan, its requests and a token estimate; generate and write nothing.")] = False,
    estimate: Annotated[Optional[int], typer.Option(
        "--estimate", metavar="N", help="Price a run of N planned scenarios: run a --pilot-n pilot on the real backend in a "
        "temporary folder (removed after), print its requests, tokens and server-seconds scaled to N; nothing else written.")] = None,
    pilot_n: Annotated[int, typer.Option("--pilot-n", help="Scenarios in the --estimate pilot.")] = 16,
) -> None:
    """Generate multi-turn pressure scenarios with rubrics into OUT/RUN_ID."""
    cfg = given.build()
    if estimate is not None:
        import tempfile

        from ..generation.estimate import pilot_estimate

        with tempfile.TemporaryDirectory(prefix="scenario-forge-pilot-") as tmp:
            print(f"estimate: a pilot of {pilot_n} scenarios in {tmp} (removed afterwards)", file=sys.stderr)
            print_pilot(pilot_estimate(cfg, estimate, pilot_n, Path(tmp)))
        return
    if plan_only:
        from ..generation.estimate import estimate_run

        print_plan(estimate_run(cfg))
        return
    from ..generation.run import plan_run

    planned = plan_run(cfg)  # bad input fails here, before Prefect or any model starts
    from .. import runlock
    from ..backends.factory import get_backend

    # One writer per run folder: a second process with the same run id stops here with one line,
    # before it loads a model (a folder made only for the lock is removed again on the way out).
    with runlock.hold(runlock.run_lock(planned.root), f"run folder {planned.root}"):
        backend = get_backend(cfg.backend)  # unreachable server, wrong model or key, missing extra: one line, nothing written
        if cfg.curate and cfg.curation.judge:
            from ..grading.qualification import quality_judge_warning

            line = quality_judge_warning(cfg.backend, cfg.curation.judge_backend)
            if line:
                print(f"warning: generate: {line}", file=sys.stderr)
        structured = cfg.backend.structured_output == "auto" and backend.auto_json_schema
        from ..generation.capable import resolve_path

        before = decode_stats(backend)
        with run_progress(console, planned.planned, planned_requests(cfg, structured, resolve_path(cfg, backend))):
            manifest = as_json(run_job(given.orchestrator, cfg, DIRECT, FLOW))
    print_run_summary(manifest)
    if manifest.get("keep"):
        k = manifest["keep"]
        console.print(f"keep: {k['kept']} of --keep {k['target']} kept after {len(k['rounds'])} round(s), {k['attempted']} attempted (budget {k['max_attempts']})")
    line = occupancy_line(backend, before, manifest["timings"].get("generation_wall_s"))
    if line:
        console.print(line)
    reason = keep_missed(manifest, planned.root) or nothing_kept(manifest, planned.root)
    if reason:
        fail(reason, 1)


def keep_missed(manifest: dict[str, Any], root: Path) -> str | None:
    """The one-line reason a ``--keep N`` run that kept fewer than N fails with (its files stay), or None.

    >>> keep_missed({"keep": {"met": False, "reason": "kept 3 of --keep 5: the attempt budget is spent"}}, Path("out/r1"))
    'kept 3 of --keep 5: the attempt budget is spent; everything written is in out/r1'
    >>> keep_missed({"keep": {"met": True}}, Path("out/r1")) is None
    True
    """
    keep = manifest.get("keep")
    if not keep or keep.get("met"):
        return None
    return f"{keep['reason']}; everything written is in {root}"


def nothing_kept(manifest: dict[str, Any], root: Path) -> str | None:
    """The one-line reason a run that kept 0 scenarios fails with (its files stay), or None.

    >>> nothing_kept({"counts": {"planned": 2, "kept": 0, "deduplicated": 0,
    ...     "rejected_by_reason": {"brief:backend_error": 2}}}, Path("out/r1"))
    '0 of 2 planned scenarios kept (brief:backend_error 2); everything written is in out/r1 (rejects.parquet with each reason, manifest.json)'
    """
    counts = manifest["counts"]
    if counts["kept"] > 0:
        return None
    reasons = dict(counts.get("rejected_by_reason") or {})
    if counts.get("deduplicated"):
        reasons["near-duplicates"] = counts["deduplicated"]
    breakdown = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))) or "no rows"
    return (
        f"0 of {counts['planned']} planned scenarios kept ({breakdown}); everything written is in {root} "
        "(rejects.parquet with each reason, manifest.json)"
    )


def print_plan(p: Any) -> None:
    """The ``--plan-only`` report (a :class:`~scenario_forge.generation.estimate.RunPlan`) on stdout."""
    from rich.console import Console
    from rich.table import Table

    out = Console()
    state = "resumes the run already there" if p.resumes else "new run folder"
    out.print(f"plan: {p.n} scenarios in {p.shards} shards of up to {p.shard_size} -> {p.folder} ({state}); nothing written")
    out.print(f"cells (domain x trait): {len(p.cells)}, {min(p.cells.values())}-{max(p.cells.values())} scenarios each; "
              f"{p.user_turns} user turns; pressures: " + ", ".join(f"{k} {v}" for k, v in p.pressures.items()))
    for title, stages in (("short path, plain text (every backend)", {**p.plain, **p.curation}),
                          ("short path, structured (a backend that takes JSON schemas)", {**p.structured, **p.curation}),
                          ("capable path (--path capable; auto on a schema-decoding backend)", {**p.capable, **p.curation})):
        table = Table(title=f"requests and tokens, first attempts: {title}")
        for col in ("stage", "requests", "prompt tokens <=", "completion tokens <="):
            table.add_column(col, justify="left" if col == "stage" else "right")
        for name, e in {**stages, "total": p.total(stages)}.items():
            table.add_row(name, f"{e.requests:,}", f"{e.prompt_tokens:,}", f"{e.completion_tokens:,}")
        out.print(table)
    out.print("estimate: templates rendered for the first scenario (characters / 4) plus the max_tokens of what each "
              "request carries; completion tokens at each request's max_tokens; re-asks come on top "
              "(see scenario_forge.generation.estimate)")


def print_pilot(p: Any) -> None:
    """The ``--estimate`` report (a :class:`~scenario_forge.generation.estimate.PilotEstimate`) on stdout."""
    from rich.console import Console
    from rich.table import Table

    out = Console()
    out.print(f"pilot: {p.pilot_planned} planned, {p.pilot_kept} kept ({p.kept_rate:.0%}) in {p.pilot_wall_s:.1f} s")
    table = Table(title=f"predicted for {p.target:,} planned scenarios (~{p.predicted_kept:,.0f} kept at the pilot's rate)")
    for col in ("stage", "requests", "prompt tokens", "completion tokens", "server-s"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for name, r in p.predicted.items():
        table.add_row(name, f"{r['requests']:,.0f}", f"{r['prompt_tokens']:,.0f}", f"{r['completion_tokens']:,.0f}",
                      f"{r['server_s']:,.1f}")
    out.print(table)
    total = p.pilot["total"]
    if p.pilot_kept:
        k = p.pilot_kept
        out.print(f"per kept scenario: {(total['prompt_tokens'] + total['completion_tokens']) / k:,.0f} tokens, "
                  f"{total['requests'] / k:.1f} requests, {total['server_s'] / k:.3f} server-s")
    else:
        out.print("the pilot kept nothing: per-kept figures are undefined (see the pilot's rejects by running it for real)")
    note = ("estimate: the pilot's figures per planned scenario x N. Tokens and requests scale linearly; server-seconds "
            "only if the pilot fills the server's batch as the run will")
    if p.concurrency and p.pilot_planned < p.concurrency:
        note += f" (it did not: {p.pilot_planned} scenarios < --concurrency {p.concurrency}, so server-s is an upper bound)"
    out.print(note + "; near-duplicates grow with N, so a curated run keeps somewhat fewer than predicted")


def decode_stats(backend: Any) -> Any:
    """A copy of a llama.cpp backend's decode-loop counters (None for other backends)."""
    from ..backends.llama_scheduler import SchedulerStats

    stats = getattr(backend, "stats", None)
    return replace(stats) if isinstance(stats, SchedulerStats) else None


def occupancy_line(backend: Any, before: Any, wall_s: float | None) -> str | None:
    """The run's decode-batch occupancy (active sequences / slots), from the counters' growth since
    ``before``; None when the backend has no decode loop here (servers, other processes)."""
    after = decode_stats(backend)
    if before is None or after is None:
        return None
    import dataclasses

    from ..backends.llama_scheduler import occupancy

    delta = type(after)(**{f.name: getattr(after, f.name) - getattr(before, f.name) for f in dataclasses.fields(after)})
    occ = occupancy(delta, int(getattr(backend, "parallel", 0)), wall_s)
    if "per_step" not in occ:
        return None
    timed = f", {occ['decode_time']:.0%} weighted by step time" if "decode_time" in occ else ""
    wall = f", {occ['wall']:.0%} over the generation's wall time (idle counts as empty)" if "wall" in occ else ""
    return (f"decode batch occupancy: mean {occ['per_step']:.0%} of {backend.parallel} slots per decode step "
            f"({delta.decode_calls} steps){timed}{wall}")
