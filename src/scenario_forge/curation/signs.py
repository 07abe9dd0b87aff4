"""Rubric sign checks inside curation (issue 8): a criterion whose sign clearly contradicts the
judge is removed from the rubric.

The judge (:func:`scenario_forge.grading.check_signs`) says whether each criterion describes
GOOD or BAD behaviour. A *mismatch* (a failure such as "Invents a DOI" carrying positive points,
or a virtue carrying negative points) removes that criterion; the scenario is rejected with
``rubric_sign_mismatch`` only if what remains no longer has >= 1 negative and >= 3 positive
criteria tagged with the trait. An unclear verdict is *unscoreable*: it is counted and never held
against the criterion. The two criteria the short generation path writes about a planted flaw
(tags ``axis:flaw_accepted`` / ``axis:flaw_corrected``) open with our own words ("A bad answer
accepts the earlier claim that ...", "A good answer corrects the earlier claim with the fact
that ..."), so their sign is fixed by construction: a mismatch verdict on them is counted
(``fixed_sign_kept``) and the criterion stays, keeping the guarantee that a flawed-turn row's
rubric quotes its flaw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.base import Backend, StageUsage
from ..grading import check_signs
from ..prompts import PromptSet
from ..records import Reject, Scenario
from .gates import rubric_problems

STAGE = "judge"
REASON = "rubric_sign_mismatch"
MAX_EXAMPLES = 20
#: Tags of criteria whose sign the generator fixed by their opening words.
FIXED_SIGN_TAGS = frozenset({"axis:flaw_accepted", "axis:flaw_corrected"})


@dataclass
class SignOutcome:
    kept: list[Scenario]
    rejects: list[Reject]
    report: dict[str, Any]


def apply_sign_checks(
    scenarios: Sequence[Scenario], backend: Backend, prompts: PromptSet, usage: StageUsage
) -> SignOutcome:
    verdicts = check_signs(backend, [s.rubric for s in scenarios], prompts, usage) if scenarios else []
    kept: list[Scenario] = []
    rejects: list[Reject] = []
    removed_total = unscoreable = pruned = fixed = 0
    examples: list[dict[str, Any]] = []
    for scenario, vs in zip(scenarios, verdicts):
        unscoreable += sum(v.unscoreable for v in vs)
        mismatch = [v.mismatch and FIXED_SIGN_TAGS.isdisjoint(c.tags) for c, v in zip(scenario.rubric, vs)]
        fixed += sum(v.mismatch for v in vs) - sum(mismatch)
        removed = [c for c, m in zip(scenario.rubric, mismatch) if m]
        if not removed:
            kept.append(scenario)
            continue
        removed_total += len(removed)
        for c in removed:
            if len(examples) < MAX_EXAMPLES:
                examples.append({"id": scenario.id, "criterion": c.criterion, "points": c.points})
        remaining = scenario.model_copy(update={"rubric": [c for c, m in zip(scenario.rubric, mismatch) if not m]})
        problems = rubric_problems(remaining)
        if problems:
            detail = "; ".join(f"{c.points:+d} {c.criterion[:60]!r}" for c in removed)
            rejects.append(Reject.of_scenario(scenario, STAGE, REASON, f"removed {detail}; then {problems[0][1]}"))
        else:
            pruned += 1
            kept.append(remaining)
    report = {
        "checked_criteria": sum(len(s.rubric) for s in scenarios),
        "removed_criteria": removed_total,
        "unscoreable_verdicts": unscoreable,
        "scenarios_pruned": pruned,
        "fixed_sign_kept": fixed,
        "rejected": len(rejects),
        "removed_examples": examples,
    }
    return SignOutcome(kept=kept, rejects=rejects, report=report)
