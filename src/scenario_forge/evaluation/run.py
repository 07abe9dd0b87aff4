"""``scenario-forge eval`` as steps (:data:`EVAL_STEPS`): prepare, answer+grade per model per
split, report.

:func:`prepare_eval` checks everything cheap first (mixture, splits, a baseline's grades, the
judge's and the models' reachability); :func:`evaluate_split` is the per-(model, split) unit of
work (one task each in the flow); :func:`finish_eval` computes the figures and writes the report.
:func:`evaluate` runs the list in this process; ``flows/train_eval.py`` runs the same list as
Prefect tasks of the same names.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..backends.base import StageUsage
from ..backends.factory import backend_identity
from ..config import BackendConfig
from ..errors import ConfigError, ForgeError
from ..grading import GenericJudge, RubricGrader
from ..grading.generic_judge import TEMPLATE as GENERIC_TEMPLATE
from ..grading.rubric_grader import JUDGE_TEMPLATE
from ..mixture import read_meta, read_split
from ..mixture import trained_domains as mixture_trained_domains
from ..prompts import PromptSet
from ..records import MixtureRow
from ..steps import AnyStep, ForEach, Step, run_steps
from ..training.config import TrainConfig
from ..training.trainer import TrainResult
from .backends import connect, load_backend
from .config import EvalConfig
from .metrics import Stats, report_figures
from .records import GradeRow, read_grades
from .refusal import TEMPLATE as REFUSAL_TEMPLATE
from .report import GRADES, REPORT_JSON, write_report
from .stages import answers_key, cached_answers, grade_answers
from .suites.grades import SPLIT as SUITE_SPLIT
from .suites.items import Suite
from .suites.run import NEEDS_JUDGE, SUITE_PART, grade_suite, load_suites

ANSWERS = "answers"


class PreparedEval(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    config: EvalConfig
    splits: list[str]
    rows: dict[str, list[MixtureRow]]
    models: dict[str, BackendConfig]  # label -> backend, for the models we answer with
    identities: dict[str, str]
    judge_identity: str | None
    baseline_grades: list[GradeRow] | None = None
    #: The transfer split: ``--trained-domain`` if given, else the mixture's beneficial domains.
    trained_domains: list[str] = []
    trained_domains_from: str = "mixture"
    #: The rubric judge's qualification as found before the run (grading/qualification.py).
    judge_qualification: dict[str, Any] | None = None
    #: External suites (``--suite``), loaded and checked before any model is asked.
    suites: list[Suite] = []


class EvalResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out: Path
    files: dict[str, Path]
    figures: dict[str, Any]
    wall_s: float


def default_splits(splits: dict[str, int]) -> list[str]:
    """The held-out splits of a mixture that have rows: ``heldout*`` and ``persistence_*``.

    (The contamination guard can empty a split; naming one with ``--split`` still fails on it.)"""
    return [s for s, n in splits.items() if s.startswith(("heldout", "persistence_")) and n > 0]


def prepare_eval(config: EvalConfig) -> PreparedEval:
    if config.model is None:
        raise ConfigError("no model to evaluate: give --model")
    suites = load_suites(config.suites)
    meta = read_meta(config.mixture)
    splits = list(config.splits) or default_splits(meta.splits)
    if not splits and not suites:
        raise ConfigError(f"mixture {config.mixture} has no held-out splits (heldout*, persistence_*); name some with --split")
    if meta.train_split in splits:
        raise ConfigError(f"split {meta.train_split!r} is the training split; evaluate held-out splits")
    rows = {s: read_split(config.mixture, s)[: config.max_rows] for s in splits}
    if config.trained_domains is not None:
        trained, trained_from = sorted(set(config.trained_domains)), "override"
    else:
        trained, trained_from = mixture_trained_domains(config.mixture, meta), "mixture"
    for split, split_rows in rows.items():
        if not split_rows:
            raise ConfigError(f"split {split!r} of {config.mixture} has no rows")
    baseline_grades = None
    if config.baseline_grades is not None:
        baseline_grades = _load_baseline_grades(config.baseline_grades, rows, config.baseline_label, frozenset(s.name for s in suites))
    all_rows = [r for rs in rows.values() for r in rs]
    needs_judge = config.refusal == "judge" or any(r.reward_type in ("rubric", "generic_judge") for r in all_rows)
    needs_judge = needs_judge or any(s.kind in NEEDS_JUDGE for s in suites)
    models = {config.model_label: config.model}
    if config.baseline is not None:
        models[config.baseline_label] = config.baseline
    judge_identity = None
    judge_qualification = None
    if needs_judge:
        from ..grading.qualification import gate_judge

        judge = connect(config.judge, "judge")
        judge_identity = backend_identity(config.judge)
        judge_qualification = gate_judge(
            config.judge, "eval", config.grading, require=config.require_qualified_judge,
            graded={label: _identity_or_none(cfg) for label, cfg in models.items()}, backend=judge,
        )
    identities = {}
    for label, cfg in models.items():
        connect(cfg, label)
        identities[label] = backend_identity(cfg)
    if baseline_grades is not None:
        identities[config.baseline_label] = f"grades:{config.baseline_grades}"
    return PreparedEval(
        config=config,
        splits=splits,
        rows=rows,
        models=models,
        identities=identities,
        judge_identity=judge_identity,
        baseline_grades=baseline_grades,
        judge_qualification=judge_qualification,
        trained_domains=trained,
        trained_domains_from=trained_from,
        suites=suites,
    )


def _identity_or_none(cfg: BackendConfig) -> str | None:
    try:
        return backend_identity(cfg)
    except ForgeError:  # an unreachable model fails next, on its own probe
        return None


def _load_baseline_grades(
    folder: Path, rows: dict[str, list[MixtureRow]], label: str, suites: frozenset[str] = frozenset()
) -> list[GradeRow]:
    """A previous eval's model grades as this run's baseline; its splits and rows must match ours."""
    report = folder / REPORT_JSON
    if not report.is_file():
        raise ConfigError(f"--baseline {folder}: not an eval output folder (no {REPORT_JSON})")
    try:
        old_label = json.loads(report.read_text(encoding="utf-8"))["meta"]["model_label"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ConfigError(f"--baseline {folder}: {REPORT_JSON} is not an eval report") from None
    grades = [g for g in read_grades(folder / GRADES) if g.model == old_label]
    by_split: dict[str, list[str]] = {}
    for g in grades:
        by_split.setdefault(g.split, []).append(g.row_id)
    missing = [s for s in rows if s not in by_split]
    if missing:
        raise ConfigError(
            f"--baseline {folder} has no grades for split(s) {', '.join(missing)} "
            f"(it has: {', '.join(sorted(by_split)) or 'none'}); evaluate the same splits"
        )
    for split, split_rows in rows.items():
        if set(by_split[split]) != {r.id for r in split_rows}:
            raise ConfigError(
                f"--baseline {folder}: split {split!r} holds different rows than this mixture's "
                "(another mixture or --max-rows?); evaluate the same rows"
            )
    keep = {(s, r.id) for s, rs in rows.items() for r in rs}
    # a suite's grades are the baseline of the same suite (by name) in this run
    keep |= {(g.split, g.row_id) for g in grades if g.split == SUITE_SPLIT and g.task in suites}
    return [g.model_copy(update={"model": label}) for g in grades if (g.split, g.row_id) in keep]


def evaluate_split(prepared: PreparedEval, label: str, split: str, usage: StageUsage | None = None) -> list[GradeRow]:
    """Answer one split with one model (cached by content key) and grade the answers."""
    config = prepared.config
    cfg = prepared.models[label]
    if split.startswith(SUITE_PART):
        suite = next(s for s in prepared.suites if SUITE_PART + s.name == split)
        suite_judge = load_backend(config.judge) if prepared.judge_identity and suite.kind in NEEDS_JUDGE else None
        return grade_suite(suite, load_backend(cfg), suite_judge, label=label, sampling=config.answer_sampling, seed=config.seed,
                           grading=config.grading)
    rows = prepared.rows[split]
    key = answers_key(prepared.identities[label], config.answer_sampling, config.seed, rows)
    answers = cached_answers(
        config.out / ANSWERS / label, key, lambda: load_backend(cfg), rows, config.answer_sampling, config.seed, usage
    )
    kinds = {r.reward_type for r in rows}
    judge = load_backend(config.judge) if prepared.judge_identity else None
    grader = RubricGrader(judge, config=config.grading) if judge is not None and "rubric" in kinds else None
    generic = GenericJudge(judge) if judge is not None and "generic_judge" in kinds else None
    return grade_answers(label, rows, answers, grader, generic, config.refusal, judge)


def finish_eval(prepared: PreparedEval, grades: dict[str, list[GradeRow]], wall_s: float = 0.0) -> EvalResult:
    """Figures and report files from every model's grades."""
    config = prepared.config
    if prepared.baseline_grades is not None:
        grades = {**grades, config.baseline_label: prepared.baseline_grades}
    baseline_label = config.baseline_label if config.has_baseline else None
    stats = Stats(n_boot=config.bootstrap, confidence=config.confidence, seed=config.seed, min_pairs=config.min_pairs,
                  fdr_q=config.fdr_q)
    figures = report_figures(grades, config.model_label, baseline_label, prepared.trained_domains, stats, prepared.suites)
    meta = {
        "mixture": str(config.mixture),
        "splits": {s: len(r) for s, r in prepared.rows.items()},
        "model_label": config.model_label,
        "baseline_label": baseline_label,
        "models": prepared.identities,
        "judge": prepared.judge_identity,
        "judge_qualification": prepared.judge_qualification,
        "templates": PromptSet().hash_of([JUDGE_TEMPLATE, GENERIC_TEMPLATE, REFUSAL_TEMPLATE]),
        "refusal": config.refusal,
        "answer_sampling": config.answer_sampling.model_dump(),
        "bootstrap": config.bootstrap,
        "confidence": config.confidence,
        "min_pairs": config.min_pairs,
        "seed": config.seed,
        "trained_domains": prepared.trained_domains,
        "trained_domains_from": prepared.trained_domains_from,
        "suites": {s.name: s.source for s in prepared.suites},
        "config": config.model_dump(mode="json"),
        "wall_s": round(wall_s, 2),
    }
    flat = [g for label in grades for g in grades[label]]
    files = write_report(config.out, meta, figures, flat, config.model_label, baseline_label)
    return EvalResult(out=config.out, files=files, figures=figures, wall_s=round(wall_s, 2))


class EvalPart(BaseModel):
    """One (model, split) unit of work: answer the split with the model, grade the answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prepared: PreparedEval
    label: str
    split: str

    @property
    def name(self) -> str:
        return f"evaluate-{self.label}-{self.split}"


def evaluate_part(part: EvalPart) -> list[GradeRow]:
    return evaluate_split(part.prepared, part.label, part.split)


@dataclass(frozen=True)
class EvalJob:
    """The state of an eval job as its steps fill it in."""

    config: EvalConfig
    started: float = field(default_factory=time.perf_counter)
    prepared: PreparedEval | None = None
    #: Per model label, its grades over every split (in split order).
    grades: dict[str, list[GradeRow]] = field(default_factory=dict)
    result: EvalResult | None = None

    def need_prepared(self) -> PreparedEval:
        if self.prepared is None:
            raise RuntimeError("the eval job is not prepared yet (prepare-eval comes first)")
        return self.prepared

    def need_result(self) -> EvalResult:
        if self.result is None:
            raise RuntimeError("the eval job has no report yet (eval-report comes last)")
        return self.result


def _prepare(job: EvalJob) -> EvalJob:
    return replace(job, prepared=prepare_eval(job.config))


def _parts(job: EvalJob) -> list[EvalPart]:
    # One model at a time, its splits in order: both share the process's judge and model.
    prepared = job.need_prepared()
    splits = prepared.splits + [SUITE_PART + s.name for s in prepared.suites]
    return [EvalPart(prepared=prepared, label=label, split=split) for label in prepared.models for split in splits]


def _merge(job: EvalJob, graded: list[list[GradeRow]]) -> EvalJob:
    grades: dict[str, list[GradeRow]] = {}
    for part, rows in zip(_parts(job), graded):
        grades.setdefault(part.label, []).extend(rows)
    return replace(job, grades=grades)


def _report(job: EvalJob) -> EvalJob:
    return replace(job, result=finish_eval(job.need_prepared(), job.grades, time.perf_counter() - job.started))


#: ``scenario-forge eval``'s steps.
EVAL_STEPS: list[AnyStep[EvalJob]] = [
    Step("prepare-eval", _prepare, gives=("prepared",)),
    ForEach(
        "evaluate-split", parts=_parts, run=evaluate_part, merge=_merge, tags=("llm",), part_name=lambda p: p.name,
        needs=("prepared",), gives=("grades",),
    ),
    Step("eval-report", _report, needs=("prepared", "grades"), gives=("result",)),
]


def evaluate(config: EvalConfig) -> EvalResult:
    """:data:`EVAL_STEPS` in this process (the flow runs the same list as tasks)."""
    return run_steps(EVAL_STEPS, EvalJob(config)).need_result()


def trained_eval_config(train: TrainConfig, result: TrainResult, evaluate: EvalConfig | None) -> EvalConfig:
    """The evaluation of a training run: its final model, against the policy it started from
    unless ``evaluate`` names another baseline (both through transformers: same weights format,
    same runtime). Without ``evaluate``: the training mixture's held-out splits, the training judge,
    the report in ``OUT/eval``."""
    from ..training.policy import resolve_policy

    model = BackendConfig(kind="transformers", model=str(result.final_model))
    start = BackendConfig(kind="transformers", model=str(resolve_policy(train.policy)))
    if evaluate is None:
        return EvalConfig(
            mixture=train.mixture, model=model, model_label="trained", baseline=start, baseline_label="start",
            judge=train.judge, out=Path(train.out) / "eval",
        )
    update: dict[str, Any] = {"model": model}
    if not evaluate.has_baseline:
        update["baseline"] = start
    return evaluate.model_copy(update=update)


class TrainEvalResult(BaseModel):
    """What the ``train-eval`` flow returns: the training run and the evaluation of its model."""

    model_config = ConfigDict(extra="forbid")

    train: TrainResult
    eval: EvalResult
