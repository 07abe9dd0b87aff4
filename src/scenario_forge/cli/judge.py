"""``scenario-forge judge check``: how well does a judge agree with hand labels?"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import ValidationError
from rich.console import Console

from .._validation import one_line
from ..errors import ConfigError
from ._common import guarded
from .options import BACKEND_CHOICES

app = typer.Typer(help="Qualify a rubric judge against hand-labelled verdicts.", no_args_is_help=True)


@app.command("check")
def check(
    items: Annotated[Optional[Path], typer.Option("--items", help="Calibration JSONL (default: the shipped labelled/judge_calibration.jsonl).")] = None,
    judge_backend: Annotated[Optional[str], BACKEND_CHOICES.option("--judge-backend", help="Judge backend (default: inferred from --judge-model, docs/models.md).")] = None,
    judge_model: Annotated[Optional[str], typer.Option("--judge-model", help="Judge model spec (docs/models.md); default: embedded.")] = None,
    judge_base_url: Annotated[Optional[str], typer.Option("--judge-base-url", help="OpenAI-compatible server for the judge.")] = None,
    output: Annotated[Optional[str], typer.Option("--output", help="Verdict form: auto (default), json, explain or short.")] = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", help="Token budget of an explanation (default 256).")] = None,
    retries: Annotated[Optional[int], typer.Option("--retries", help="Times an unscoreable verdict is asked again (default 2).")] = None,
    max_items: Annotated[Optional[int], typer.Option("--max-items", help="Check the first N items only (the result is still stored).")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples for the CIs.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")] = False,
) -> None:
    """Grade every calibration item with the judge and report accuracy, macro-F1 (overall and per
    criterion sign), Cohen's kappa, the unscoreable rate and the confusion matrix, with bootstrap
    CIs. The result is kept per judge identity (model digest + prompt hash + calibration-set hash)
    and read by mix, train and eval."""
    _run(locals())


@guarded
def _run(args: dict[str, Any]) -> None:
    from ..backends.factory import backend_identity
    from ..config import BackendConfig
    from ..evaluation.backends import load_backend
    from ..grading.calibration import calibration_hash, default_calibration_file, load_calibration
    from ..grading.config import GradingConfig
    from ..grading.qualification import DEFAULT_THRESHOLD, JudgeIdentity, run_check, save_result, template_hash

    path = args["items"] or default_calibration_file()
    calibration = load_calibration(path)  # bad input fails here: one line, nothing written
    if args["max_items"] is not None:
        if args["max_items"] < 1:
            raise ConfigError("--max-items must be at least 1")
        calibration = calibration[: args["max_items"]]
    if args["bootstrap"] < 100:
        raise ConfigError("--bootstrap must be at least 100")
    grading = GradingConfig(**{k: v for k, v in (("output", args["output"]), ("max_tokens", args["max_tokens"]),
                                                    ("retries", args["retries"])) if v is not None})
    given = {"kind": args["judge_backend"], "model": args["judge_model"], "base_url": args["judge_base_url"]}
    try:  # the model spec names the backend unless --judge-backend does (docs/models.md)
        cfg = BackendConfig.model_validate({**{k: v for k, v in given.items() if v is not None}, "parallel_sequences": 32})
    except ValidationError as exc:
        raise ConfigError(one_line(exc, "judge")) from None
    model = backend_identity(cfg)
    backend = load_backend(cfg)
    start = time.perf_counter()
    figures, grader = run_check(backend, calibration, grading, n_boot=args["bootstrap"], seed=args["seed"])
    wall = time.perf_counter() - start
    checked_hash = calibration_hash(path)
    if args["max_items"] is not None:  # a subset is another calibration set: its own identity
        from ..hashing import content_key

        checked_hash = content_key(checked_hash, [it.id for it in calibration])
    identity = JudgeIdentity(model=model, template_hash=template_hash(), form=grader.form, calibration_hash=checked_hash)
    extra = {
        "calibration_file": str(path),
        "items_checked": len(calibration),
        "grading": grading.model_dump(),
        "wall_s": round(wall, 2),
        "criteria_per_s": round(len(calibration) / wall, 3) if wall > 0 else None,
        "usage": grader.usage.summary(),
    }
    stored = save_result(identity, figures, extra)
    summary = {k: v for k, v in figures.items() if k != "items"}
    result = {
        **summary,
        "judge": model,
        "form": grader.form,
        "key": identity.key,
        "template_hash": identity.template_hash,
        "calibration_hash": identity.calibration_hash,
        "calibration_file": str(path),
        "threshold": DEFAULT_THRESHOLD,
        "qualified": summary["macro_f1"] is not None and summary["macro_f1"] >= DEFAULT_THRESHOLD,
        "wall_s": extra["wall_s"],
        "criteria_per_s": extra["criteria_per_s"],
        "stored": str(stored),
    }
    if args["as_json"]:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
    else:
        print_check(result)


def _fmt(value: float | None, ci: Any = None) -> str:
    if value is None:
        return "–"
    text = f"{value:.3f}"
    if ci:
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def print_check(r: dict[str, Any], to: Console | None = None) -> None:
    to = to or Console()
    ci = r.get("ci") or {}
    to.print(f"judge {r['judge']} ({r['form']} verdicts) on {r['n']} items of {r['calibration_file']}")
    to.print(f"  accuracy  {_fmt(r['accuracy'], ci.get('accuracy'))}   (unscoreable counts as wrong)")
    to.print(f"  macro-F1  {_fmt(r['macro_f1'], ci.get('macro_f1'))}")
    to.print(f"  F1 positive criteria {_fmt(r['f1_positive'])} (n={r['by_sign']['positive']['n']}), "
             f"negative criteria {_fmt(r['f1_negative'])} (n={r['by_sign']['negative']['n']})")
    to.print(f"  Cohen's kappa {_fmt(r['kappa'], ci.get('kappa'))}")
    to.print(f"  unscoreable {_fmt(r['unscoreable_rate'])} ({r['unscoreable']} items after {r['retries']} retries, "
             f"{r['recovered_by_retry']} rescued by a retry)")
    c = r["confusion"]
    to.print("  confusion (gold x verdict): met/not met/unscoreable")
    for gold in ("gold_met", "gold_not_met"):
        row = c[gold]
        to.print(f"    {gold:<13} {row['met']:>5} {row['not_met']:>8} {row['unscoreable']:>12}")
    verdict = "qualified" if r["qualified"] else "NOT qualified"
    to.print(f"{verdict} (macro-F1 threshold {r['threshold']}); result kept in {r['stored']}")
