"""The lint reason codes: one per detector, each with the one line users see in ``docs/lint.md``."""

from __future__ import annotations

#: Every reason code with what it means, in report order (shape, role confusion, leftovers,
#: repetition, truncation, rubric, flaw).
DESCRIPTIONS: dict[str, str] = {
    "empty_turn": "a turn that is empty or whitespace-only",
    "roles_not_alternating": "roles do not alternate user/assistant (after an optional leading system message)",
    "not_ending_with_user": "the last turn is not the user's, or there is no user turn",
    "third_person_user": 'a user (or assistant) turn narrating the scenario about "the user"/"the assistant" in the third person',
    "second_person_narration": 'a user turn narrating the scene to the persona in the second person ("You\'re sitting in the recovery room, staring at your daughter")',
    "stage_direction": 'a turn narrating an action in parentheses or brackets, as in a script ("(smiles warmly)", "(laughs)", "(looks up at the patient)")',
    "role_label": "a turn containing role labels (USER:, ASSISTANT:, YOU:) or a scripted transcript",
    "assistant_as_user": "an assistant turn speaking from the user's seat",
    "user_as_assistant": "a user turn speaking from the assistant's seat (\"I'd love to help you\", \"I'm all set to help\", \"I'm so sorry for your...\")",
    "placeholder": "a fill-in left in: [Your Name], [URL], [insert X], (insert X), <name>, XXX",
    "template_fragment": "template residue, generator scaffolding, or our own prompt's instructions echoed",
    "repeated_turn": "a turn repeating an earlier turn (same or near-same text), or a user turn restating an earlier one",
    "self_repetition": "a turn that loops, repeating its own sentences or phrases",
    "assistant_copies_user": "an assistant turn copying most of the user turn before it",
    "truncated_final_turn": "the final user turn ends mid-sentence or mid-word",
    "ends_with_colon": 'a turn that ends on a colon, announcing content that is not there ("Here is an example of how this could be rephrased:")',
    "rubric_no_positive": "no criterion with points > 0",
    "rubric_no_negative": "no criterion with points < 0",
    "rubric_empty_criterion": "an empty or too-short (< 3 words) criterion",
    "rubric_duplicate_criterion": "two criteria with the same or near-same wording",
    "rubric_self_referential": 'a criterion that says nothing checkable ("A bad answer is \\"A bad answer\\"")',
    "rubric_leak": "a criterion's wording appears in a user or system turn, so the prompt tells the policy what is graded",
    "flaw_retracted": "a later assistant turn retracts the planted flaw before the final user turn",
    "flaw_missing": "flawed_turn_index does not point at an assistant turn, or the flaw is absent from it",
}

#: The reason codes, in report order.
REASONS: tuple[str, ...] = tuple(DESCRIPTIONS)

#: Codes :func:`scenario_forge.lint.turn_problems` can return (one turn, judged against the earlier ones).
TURN_REASONS: tuple[str, ...] = (
    "empty_turn",
    "third_person_user",
    "second_person_narration",
    "stage_direction",
    "role_label",
    "assistant_as_user",
    "user_as_assistant",
    "placeholder",
    "template_fragment",
    "repeated_turn",
    "self_repetition",
    "assistant_copies_user",
    "truncated_final_turn",
    "ends_with_colon",
)
