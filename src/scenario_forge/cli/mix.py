"""``scenario-forge mix``: a training mixture and its held-out splits from one or more runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..mixing.config import MixConfig
from ._common import build_config, guarded


def mix(
    runs: Annotated[Optional[list[Path]], typer.Argument(help="Run folders (OUT/RUN_ID) or scenarios.parquet files.", show_default=False)] = None,
    recipe: Annotated[Optional[str], typer.Option("--recipe", "-r", help="Built-in recipe name (paper-5pct, baseline, health-only, no-health-science, generic-reward, traits-heldout) or a recipe YAML file.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Mixture folder to write.")] = None,
    base: Annotated[Optional[str], typer.Option("--base", help="Standard RL data: parquet/JSONL/CSV file, dataset folder or HF dataset id (offline cache). Default: embedded verifiable tasks.")] = None,
    base_split: Annotated[Optional[str], typer.Option("--base-split", help="Split of a dataset folder or hub id (default train).")] = None,
    base_prompt_column: Annotated[Optional[str], typer.Option("--base-prompt-column", help="Prompt column: text or chat messages (default prompt).")] = None,
    base_answer_column: Annotated[Optional[str], typer.Option("--base-answer-column", help="Exact-answer column (default: 'answer' if present).")] = None,
    base_task_column: Annotated[Optional[str], typer.Option("--base-task-column", help="Column naming each row's task.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Overrides the recipe's seed.")] = None,
    total: Annotated[Optional[int], typer.Option("--total", help="Total train rows (a multiple of the ratio's denominator).")] = None,
    heldout_domain: Annotated[Optional[list[str]], typer.Option("--heldout-domain", help="Hold out this domain (repeatable; replaces the recipe's list).")] = None,
    heldout_trait: Annotated[Optional[list[str]], typer.Option("--heldout-trait", help="Hold out this trait (repeatable; replaces the recipe's list).")] = None,
    allow_smaller: Annotated[Optional[bool], typer.Option("--allow-smaller", help="Build a smaller mixture (same exact ratio) when rows run short.")] = None,
    overwrite: Annotated[Optional[bool], typer.Option("--overwrite", help="Replace an existing mixture in --out.")] = None,
    strict: Annotated[Optional[bool], typer.Option("--strict", help="Refuse inputs that are not training-ready, and persistence probes that find no held-out scenario (default: warn).")] = None,
    spread_check: Annotated[Optional[bool], typer.Option("--spread-check/--no-spread-check", help="Sample answers and drop rubrics whose scores don't spread (default on).")] = None,
    spread_k: Annotated[Optional[int], typer.Option("--spread-k", help="Answers sampled per scenario for the spread check (>= 2, default 4).")] = None,
    keep_flagged: Annotated[Optional[bool], typer.Option("--keep-flagged", help="Keep flagged rubrics in training (still counted).")] = None,
    policy_backend: Annotated[Optional[str], typer.Option("--policy-backend", help="Backend sampling the answers (default embedded).")] = None,
    policy_model: Annotated[Optional[str], typer.Option("--policy-model", help="Policy model: GGUF path, server model name or HF id.")] = None,
    policy_base_url: Annotated[Optional[str], typer.Option("--policy-base-url", help="OpenAI-compatible server for the policy.")] = None,
    judge_backend: Annotated[Optional[str], typer.Option("--judge-backend", help="Backend grading the answers (default: the policy backend).")] = None,
    judge_model: Annotated[Optional[str], typer.Option("--judge-model", help="Judge model.")] = None,
    judge_base_url: Annotated[Optional[str], typer.Option("--judge-base-url", help="OpenAI-compatible server for the judge.")] = None,
    require_qualified_judge: Annotated[Optional[bool], typer.Option("--require-qualified-judge", help="Refuse to start unless the judge passed `scenario-forge judge check` (macro-F1 >= 0.7).")] = None,
    embedding_model: Annotated[Optional[str], typer.Option("--embedding-model", help="sentence-transformers folder for the contamination guard.")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Near-duplicate cosine threshold (default 0.9).")] = None,
    taxonomy: Annotated[Optional[Path], typer.Option("--taxonomy", help="Taxonomy folder (default: the shipped one).")] = None,
    prompts: Annotated[Optional[Path], typer.Option("--prompts", help="Prompt templates folder (default: the shipped one).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file of MixConfig fields; flags override it.")] = None,
    orchestrator: Annotated[str, typer.Option("--orchestrator", help="direct (default) or prefect.")] = "direct",
    plan_only: Annotated[bool, typer.Option("--plan-only", help="Print where every scenario would go and the spread check's requests; write nothing.")] = False,
) -> None:
    """Mix scenarios from runs with standard RL data per a recipe into OUT (train, held-out and
    persistence splits, mixture.json, dropped.parquet)."""
    _run(locals())


def _judge(args: dict[str, Any]) -> dict[str, Any]:
    if not any(args[k] for k in ("judge_backend", "judge_model", "judge_base_url")):
        return {}
    return {
        "spread.judge.kind": args["judge_backend"] or args["policy_backend"] or "embedded",
        "spread.judge.model": args["judge_model"],
        "spread.judge.base_url": args["judge_base_url"],
    }


@guarded
def _run(args: dict[str, Any]) -> None:
    def s(p: Path | None) -> str | None:
        return str(p) if p is not None else None

    cfg = build_config(
        MixConfig,
        args["config"],
        {
            "runs": [str(p) for p in args["runs"]] if args["runs"] else None,
            "recipe": args["recipe"],
            "out": s(args["out"]),
            "base": args["base"],
            "base_split": args["base_split"],
            "base_prompt_column": args["base_prompt_column"],
            "base_answer_column": args["base_answer_column"],
            "base_task_column": args["base_task_column"],
            "seed": args["seed"],
            "total_rows": args["total"],
            "heldout_domains": args["heldout_domain"],
            "heldout_traits": args["heldout_trait"],
            "allow_smaller": args["allow_smaller"],
            "overwrite": args["overwrite"],
            "strict": args["strict"],
            "embedding_model": args["embedding_model"],
            "threshold": args["threshold"],
            "taxonomy": s(args["taxonomy"]),
            "prompts": s(args["prompts"]),
            "spread.enabled": args["spread_check"],
            "spread.k": args["spread_k"],
            "spread.keep_flagged": args["keep_flagged"],
            "spread.require_qualified_judge": args["require_qualified_judge"],
            "spread.policy.kind": args["policy_backend"],
            "spread.policy.model": args["policy_model"],
            "spread.policy.base_url": args["policy_base_url"],
            **_judge(args),
        },
    )
    if args["orchestrator"] not in ("prefect", "direct"):
        from ..errors import ConfigError

        raise ConfigError(f"--orchestrator must be 'prefect' or 'direct', got {args['orchestrator']!r}")
    if not cfg.strict:  # --strict refuses in the plan stage instead
        from ..curation.quality import not_ready_warnings

        for line in not_ready_warnings(cfg.scenario_files()):
            Console(stderr=True).print(line, style="yellow", highlight=False, soft_wrap=True, markup=False)
    if args["plan_only"]:
        from ..mixing.estimate import estimate_mixture

        print_mix_plan(estimate_mixture(cfg))
        return
    from .. import runlock

    # One writer per mixture folder: it is built in a staging folder and swapped in, so the lock
    # file sits next to it (.OUT.lock).
    with runlock.hold(runlock.sibling_lock(cfg.out), f"mixture folder {cfg.out}"):
        if args["orchestrator"] == "direct":
            from ..mixing.run import run_mix

            meta = run_mix(cfg).model_dump(mode="json")
        else:
            from flows.mix import mix_flow
            from ..orchestration.local_api import run_flow_from_cli

            meta = run_flow_from_cli(mix_flow, config=cfg)
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
