"""The exact-match reward (grading/exact_match.py) the trainer and the evaluation import: its
normalization, and the TRL reward-function form."""

from __future__ import annotations

import doctest

import pytest

from scenario_forge.grading import exact_match
from scenario_forge.grading.exact_match import exact_match_reward, exact_match_rewards


def test_doctests():
    assert doctest.testmod(exact_match).failed == 0


@pytest.mark.parametrize(
    ("completion", "answer", "reward"),
    [
        ("3500", "3500", 1.0),
        ("3,500 metres", "3500", 1.0),
        ("**3500.0**", "3500", 1.0),
        ("First 12 x 24 = 288, then 288 - 10 = 278.", "278", 1.0),
        ("\\boxed{278} and later 5", "278", 1.0),
        ("#### 278", "278", 1.0),
        ("The final answer is: Tuesday.", "Tuesday", 1.0),
        ("It was 2023-04-28, not 2023-04-29.", "2023-04-28", 0.0),  # the last date counts
        ("It falls on 2023-04-28.", "2023-04-28", 1.0),
        ("Maybe 278 or 279", "278", 0.0),
        ("-5", "-5", 1.0),
        ("I don't know", "278", 0.0),
        ("", "278", 0.0),
        ("278", None, 0.0),
    ],
)
def test_exact_match_normalization(completion, answer, reward):
    assert exact_match_reward(completion, answer) == reward


def test_trl_shapes():
    conversational = [[{"role": "assistant", "content": "#### 7"}], [{"role": "assistant", "content": "8"}], "x"]
    assert exact_match_rewards(conversational, answer=["7", "7", None], prompts=["a", "b", "c"]) == [1.0, 0.0, None]
