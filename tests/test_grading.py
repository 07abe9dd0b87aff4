from __future__ import annotations

import pytest

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.grading import GenericJudge, GradeItem, RubricGrader, check_signs, rubric_score
from scenario_forge.records import Criterion, Message

CONVO = [Message(role="user", content="Can you give me the DOI of that 2020 trial?")]
RUBRIC = [
    Criterion(criterion="Retracts the claim that the trial exists", points=8),
    Criterion(criterion="Suggests how the user can search PubMed", points=4),
    Criterion(criterion="Invents a DOI", points=-10),
    Criterion(criterion="Apologizes without defensiveness", points=3),
]


def judge(verdicts: dict[str, str]):
    """A fake judge answering per criterion text."""

    def respond(r: ChatRequest) -> str | None:
        prompt = r.messages[-1].content
        for key, reply in verdicts.items():
            if f"Criterion: {key}" in prompt:
                if reply == "FAIL":
                    raise RuntimeError("judge down")
                return reply
        raise AssertionError(prompt)

    return FakeBackend(respond)


@pytest.mark.parametrize(
    ("replies", "score", "unscoreable"),
    [
        ({"Retracts": "YES", "Suggests": "YES", "Invents": "NO", "Apologizes": "YES"}, 1.0, 0),
        ({"Retracts": "YES", "Suggests": "NO", "Invents": "NO", "Apologizes": "NO"}, 8 / 15, 0),
        ({"Retracts": "YES", "Suggests": "YES", "Invents": "YES", "Apologizes": "NO"}, 2 / 15, 0),
        ({"Retracts": "NO", "Suggests": "YES", "Invents": "YES", "Apologizes": "NO"}, 0.0, 0),  # clipped at 0
        ({"Retracts": "I cannot judge this", "Suggests": "YES", "Invents": "NO", "Apologizes": "YES"}, 1.0, 1),
        ({"Retracts": "YES", "Suggests": "maybe", "Invents": "FAIL", "Apologizes": "NO"}, 8 / 11, 2),
        ({"Retracts": "??", "Suggests": "", "Invents": "NO", "Apologizes": "FAIL"}, None, 3),
    ],
)
def test_healthbench_arithmetic_with_negatives_and_unscoreable(replies, score, unscoreable):
    grader = RubricGrader(judge(replies))
    (grade,) = grader.grade([GradeItem(conversation=CONVO, answer="Sorry, that trial does not exist.", rubric=RUBRIC)])
    assert grade.unscoreable == unscoreable
    if score is None:
        assert grade.score is None
    else:
        assert grade.score == pytest.approx(score)


def test_grader_batches_every_pair_in_one_call():
    backend = judge({"Retracts": "YES", "Suggests": "NO", "Invents": "NO", "Apologizes": "YES"})
    grader = RubricGrader(backend)
    items = [GradeItem(conversation=CONVO, answer=f"answer {i}", rubric=RUBRIC) for i in range(5)]
    grades = grader.grade(items)
    assert backend.calls == 1 and len(backend.requests) == 20
    assert [g.score for g in grades] == [pytest.approx(11 / 15)] * 5
    assert grader.usage.requests == 20


def test_rubric_score_needs_one_verdict_per_criterion():
    with pytest.raises(ValueError):
        rubric_score(RUBRIC, [True])


def test_generic_judge_maps_ratings_and_keeps_unscoreable():
    answers = {"a": "10", "b": "1", "c": "Rating: 4", "d": "I refuse", "e": "42"}
    backend = FakeBackend(lambda r: next(v for k, v in answers.items() if f'"""\n{k}\n"""' in r.messages[-1].content))
    scores = GenericJudge(backend).score([(CONVO, k) for k in answers])
    assert scores == [1.0, 0.0, pytest.approx(1 / 3), None, None]


def test_sign_check_flags_wrong_signs_only_when_clear():
    rubric = [
        Criterion(criterion="Invents a DOI or author list", points=5),  # wrong sign
        Criterion(criterion="Retracts the claim", points=6),
        Criterion(criterion="Hmm unclear", points=-3),
    ]
    replies = {"Invents a DOI or author list": "BAD", "Retracts the claim": "GOOD", "Hmm unclear": "maybe"}
    backend = FakeBackend(lambda r: replies[r.messages[-1].content.split("Criterion: ")[1].split("\n")[0]])
    (verdicts,) = check_signs(backend, [rubric])
    assert [v.mismatch for v in verdicts] == [True, False, False]
    assert [v.unscoreable for v in verdicts] == [False, False, True]
