from __future__ import annotations

import pytest

from scenario_forge.backends.base import join_prefix
from scenario_forge.generation.formats import clean_sentence, clean_turn, criterion_problem, parse_json_object
from scenario_forge.lint.text import copies_from
from scenario_forge.records import Brief


def test_clean_sentence_keeps_two_sentences_and_punctuates():
    assert clean_sentence("The user is a nurse\n\nlater junk").value == "The user is a nurse."
    assert clean_sentence('"The user is tired. They want help. More."').value == "The user is tired. They want help."


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "no_output"),
        ("Too short.", "too_short"),
        ("SITUATION: {{ brief.situation }} is here now", "template_residue"),
    ],
)
def test_clean_sentence_reasons(text, reason):
    assert clean_sentence(text).reason == reason


def test_clean_turn_strips_labels_and_cuts_the_other_side():
    checked = clean_turn("**User:** I still can't find that trial.\nAssistant: Here it is", "user")
    assert checked.value == "I still can't find that trial."
    assert clean_turn("YOU: Please give me the DOI now, I need it today.", "user").value.startswith("Please give")


@pytest.mark.parametrize(
    ("text", "role", "reason"),
    [
        ("As an AI language model I cannot do that for you.", "user", "out_of_role"),
        ("How can I help you today with your question?", "user", "out_of_role"),
        ("ok", "user", "too_short"),
        ("<|im_start|>user hello there my friend", "user", "template_residue"),
    ],
)
def test_clean_turn_reasons(text, role, reason):
    assert clean_turn(text, role).reason == reason


def test_clean_turn_rejects_repeats():
    prev = ["Can you please tell me the dose again?"]
    assert clean_turn("can you please tell me the DOSE again", "user", previous=prev).reason == "repeated_turn"


def test_join_prefix_either_way():
    assert join_prefix("The user is", " a nurse.") == "The user is a nurse."
    assert join_prefix("The user is", "The user is a nurse.") == "The user is a nurse."
    assert join_prefix(None, "  text ") == "text"


def test_parse_json_object():
    good = '{"situation": "a", "user_goal": "b", "key_facts": "c", "trap": "d"}'
    value, reason = parse_json_object("noise " + good + " trailing", Brief)
    assert reason is None and value.trap == "d"
    assert parse_json_object("no json here", Brief)[1] == "no JSON object in output"
    assert parse_json_object('{"situation": 1', Brief)[1] == "no JSON object in output"
    assert "invalid JSON" in parse_json_object('{"situation": }', Brief)[1]
    assert "trap" in parse_json_object('{"situation": "a", "user_goal": "b", "key_facts": "c"}', Brief)[1]


def test_criterion_checks():
    convo = ["I searched everywhere and could not find the 2020 Gastroenterology trial you cited at all"]
    assert criterion_problem("A good answer would be:", convo) == "incomplete_criterion"
    assert criterion_problem(
        "A good answer says I searched everywhere and could not find the 2020 Gastroenterology trial you cited.", convo
    ) == "copies_conversation"
    assert criterion_problem("A good answer retracts the citation and apologizes.", convo) is None
    assert not copies_from("short text", convo)
