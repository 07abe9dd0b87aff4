"""``scenario-forge experiment FILE.yaml``: mix, train and evaluate every arm with the same compute,
each against the baseline arm, and write one report (docs/experiment.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ._common import guarded
from .options import DEFAULT_ORCHESTRATOR, ORCHESTRATOR_ENV, ORCHESTRATORS, Choices, _orchestrator, run_job

#: The job this command runs, without and with Prefect (``--orchestrator``).
DIRECT, FLOW = "scenario_forge.experiment.run:run_experiment", "flows.experiment:experiment_flow"


@guarded
def experiment(
    file: Annotated[Path, typer.Argument(help="experiment YAML: runs, arms (recipes), baseline, policy, budget, judges, eval (docs/experiment.md)", show_default=False)],
    orchestrator: Annotated[str, Choices(ORCHESTRATORS).option(
        "--orchestrator", envvar=ORCHESTRATOR_ENV,
        help="direct: run the steps in this process; prefect: run the same steps as the `experiment` flow.")] = DEFAULT_ORCHESTRATOR,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse before any training what is otherwise a warning: a non-baseline arm whose drawn prompts hold no beneficial row.")] = False,
) -> None:
    """Run the paper's comparison: every arm mixed, trained with the same compute and evaluated against
    the baseline arm; resumes per arm -> OUT/experiment.md, experiment.json, plots/."""
    from ..experiment.config import load_experiment

    config = load_experiment(file)  # one line and exit 2 on a bad file, before anything runs
    if strict:
        config = config.model_copy(update={"strict": True})
    result = run_job(_orchestrator(orchestrator), config, DIRECT, FLOW)
    print_experiment_summary(result.figures if hasattr(result, "figures") else result["figures"], config.out)


def print_experiment_summary(fig: dict[str, Any], out: Path, to: Console | None = None) -> None:
    from ..experiment.report import fmt_prompts

    to = to or Console()
    for arm in fig["arms_order"]:
        a = fig["arms"][arm]
        c = a["compute"]
        tokens = "–" if c["measured_tokens"] is None else f"{c['measured_tokens']:,}"
        gap = "" if c["measured_gap"] is None else f" ({c['measured_gap']:+.1%} vs baseline)"
        head = a["comparison"]["headline"] if a["comparison"] else "baseline"
        prompts = f"prompts {fmt_prompts(c['prompts_planned'])} planned, {fmt_prompts(c['prompts_used'])} used"
        to.print(f"{arm}: {c['steps']} steps, {c['completions']} completions ({prompts}), {tokens} training tokens{gap}; {head}",
                 highlight=False, markup=False)
    if not fig["compute_matched"]:
        to.print(f"warning: measured training tokens differ by more than {fig['budget']['token_tolerance']:.0%} for some arm",
                 style="yellow", markup=False)
    to.print(f"report: {out / 'experiment.md'}", markup=False)
