"""``scenario-forge eval``: answer held-out splits with a model (and a baseline), grade, report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from ..evaluation.config import EvalConfig
from ..modelspec import model_backend_config, parse_kind
from .options import BACKEND_CHOICES, Given, config_command, run_job

#: The job this command runs, without and with Prefect (``--orchestrator``).
DIRECT, FLOW = "scenario_forge.evaluation.run:evaluate", "flows.train_eval:evaluate_flow"


@config_command(EvalConfig)
def evaluate(
    given: Given[EvalConfig],
    model: Annotated[Optional[str], typer.Option("--model", help="Model under evaluation: a model spec (docs/models.md): 'embedded', a .gguf file, a Hugging Face folder (e.g. OUT/final), KIND:MODEL, or a server model name with --base-url.")] = None,
    model_backend: Annotated[Optional[str], BACKEND_CHOICES.option("--model-backend", help="Force the model's backend (default: inferred from the spec).")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server serving --model.")] = None,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Baseline: a model spec (as --model) or a previous eval's output folder (its grades are reused).")] = None,
    baseline_backend: Annotated[Optional[str], BACKEND_CHOICES.option("--baseline-backend", help="Force the baseline's backend.")] = None,
    baseline_base_url: Annotated[Optional[str], typer.Option("--baseline-base-url", help="OpenAI-compatible server serving --baseline.")] = None,
) -> None:
    """Evaluate a model (and optionally a baseline) on held-out splits: trait scores, persistence,
    transfer, refusals, paired wins/losses with bootstrap CIs -> OUT/eval.md, eval.json, plots, grades."""
    baseline_is_grades = baseline is not None and (Path(baseline) / "eval.json").is_file()
    cfg = given.build({
        "model": _backend(model, model_backend, base_url, "--model-backend"),
        "baseline": None if baseline_is_grades else _backend(baseline, baseline_backend, baseline_base_url, "--baseline-backend"),
        "baseline_grades": baseline if baseline_is_grades else None,
    })
    figures = run_job(given.orchestrator, cfg, DIRECT, FLOW).figures
    print_eval_summary(figures, cfg.out, cfg.model_label, cfg.baseline_label if cfg.has_baseline else None)


def _backend(spec: str | None, kind: str | None, base_url: str | None, kind_flag: str) -> dict[str, Any] | None:
    """A ``--model``/``--baseline`` spec's backend config (eval's batch sizes), or None if not given."""
    if spec is None:
        return None
    return model_backend_config(spec, kind=parse_kind(kind, kind_flag), base_url=base_url).model_dump(mode="json")


def print_eval_summary(figures: dict[str, Any], out: Path, model_label: str, baseline_label: str | None, to: Console | None = None) -> None:
    to = to or Console()
    for label, data in figures["models"].items():
        o = data["overall"]
        mean = "–" if o["mean"] is None else f"{o['mean']:.3f}"
        rate = "–" if o["refusal_rate"] is None else f"{100 * o['refusal_rate']:.0f}%"
        to.print(f"{label}: mean {mean} over {o['scored']}/{o['n']} scored answers "
                 f"({o['unscored']} unscored: {o['unscoreable']} judge, {o['generation_failed']} generation); refusals {rate}")
        p = data.get("persistence")
        if p and p.get("drop") and p["drop"]["diff"] is not None:
            to.print(f"  persistence: drop under harmful persona {p['drop']['diff']:+.3f}"
                     + (f", gain under helpful persona {p['gain']['diff']:+.3f}" if p.get("gain") and p["gain"]["diff"] is not None else ""))
    if baseline_label and figures.get("comparison"):
        t = figures["comparison"]["tally"]
        to.print(f"{model_label} vs {baseline_label}: {t['better']}/{t['evals']} evals better, {t['worse']} worse, "
                 f"{t['no_significant_difference']} n.s., {t['too_few_pairs']} with too few pairs")
        fdr = figures["comparison"].get("fdr")
        if fdr:
            to.print(f"  {fdr['headline']}")
    to.print(f"report: {out / 'eval.md'}")
