"""The package is type-checked with strict mypy in CI, and ships ``py.typed`` so users get its types.

The settings live in ``pyproject.toml`` (``[tool.mypy]``): ``strict = true`` over ``src/scenario_forge``,
with ``ignore_missing_imports`` only for named third-party packages that ship no types. mypy comes
with the ``dev`` extra (``scripts/setup.sh`` installs it), so a missing mypy fails here rather than
skipping: a type check that silently does not run is no check.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest
from helpers import REPO

PACKAGE = REPO / "src" / "scenario_forge"


def mypy_settings() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as fh:
        settings: dict[str, object] = tomllib.load(fh)["tool"]["mypy"]
    return settings


def test_package_ships_py_typed() -> None:
    assert (PACKAGE / "py.typed").is_file()


def test_mypy_settings_are_strict_over_the_whole_package() -> None:
    settings = mypy_settings()
    assert settings["strict"] is True
    assert settings["files"] == ["src/scenario_forge"]
    # no blanket escape hatches: missing imports are ignored per named third-party module only
    assert "ignore_missing_imports" not in settings
    assert "ignore_errors" not in settings
    overrides = settings.get("overrides", [])
    assert isinstance(overrides, list)
    for override in overrides:
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        assert not any(m.startswith("scenario_forge") for m in modules), override
        assert set(override) <= {"module", "ignore_missing_imports"}, override


def test_mypy_is_in_the_dev_extra() -> None:
    with (REPO / "pyproject.toml").open("rb") as fh:
        dev = tomllib.load(fh)["project"]["optional-dependencies"]["dev"]
    assert any(req.startswith("mypy") for req in dev)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_strict_mypy_passes_on_src() -> None:
    """``python -m mypy`` with the project's settings finds no errors in any module of the package
    (about 80 s cold, seconds warm)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-color-output"],
        cwd=REPO, capture_output=True, text=True, timeout=590, check=False,
    )
    if proc.returncode != 0 and "No module named mypy" in proc.stderr:
        pytest.fail("mypy is not installed: install the dev extra (bash scripts/setup.sh)")
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert proc.returncode == 0 and not errors, (
        f"strict mypy found {len(errors)} error(s):\n" + "\n".join(errors[:200]) + proc.stderr[-2000:]
    )
    checked = re.search(r"no issues found in (\d+) source files", proc.stdout)
    assert checked, proc.stdout[-2000:]
    modules = sum(1 for _ in PACKAGE.rglob("*.py"))
    assert int(checked.group(1)) >= modules  # every module of the package was checked
