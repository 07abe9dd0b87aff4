"""Grading candidate answers: per-item rubrics (HealthBench scoring), a generic-helpfulness judge,
sign checks for rubric criteria, and the rubric judge's qualification against hand labels."""

from .config import GradingConfig
from .generic_judge import GenericJudge
from .rubric_grader import AnswerGrade, GradeItem, RubricGrader, healthbench_mean, rubric_score
from .sign_check import SignVerdict, check_signs
from .verdicts import parse_good_bad, parse_rating, parse_verdict, parse_yes_no

__all__ = [
    "AnswerGrade",
    "GenericJudge",
    "GradeItem",
    "GradingConfig",
    "RubricGrader",
    "SignVerdict",
    "check_signs",
    "healthbench_mean",
    "parse_good_bad",
    "parse_rating",
    "parse_verdict",
    "parse_yes_no",
    "rubric_score",
]
