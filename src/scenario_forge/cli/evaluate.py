"""``scenario-forge eval``: answer held-out splits with a model (and a baseline), grade, report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from ..errors import ConfigError
from ._common import build_config, guarded


def evaluate(
    model: Annotated[Optional[str], typer.Option("--model", help="Model under evaluation: 'embedded', a .gguf file, a Hugging Face folder (e.g. OUT/final), or a server model name with --base-url.")] = None,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Baseline: a model (as --model) or a previous eval's output folder (its grades are reused).")] = None,
    mixture: Annotated[Optional[Path], typer.Option("--mixture", help="Mixture folder whose held-out splits are evaluated.")] = None,
    split: Annotated[Optional[list[str]], typer.Option("--split", "--splits", help="Split to evaluate (repeatable; default: heldout* and persistence_*).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Report folder (default outputs/eval).")] = None,
    model_backend: Annotated[Optional[str], typer.Option("--model-backend", help="Force the model's backend: embedded, llamacpp, openai, transformers, vllm.")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server serving --model.")] = None,
    model_label: Annotated[Optional[str], typer.Option("--model-label", help="Name of the model in the report (default 'model').")] = None,
    baseline_backend: Annotated[Optional[str], typer.Option("--baseline-backend", help="Force the baseline's backend.")] = None,
    baseline_base_url: Annotated[Optional[str], typer.Option("--baseline-base-url", help="OpenAI-compatible server serving --baseline.")] = None,
    baseline_label: Annotated[Optional[str], typer.Option("--baseline-label", help="Name of the baseline in the report (default 'baseline').")] = None,
    judge_backend: Annotated[Optional[str], typer.Option("--judge-backend", help="Judge backend: embedded (default), llamacpp, openai, transformers.")] = None,
    judge_model: Annotated[Optional[str], typer.Option("--judge-model", help="Judge model: GGUF path, server model name or HF folder.")] = None,
    judge_base_url: Annotated[Optional[str], typer.Option("--judge-base-url", help="OpenAI-compatible server for the judge.")] = None,
    require_qualified_judge: Annotated[Optional[bool], typer.Option("--require-qualified-judge", help="Refuse to start unless the judge passed `scenario-forge judge check` (macro-F1 >= 0.7).")] = None,
    max_rows: Annotated[Optional[int], typer.Option("--max-rows", help="Evaluate the first N rows of each split only.")] = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", help="Max new tokens per answer (default 256).")] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", help="Answer sampling temperature (default 0: greedy).")] = None,
    refusal: Annotated[Optional[str], typer.Option("--refusal", help="Refusal detection: pattern (default) or judge.")] = None,
    trained_domain: Annotated[Optional[list[str]], typer.Option("--trained-domain", help="Domain the model was trained on (repeatable; default: read from the mixture, the domains of its beneficial training rows): the others are transfer.")] = None,
    bootstrap: Annotated[Optional[int], typer.Option("--bootstrap", help="Bootstrap resamples (default 2000).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Answer sampling and bootstrap seed (default 0).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file of EvalConfig fields; flags override it.")] = None,
    orchestrator: Annotated[str, typer.Option("--orchestrator", help="direct (default) or prefect.")] = "direct",
) -> None:
    """Evaluate a model (and optionally a baseline) on held-out splits: trait scores, persistence,
    transfer, refusals, paired wins/losses with bootstrap CIs -> OUT/eval.md, eval.json, plots, grades."""
    _run(locals())


#: config field -> the flag that sets it (error messages name the flag)
FLAGS = {
    "mixture": "--mixture", "splits": "--split", "out": "--out", "model_label": "--model-label",
    "baseline_label": "--baseline-label", "max_rows": "--max-rows", "answer_sampling.max_tokens": "--max-tokens",
    "answer_sampling.temperature": "--temperature", "refusal": "--refusal", "trained_domains": "--trained-domain",
    "bootstrap": "--bootstrap", "seed": "--seed", "judge.kind": "--judge-backend", "judge.model": "--judge-model",
    "judge.base_url": "--judge-base-url", "require_qualified_judge": "--require-qualified-judge",
}


def _backend(spec: str | None, kind: str | None, base_url: str | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    from ..evaluation.backends import model_backend_config

    return model_backend_config(spec, kind=kind, base_url=base_url).model_dump(mode="json")  # type: ignore[arg-type]


def _is_eval_folder(spec: str | None) -> bool:
    return spec is not None and (Path(spec) / "eval.json").is_file()


@guarded
def _run(args: dict[str, Any]) -> None:
    if args["orchestrator"] not in ("prefect", "direct"):
        raise ConfigError(f"--orchestrator must be 'prefect' or 'direct', got {args['orchestrator']!r}")
    from ..evaluation.backends import infer_kind
    from ..evaluation.config import EvalConfig

    judge = {}
    if any(args[k] for k in ("judge_backend", "judge_model", "judge_base_url")):
        judge = {
            "judge.kind": args["judge_backend"] or infer_kind(args["judge_model"], args["judge_base_url"]),
            "judge.model": args["judge_model"],
            "judge.base_url": args["judge_base_url"],
        }
    baseline_is_grades = _is_eval_folder(args["baseline"])
    cfg = build_config(
        EvalConfig,
        args["config"],
        {
            "mixture": str(args["mixture"]) if args["mixture"] else None,
            "splits": args["split"],
            "out": str(args["out"]) if args["out"] else None,
            "model": _backend(args["model"], args["model_backend"], args["base_url"]),
            "model_label": args["model_label"],
            "baseline": None if baseline_is_grades else _backend(args["baseline"], args["baseline_backend"], args["baseline_base_url"]),
            "baseline_grades": args["baseline"] if baseline_is_grades else None,
            "baseline_label": args["baseline_label"],
            "max_rows": args["max_rows"],
            "answer_sampling.max_tokens": args["max_tokens"],
            "answer_sampling.temperature": args["temperature"],
            "refusal": args["refusal"],
            "trained_domains": args["trained_domain"],
            "bootstrap": args["bootstrap"],
            "seed": args["seed"],
            "require_qualified_judge": args["require_qualified_judge"],
            **judge,
        },
        FLAGS,
    )
    if args["orchestrator"] == "prefect":
        from flows.train_eval import evaluate_flow

        from ..orchestration.local_api import run_flow_from_cli

        figures = run_flow_from_cli(evaluate_flow, config=cfg)["figures"]
    else:
        from ..evaluation.run import evaluate as run_eval

        figures = run_eval(cfg).figures
    print_eval_summary(figures, cfg.out, cfg.model_label, cfg.baseline_label if cfg.has_baseline else None)


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
    to.print(f"report: {out / 'eval.md'}")
