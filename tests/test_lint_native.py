"""The compiled copy of lint's detectors (:mod:`scenario_forge.lint.native`): used only when built from
the source beside it, and saying the same as the Python source on the labelled set and its mutations."""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import random
from pathlib import Path

import pytest
from helpers import REPO

import scenario_forge.lint.scenario as python_lint
import scenario_forge.lint.text as python_text
from scenario_forge import lint
from scenario_forge.lint.native import (
    COMPILED,
    ENV,
    PACKAGE,
    SHARED,
    is_current,
    load_native,
    missing_build_tool,
    native_scenario,
    source_hash,
)

_spec = importlib.util.spec_from_file_location("lint_equivalence_for_native", REPO / "benchmarks" / "lint_equivalence.py")
assert _spec is not None and _spec.loader is not None
lint_equivalence = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lint_equivalence)

LABELLED = REPO / "labelled" / "lint_scenarios.jsonl"


def _fake_build(root: Path, name: str, digest: str) -> None:
    """A package shaped like the build's output (``SOURCE_HASH`` and a ``scenario`` module), no compiler needed."""
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text(f'SOURCE_HASH = "{digest}"\n')
    (package / "scenario.py").write_text("def lint_scenario(*a, **k):\n    return 'fake'\n")


def test_a_build_from_these_sources_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _fake_build(tmp_path, "lintc_current", source_hash())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(ENV, raising=False)
    module = load_native("lintc_current")
    assert module is not None and module.lint_scenario() == "fake"


def test_is_current_compares_the_build_with_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # what scripts/build_native_lint.py asks before building (no log line, whatever the switch says)
    _fake_build(tmp_path, "lintc_now", source_hash())
    _fake_build(tmp_path, "lintc_then", "f" * 64)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ENV, "python")
    assert is_current("lintc_now") and not is_current("lintc_then") and not is_current("no_such_lintc_package")


def test_a_build_from_other_sources_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    _fake_build(tmp_path, "lintc_stale", "0" * 64)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger="scenario_forge.lint.native"):
        assert load_native("lintc_stale") is None
    assert "built from other sources" in caplog.text and "build_native_lint.py" in caplog.text


def test_an_edited_source_makes_the_build_stale(tmp_path: Path):
    lint_dir = Path(python_lint.__file__).parent
    for name in (*COMPILED, *SHARED):
        (tmp_path / f"{name}.py").write_bytes((lint_dir / f"{name}.py").read_bytes())
    assert source_hash(tmp_path) == source_hash()
    (tmp_path / "turns.py").write_text((tmp_path / "turns.py").read_text() + "\n# an edit\n")
    assert source_hash(tmp_path) != source_hash()


def test_not_built_and_switched_off_mean_the_python_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(ENV, raising=False)
    assert load_native("no_such_lintc_package") is None
    _fake_build(tmp_path, "lintc_off", source_hash())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ENV, "python")
    assert load_native("lintc_off") is None


def test_the_compiled_detectors_are_built_where_they_can_be():
    # scripts/setup.sh (the README's set-up, before the tests) builds them; a build that failed, or a
    # detector edited since, would otherwise leave the comparison below skipped and lint slower
    lacking = missing_build_tool()
    if lacking is not None:
        pytest.skip(f"the compiled detectors cannot be built here: {lacking}")
    assert is_current(), "the compiled detectors are missing or stale: run `bash scripts/setup.sh` (or python scripts/build_native_lint.py)"
    if os.environ.get(ENV, "").strip().lower() != "python":  # switched off on purpose: the Python source runs
        assert native_scenario() is not None


def test_the_public_functions_are_the_compiled_ones_when_built():
    compiled = native_scenario()
    if compiled is None:
        assert lint.lint_scenario is python_lint.lint_scenario
    else:
        assert lint.lint_scenario is compiled.lint_scenario and lint.turn_problems is compiled.turn_problems
        assert compiled.__name__ == f"{PACKAGE}.scenario"


@pytest.mark.skipif(not LABELLED.is_file(), reason="labelled/lint_scenarios.jsonl is absent")
def test_compiled_and_python_detectors_agree():
    """Every labelled row and 6 mutated copies of each (benchmarks/lint_equivalence.py's mutations):
    lint_scenario (tuples and dicts) and turn_problems, findings' codes, details and turns, and any
    exception, the same from both. ``scripts/setup.sh`` builds the compiled copy; without a C compiler
    there is nothing to compare."""
    if native_scenario() is None:
        pytest.skip("no compiled detectors built from this source (python scripts/build_native_lint.py)")
    assert importlib.import_module(PACKAGE).SOURCE_HASH == source_hash()
    bases = [lint_equivalence.Case(json.loads(line)) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(11)
    cases = list(bases)
    for base in bases:
        cases.extend(lint_equivalence.variants(base, 6, rng))
    assert lint_equivalence.new_lint.lint_scenario is native_scenario().lint_scenario
    comparisons, differences = lint_equivalence.compare(python_lint, python_text, cases, show=3)
    assert comparisons > 10 * len(cases)
    assert differences == 0
