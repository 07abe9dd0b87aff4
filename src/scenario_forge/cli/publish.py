"""``scenario-forge publish``: a run or a mixture as a Hugging Face dataset (local folder and/or Hub)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..publishing.config import PublishConfig
from .options import Given, config_command, run_job

#: The job this command runs, without and with Prefect (``--orchestrator``).
DIRECT, FLOW = "scenario_forge.publishing.run:run_publish", "flows.publish:publish_flow"


@config_command(PublishConfig)
def publish(
    given: Given[PublishConfig],
    no_exports: Annotated[bool, typer.Option("--no-exports", help="Publish without the trl/verl configs.")] = False,
) -> None:
    """Write a Hub-layout dataset folder (data/<config>/<split>-*.parquet + README.md card) and/or push it."""
    cfg = given.build({"exports": []} if no_exports else None)
    if not cfg.strict:  # --strict refuses in the build stage instead
        from ..curation.quality import not_ready_warnings

        for line in not_ready_warnings([cfg.source]):
            Console(stderr=True).print(line, style="yellow", highlight=False, soft_wrap=True, markup=False)
    summary = run_job(given.orchestrator, cfg, DIRECT, FLOW).summary()  # the job holds the --local folder's lock
    _print(summary)


def _print(summary: dict[str, Any]) -> None:
    console = Console()
    table = Table(title=f"published {summary['folder'] if summary.get('url') is None else summary['url']}")
    for col in ("config", "split", "rows"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for name, splits in summary["configs"].items():
        for split, rows in splits.items():
            table.add_row(name, split, str(rows))
    console.print(table)
    if summary.get("url"):
        console.print(f"pushed to {summary['url']}")
    else:
        console.print(f"folder: {summary['folder']} ({summary['files']} data files); load with datasets.load_dataset(FOLDER, CONFIG)")
