"""``scenario-forge publish``: a run or a mixture as a Hugging Face dataset (local folder and/or Hub)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..publishing.config import PublishConfig
from ._common import build_config, guarded


def publish(
    source: Annotated[Optional[Path], typer.Argument(help="A run folder (OUT/RUN_ID) or a mixture folder.", show_default=False)] = None,
    local: Annotated[Optional[Path], typer.Option("--local", help="Write the Hub-layout folder here.")] = None,
    repo_id: Annotated[Optional[str], typer.Option("--repo-id", help="Push to this Hugging Face dataset repo (ORG/NAME); token from HF_TOKEN or `huggingface-cli login`.")] = None,
    private: Annotated[Optional[bool], typer.Option("--private", help="Create the Hub repo as private.")] = None,
    license: Annotated[Optional[str], typer.Option("--license", help="License id for the dataset card (default apache-2.0).")] = None,
    pretty_name: Annotated[Optional[str], typer.Option("--pretty-name", help="Dataset title on the card.")] = None,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", help="Extra card tag (repeatable).")] = None,
    export: Annotated[Optional[list[str]], typer.Option("--export", help="Trainer format to include: trl, verl (repeatable; default both).")] = None,
    no_exports: Annotated[bool, typer.Option("--no-exports", help="Publish without the trl/verl configs.")] = False,
    shard_rows: Annotated[Optional[int], typer.Option("--shard-rows", help="Rows per parquet file (default 500000).")] = None,
    overwrite: Annotated[Optional[bool], typer.Option("--overwrite", help="Replace an existing --local folder.")] = None,
    strict: Annotated[Optional[bool], typer.Option("--strict", help="Refuse a source that is not training-ready (default: warn).")] = None,
    commit_message: Annotated[Optional[str], typer.Option("--commit-message", help="Hub commit message.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file of PublishConfig fields; flags override it.")] = None,
    orchestrator: Annotated[str, typer.Option("--orchestrator", help="direct (default) or prefect.")] = "direct",
) -> None:
    """Write a Hub-layout dataset folder (data/<config>/<split>-*.parquet + README.md card) and/or push it."""
    _run(locals())


@guarded
def _run(args: dict[str, Any]) -> None:
    exports = [] if args["no_exports"] else args["export"]
    cfg = build_config(
        PublishConfig,
        args["config"],
        {
            "source": str(args["source"]) if args["source"] else None,
            "local": str(args["local"]) if args["local"] else None,
            "repo_id": args["repo_id"],
            "private": args["private"],
            "license": args["license"],
            "pretty_name": args["pretty_name"],
            "tags": args["tag"],
            "exports": exports,
            "shard_rows": args["shard_rows"],
            "overwrite": args["overwrite"],
            "strict": args["strict"],
            "commit_message": args["commit_message"],
        },
    )
    if args["orchestrator"] not in ("prefect", "direct"):
        from ..errors import ConfigError

        raise ConfigError(f"--orchestrator must be 'prefect' or 'direct', got {args['orchestrator']!r}")
    if not cfg.strict:  # --strict refuses in the build stage instead
        from ..curation.quality import not_ready_warnings

        for line in not_ready_warnings([cfg.source]):
            Console(stderr=True).print(line, style="yellow", highlight=False, soft_wrap=True, markup=False)
    from contextlib import nullcontext

    from .. import runlock

    # One writer per --local folder (built in a staging folder and swapped in: the lock sits next to it).
    lock = runlock.hold(runlock.sibling_lock(cfg.local), f"publish folder {cfg.local}") if cfg.local else nullcontext()
    with lock:
        if args["orchestrator"] == "direct":
            from ..publishing.run import run_publish

            summary = run_publish(cfg).summary()
        else:
            from flows.publish import publish_flow
            from ..orchestration.local_api import run_flow_from_cli

            summary = run_flow_from_cli(publish_flow, config=cfg)
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
