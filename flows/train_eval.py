"""The ``train``, ``evaluate`` and ``train-eval`` flows: stage-sized tasks over the training and
evaluation stage functions (one training task; one answer+grade task per model per split)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flows import _prefect_env

_prefect_env.apply()

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.utilities.annotations import quote  # noqa: E402

from scenario_forge.config import BackendConfig  # noqa: E402
from scenario_forge.evaluation.config import EvalConfig  # noqa: E402
from scenario_forge.evaluation.records import GradeRow  # noqa: E402
from scenario_forge.evaluation.run import PreparedEval, evaluate_split, finish_eval, prepare_eval  # noqa: E402
from scenario_forge.training.config import TrainConfig  # noqa: E402
from scenario_forge.training.trainer import PreparedTraining, prepare_training, run_training  # noqa: E402


@task(name="prepare-training", cache_policy=NO_CACHE)
def prepare_training_task(config: TrainConfig) -> PreparedTraining:
    return prepare_training(config)


@task(name="grpo-train", tags=["train"], cache_policy=NO_CACHE)
def train_task(prepared: PreparedTraining) -> dict[str, Any]:
    return run_training(prepared).model_dump(mode="json")


@task(name="prepare-eval", cache_policy=NO_CACHE)
def prepare_eval_task(config: EvalConfig) -> PreparedEval:
    return prepare_eval(config)


@task(name="evaluate-split", tags=["llm"], cache_policy=NO_CACHE, task_run_name="evaluate-{label}-{split}")
def evaluate_split_task(prepared: PreparedEval, label: str, split: str) -> list[GradeRow]:
    return evaluate_split(prepared, label, split)


@task(name="eval-report", cache_policy=NO_CACHE)
def report_task(prepared: PreparedEval, grades: dict[str, list[GradeRow]], wall_s: float) -> dict[str, Any]:
    return finish_eval(prepared, grades, wall_s).model_dump(mode="json")


@flow(name="train", validate_parameters=True)
def train_flow(config: TrainConfig) -> dict[str, Any]:
    """GRPO on ``config.mixture``; returns the training result (final model folder, steps, reward counts)."""
    prepared = prepare_training_task(config)
    return train_task(quote(prepared))


@flow(name="evaluate", validate_parameters=True)
def evaluate_flow(config: EvalConfig) -> dict[str, Any]:
    """Evaluate ``config.model`` (and a baseline); returns the report's figures and file paths."""
    start = time.perf_counter()
    prepared = prepare_eval_task(config)
    grades: dict[str, list[GradeRow]] = {}
    for label in prepared.models:
        # One model at a time, its splits in order: both share the process's judge and model.
        grades[label] = [g for split in prepared.splits for g in evaluate_split_task(quote(prepared), label, split)]
    return report_task(quote(prepared), quote(grades), time.perf_counter() - start)


def trained_eval_config(train: TrainConfig, result: dict[str, Any], evaluate: EvalConfig | None) -> EvalConfig:
    """The evaluation of a training run: its final model, against the policy it started from
    unless ``evaluate`` names another baseline (both through transformers: same weights format,
    same runtime). Without ``evaluate``: the training mixture's held-out splits, the training judge,
    the report in ``OUT/eval``."""
    from scenario_forge.training.policy import resolve_policy

    model = BackendConfig(kind="transformers", model=str(result["final_model"]))
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


@flow(name="train-eval", validate_parameters=True)
def train_eval_flow(train: TrainConfig, evaluate: EvalConfig | None = None) -> dict[str, Any]:
    """Train, then evaluate the trained model against the starting policy (``evaluate`` tunes the
    evaluation; its ``model`` is replaced by the trained one)."""
    result = train_flow(train)
    report = evaluate_flow(trained_eval_config(train, result, evaluate))
    return {"train": result, "eval": report}
