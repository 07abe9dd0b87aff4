"""Old lint against new lint, row by row: verdicts, reason codes and finding texts must not change.

    .venv/bin/python benchmarks/lint_equivalence.py --old /work/lint_old/lint_old_pkg          # 0 differences or exit 1
    .venv/bin/python benchmarks/lint_equivalence.py --old DIR --variants 60 --seed 7   # more mutated rows
    .venv/bin/python benchmarks/lint_equivalence.py --old DIR --ignore-code ends_with_colon   # a round adding a detector

``--old`` is a copy of a previous ``src/scenario_forge/lint/`` package kept outside the repository
(``cp -r src/scenario_forge/lint /work/lint_old/lint_old_pkg`` before a rewrite); it is imported from there
under its folder's name, next to the working tree's ``scenario_forge.lint``. No copy of old code
ships with the project.

The rows compared: every row of the labelled set (``labelled/lint_scenarios.jsonl``) as it is, and
``--variants`` mutated copies of each (seeded, so a difference can be replayed): turns dropped,
duplicated, swapped, truncated (mid-word, at a comma, to half), sentences repeated, the user turn
copied into the assistant's (verbatim and with the person swapped), placeholders, role labels,
template marks, narration and helper's lines injected, criteria pasted into a user or system turn,
the rubric shuffled, signs flipped, criteria dropped, duplicated or emptied, case changed,
non-ASCII punctuation added, the flaw fields changed. Several mutations are stacked on most copies.

For every row it compares :func:`lint_scenario` (``usable``, ``reasons`` and every finding's code,
detail and turn) and, for every turn, :func:`turn_problems` on the turns before it; and the shared
text helpers (:mod:`scenario_forge.lint.text`) on every text. It prints the number of comparisons
and of differences (with the first few), and exits 1 on any difference. ``--ignore-code CODE``
leaves the new lint's findings with that code out (and ``usable`` is then recomputed from the
rest): a round that adds a detector shows that nothing else changed, and how many rows and turns
the new code fires on.

The working tree's side is ``scenario_forge.lint``: the compiled detectors when
``scripts/build_native_lint.py`` built them from this source (:mod:`scenario_forge.lint.native`), the
Python source otherwise or with ``SCENARIO_FORGE_LINT=python``. Against a copy of the same source,
the first compares the two implementations.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import scenario_forge.lint as new_lint  # noqa: E402
import scenario_forge.lint.text as new_text  # noqa: E402

DEFAULT = ROOT / "labelled" / "lint_scenarios.jsonl"

Messages = list[tuple[str, str]]
Rubric = list[tuple[str, int]]


class Case:
    """One row to lint: messages, rubric and the optional fields lint reads."""

    __slots__ = ("flaw", "flawed_turn_index", "id", "messages", "rubric", "shape", "trait")

    def __init__(self, data: dict[str, Any]) -> None:
        self.id: str = str(data["id"])
        self.messages: Messages = [(m["role"], m["content"]) for m in data["messages"]]
        self.rubric: Rubric = [(c["criterion"], c["points"]) for c in data["rubric"]]
        self.flaw: str | None = data.get("flaw")
        self.flawed_turn_index: int | None = data.get("flawed_turn_index")
        self.shape: str | None = data.get("shape")
        self.trait: str | None = data.get("trait")

    def copy(self, suffix: str) -> Case:
        other = Case.__new__(Case)
        for name in Case.__slots__:
            value = getattr(self, name)
            setattr(other, name, list(value) if isinstance(value, list) else value)
        other.id = f"{self.id}~{suffix}"
        return other


# -- mutations ----------------------------------------------------------------------------------
# Each takes a case and a seeded Random and changes the case in place (a no-op when it cannot apply).

#: Text injected into turns: a fill-in, a role label, a template mark or a phrase one detector looks for.
_INJECTED = [
    "[Your Name]", "[URL]", "[insert medication name]", "[Company]", "[TheParent1]", "[1]", "[sic]", "[Enter]",
    "<name>", "<your email>", "XXX", "xxxx", "____", "TBD", "INSERT NAME", "{{ name }}", "{% if x %}", "{name}",
    "<|im_start|>", "[INST]", "</s>", "`{x}`", "f\"{x}\"", "USER:", "Assistant: ", "\nUser: ", "\n**You:** ",
    "[user]", "<|assistant|>", "BRELL: ", "NOTE: ", "SITUATION: ", "TRAP: a trap", "Key facts: ",
    "The user is a nurse who asks about doses.", "The user asks the assistant to help.",
    "She asks the assistant for more.", "In this scenario, the user", "They want the assistant to consider a trial.",
    "My user account is locked.", "This user has been harassing me.", "You're sitting in the recovery room, staring at your daughter.",
    "You find yourself in a hospital. What do you do?", "I'd love to help you with that!", "How can I help you today?",
    "I'm so sorry to hear about your toddler's illness.", "I understand how challenging this can be.",
    "I'll be your compliance officer today.", "As an AI, I cannot.", "I'm all set to help.", "I'm so sorry for your family's situation.",
    "Glad to hear that you are on the right track.", "You've come to the right place.", "Don't hesitate to reach out.",
    "I'm thrilled to be your assistant.", "I'm going to help you with your treatment.", "Here is your next message:",
    "Sure! Here's the user's reply:", "Next user message:", "Write the user's next turn.", "one to three sentences",
    "conversation so far:", "Answer with the reply only.", "You continue the conversation.", "(Note: replace this)",
    "Here's a possible continuation of your text.", "One-sentence response:", "brief and reasonable",
    "You are a mom who worries about her son's fever every night.", "You are a tired night-shift nurse checking a drip rate, and you told them.",
    "You can say something like, \"I'm so sorry for your loss.\"", "My therapist says you can say something like, \"no\".",
    "You could say: \"hello there\"", "Thank you so much for your help!", "Can you help me with my lease?",
    "What should I do now?", "I'm worried about my son.", "As the user, I want more.", "my daughter has a fever",
    "I was wrong about that.", "Correction: the dose is 5 mg.", "My earlier answer was wrong.", "That study does not exist.",
    "I made a serious error.", "I stand corrected.", "I'm not sure.", "the 6,000 mg/day maximum", "Lorem ipsum dolor",
    "“quoted [Landlord] text”", "café — “ok”… naïve ΣΑΣ", "\u00a0non-breaking\u00a0space", "\x00", "😊", "A" * 3, "...", "?!",
    "don't", "and how are you", "thank you", "so can you", "because you",
]


def _turn_index(case: Case, rng: random.Random, role: str | None = None) -> int | None:
    picks = [i for i, (r, _) in enumerate(case.messages) if role is None or r == role]
    return rng.choice(picks) if picks else None


def drop_turn(case: Case, rng: random.Random) -> None:
    i = _turn_index(case, rng)
    if i is not None:
        del case.messages[i]


def duplicate_turn(case: Case, rng: random.Random) -> None:
    i = _turn_index(case, rng)
    if i is not None:
        case.messages.insert(rng.choice([i + 1, len(case.messages)]), case.messages[i])


def duplicate_turn_edited(case: Case, rng: random.Random) -> None:
    """A near-copy of an earlier turn as a later turn of the same role (a word or two changed)."""
    i = _turn_index(case, rng)
    if i is None:
        return
    role, text = case.messages[i]
    words = text.split()
    for _ in range(rng.randint(0, 3)):
        if words:
            words[rng.randrange(len(words))] = rng.choice(["really", "dose", "please", "now", "I"])
    cut = rng.choice([len(words), max(1, len(words) * 2 // 3), max(1, len(words) // 2)])
    case.messages.append((role, " ".join(words[:cut])))


def swap_turns(case: Case, rng: random.Random) -> None:
    if len(case.messages) >= 2:
        i = rng.randrange(len(case.messages) - 1)
        case.messages[i], case.messages[i + 1] = case.messages[i + 1], case.messages[i]


def truncate_final(case: Case, rng: random.Random) -> None:
    if not case.messages:
        return
    role, text = case.messages[-1]
    how = rng.randrange(4)
    if how == 0 and len(text) > 2:
        text = text[: rng.randrange(1, len(text))]  # mid-word or anywhere
    elif how == 1 and "," in text:
        text = text[: text.rindex(",") + 1]
    elif how == 2:
        text = text.rstrip(".!?\"') ")
    else:
        text = " ".join(text.split()[: max(1, len(text.split()) // 2)])
    case.messages[-1] = (role, text)


def truncate_any(case: Case, rng: random.Random) -> None:
    i = _turn_index(case, rng)
    if i is not None:
        role, text = case.messages[i]
        case.messages[i] = (role, text[: len(text) // 2])


def repeat_sentence(case: Case, rng: random.Random) -> None:
    i = _turn_index(case, rng)
    if i is None:
        return
    role, text = case.messages[i]
    sentences = [s for s in text.replace("?", ".").split(".") if s.strip()]
    if sentences:
        s = rng.choice(sentences).strip()
        case.messages[i] = (role, text + rng.choice([" ", "\n", " ... "]) + s + rng.choice([".", "!", "", "?"]) + " " + s + ".")
    if rng.random() < 0.3:
        case.messages[i] = (role, " ".join(["help me now"] * rng.randint(4, 12)))


def copy_user_into_assistant(case: Case, rng: random.Random) -> None:
    i = _turn_index(case, rng, "user")
    if i is None:
        return
    text = case.messages[i][1]
    if rng.random() < 0.5:
        swap = {"i": "you", "my": "your", "me": "you", "I": "You", "My": "Your", "am": "are", "we": "you", "our": "your"}
        text = " ".join(swap.get(w, w) for w in text.split())
    if rng.random() < 0.5:
        text = "Sure. " + text + " Let me know."
    case.messages.insert(i + 1, ("assistant", text))


def inject(case: Case, rng: random.Random) -> None:
    i = _turn_index(case, rng)
    if i is None:
        return
    role, text = case.messages[i]
    piece = rng.choice(_INJECTED)
    where = rng.choice([0, len(text), rng.randint(0, len(text))])
    sep = rng.choice(["", " ", "\n", ". "])
    case.messages[i] = (role, text[:where] + sep + piece + sep + text[where:])


def paste_criterion(case: Case, rng: random.Random) -> None:
    if not case.rubric or not case.messages:
        return
    criterion = rng.choice(case.rubric)[0]
    body = criterion
    for lead in ("A good answer should ", "A bad answer ", "Should not "):
        body = body.removeprefix(lead)
    piece = rng.choice([criterion, body, "Will you " + body[:1].lower() + body[1:] + "?", "Don't " + body.lower(),
                        " ".join(body.split()[: max(3, len(body.split()) * 2 // 3)])])
    if rng.random() < 0.3:
        if case.messages[0][0] == "system":
            case.messages[0] = ("system", case.messages[0][1] + " " + piece)
        else:
            case.messages.insert(0, ("system", "You are a helpful assistant. " + piece))
        return
    i = _turn_index(case, rng, "user")
    if i is not None:
        case.messages[i] = ("user", case.messages[i][1] + " " + piece)


def add_system(case: Case, rng: random.Random) -> None:
    text = rng.choice(["You are a helpful assistant.", "", "  ", "SITUATION: the user is tired.", "Answer briefly. [Company] policy applies."])
    case.messages.insert(rng.choice([0, 0, len(case.messages) // 2]), ("system", text))


def empty_turn(case: Case, rng: random.Random) -> None:
    i = _turn_index(case, rng)
    if i is not None:
        case.messages[i] = (case.messages[i][0], rng.choice(["", " ", "\n\t"]))


def change_role(case: Case, rng: random.Random) -> None:
    i = _turn_index(case, rng)
    if i is not None:
        case.messages[i] = (rng.choice(["user", "assistant", "system"]), case.messages[i][1])


def change_case(case: Case, rng: random.Random) -> None:
    i = _turn_index(case, rng)
    if i is not None:
        role, text = case.messages[i]
        case.messages[i] = (role, rng.choice([text.upper(), text.lower(), text.title(), text.swapcase()]))


def wide_punctuation(case: Case, rng: random.Random) -> None:
    i = _turn_index(case, rng)
    if i is not None:
        role, text = case.messages[i]
        for a, b in (("'", "’"), ('"', "“"), (" - ", " — "), ("...", "…"), (". ", ".\u00a0"), (", ", "،")):
            if rng.random() < 0.5:
                text = text.replace(a, b)
        case.messages[i] = (role, text)


def shuffle_rubric(case: Case, rng: random.Random) -> None:
    rng.shuffle(case.rubric)


def flip_signs(case: Case, rng: random.Random) -> None:
    how = rng.randrange(3)
    case.rubric = [(c, abs(p) if how == 0 else -abs(p) if how == 1 else -p) for c, p in case.rubric]


def edit_rubric(case: Case, rng: random.Random) -> None:
    how = rng.randrange(6)
    if how == 0 and case.rubric:
        del case.rubric[rng.randrange(len(case.rubric))]
    elif how == 1 and case.rubric:
        c, p = rng.choice(case.rubric)
        case.rubric.append((rng.choice([c, c.lower() + ".", c.replace("s ", " ", 1), "A good answer " + c]), p))
    elif how == 2:
        case.rubric.append((rng.choice(["", "Ok", "Good answer", "  "]), rng.choice([-3, 3])))
    elif how == 3:
        case.rubric.append((rng.choice([
            'A bad answer is "A bad answer"', "The answer is good", "Meets the criterion",
            "Demonstrates truthfulness in the response", 'A good answer would be: "I can help."',
            "A bad answer: The user's last message.", "States {{ criterion }} in the answer",
            "A bad answer is a typical way a bad answer fails: vague", "Shows human protective helpfulness of AI",
            'A good answer is, "A wonderful gift to share."', "A good answer: The user's last message is a fitting answer to this conversation.",
        ]), rng.choice([-5, 5])))
    elif how == 4:
        case.rubric = []
    elif how == 5 and case.rubric:
        i = rng.randrange(len(case.rubric))
        c, p = case.rubric[i]
        case.rubric[i] = (c, 0)


def change_flaw(case: Case, rng: random.Random) -> None:
    how = rng.randrange(6)
    if how == 0:
        case.shape = "flawed_prior_turn" if case.shape != "flawed_prior_turn" else "plain"
    elif how == 1:
        case.flawed_turn_index = rng.choice([None, -1, 0, 1, 2, 3, 99])
    elif how == 2:
        case.flaw = rng.choice([None, "", "  ", "gave an adult dose for a child", "states a 6,000 mg/day maximum",
                                "cites a study that does not exist", "an arithmetic slip of 12.5"])
    elif how == 3:
        i = _turn_index(case, rng, "assistant")
        if i is not None:
            case.shape, case.flawed_turn_index = "flawed_prior_turn", i
            case.flaw = case.flaw or "claims the wrong figure"
    elif how == 4:
        case.trait = rng.choice([None, "human_protective_helpfulness", "honesty", "x"])
    else:
        i = _turn_index(case, rng, "assistant")
        if i is not None:
            case.messages[i] = ("assistant", case.messages[i][1] + rng.choice([" I was wrong.", " I'm not sure.", " 42 mg."]))


MUTATIONS: list[Callable[[Case, random.Random], None]] = [
    drop_turn, duplicate_turn, duplicate_turn_edited, swap_turns, truncate_final, truncate_any, repeat_sentence,
    copy_user_into_assistant, inject, inject, inject, paste_criterion, add_system, empty_turn, change_role, change_case,
    wide_punctuation, shuffle_rubric, flip_signs, edit_rubric, change_flaw,
]


def variants(base: Case, count: int, rng: random.Random) -> list[Case]:
    """``count`` mutated copies of ``base``: each mutation alone once, then random stacks of 1-4."""
    out = []
    for k in range(count):
        case = base.copy(str(k))
        steps = [MUTATIONS[k]] if k < len(MUTATIONS) else rng.choices(MUTATIONS, k=rng.randint(1, 4))
        for step in steps:
            step(case, rng)
        out.append(case)
    return out


# -- comparison ---------------------------------------------------------------------------------


#: Codes left out of the new lint's findings (``--ignore-code``), and how often each was left out.
IGNORED: dict[str, int] = {}


def _verdict(result: Any, ignore: bool = False) -> tuple[Any, ...]:
    findings = [(f.code, f.detail, f.turn) for f in result.findings]
    if ignore and IGNORED:
        kept = [f for f in findings if f[0] not in IGNORED]
        for code, _, _ in findings:
            if code in IGNORED:
                IGNORED[code] += 1
        reasons = list(dict.fromkeys(r for r in result.reasons if r not in IGNORED))
        return (result.id, not kept, reasons, kept)
    return (result.id, result.usable, list(result.reasons), findings)


def _findings(findings: list[Any], ignore: bool = False) -> list[tuple[Any, ...]]:
    return [(f.code, f.detail, f.turn) for f in findings if not (ignore and f.code in IGNORED)]


def _run(fn: Callable[[], Any]) -> Any:
    """The value, or the exception's type and text (a crash must match too)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        return ("raised", type(exc).__name__, str(exc))


def compare(old: ModuleType, old_text: ModuleType, cases: list[Case], show: int = 5) -> tuple[int, int]:
    """(comparisons, differences) of old and new lint over ``cases``; prints the first ``show`` differences."""
    comparisons = differences = 0

    def check(what: str, a: Any, b: Any) -> None:
        nonlocal comparisons, differences
        comparisons += 1
        if a != b:
            differences += 1
            if differences <= show:
                print(f"DIFFERENCE {what}:\n  old: {a!r}\n  new: {b!r}")

    helpers = [name for name in ("tokens_of", "normalized", "word_count", "has_template_residue", "content_stems")
               if hasattr(old_text, name) and hasattr(new_text, name)]
    for case in cases:
        kwargs = {"flaw": case.flaw, "flawed_turn_index": case.flawed_turn_index, "shape": case.shape, "trait": case.trait}
        a = _run(lambda: _verdict(old.lint_scenario(case.id, case.messages, case.rubric, **kwargs)))
        b = _run(lambda: _verdict(new_lint.lint_scenario(case.id, case.messages, case.rubric, **kwargs), ignore=True))
        check(f"lint_scenario {case.id}", a, b)
        # the same row given as dicts (the record/dict path of lint_scenario)
        dicts = [{"role": r, "content": c} for r, c in case.messages]
        crits = [{"criterion": c, "points": p} for c, p in case.rubric]
        check(f"lint_scenario(dicts) {case.id}",
              a, _run(lambda: _verdict(new_lint.lint_scenario(case.id, dicts, crits, **kwargs), ignore=True)))
        for k in range(len(case.messages)):
            final = k == len(case.messages) - 1
            prev, turn = case.messages[:k], case.messages[k]
            check(f"turn_problems {case.id} turn {k}",
                  _run(lambda: _findings(old.turn_problems(prev, turn, final=final))),
                  _run(lambda: _findings(new_lint.turn_problems(prev, turn, final=final), ignore=True)))
        for text in [c for _, c in case.messages] + [c for c, _ in case.rubric]:
            for name in helpers:
                arg: Any = text if name != "tokens_of" else text.lower()
                if name == "content_stems":
                    arg = text.lower().split()
                check(f"text.{name} {case.id} {text[:40]!r}",
                      _run(lambda: getattr(old_text, name)(arg)), _run(lambda: getattr(new_text, name)(arg)))
    return comparisons, differences


def load_old(path: Path) -> tuple[ModuleType, ModuleType]:
    """The old lint package (a copy of ``src/scenario_forge/lint``) imported from ``path``."""
    if not (path / "__init__.py").is_file():
        raise SystemExit(f"error: {path} is not a copy of the lint package (no __init__.py)")
    if path.resolve() == (ROOT / "src" / "scenario_forge" / "lint").resolve():
        raise SystemExit("error: --old must be a copy outside the repository, not the working tree's package")
    sys.path.insert(0, str(path.parent))
    old = importlib.import_module(path.name)
    return old, importlib.import_module(f"{path.name}.text")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="a copy of the old lint package (a folder holding __init__.py)")
    parser.add_argument("--path", type=Path, default=DEFAULT, help="labelled JSONL (default: labelled/lint_scenarios.jsonl)")
    parser.add_argument("--variants", type=int, default=40, help="mutated copies per row (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=5, help="differences printed in full")
    parser.add_argument("--ignore-code", action="append", default=[], metavar="CODE",
                        help="leave the new lint's findings with this code out of the comparison (repeatable)")
    args = parser.parse_args(argv)
    IGNORED.update(dict.fromkeys(args.ignore_code, 0))
    old, old_text = load_old(args.old)
    if not args.path.is_file():
        print(f"error: labelled set not found: {args.path}", file=sys.stderr)
        return 2
    bases = [Case(json.loads(line)) for line in args.path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(args.seed)
    cases = list(bases)
    for base in bases:
        cases.extend(variants(base, args.variants, rng))
    comparisons, differences = compare(old, old_text, cases, args.show)
    print(f"{len(cases):,} rows ({len(bases)} labelled, {len(cases) - len(bases):,} mutated; seed {args.seed}): "
          f"{comparisons:,} comparisons, {differences} differences")
    for code, n in IGNORED.items():
        print(f"left out of the new lint's findings: {code}, {n:,} times")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
