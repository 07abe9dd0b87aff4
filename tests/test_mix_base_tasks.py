"""The embedded standard RL data: deterministic verifiable tasks whose answers are right (scored by
the exact-match reward, whose own tests are in test_exact_match.py)."""

from __future__ import annotations

import datetime as dt
import doctest
import re

from scenario_forge.grading.exact_match import exact_match_reward
from scenario_forge.mixing import base_tasks
from scenario_forge.mixing.base_tasks import generate_tasks, iter_tasks


def test_doctests():
    assert doctest.testmod(base_tasks).failed == 0


def test_deterministic_and_prefix_stable():
    a = generate_tasks(70_000, seed=5)
    assert a.equals(generate_tasks(70_000, seed=5))
    assert a.head(1000).equals(generate_tasks(1000, seed=5))  # a larger request starts with the same rows
    assert a.slice(65_000, 3000).equals(generate_tasks(3000, seed=5, start=65_000))  # across a block boundary
    assert not a.head(1000).equals(generate_tasks(1000, seed=6))
    assert sum(f.height for f in iter_tasks(70_000, seed=5)) == 70_000
    assert set(a["task"].unique()) == {"arithmetic", "unit_conversion", "date_arithmetic"}
    assert a["prompt"].null_count() == 0 and a["answer"].null_count() == 0
    assert a["prompt"].n_unique() > 0.9 * a.height


_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_FACTORS = {("kilometres", "metres"): 1000, ("kilograms", "grams"): 1000, ("litres", "millilitres"): 1000,
            ("hours", "minutes"): 60, ("minutes", "seconds"): 60, ("days", "hours"): 24, ("weeks", "days"): 7,
            ("feet", "inches"): 12, ("yards", "feet"): 3, ("metres", "centimetres"): 100}


def _solve(prompt: str) -> str:
    """An independent solver for the generated prompts (plain Python, no numpy/polars)."""
    n = [int(x) for x in re.findall(r"(?<![\d-])\d+(?![\d.-])", prompt)]
    date = [dt.date.fromisoformat(d) for d in re.findall(r"\d{4}-\d{2}-\d{2}", prompt)]
    if m := re.match(r"Convert ([\d.]+) (\w+) to (\w+)\.", prompt):
        from decimal import Decimal

        value = Decimal(m.group(1)) * _FACTORS[(m.group(2), m.group(3))]
        return str(value.quantize(Decimal(1)))
    if "days after" in prompt:
        return (date[0] + dt.timedelta(days=n[0])).isoformat()
    if "days before" in prompt:
        return (date[0] - dt.timedelta(days=n[0])).isoformat()
    if "How many days are there" in prompt:
        return str((date[1] - date[0]).days)
    if "day of the week" in prompt:
        return _WEEKDAYS[date[0].weekday()]
    if "muffins" in prompt:
        return str(n[0] * n[1] - n[2])
    if "km/h" in prompt:
        return str(n[0] * n[1])
    if "Sam has" in prompt:
        return str(n[0] - n[1] + n[2])
    if "perimeter" in prompt:
        return str(2 * (n[0] + n[1]))
    if "pencils" in prompt:
        return str(n[0] * n[1] % n[2])
    if "tank holds" in prompt:
        return str(n[0] - n[1] * n[2])
    raise AssertionError(f"unknown prompt: {prompt}")


def test_answers_are_exact():
    frame = generate_tasks(3000, seed=11)
    for prompt, answer, _task in frame.iter_rows():
        assert _solve(prompt) == answer, prompt
        assert exact_match_reward(f"The answer is {answer}.", answer) == 1.0
    assert (frame.filter(frame["task"] == "arithmetic")["answer"].cast(int) >= 0).all()
