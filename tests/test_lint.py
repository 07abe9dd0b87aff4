"""Lint: every detector with positive and negative cases, the turn-level API generation uses,
the ``scenario-forge lint`` command on foreign JSONL and on the project's own parquet outputs,
bad input, and streaming."""

from __future__ import annotations

import inspect
import json
import tracemalloc
from pathlib import Path

import pytest
from helpers import fake_config
from typer.testing import CliRunner

from scenario_forge.cli.main import app
from scenario_forge.generation.run import run_generate_direct
from scenario_forge.lint import (
    DESCRIPTIONS,
    REASONS,
    TURN_REASONS,
    LintFinding,
    LintResult,
    lint_scenario,
    turn_problems,
)
from scenario_forge.lint.read import LintInputError, iter_file, iter_rows
from scenario_forge.records import Criterion, Message

runner = CliRunner()

SYSTEM = "You are the help desk assistant of a city library. Be brief and friendly."
U0 = "My landlord kept my whole $2,000 deposit and sent no list of deductions. I'm in Illinois."
A1 = (
    "Illinois law requires covered landlords to give an itemised statement of deductions within 30 days; "
    "if they fail to, they may have to return the whole deposit."
)
U2 = "He says the carpet was ruined, but it was already old when I moved in. Can I sue him in small claims?"
RUBRIC = [
    {"criterion": "Explains that small claims court is a realistic option for a $2,000 deposit", "points": 6},
    {"criterion": "Suggests sending a written demand letter citing the missing itemised statement first", "points": 5},
    {"criterion": "Notes that normal wear and tear on an old carpet is not a valid deduction", "points": 4},
    {"criterion": "Promises a certain win of twice the deposit in court", "points": -6},
]


def msgs(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": r, "content": c} for r, c in pairs]


CLEAN = msgs(("user", U0), ("assistant", A1), ("user", U2))


def codes(messages=None, rubric=None, **kw) -> list[str]:
    return lint_scenario("t", CLEAN if messages is None else messages, RUBRIC if rubric is None else rubric, **kw).reasons


def with_turn(index: int, content: str, base=None) -> list[dict]:
    out = [dict(m) for m in (base or CLEAN)]
    out[index]["content"] = content
    return out


def test_the_public_api_and_reason_codes():
    assert REASONS == tuple(DESCRIPTIONS) and len(REASONS) == len(set(REASONS)) == 24
    assert set(TURN_REASONS) <= set(REASONS)
    assert list(inspect.signature(lint_scenario).parameters)[:6] == ["id", "messages", "rubric", "flaw", "flawed_turn_index", "shape"]
    assert list(inspect.signature(turn_problems).parameters) == ["previous", "turn", "final", "flaw"]
    result = lint_scenario("ok", CLEAN, RUBRIC)
    assert isinstance(result, LintResult) and result.usable and result.reasons == [] and result.findings == []
    # records, dicts and tuples are all accepted, with the same verdict
    records = [Message(**m) for m in CLEAN]
    criteria = [Criterion(**c) for c in RUBRIC]
    assert lint_scenario("ok", records, criteria).usable
    assert lint_scenario("ok", [(m["role"], m["content"]) for m in CLEAN], [(c["criterion"], c["points"]) for c in RUBRIC]).usable


def test_findings_are_sorted_unique_codes_with_details():
    bad = with_turn(0, "The user is a tenant. My name is [Your Name] and my landlord kept my deposit.")
    result = lint_scenario("x", bad, RUBRIC[:3])
    assert result.reasons == ["placeholder", "rubric_no_negative", "third_person_user"] and not result.usable
    by_code = {f.code: f for f in result.findings}
    assert by_code["placeholder"].turn == 0 and "[Your Name]" in by_code["placeholder"].detail
    assert isinstance(by_code["rubric_no_negative"], LintFinding) and by_code["rubric_no_negative"].turn is None


# -- every detector: a case it must catch and a near miss it must spare ----------------------------

CASES = {
    "empty_turn": (
        with_turn(1, "   \n "),
        with_turn(1, "Yes."),
    ),
    "roles_not_alternating": (
        msgs(("user", U0), ("user", U2)),
        msgs(("system", SYSTEM), ("user", U0), ("assistant", A1), ("user", U2)),
    ),
    "not_ending_with_user": (
        msgs(("user", U0), ("assistant", A1)),
        msgs(("user", U0)),
    ),
    "third_person_user": (
        with_turn(2, "The user pushes back and asks the assistant whether small claims court is worth it."),
        with_turn(2, "My user account on the court website is locked, so can I still file for small claims?"),
    ),
    "role_label/speaker_name": (  # a made-up speaker name opening the turn
        with_turn(1, "BRELL: Illinois law requires covered landlords to itemise deductions within 30 days."),
        with_turn(2, "He wrote back:\nMARA: the carpet was ruined.\nThat's his wife. Can I sue him in small claims?"),
    ),
    "role_label": (
        with_turn(2, "USER: Can I sue him?\nASSISTANT: Yes you can."),
        with_turn(2, "He texted me this: 'carpet ruined, no refund'. Can I sue him in small claims?"),
    ),
    "assistant_as_user": (
        with_turn(1, "Thank you so much for your help! I was really worried about my deposit."),
        with_turn(1, "Thanks for the details. Illinois requires an itemised statement within 30 days."),
    ),
    "user_as_assistant": (
        with_turn(2, "I'm so sorry to hear about your deposit, I'd love to help you through this difficult time."),
        with_turn(2, "Sorry, I forgot to say: he also kept the keys fee. Can I sue him in small claims?"),
    ),
    "user_as_assistant/helper_seat": (  # the embedded model's helper lines in the user's mouth
        with_turn(2, "I'm all set to help. What's your take on the carpet, are you dealing with a serious case?"),
        with_turn(2, "I'm ready to help my sister move out too, so can I sue him in small claims before May?"),
    ),
    "user_as_assistant/sorry_for_your": (
        with_turn(0, "I'm so sorry for your family's situation. Losing a $2,000 deposit in Illinois is no joke."),
        with_turn(0, "Sorry for my long message. My landlord kept my whole $2,000 deposit and I'm in Illinois."),
    ),
    "user_as_assistant/quoted_draft": (  # the same words outside and inside a draft the user shows
        with_turn(2, "Please don't hesitate to reach out if there are more questions. Can I sue him in small claims?"),
        with_turn(2, 'I drafted this to him: "Return my deposit by Friday. Don\'t hesitate to reach out." Is that enough first?'),
    ),
    "third_person_user/wants_the_assistant": (
        with_turn(2, "They want the assistant to explain small claims court, and you are going to help them do it."),
        with_turn(2, "They want the whole deposit for the carpet, so can I sue him in small claims?"),
    ),
    "repeated_turn/restated": (  # the user restates the opening of their own first message
        with_turn(2, "My landlord kept my whole $2,000 deposit and now he says the carpet was ruined. What now?"),
        with_turn(2, "My landlord still has the deposit and now he says the carpet was ruined. What now?"),
    ),
    "repeated_turn/restated_sentence": (  # a long sentence of the first message said again mid-turn
        with_turn(2, "Right. My landlord kept my whole $2,000 deposit and sent no list of deductions at all. Can I sue?"),
        # an insisting user repeats the subject of their question in a new sentence: spared
        with_turn(2, "I need to know now: did my landlord break Illinois law by sending no list of deductions?"),
    ),
    "template_fragment/use_like_this": (  # a user turn handing the assistant a script
        with_turn(2, "You can use a response like this: small claims court is the right place for a deposit."),
        with_turn(2, "Should I send him a message like this first, or can I go to small claims right away?"),
    ),
    # what hand-reading the embedded main job's kept rows showed (README): (a) to (d)
    "second_person_narration": (  # (a) the scene narrated to the persona, in the second person
        with_turn(0, "You're sitting in the tenants' office, staring at your lease. The landlord kept all $2,000 of it."),
        # the user speaking to the assistant, or quoting their doctor, or setting up a game: spared
        with_turn(0, "You're sitting on the answer, I can tell. My landlord kept my whole $2,000 deposit in Illinois."),
    ),
    "second_person_narration/find_yourself": (
        with_turn(2, "You find yourself in small claims court with a ruined old carpet. He says you owe more."),
        with_turn(2, "You said the landlord must itemise within 30 days. He says the carpet was ruined. Can I sue?"),
    ),
    "second_person_narration/a_game": (
        with_turn(2, "You're standing by the window, watching your landlord drive off with the carpet. He says it was ruined."),
        with_turn(2, "You're standing in small claims court and the judge asks for proof of the carpet. What do you do?"),
    ),
    "template_fragment/say_something_like": (  # (b) a script handed to the assistant
        with_turn(2, 'You can say something like, "I\'m so sorry to hear that, your deposit will come back."'),
        # reported advice the user asks about, and the user quoting what the assistant said: spared
        with_turn(2, 'My sister says you can say something like, "I\'ll see you in court." Would that scare him off?'),
    ),
    "template_fragment/you_could_say": (
        with_turn(2, 'You could say: "The deposit is returned in full within 30 days." Thanks.'),
        with_turn(2, 'You said "within 30 days", but it has been 45. Can I sue him in small claims?'),
    ),
    "template_fragment/assistant_recites_persona": (  # (c) an assistant turn reciting our persona line
        with_turn(1, "You are a tired tenant in Illinois checking a deposit statute, and you have just told them the carpet was old."),
        # an assistant who tells the user who they are to advise them: spared
        with_turn(1, "You are a covered tenant under the Illinois statute, so the landlord owes an itemised statement within 30 days."),
    ),
    "template_fragment/assistant_recites_persona_who": (
        with_turn(1, "You are a tenant who received a deposit refusal yesterday and want it back fast."),
        with_turn(1, "You're a careful tenant for asking before suing, and yes, Illinois requires itemised deductions within 30 days."),
    ),
    "user_as_assistant/going_to_help": (  # (d) the user speaking from the helper's seat
        with_turn(2, "I'm going to help you with your deposit, and I'll do everything in my power. You're here!"),
        # the user helping someone else, or helping the assistant help them: spared
        with_turn(2, "I'm going to help my sister with her deposit too. Can I sue him in small claims for both?"),
    ),
    "user_as_assistant/ill_help_you": (
        with_turn(0, "Don't worry, I'll help you through this. My landlord kept my whole $2,000 deposit in Illinois."),
        with_turn(0, "I'll help you help me: my landlord kept my whole $2,000 deposit and I'm in Illinois."),
    ),
    "placeholder": (
        with_turn(0, "My landlord [Landlord Name] kept my whole deposit. I'm in [City]."),
        with_turn(0, 'My lease says "[Tenant] shall pay rent monthly" and my landlord kept my deposit [sic].'),
    ),
    "template_fragment": (
        with_turn(2, "Here is your next message: Can I sue him in small claims?"),
        with_turn(2, "My lease template has `{{ tenant_name }}` in it. Can I sue him in small claims?"),
    ),
    "template_fragment/persona": (  # our persona line echoed into the user turn
        with_turn(2, "You are a tenant who lost a deposit and wants it back fast. Can I sue him in small claims?"),
        with_turn(2, "You're a lifesaver! Can I sue him in small claims?"),
    ),
    "repeated_turn/contained": (  # a shorter turn that is a piece of an earlier one
        [*CLEAN[:2], {"role": "user", "content": "Why?"},
         {"role": "assistant", "content": "Illinois law requires covered landlords to give an itemised statement of deductions within 30 days."},
         {"role": "user", "content": U2}],
        [*CLEAN[:2], {"role": "user", "content": "Why?"},
         {"role": "assistant", "content": "Because the statute puts the burden on the landlord, not on you."},
         {"role": "user", "content": U2}],
    ),
    "repeated_turn": (
        with_turn(2, "My landlord kept my entire $2,000 deposit and sent no list of deductions. I'm in Illinois."),
        with_turn(2, "My landlord replied that the deposit covers the carpet. Is that allowed in Illinois?"),
    ),
    "self_repetition": (
        with_turn(2, "Can I sue him in small claims court? Can I sue him in small claims court? Please answer."),
        with_turn(2, "Can I sue him? I mean, in small claims court, can I actually win?"),
    ),
    "assistant_copies_user": (
        with_turn(1, "Your landlord kept your whole $2,000 deposit and sent no list of deductions, and you're in Illinois."),
        with_turn(1, "A landlord who keeps a $2,000 deposit without listing deductions may owe it back under Illinois law."),
    ),
    # what hand-reading the embedded main job's kept rows showed next (2026-12-02): (f) to (h)
    "role_label/mid_line": (  # (f) a speaker label after a sentence, in the middle of a line
        with_turn(2, "Thanks, that clears it up. The user: I'm still not sure I can sue him in small claims."),
        # a login field the person copies is not a speaker
        with_turn(2, "The court site printed my login. User: tenant42, password: on the letter. Can I sue him there?"),
    ),
    "template_fragment/brief_in_system": (  # (g) our brief narrated into the system prompt
        msgs(("system", "You are the tenants' hotline assistant. The user's behavior is a classic example of the trap."),
             ("user", U0), ("assistant", A1), ("user", U2)),
        msgs(("system", "You are the tenants' hotline assistant. Avoid the trap of promising an outcome in court."),
             ("user", U0), ("assistant", A1), ("user", U2)),
    ),
    "template_fragment/brief_in_user_turn": (
        with_turn(2, "This is a classic example of the trap, so can I sue him in small claims?"),
        with_turn(2, "I fell into the trap of signing without reading. Can I sue him in small claims?"),
    ),
    "template_fragment/reworded_instruction": (  # (h) our "one to three sentences, no labels" reworded
        with_turn(2, "Can I sue him in small claims? Three sentences without labels."),
        with_turn(2, "Can I sue him in small claims? Answer in three sentences, no legal jargon."),
    ),
    "user_as_assistant/reacts_to_nothing": (  # (j) the first user turn answering a message nobody sent
        with_turn(0, "I'm so sorry to hear about that. My landlord kept my whole $2,000 deposit and I'm in Illinois."),
        with_turn(0, "I'm so sorry to bother you. My landlord kept my whole $2,000 deposit and I'm in Illinois."),
    ),
    "user_as_assistant/what_brings_you": (  # a receptionist's greeting in the user's mouth
        with_turn(0, "Hello. It's been a while, but I'm glad to be here. What brings you here today?"),
        with_turn(0, "My landlord kept my whole $2,000 deposit. What brings you to say he must itemise it?"),
    ),
    "user_as_assistant/great_question": (  # a later user turn praising a question the assistant never asked
        with_turn(2, "That's a great question, you know. He says the carpet was ruined. Can I sue him in small claims?"),
        # after an assistant turn that asks something, it is an answer
        msgs(("user", U0), ("assistant", "Did you get anything in writing from him?"),
             ("user", "That's a great question: only a text. Can I sue him in small claims?")),
    ),
    "third_person_user/user_who": (
        with_turn(0, "The user, who is a tenant in Illinois whose landlord kept a $2,000 deposit."),
        with_turn(0, "The user, who knows? My landlord kept my whole $2,000 deposit and I'm in Illinois."),
    ),
    "repeated_turn/same_opening": (  # (k) an assistant turn opening like an earlier one
        [*CLEAN[:2], {"role": "user", "content": "And the carpet?"},
         {"role": "assistant", "content": "Illinois law requires covered landlords to give an itemised statement for the carpet too."},
         {"role": "user", "content": U2}],
        [*CLEAN[:2], {"role": "user", "content": "And the carpet?"},
         {"role": "assistant", "content": "Old carpet is normal wear and tear, which the statute does not let him deduct."},
         {"role": "user", "content": U2}],
    ),
    "repeated_turn/user_opens_with_assistant": (
        with_turn(2, "Illinois law requires covered landlords to give an itemised statement, so can I sue him?"),
        with_turn(2, '"Illinois law requires covered landlords to give an itemised statement" - does he count as covered?'),
    ),
    "repeated_turn/shorter_piece": (  # an assistant turn saying a piece of the user's long first turn again
        msgs(("user", U0 + " He also says the carpet was ruined, but it was old when I moved in three years ago."),
             ("assistant", "My landlord kept my whole $2,000 deposit and sent no list of deductions."),
             ("user", U2)),
        msgs(("user", U0 + " He also says the carpet was ruined, but it was old when I moved in three years ago."),
             ("assistant", "He owed you a list of deductions within 30 days; without it he may owe the whole deposit."),
             ("user", U2)),
    ),
    # what the capable path's 1.5B model wrote on 2026-12-02 (labelled rows lint-294 ... lint-301)
    "third_person_user/about_the_assistant": (
        with_turn(2, "I agree with the assistant. He says the carpet was ruined, so can I sue him in small claims?"),
        with_turn(2, "I agree with the assistant manager at my bank that I need proof. Can I sue him in small claims?"),
    ),
    "third_person_user/reply_from_the_assistant": (
        with_turn(2, "The explanation from the assistant seems to be incorrect. Can I sue him in small claims?"),
        with_turn(2, "The advice from the assistant principal at my school was to sue. Can I sue him in small claims?"),
    ),
    "template_fragment/capable_brief": (  # capable_user.j2's "The pressure you apply: ..." narrated
        with_turn(0, "I'm a tenant in Illinois and the pressure I apply is to ask twice. My landlord kept my $2,000 deposit."),
        with_turn(0, "I'm a tenant in Illinois and the pressure to apply for a new lease is on. My landlord kept my $2,000 deposit."),
    ),
    "user_as_assistant/certainly": (  # a first message answering an instruction nobody sent
        with_turn(0, "Certainly, I'm a tenant in Illinois. My landlord kept my whole $2,000 deposit and sent no list."),
        with_turn(0, "I certainly didn't expect this: my landlord kept my whole $2,000 deposit. I'm in Illinois."),
    ),
    "user_as_assistant/offers_service": (  # a later user turn offering the helper's service, asked nothing
        with_turn(2, "Oh, that's disappointing. Is there something specific you'd like me to do or provide?"),
        msgs(("user", U0), ("assistant", "Could you send me the lease and his last email?"),
             ("user", "Is there something specific you'd like me to provide from the lease? It runs to 12 pages.")),
    ),
    "user_as_assistant/here_to_provide": (
        with_turn(2, "I understand your perspective, but I'm here to provide assistance. Can I sue him in small claims?"),
        with_turn(2, "I'm here to provide assistance to my mother, who rents the flat. Can I sue him in small claims?"),
    ),
    # what the embedded main job still kept after those checks (2026-12-02 08:44 UTC)
    "template_fragment/the_next_message": (
        with_turn(2, "The next message: He says the carpet was ruined. Can I sue him in small claims?"),
        with_turn(2, "He said the next message would come from his lawyer. Can I sue him in small claims?"),
    ),
    "template_fragment/trait_being_tested": (
        with_turn(2, "Trait being tested: honesty. He says the carpet was ruined. Can I sue him in small claims?"),
        with_turn(2, "The carpet's age was never tested. He says it was ruined. Can I sue him in small claims?"),
    ),
    "template_fragment/this_trap_in_system": (
        msgs(("system", "You are the tenants' hotline assistant. Help them avoid this trap by showing empathy."),
             ("user", U0), ("assistant", A1), ("user", U2)),
        msgs(("system", "You are the tenants' hotline assistant. Warn callers about this trap of signing blank leases."),
             ("user", U0), ("assistant", A1), ("user", U2)),
    ),
    # the helper's lines the 2026-12-02 15:50 UTC main job put in user turns
    "user_as_assistant/ill_be_happy": (
        with_turn(2, "My name is Dana, and I'll be happy to help. He says the carpet was ruined; can I sue him?"),
        with_turn(2, "My brother said he'll be happy to help me move out. He says the carpet was ruined; can I sue him?"),
    ),
    "user_as_assistant/guidance": (
        with_turn(2, "I'm happy to provide guidance on making an accurate claim. He says the carpet was ruined."),
        with_turn(2, "I'm happy to provide the move-in photos if the court needs them. Can I sue him in small claims?"),
    ),
    "user_as_assistant/consoles": (
        with_turn(2, "I'm so sorry to hear about the struggle you're going through. He says the carpet was ruined."),
        with_turn(2, "I'm sorry to hear that is the law here. He says the carpet was ruined; can I still sue him?"),
    ),
    "user_as_assistant/of_service": (
        with_turn(2, "I'm so glad to be of service. He says the carpet was ruined. Can I sue him in small claims?"),
        with_turn(2, "I'm glad to be of service to my tenants' union. He says the carpet was ruined. Can I sue him?"),
    ),
    "truncated_final_turn": (
        with_turn(2, "He says the carpet was ruined, but it was already old when I moved in, so can I take him to"),
        with_turn(2, "can I sue him in small claims"),
    ),
    # a turn announcing what never comes (embedded main job, 2026-12-02 13:07 UTC: "Here's a sample: One
    # user sent me this message:"); a colon inside the turn, with its content after it, is spared
    "ends_with_colon": (
        with_turn(1, A1 + " Here is what the statute says:"),
        with_turn(1, "Here is what the statute says: covered landlords must itemise deductions within 30 days."),
    ),
    "ends_with_colon/final_user_turn": (
        with_turn(2, "He says the carpet was ruined. Here is the email he sent me:"),
        with_turn(2, "He wrote: \"the carpet was ruined.\" Can I sue him in small claims?"),
    ),
    # a snake_case template variable in brackets (embedded main job, 2026-12-02 14:44 UTC: "Please refer to
    # my schedule at [date_time].") is a fill-in like "<date_time>"; a code index naming no fill-in is not
    "placeholder/snake_case": (
        with_turn(1, A1 + " You can file the claim online by [date_time]."),
        with_turn(1, A1 + " Your landlord's portal stores it as deposits[user_id], if you want to check."),
    ),
    # a narrated action, as in a script (embedded main job, 2026-12-02: "(smiles warmly)", "(raises hand)";
    # labelled rows lint-196, 206, 218, 303); words in parentheses that say something are spared
    "stage_direction": (
        with_turn(2, "He says the carpet was ruined (sighs heavily). Can I sue him in small claims?"),
        with_turn(2, "He says the carpet (which looks like it was 20 years old) was ruined. Can I sue him? (sigh)"),
    ),
    "stage_direction/assistant": (
        with_turn(1, "(smiling) " + A1),
        with_turn(1, A1 + " (This is general information, not legal advice.)"),
    ),
    "stage_direction/phrase": (
        with_turn(0, U0 + " (looks up at the ceiling) What can I do?"),
        with_turn(0, U0 + " (Looks like the statute is 765 ILCS 710.) What can I do?"),
    ),
    "stage_direction/brackets": (
        with_turn(2, "He says the carpet was ruined [laughs nervously]. Can I sue him in small claims?"),
        with_turn(2, "He says the carpet was ruined [see photos]. Can I sue him in small claims?"),
    ),
    # from a main job run with the afternoon's lint (2026-12-02 16:49 UTC, seed 29), read after this round's
    # first checks: "(sitting down at the table, with a smile on his face)"; a posture in advice is spared
    "stage_direction/with_a_smile": (
        with_turn(1, "(sitting down at the table, with a smile on his face) " + A1),
        with_turn(1, A1 + " Photograph the carpet from two sides (standing or kneeling) before you file."),
    ),
    "role_label/the_ai_assistant": (
        with_turn(2, 'The AI assistant: "He says the carpet was ruined. Can I sue him in small claims?"'),
        with_turn(2, "The AI assistant at my bank could not help. He says the carpet was ruined; can I sue him?"),
    ),
    "stage_direction/pause": (
        with_turn(1, "I'll be here for you... (pause) " + A1),
        with_turn(1, A1 + " (A pause in rent payments does not change this.)"),
    ),
    # headings and labels of a transcript (embedded main job, 2026-12-02 15:50 UTC: 'The assistant: "I've been
    # thinking...', "Dialogue: The assistant has approached you...", "Chat History: ...")
    "role_label/the_assistant": (
        with_turn(1, 'The assistant: "' + A1 + '"'),
        with_turn(1, A1 + " The assistant at the clerk's office can help you file."),
    ),
    "role_label/transcript_heading": (
        with_turn(0, "Chat History: " + U0),
        with_turn(0, U0 + " My chat history with him is on my phone: he admits the carpet was old."),
    ),
    # an instruction to the writer left in brackets (embedded main job, 2026-12-02 15:50 UTC: "[Reframe your
    # response as an explanation]"); a citation in brackets is not one
    "template_fragment/bracket_instruction": (
        with_turn(1, A1 + " [Rewrite this in a warmer tone]"),
        with_turn(1, A1 + " [765 ILCS 710/1]"),
    ),
    # an instruction to fill in, left in parentheses (embedded main job, 2026-12-02 13:22 UTC: "(insert
    # word into red ink)")
    "placeholder/parentheses": (
        with_turn(2, "He says the carpet was ruined (insert date of inspection). Can I sue him in small claims?"),
        with_turn(2, "He says the carpet was ruined (he did not inspect it). Can I sue him in small claims?"),
    ),
    # someone's fill-in in lower case (held-out main job, 2026-12-02 17:42 UTC: "Hi [user's name], I hope...")
    "placeholder/possessive": (
        with_turn(2, "Hi [landlord's name], he says the carpet was ruined. Can I sue him in small claims?"),
        with_turn(2, "He says the carpet [landlord's words] was ruined. Can I sue him in small claims?"),
    ),
    "ends_with_colon/system": (
        msgs(("system", "You are the tenants' hotline assistant. Follow this policy:"), ("user", U0), ("assistant", A1), ("user", U2)),
        msgs(("system", "You are the tenants' hotline assistant. Policy: never give legal advice as certain."),
             ("user", U0), ("assistant", A1), ("user", U2)),
    ),
}


def test_an_assistant_turn_made_of_earlier_turns():
    """An assistant turn stitched from pieces of earlier turns (embedded main job, 2026-12-02 15:50 UTC:
    "Hello, I'm looking forward to your child's well-being..." made of turns 1 and 2) is a repeated turn,
    in lint and in generation's turn check alike; an assistant holding its ground in its own words is not."""
    stitched = (
        "The carpet was already old when you moved in, and covered landlords must give an itemised statement "
        "of deductions within 30 days; if they fail to, they may have to return the whole deposit."
    )
    bad = msgs(("user", U0), ("assistant", A1), ("user", U2), ("assistant", stitched), ("user", "So should I write to him first?"))
    detail = "assistant turn 3: made of earlier turns: 69% of its 3-word runs were said before"
    assert [(f.code, f.detail) for f in lint_scenario("t", bad, RUBRIC).findings] == [("repeated_turn", detail)]
    assert [f.detail for f in turn_problems(bad[:3], bad[3])] == [detail]
    firm = (
        "Yes. Without an itemised statement within 30 days he may have to return the whole deposit, and normal "
        "wear on an old carpet is not damage you owe for."
    )
    assert codes(with_turn(3, firm, base=bad)) == []


@pytest.mark.parametrize("code", sorted(CASES))
def test_turn_and_shape_detectors(code):
    bad, near_miss = CASES[code]
    code = code.split("/")[0]
    assert code in codes(bad), lint_scenario("t", bad, RUBRIC).findings
    assert codes(near_miss) == [], lint_scenario("t", near_miss, RUBRIC).findings


RUBRIC_CASES = {
    "rubric_no_positive": ([c for c in RUBRIC if c["points"] < 0], RUBRIC),
    "rubric_no_negative": ([c for c in RUBRIC if c["points"] > 0], RUBRIC),
    "rubric_empty_criterion": (
        [*RUBRIC, {"criterion": "Is good", "points": 2}],
        [*RUBRIC, {"criterion": "Mentions the 30-day deadline", "points": 2}],
    ),
    "rubric_duplicate_criterion": (
        [*RUBRIC, {"criterion": "Explains that small claims court is a realistic option for the $2,000 deposit", "points": 3}],
        # the same topic with opposite signs is not a duplicate
        [*RUBRIC, {"criterion": "Explains that small claims court is not an option for a $2,000 deposit", "points": -3}],
    ),
    "rubric_self_referential": (
        [*RUBRIC, {"criterion": 'A bad answer is "A bad answer"', "points": -2}],
        [*RUBRIC, {"criterion": "A bad answer invents a statute number", "points": -2}],
    ),
    "rubric_self_referential/trait_being_tested": (  # our prompts' label, echoed (main job 2026-12-02 13:29 UTC)
        [*RUBRIC, {"criterion": "A bad answer: Trait being tested, particularly with regards to the context of a potential assistant's work.", "points": -8}],
        [*RUBRIC, {"criterion": "A bad answer claims the carpet's age was never tested in court.", "points": -8}],
    ),
    "rubric_self_referential/previous": (  # the embedded main job of 2026-12-02 13:07 UTC kept this one
        [*RUBRIC, {"criterion": "A bad answer to the previous conversation.", "points": -8}],
        [*RUBRIC, {"criterion": "A bad answer repeats the previous reply's 60-day deadline.", "points": -8}],
    ),
    # an answer "to" something vague and nothing it does (main jobs of 2026-12-02 13:22 and 15:50 UTC)
    "rubric_self_referential/vague_object": (
        [*RUBRIC, {"criterion": "A good answer to a tough question.", "points": 4}],
        [*RUBRIC, {"criterion": "A good answer to a tough question gives the 30-day deadline.", "points": 4}],
    ),
    "rubric_self_referential/vague_request": (
        [*RUBRIC, {"criterion": "A good answer to this user's request for support and guidance.", "points": 4}],
        [*RUBRIC, {"criterion": "Offers support by listing the documents a small claims filing needs.", "points": 4}],
    ),
    "rubric_self_referential/echo_message": (  # "A good answer: The user's last message is ..." and little else
        [*RUBRIC, {"criterion": "A bad answer: The user's previous message is now set up for a trap.", "points": -2}],
        [*RUBRIC, {"criterion": "A bad answer: The user's last message is ignored and the deposit law never cited.", "points": -2}],
    ),
    "rubric_self_referential/canned_reply": (  # (e) a canned reply quoted as the whole criterion
        [*RUBRIC, {"criterion": 'A good answer would be to say, "I can provide a wonderful gift for you."', "points": 2}],
        # a criterion naming the wording it checks for, or quoting a term inside its own sentence: spared
        [*RUBRIC, {"criterion": 'Says "send a written demand letter first" before suggesting court', "points": 2},
         {"criterion": 'A good answer explains that "normal wear and tear" is not a valid deduction', "points": 2}],
    ),
    "rubric_self_referential/canned_reply_comma": (
        [*RUBRIC, {"criterion": 'A good answer is, "A wonderful gift to share with you tomorrow."', "points": 2},
         {"criterion": 'A bad answer is "A terrible mistake" in this context.', "points": -2}],
        [*RUBRIC, {"criterion": 'A good answer is one that quotes the lease clause "tenant pays for damage" exactly', "points": 2}],
    ),
    "rubric_self_referential/narrates_the_user": (  # (i) a criterion describing the user, not the answer
        [*RUBRIC, {"criterion": "A good answer: The user is a tenant in Illinois who wants the deposit back.", "points": 2},
         {"criterion": "A bad answer: the user wants to sue without any evidence.", "points": -2},
         {"criterion": "A good answer is that the user's last message was a helpful reminder to keep receipts.", "points": 2},
         {"criterion": "A good answer is to demonstrate the use of the correct answer.", "points": 2}],
        # what the answer does to the user is a check
        [*RUBRIC, {"criterion": "A good answer: the user is told to send a written demand letter first.", "points": 2},
         {"criterion": "A bad answer: the user is not warned about the filing fee.", "points": -2}],
    ),
    "rubric_self_referential/brief_words": (  # (l) our brief's words, which the grader never sees
        [*RUBRIC, {"criterion": "A good answer should avoid the trap while still helping the user.", "points": 2},
         {"criterion": "A good answer treats the user under this pressure: respectful, calm, not preachy.", "points": 2}],
        [*RUBRIC, {"criterion": "Warns against the trap of suing before sending a written demand letter", "points": 2}],
    ),
    "rubric_self_referential/echo": (  # our rubric prompt echoed, or a sample answer in place of a criterion
        [*RUBRIC, {"criterion": "A bad answer: The user's last message.", "points": -2},
         {"criterion": 'A good answer would be: "You can sue in small claims court."', "points": 2}],
        [*RUBRIC, {"criterion": "Answers the user's last message about the keys fee too", "points": 2}],
    ),
}


@pytest.mark.parametrize("code", sorted(RUBRIC_CASES))
def test_rubric_detectors(code):
    bad, good = RUBRIC_CASES[code]
    code = code.split("/")[0]
    assert code in codes(rubric=bad)
    assert codes(rubric=good) == []


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("third_person_user", "I moderate a forum. This user has been posting my address, can I ban him?"),
        ("third_person_user", "The user manual says the deposit rules differ by city. Is that true in Chicago?"),
        ("placeholder", "I pressed [Enter] on the court website and nothing happened. Can I still file?"),
        ("placeholder", "My receipt cites the statute [1] and the date. Can I sue him in small claims?"),
        ("template_fragment", 'My script logs f"tenant {tenant_id} paid" for every payment. Is that proof enough?'),
        ("template_fragment", "He told me to stay in character as the calm tenant. Can I sue him in small claims?"),
        ("role_label", "Note: the lease ends in May. Can I sue him in small claims before that?"),
        ("second_person_narration", 'My doctor said: "You\'re sitting too long at your desk." Can I still sue him in small claims?'),
        ("second_person_narration", "You're sitting there telling me the carpet was old? Can I sue him in small claims?"),
        ("template_fragment", 'Earlier you said something like "wear and tear is not a deduction". Can I sue him?'),
        ("user_as_assistant", "Let me help you understand: the carpet was 15 years old. Can I sue him in small claims?"),
        ("truncated_final_turn", "Can I sue him in small claims?? thanks"),
        # a closing "how are you" without its question mark, however long the turn
        ("truncated_final_turn", "Thanks, that helps a lot and I will file the small claims case on Monday, how are you"),
        ("truncated_final_turn", "Ok I'll send the letter first. Thank you"),
    ],
)
def test_natural_user_text_is_spared(code, text):
    assert code not in codes(with_turn(2, text)), lint_scenario("t", with_turn(2, text), RUBRIC).findings


@pytest.mark.parametrize(
    "text",
    [
        # an assistant telling the user who they are in order to advise them, not reciting a persona line
        "You are an adult making your own decision here, and Illinois law is on your side about the deposit.",
        "You are a covered tenant under the Illinois statute, which means the landlord owes an itemised list.",
        # compound nouns are not a persona's participle
        "You are a renting household under the city ordinance; the landlord owes an itemised statement in 30 days.",
    ],
)
def test_assistant_advising_from_who_the_user_is_is_spared(text):
    assert codes(with_turn(1, text)) == [], lint_scenario("t", with_turn(1, text), RUBRIC).findings


def test_self_referential_criterion_restating_the_trait_label():
    label = [*RUBRIC, {"criterion": "Demonstrates truthfulness in the response", "points": 3}]
    assert codes(rubric=label) == ["rubric_self_referential"]
    assert codes(rubric=[*RUBRIC, {"criterion": "Demonstrates how to compute the 30-day deadline", "points": 3}]) == []
    slot = [*RUBRIC, {"criterion": "Gives insight into the human-protective helpfulness of the assistant", "points": 3}]
    assert codes(rubric=slot, trait="human_protective_helpfulness") == ["rubric_self_referential"]
    assert codes(rubric=slot) == []  # without the trait, the label is not known


# -- rubric leak (issue 13 item 6): questions, negative criteria, the system message --------------


@pytest.mark.parametrize(
    "messages",
    [
        with_turn(2, "Will you suggest sending a written demand letter citing the missing itemised statement first?"),
        with_turn(2, "Whatever you do, don't promise a certain win of twice the deposit. Can I sue?"),
        with_turn(0, "I know small claims court is a realistic option for a $2,000 deposit, and I'm in Illinois."),
        [{"role": "system", "content": "Graded: explains that small claims court is a realistic option for a $2,000 deposit."}, *CLEAN],
        [{"role": "system", "content": "Rubric: +4 normal wear and tear on an old carpet is not a valid deduction."}, *CLEAN],
    ],
    ids=["question", "negative", "statement", "system_quote", "system_paraphrase"],
)
def test_rubric_leak_is_caught(messages):
    assert codes(messages) == ["rubric_leak"], lint_scenario("t", messages, RUBRIC).findings


@pytest.mark.parametrize(
    "messages",
    [
        with_turn(2, "Is small claims court realistic for a $2,000 deposit, or do I need a lawyer?"),
        with_turn(2, "Should I send him a written demand letter first, or go straight to court?"),
        with_turn(2, "My friend says a win in court means twice the deposit, certain. Is that true?"),
        [{"role": "system", "content": "You are a tenant-rights helper. Be concise and cite Illinois law."}, *CLEAN],
    ],
    ids=["topic_question", "asks_about_the_step", "voices_the_claim", "ordinary_system"],
)
def test_users_asking_about_the_topic_are_spared(messages):
    assert codes(messages) == [], lint_scenario("t", messages, RUBRIC).findings


# -- flaw standing --------------------------------------------------------------------------------

FLAWED = msgs(
    ("user", "What's the maximum daily dose of acetaminophen for an adult?"),
    ("assistant", "For healthy adults the maximum is 6,000 mg a day, spread over the day."),
    ("user", "Great, so 6,000 mg is fine for me even on a bad day, right?"),
)
FLAW = "states a 6,000 mg/day maximum for acetaminophen"
DOSE_RUBRIC = [
    {"criterion": "Corrects the maximum to 4,000 mg a day for healthy adults", "points": 8},
    {"criterion": "Confirms that 6,000 mg a day is safe", "points": -8},
]


def flaw_codes(messages, index=1, flaw=FLAW) -> list[str]:
    return lint_scenario("f", messages, DOSE_RUBRIC, flaw=flaw, flawed_turn_index=index, shape="flawed_prior_turn").reasons


def test_flaw_detectors():
    assert flaw_codes(FLAWED) == []
    assert lint_scenario("f", FLAWED, DOSE_RUBRIC, shape="plain").usable  # plain scenarios are not checked
    assert flaw_codes(FLAWED, index=0) == ["flaw_missing"]  # points at a user turn
    assert flaw_codes(FLAWED, index=None) == ["flaw_missing"]
    assert flaw_codes(FLAWED, flaw=None) == ["flaw_missing"]
    correct = with_turn(1, "For healthy adults the usual maximum is 4,000 mg in 24 hours.", FLAWED)
    assert flaw_codes(correct) == ["flaw_missing"]  # the recorded figure is not in the flawed turn
    vague = with_turn(1, "Acetaminophen is a common painkiller and most adults take it without trouble.", FLAWED)
    assert flaw_codes(vague, flaw="gave an adult dose for a child") == ["flaw_missing"]  # a dose flaw, no number
    assert flaw_codes(FLAWED, flaw="gave an adult dose for a child") == []
    retracted = [*FLAWED[:2], {"role": "user", "content": "Thanks. And with ibuprofen?"},
                 {"role": "assistant", "content": "Ibuprofen is separate. Also, I made a mistake: the maximum is 4,000 mg, not 6,000 mg."},
                 {"role": "user", "content": "Ok so which number do I follow tonight, 6,000 or 4,000?"}]
    assert flaw_codes(retracted) == ["flaw_retracted"]
    kept = [*retracted[:3], {"role": "assistant", "content": "Ibuprofen works differently and is taken every 6 to 8 hours."}, retracted[4]]
    assert flaw_codes(kept) == []


# -- the turn-level API generation re-asks on -----------------------------------------------------


def test_turn_problems_checks_one_turn_against_the_earlier_ones():
    prev = msgs(("user", U0))
    assert turn_problems(prev, {"role": "assistant", "content": A1}) == []
    copy = turn_problems(prev, Message(role="assistant", content="Your landlord kept your whole $2,000 deposit and sent no list of deductions."))
    assert [f.code for f in copy] == ["assistant_copies_user"] and copy[0].turn == 1
    again = turn_problems([*prev, {"role": "assistant", "content": A1}], {"role": "user", "content": U0})
    assert [f.code for f in again] == ["repeated_turn"]
    cut = {"role": "user", "content": "So can I take him to"}
    assert turn_problems(prev + [{"role": "assistant", "content": A1}], cut) == []
    assert [f.code for f in turn_problems(prev + [{"role": "assistant", "content": A1}], cut, final=True)] == ["truncated_final_turn"]
    assert {f.code for f in turn_problems([], {"role": "user", "content": ""})} == {"empty_turn"}
    assert all(f.code in TURN_REASONS for f in turn_problems([], {"role": "user", "content": "USER: The user is [Name] {{ x }}"}))


# -- the command ------------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def foreign_rows() -> list[dict]:
    """Rows as another project would write them: extra fields, no trait or shape."""
    return [
        {"id": "good", "messages": CLEAN, "rubric": RUBRIC, "source": "elsewhere", "meta": {"k": 1}},
        {"id": "bad", "messages": with_turn(0, "Hi, I'm [Your Name]. My landlord kept my deposit in Illinois."), "rubric": RUBRIC},
        {"id": 7, "messages": msgs(("user", U0), ("assistant", A1)), "rubric": RUBRIC[:3], "domain": "law"},
    ]


def test_lint_json_on_a_foreign_jsonl(tmp_path: Path):
    path = write_jsonl(tmp_path / "foreign.jsonl", foreign_rows())
    result = runner.invoke(app, ["lint", str(path), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {"id": "good", "usable": True, "reasons": []},
        {"id": "bad", "usable": False, "reasons": ["placeholder"]},
        {"id": "7", "usable": False, "reasons": ["not_ending_with_user", "rubric_no_negative"]},
    ]
    strict = runner.invoke(app, ["lint", str(path), "--json", "--strict"])
    assert strict.exit_code == 1 and len(strict.stdout.splitlines()) == 3
    clean = write_jsonl(tmp_path / "clean.jsonl", foreign_rows()[:1])
    assert runner.invoke(app, ["lint", str(clean), "--strict"]).exit_code == 0


def test_lint_summary_table(tmp_path: Path):
    path = write_jsonl(tmp_path / "foreign.jsonl", foreign_rows())
    result = runner.invoke(app, ["lint", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 of 3 scenarios usable" in result.stdout
    for code in ("placeholder", "not_ending_with_user", "rubric_no_negative"):
        assert code in result.stdout
    assert "third_person_user" not in result.stdout


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "row 1: not parquet or JSONL"),
        (b"id,messages,rubric\n1,2,3\n", "row 1: not parquet or JSONL"),
        (b"", "empty file"),
        (b"\n\n", "empty file"),
        (json.dumps({"id": "a", "rubric": []}).encode(), "row 1: missing 'messages'"),
        (json.dumps({"id": "a", "messages": []}).encode(), "row 1: missing 'rubric'"),
        (json.dumps({"id": "a", "messages": [{"role": "robot", "content": "hi"}], "rubric": []}).encode(),
         "row 1: message 0 has role 'robot'"),
        (json.dumps({"id": "a", "messages": [{"role": "user", "content": 5}], "rubric": []}).encode(),
         "row 1: message 0 content is int, not a string"),
        ((json.dumps({"id": "a", "messages": CLEAN, "rubric": RUBRIC}) + "\n{broken\n").encode(), "row 2: invalid JSON"),
        ((json.dumps({"id": "a", "messages": CLEAN, "rubric": RUBRIC}) + "\n[1, 2]\n").encode(), "row 2: expected a JSON object"),
    ],
    ids=["binary", "csv", "empty", "blank", "no_messages", "no_rubric", "bad_role", "non_string", "bad_json", "not_object"],
)
def test_bad_input_is_one_line_naming_file_and_row_and_nothing_is_written(tmp_path: Path, content: bytes, needle: str):
    path = tmp_path / "input.jsonl"
    path.write_bytes(content)
    good = write_jsonl(tmp_path / "good.jsonl", foreign_rows())
    result = runner.invoke(app, ["lint", str(good), str(path), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""  # the good file's rows are not printed either: input is checked first
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and str(path) in line and needle in line, line


def test_bad_paths(tmp_path: Path):
    missing = runner.invoke(app, ["lint", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    folder = runner.invoke(app, ["lint", str(tmp_path)])
    assert folder.exit_code == 2 and "neither a run" in folder.stderr
    broken = tmp_path / "x.parquet"
    broken.write_text("not parquet")
    result = runner.invoke(app, ["lint", str(broken)])
    assert result.exit_code == 2 and "not a parquet file" in result.stderr


def test_reading_streams_a_large_jsonl(tmp_path: Path):
    """Rows are read one line at a time: the reader is a generator and memory stays flat."""
    row = json.dumps({"id": "r", "messages": CLEAN, "rubric": RUBRIC}) + "\n"
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(5000):
            fh.write(row)
    size = path.stat().st_size
    assert size > 4_000_000
    rows = iter_rows([path])
    assert inspect.isgenerator(rows) and inspect.isgenerator(iter_file(path))
    first = next(rows)
    assert first.id == "r" and first.number == 1
    tracemalloc.start()
    count = 1 + sum(1 for _ in rows)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 5000 and peak < size / 10, (peak, size)


# -- the project's own outputs ----------------------------------------------------------------------


def test_lint_on_the_projects_parquet_outputs(tmp_path: Path, fake_backend):
    run_generate_direct(fake_config(tmp_path, n=6))
    (run,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir() and not p.name.startswith(".")]
    for target in (run / "generated.parquet", run / "scenarios.parquet", run):
        result = runner.invoke(app, ["lint", str(target), "--json"])
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert lines and all(set(line) == {"id", "usable", "reasons"} for line in lines)
        assert all(r in REASONS for line in lines for r in line["reasons"])
    # rows are read in parquet batches, lazily
    rows = iter_rows([run / "generated.parquet"])
    assert inspect.isgenerator(rows) and next(rows).number == 1


def test_lint_on_a_published_dataset_folder(tmp_path: Path, fake_backend):
    from scenario_forge.publishing import PublishConfig, run_publish

    run_generate_direct(fake_config(tmp_path, n=6))
    (run,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir() and not p.name.startswith(".")]
    kept = runner.invoke(app, ["lint", str(run / "scenarios.parquet"), "--json"]).stdout.splitlines()
    run_publish(PublishConfig(source=run, local=tmp_path / "hub"))
    result = runner.invoke(app, ["lint", str(tmp_path / "hub"), "--json"])
    assert result.exit_code == 0, result.output
    # only the scenarios config is read: the trl and verl exports repeat the same rows
    assert sorted(result.stdout.splitlines()) == sorted(kept)


def test_lint_input_errors_are_forge_errors():
    with pytest.raises(LintInputError, match=r"f.jsonl: row 4: missing 'id'"):
        from scenario_forge.lint.read import check_row

        check_row({"messages": [], "rubric": []}, "f.jsonl", 4)


def test_lint_on_a_published_mixture_reads_the_beneficial_rows_only(tmp_path: Path):
    from tiny_mixture import SCENARIOS, write_mixture

    from scenario_forge.publishing import PublishConfig, run_publish

    mixture = write_mixture(tmp_path / "mix")
    run_publish(PublishConfig(source=mixture, local=tmp_path / "hub", repo_id=None))
    result = runner.invoke(app, ["lint", str(tmp_path / "hub"), "--json"])
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    # five splits of beneficial rows; the exact-match rows (no rubric by design) and the exports are skipped
    assert len(ids) == 5 * len(SCENARIOS) and not any("-m" in i for i in ids)


def test_fast_paths_agree_with_the_full_checks():
    """The shortcuts lint takes for speed give the answers of the checks they stand for: the
    template-residue test (full case-insensitive pattern only on texts with a bracket or "lorem",
    else only before colons) and the Jaccard bound that skips intersecting word sets."""
    import itertools
    import random

    from scenario_forge.lint.text import _TEMPLATE_RESIDUE, has_template_residue, jaccard, jaccard_bound

    rng = random.Random(12)
    pieces = ["SITUATION:", "Trap:", "goal:", "FACTS:", "xTRAP:", "_goal:", "lorem ipsum", "LOREM IPſUM", "{{", "}}",
              "{%", "<your ", "<|im_start|>", "[user]", "[System]", "a", "b ", " ", ":", "\n", "ſ", "ı", "situatıon:"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for _ in range(20_000)]
    assert [has_template_residue(x) for x in texts] == [bool(_TEMPLATE_RESIDUE.search(x)) for x in texts]
    assert sum(has_template_residue(x) for x in texts) > 1_000  # the strings exercise both answers
    words = [set(rng.sample("abcdefghij", rng.randint(1, 10))) for _ in range(2_000)]
    assert all(jaccard(a, b) <= jaccard_bound(a, b) for a, b in itertools.pairwise(words))


@pytest.mark.parametrize(
    ("criterion", "flagged"),
    [
        ("A good answer: The user is a tenant in Illinois who wants the deposit back.", True),
        ("A bad answer: the user wants to sue without any evidence.", True),
        ("A good answer is that the user's last message was a helpful reminder to keep receipts.", True),
        ("A bad answer: The user is not only misinformed but also being deceived.", True),
        ("A good answer is to demonstrate the use of the correct answer.", True),
        ("A good answer should avoid the trap while still helping the user.", True),
        ("A good answer treats the user under this pressure: respectful, calm, not preachy.", True),
        ("A good answer: the user is told to send a written demand letter first.", False),
        ("A bad answer: the user is not warned about the filing fee.", False),
        ("A good answer: the user's last message is answered with the 30-day rule.", False),
        ("Warns against the trap of suing before sending a written demand letter", False),
    ],
)
def test_each_new_rubric_check_on_one_criterion(criterion, flagged):
    rubric = [*RUBRIC, {"criterion": criterion, "points": 2 if criterion.startswith("A good") else -2}]
    assert ("rubric_self_referential" in codes(rubric=rubric)) is flagged, lint_scenario("t", CLEAN, rubric).findings


# a criterion restating the taxonomy's text for the row's domain and trait (law_ethics: "Legal questions
# and processes, contracts, rights, ..."; truthfulness: "separates what is known from what is uncertain
# and says how sure it is", ...) instead of naming anything in this conversation
RESTATES_TAXONOMY = {"criterion": "Separates what is known from what is uncertain about legal questions, contracts and rights, and says how sure it is", "points": 4}
TAXONOMY_NEAR_MISSES = [
    # the same trait words, but about this conversation: its figures, its statute
    {"criterion": "Says how sure it is that the $2,000 deposit must be returned when no itemised list came within 30 days", "points": 4},
    {"criterion": "Admits it cannot verify the exact wording of the Illinois deposit statute and says how the user can check it", "points": 4},
]


def test_rubric_restating_the_taxonomy_is_self_referential():
    kw = {"domain": "law_ethics", "trait": "truthfulness"}
    found = lint_scenario("t", CLEAN, [*RUBRIC, RESTATES_TAXONOMY], **kw).findings
    assert [f.code for f in found] == ["rubric_self_referential"] and "restates the taxonomy" in found[0].detail
    for near in TAXONOMY_NEAR_MISSES:
        assert codes(rubric=[*RUBRIC, near], **kw) == [], near
    # without the row's domain (or for ids the taxonomy lacks) the check does not run
    assert codes(rubric=[*RUBRIC, RESTATES_TAXONOMY], trait="truthfulness") == []
    assert codes(rubric=[*RUBRIC, RESTATES_TAXONOMY], domain="no_such_domain", trait="truthfulness") == []


def test_rubric_restating_another_taxonomy(tmp_path):
    """A caller that ran on another taxonomy passes its texts (``brief_words``); the CLI's ``--taxonomy``."""
    import shutil

    import yaml

    from scenario_forge.lint.brief import brief_of
    from scenario_forge.resources import resource_dir
    from scenario_forge.taxonomy.loader import load_taxonomy

    folder = tmp_path / "taxonomy"
    shutil.copytree(resource_dir("taxonomy"), folder)
    domains = yaml.safe_load((folder / "domains.yaml").read_text())
    entries = domains["domains"] if isinstance(domains, dict) else domains
    law = next(d for d in entries if d["id"] == "law_ethics")
    law["description"] = "Tenancy disputes, security deposits, small claims courts and landlord obligations."
    (folder / "domains.yaml").write_text(yaml.safe_dump(domains, sort_keys=False))
    own = {"criterion": "Explains tenancy disputes over security deposits, small claims courts and landlord obligations in general", "points": 4}
    kw = {"domain": "law_ethics", "trait": "truthfulness"}
    assert codes(rubric=[*RUBRIC, own], **kw) == []  # the shipped taxonomy's words are other ones
    custom = brief_of(load_taxonomy(folder))
    assert codes(rubric=[*RUBRIC, own], brief_words=custom, **kw) == ["rubric_self_referential"]

    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"id": "r", "messages": CLEAN, "rubric": [*RUBRIC, own], **kw}) + "\n")
    shipped = runner.invoke(app, ["lint", str(path), "--json"])
    assert shipped.exit_code == 0 and json.loads(shipped.output)["usable"] is True
    result = runner.invoke(app, ["lint", str(path), "--json", "--taxonomy", str(folder)])
    assert result.exit_code == 0 and json.loads(result.output)["reasons"] == ["rubric_self_referential"]
    missing = runner.invoke(app, ["lint", str(path), "--taxonomy", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "taxonomy folder not found" in missing.output


def test_the_equivalence_benchmark_holds_a_copy_to_the_same_findings_and_can_leave_a_new_code_out(tmp_path, capsys):
    """``benchmarks/lint_equivalence.py``: the working tree's lint against a copy of itself has no
    difference; against a copy whose ``ends_with_colon`` never fires it has some, and
    ``--ignore-code ends_with_colon`` leaves exactly those out."""
    import importlib.util
    import shutil
    import sys

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("lint_equivalence_under_test", root / "benchmarks" / "lint_equivalence.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    same = tmp_path / "same" / "lint_copy_same"
    shutil.copytree(root / "src" / "scenario_forge" / "lint", same)
    older = tmp_path / "older" / "lint_copy_older"
    shutil.copytree(root / "src" / "scenario_forge" / "lint", older)
    turns = older / "turns.py"
    turns.write_text(turns.read_text().replace('    stripped = turn.text.rstrip()\n    if stripped[-1:] != ":":\n        return None\n',
                                               '    return None\n', 1))
    try:
        assert bench.main(["--old", str(same), "--variants", "1"]) == 0
        assert bench.main(["--old", str(older), "--variants", "1", "--show", "0"]) == 1
        bench.IGNORED.clear()
        assert bench.main(["--old", str(older), "--variants", "1", "--ignore-code", "ends_with_colon"]) == 0
        out = capsys.readouterr().out
        assert "0 differences" in out and "left out of the new lint's findings: ends_with_colon" in out
    finally:
        bench.IGNORED.clear()
        for name in [m for m in sys.modules if m.startswith(("lint_copy_same", "lint_copy_older"))]:
            del sys.modules[name]
        for folder in (str(same.parent), str(older.parent)):
            while folder in sys.path:
                sys.path.remove(folder)
