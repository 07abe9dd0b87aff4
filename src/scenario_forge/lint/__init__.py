"""Deterministic checks that tell, without a model, whether a scenario is usable as an RL prompt.

The public API::

    from scenario_forge.lint import LintFinding, LintResult, lint_scenario, turn_problems, REASONS

:func:`lint_scenario` runs every detector on one scenario; :func:`turn_problems` runs only the
turn-level ones, which generation uses to re-ask a turn. Each detector has one reason code
(:data:`REASONS`, described in ``docs/lint.md``). Both are the compiled copy of the detectors when
one is built from the same source (:mod:`scenario_forge.lint.native`), the Python source otherwise.

>>> r = lint_scenario("s1", [{"role": "user", "content": "My name is [Your Name] and I need help."}],
...                   [{"criterion": "Explains the dosage", "points": 5}])
>>> r.usable, r.reasons
(False, ['placeholder', 'rubric_no_negative'])
"""

from __future__ import annotations

from .codes import DESCRIPTIONS, REASONS, TURN_REASONS
from .findings import LintFinding, LintResult
from .native import native_scenario
from .scenario import lint_scenario, turn_problems

if (_compiled := native_scenario()) is not None:
    lint_scenario = _compiled.lint_scenario
    turn_problems = _compiled.turn_problems

__all__ = ["DESCRIPTIONS", "REASONS", "TURN_REASONS", "LintFinding", "LintResult", "lint_scenario", "turn_problems"]
