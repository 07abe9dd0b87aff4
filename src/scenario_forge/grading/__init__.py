"""Grading candidate answers: per-item rubrics (HealthBench scoring), a generic-helpfulness judge,
and sign checks for rubric criteria."""

from .generic_judge import GenericJudge
from .rubric_grader import AnswerGrade, GradeItem, RubricGrader, rubric_score
from .sign_check import SignVerdict, check_signs
from .verdicts import parse_good_bad, parse_rating, parse_yes_no

__all__ = [
    "AnswerGrade",
    "GenericJudge",
    "GradeItem",
    "RubricGrader",
    "SignVerdict",
    "check_signs",
    "parse_good_bad",
    "parse_rating",
    "parse_yes_no",
    "rubric_score",
]
