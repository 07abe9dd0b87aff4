"""``scenario-forge judge check``: how well does a judge agree with hand labels?"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from ..grading.config import JudgeCheckConfig
from .options import Given, config_command

app = typer.Typer(help="Qualify a rubric judge against hand-labelled verdicts.", no_args_is_help=True)


@app.command("check")
@config_command(JudgeCheckConfig, orchestrated=False)
def check(
    given: Given[JudgeCheckConfig],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")] = False,
) -> None:
    """Grade every calibration item with the judge and report accuracy, macro-F1 (overall and per
    criterion sign), Cohen's kappa, the unscoreable rate and the confusion matrix, with bootstrap
    CIs. The result is kept per judge identity (model digest + prompt hash + calibration-set hash)
    and read by mix, train and eval."""
    from ..backends.factory import backend_identity
    from ..evaluation.backends import load_backend
    from ..grading.calibration import calibration_hash, default_calibration_file, load_calibration
    from ..grading.qualification import DEFAULT_THRESHOLD, JudgeIdentity, run_check, save_result, template_hash

    check_cfg = given.build()
    path = check_cfg.items or default_calibration_file()
    calibration = load_calibration(path)  # bad input fails here: one line, nothing written
    if check_cfg.max_items is not None:
        calibration = calibration[: check_cfg.max_items]
    grading, cfg = check_cfg.grading, check_cfg.judge
    model = backend_identity(cfg)
    backend = load_backend(cfg)
    start = time.perf_counter()
    figures, grader = run_check(backend, calibration, grading, n_boot=check_cfg.bootstrap, seed=check_cfg.seed)
    wall = time.perf_counter() - start
    checked_hash = calibration_hash(path)
    if check_cfg.max_items is not None:  # a subset is another calibration set: its own identity
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
    if as_json:
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
