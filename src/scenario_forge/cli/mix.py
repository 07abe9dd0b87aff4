"""``scenario-forge mix``: a training mixture and its held-out splits from one or more runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..mixing.config import MixConfig
from ._common import as_json
from .options import Given, config_command, run_job

#: The job this command runs, without and with Prefect (``--orchestrator``).
DIRECT, FLOW = "scenario_forge.mixing.run:run_mix", "flows.mix:mix_flow"


@config_command(MixConfig)
def mix(
    given: Given[MixConfig],
    plan_only: Annotated[bool, typer.Option("--plan-only", help="Print where every scenario would go and the spread check's requests; write nothing.")] = False,
) -> None:
    """Mix scenarios from runs with standard RL data per a recipe into OUT (train, held-out and
    persistence splits, mixture.json, dropped.parquet)."""
    cfg = given.build()
    if not cfg.strict:  # --strict refuses in the plan stage instead
        from ..curation.quality import not_ready_warnings

        for line in not_ready_warnings(cfg.scenario_files()):
            Console(stderr=True).print(line, style="yellow", highlight=False, soft_wrap=True, markup=False)
    if plan_only:
        from ..mixing.estimate import estimate_mixture

        print_mix_plan(estimate_mixture(cfg))
        return
    meta = as_json(run_job(given.orchestrator, cfg, DIRECT, FLOW))  # the job holds the mixture folder's lock
    print_mix_summary(meta, cfg.out)


def print_mix_plan(p: Any, to: Console | None = None) -> None:
    """The ``--plan-only`` report (a :class:`~scenario_forge.mixing.estimate.MixPlanReport`)."""
    to = to or Console()
    to.print(f"plan: recipe {p.recipe} -> {p.out} (nothing written); {p.loaded} scenarios loaded, "
             f"{p.candidates} training candidates, ratio {p.ratio}, base set {p.base}")
    to.print("held out: " + (", ".join(f"{k} {v}" for k, v in p.heldout.items()) or "none"))
    to.print("not in any split: " + (", ".join(f"{k} {v}" for k, v in p.dropped.items()) or "none"))
    if p.train is not None:
        to.print(f"train: {p.train['beneficial']} beneficial + {p.train['standard']} standard = {p.train['total']} ({p.train_note})")
    else:
        to.print(f"train: cannot be built as asked: {p.train_note}")
    if not p.spread:
        to.print("spread check: off (no model requests)")
        return
    table = Table(title="spread check requests and tokens, first attempts (cached results are not asked again)")
    for col in ("stage", "requests", "prompt tokens <=", "completion tokens <="):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for name, e in p.spread.items():
        table.add_row(name, f"{e.requests:,}", f"{e.prompt_tokens:,}", f"{e.completion_tokens:,}")
    to.print(table)


def print_mix_summary(meta: dict[str, Any], out: Path, to: Console | None = None) -> None:
    to = to or Console()
    counts, ratio = meta["counts"], meta["ratio"]
    table = Table(title=f"mixture {meta['recipe']['name']} -> {out}")
    table.add_column("split")
    table.add_column("rows", justify="right")
    for name, n in meta["splits"].items():
        table.add_row(name, str(n))
    to.print(table)
    kind = "sized as" if "sized_as" in ratio else "beneficial"
    b = ratio["sized_as"]["beneficial"] if "sized_as" in ratio else ratio["beneficial"]
    to.print(
        f"train: {counts['train_beneficial']} beneficial + {counts['train_standard']} standard = {counts['train_total']} "
        f"({kind} {b}/{ratio['total']} = {ratio['fraction']}, exact: {ratio['exact']})"
    )
    spread = meta.get("spread_check") or {}
    if spread.get("enabled"):
        to.print(
            f"spread check (k={spread['k']}): {spread['checked']} checked, {spread['flat']} flat, "
            f"{spread['unscoreable']} unscoreable{' (kept)' if spread['kept_flagged'] else ' (dropped)'}, "
            f"{spread['from_cache']} from cache"
        )
    else:
        to.print("spread check: off")
    guard = meta.get("contamination") or {}
    to.print(
        f"contamination guard: {guard.get('pairs', 0)} train/held-out near-duplicate pairs at {guard.get('threshold')}, "
        f"{sum((guard.get('removed') or {}).values())} held-out rows removed, {guard.get('remaining_pairs', 0)} remaining"
    )
    quality = meta.get("quality")
    if quality:
        ready = "yes" if quality["training_ready"] else "no"
        to.print(f"training-ready: {ready}, because " + "; ".join(quality["because"]), highlight=False, markup=False, soft_wrap=True)
    if counts["dropped"]:
        reasons = ", ".join(f"{r} {n}" for r, n in counts["dropped_by_reason"].items())
        to.print(f"not in any split: {counts['dropped']} scenarios ({reasons}); see dropped.parquet")
