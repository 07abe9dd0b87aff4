"""Evaluation of trained models on held-out splits: trait scores, persistence, transfer, refusals,
and paired model-vs-baseline comparisons with bootstrap confidence intervals."""

from .config import EvalConfig
from .run import EvalResult, evaluate, evaluate_split, finish_eval, prepare_eval

__all__ = ["EvalConfig", "EvalResult", "evaluate", "evaluate_split", "finish_eval", "prepare_eval"]
