"""The ``train``, ``evaluate`` and ``train-eval`` flows: the steps of
:data:`~scenario_forge.training.trainer.TRAIN_STEPS` and :data:`~scenario_forge.evaluation.run.EVAL_STEPS`
(the lists ``--orchestrator direct`` runs), each a task of the same name (one answer+grade task per
model per split)."""

from __future__ import annotations

from prefect import flow

from scenario_forge.evaluation.config import EvalConfig
from scenario_forge.evaluation.run import (
    EVAL_STEPS,
    EvalJob,
    EvalResult,
    TrainEvalResult,
    trained_eval_config,
)
from scenario_forge.orchestration.prefect_steps import run_steps_as_tasks
from scenario_forge.training.config import TrainConfig
from scenario_forge.training.trainer import TRAIN_STEPS, TrainJob, TrainResult


@flow(name="train", validate_parameters=True)
def train_flow(config: TrainConfig) -> TrainResult:
    """GRPO on ``config.mixture``; returns the training result (final model folder, steps, reward counts)."""
    return run_steps_as_tasks(TRAIN_STEPS, TrainJob(config)).need_result()


@flow(name="evaluate", validate_parameters=True)
def evaluate_flow(config: EvalConfig) -> EvalResult:
    """Evaluate ``config.model`` (and a baseline); returns the report's figures and file paths."""
    return run_steps_as_tasks(EVAL_STEPS, EvalJob(config)).need_result()


@flow(name="train-eval", validate_parameters=True)
def train_eval_flow(train: TrainConfig, evaluate: EvalConfig | None = None) -> TrainEvalResult:
    """Train, then evaluate the trained model against the starting policy (``evaluate`` tunes the
    evaluation; its ``model`` is replaced by the trained one)."""
    result = train_flow(train)
    return TrainEvalResult(train=result, eval=evaluate_flow(trained_eval_config(train, result, evaluate)))
