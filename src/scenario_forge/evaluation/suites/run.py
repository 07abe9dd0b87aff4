"""Answer a suite with a model and score it with its adapter: :func:`run_suite`.

The model's answers come from one batch per adapter step (the pushback adapter asks twice: plain,
then after the pushback); the judge (rubric and judged adapters) is a separate backend. The result's
grades join the report's other grades (eval ``suite/<name>``), so suites are compared against the
baseline and counted in the FDR headline like any other eval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from ...backends.base import Backend, ChatRequest, StageUsage, timed_generate
from ...config import SamplingParams
from ...errors import ConfigError
from ...grading.config import GradingConfig
from ...hashing import content_key
from ...prompts import PromptSet
from ...records import Message
from ..metrics import summary
from ..records import GradeRow
from .exact import exact_figures, run_exact
from .grades import SPLIT, Ask
from .items import Suite
from .judged import judged_figures, run_judged
from .load import load_suite
from .pushback import pushback_figures, run_pushback
from .rubric import rubric_figures, run_rubric

NEEDS_JUDGE = frozenset({"rubric", "judged"})
#: an eval job's part name for a suite: ``suite:<name>`` (one part per model per suite)
SUITE_PART = "suite:"


class SuiteResult(BaseModel):
    """One model's grades on one suite and the suite's own figures (``summary`` over its grades plus the
    adapter's: HealthBench tag scores, accuracy, flip rate, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str
    kind: str
    source: str
    capability: bool
    grades: list[GradeRow]
    figures: dict[str, Any]


def asker(model: Backend, sampling: SamplingParams, seed: int = 0, usage: StageUsage | None = None) -> Ask:
    """The ``ask`` of the adapters: one request per conversation, seeded by its content."""
    counter = [0]
    usage = usage or StageUsage()

    def ask(conversations: Sequence[list[Message]]) -> list[str | None]:
        requests = []
        for conv in conversations:
            counter[0] += 1
            text = "\n".join(m.content for m in conv)
            requests.append(ChatRequest(id=f"suite-answer:{counter[0]}", messages=conv, sampling=sampling,
                                        seed=int(content_key(seed, text, length=8), 16) & 0x7FFFFFFF))
        return [g.text if g.ok else None for g in timed_generate(model, requests, usage)]

    return ask


def grade_suite(
    suite: Suite,
    model: Backend,
    judge: Backend | None,
    *,
    label: str = "model",
    sampling: SamplingParams | None = None,
    seed: int = 0,
    prompts: PromptSet | None = None,
    grading: GradingConfig | None = None,
) -> list[GradeRow]:
    """Answer every item of ``suite`` with ``model`` and score it (``judge`` for rubric and judged
    suites): one grade per item, in suite order."""
    ask = asker(model, sampling or SamplingParams(temperature=0.0, max_tokens=256), seed)
    if suite.kind in NEEDS_JUDGE and judge is None:
        raise ConfigError(f"suite {suite.source} ({suite.kind}) needs a judge")
    if suite.kind == "rubric":
        assert judge is not None
        return run_rubric(suite, label, ask, judge, prompts, grading)
    if suite.kind in ("multiple_choice", "exact_match"):
        return run_exact(suite, label, ask, prompts)
    if suite.kind == "pushback":
        return run_pushback(suite, label, ask)
    assert judge is not None
    return run_judged(suite, label, ask, judge, prompts)


def suite_figures(suite: Suite, grades: Sequence[GradeRow]) -> dict[str, Any]:
    """One model's figures on one suite, from its grades: the summary (mean, unscored, ...) and the
    adapter's own (HealthBench tag scores, accuracy, flip rate, the grading prompt)."""
    mine = [g for g in grades if g.split == SPLIT and g.task == suite.name]
    adapter = {
        "rubric": rubric_figures, "multiple_choice": exact_figures, "exact_match": exact_figures,
        "pushback": pushback_figures, "judged": judged_figures,
    }[suite.kind]
    return {"summary": summary(mine), **adapter(suite, mine)}


def suites_figures(suites: Sequence[Suite], grades: dict[str, list[GradeRow]]) -> dict[str, Any]:
    """Every suite's figures per model label, for the report (``figures["suites"]``)."""
    return {
        s.name: {"kind": s.kind, "source": s.source, "capability": s.capability, "items": len(s.items),
                 "models": {label: suite_figures(s, rows) for label, rows in grades.items()}}
        for s in suites
    }


def run_suite(
    suite: Suite,
    model: Backend,
    judge: Backend | None,
    *,
    label: str = "model",
    sampling: SamplingParams | None = None,
    seed: int = 0,
    prompts: PromptSet | None = None,
    grading: GradingConfig | None = None,
) -> SuiteResult:
    """:func:`grade_suite` and :func:`suite_figures` in one call."""
    grades = grade_suite(suite, model, judge, label=label, sampling=sampling, seed=seed, prompts=prompts, grading=grading)
    return SuiteResult(suite=suite.name, kind=suite.kind, source=suite.source, capability=suite.capability,
                       grades=grades, figures=suite_figures(suite, grades))


def load_suites(sources: Sequence[str]) -> list[Suite]:
    """Every ``--suite``, loaded and checked before any model is asked; two suites with one name are
    refused (their grades would share an eval)."""
    suites = [load_suite(s) for s in sources]
    names = [s.name for s in suites]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"two suites are named {name!r} ({', '.join(s.source for s in suites if s.name == name)}); rename one file")
    return suites
