"""The wheel built from this checkout installs into a clean virtualenv and runs from outside it.

Issue 17, item 8. One slow test, in the order a user would go:

1. ``pip wheel --no-deps`` builds the wheel from the checkout; the shipped taxonomy, prompts, recipes,
   packs and labelled sets must be inside it (``scenario_forge/_resources/``, file for file).
2. A fresh virtualenv (no ``--system-site-packages``: nothing but the standard library and pip) gets
   exactly scripts/setup.sh's sequence: upgrade pip, the CPU ``torch==2.13.0``, then our wheel with
   ``-c constraints.txt``. pip keeps its configuration (the machine's local index) and its caches, so the
   llama-cpp-python wheel setup.sh compiled is reused rather than built again. Only the base
   dependencies are installed: the two commands below need no extra. ``--no-compile`` skips writing
   ``.pyc`` files for ~160 packages at install time (Python writes them on first import anyway);
   it changes nothing about what gets installed.
3. From an empty folder outside the checkout, with no ``PYTHONPATH``: the installed package and its
   resources resolve inside the virtualenv, ``scenario-forge taxonomy validate`` passes, and
   ``scenario-forge generate --domain health --n 2 --orchestrator direct`` runs the embedded model,
   keeps at least one scenario and writes the run under ``./outputs`` of that folder.

Each phase's time is printed (``pytest -s``); the whole test takes minutes, most of it the install.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest
from helpers import REPO

from scenario_forge.resources import NAMES
from scenario_forge.schema import read_scenarios


def _run(cmd: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; on a non-zero exit fail with its command line and the tail of its output."""
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def _shipped_files() -> set[str]:
    """Every file of the shipped resource folders, as its path inside the wheel."""
    files = set()
    for name in NAMES:
        for path in (REPO / name).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                files.add(f"scenario_forge/_resources/{path.relative_to(REPO).as_posix()}")
    return files


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_wheel_installs_in_a_clean_venv_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    assert REPO not in tmp_path.parents, "the test must run outside the checkout"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env["HF_HUB_OFFLINE"] = "1"
    times: dict[str, float] = {}

    t0 = time.monotonic()
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, REPO], cwd=tmp_path, env=env, timeout=600)
    (wheel,) = dist.glob("scenario_forge-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        inside = set(zf.namelist())
    missing = sorted(_shipped_files() - inside)
    assert not missing, f"shipped files missing from the wheel: {missing[:10]}"
    assert "scenario_forge/py.typed" in inside and "scenario_forge/publishing/card.md.j2" in inside
    times["build wheel"] = time.monotonic() - t0

    t0 = time.monotonic()
    root = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    py = root / "bin" / "python"
    pip = [py, "-m", "pip", "install", "-q"]
    _run([*pip, "--upgrade", "pip"], cwd=tmp_path, env=env, timeout=600)
    _run([*pip, "--no-compile", "torch==2.13.0"], cwd=tmp_path, env=env, timeout=900)
    _run([*pip, "--no-compile", "-c", REPO / "constraints.txt", wheel], cwd=tmp_path, env=env, timeout=1500)
    _run([py, "-m", "pip", "check"], cwd=tmp_path, env=env, timeout=300)
    times["install into a clean venv"] = time.monotonic() - t0

    work = tmp_path / "work"
    work.mkdir()
    t0 = time.monotonic()
    where = _run([py, "-c", (
        "import importlib.util, json, scenario_forge, scenario_forge.resources as r;"
        "print(json.dumps({'package': scenario_forge.__file__, 'flows': importlib.util.find_spec('flows.generate').origin,"
        " **{n: str(r.resource_dir(n)) for n in r.NAMES}}))"
    )], cwd=work, env=env, timeout=300)
    located = json.loads(where.stdout)
    site = (root / "lib").resolve()
    for what, path in located.items():
        assert site in Path(path).resolve().parents, f"{what} resolved to {path}, not inside the clean venv"
    assert all(Path(located[n]).parent.name == "_resources" for n in NAMES), located

    exe = root / "bin" / "scenario-forge"
    validated = _run([exe, "taxonomy", "validate"], cwd=work, env=env, timeout=300)
    assert validated.stdout.startswith("ok: "), validated.stdout
    times["taxonomy validate"] = time.monotonic() - t0

    t0 = time.monotonic()
    _run([exe, "generate", "--domain", "health", "--n", "2", "--orchestrator", "direct"], cwd=work, env=env, timeout=1500)
    times["generate --n 2"] = time.monotonic() - t0
    (run,) = [p for p in (work / "outputs").iterdir() if p.is_dir() and not p.name.startswith(".")]
    manifest = json.loads((run / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["planned"] == 2 == counts["kept"] + counts["rejected"] + counts["deduplicated"]
    assert counts["kept"] >= 1, counts
    assert len(read_scenarios(run / "scenarios.parquet")) == counts["kept"]
    assert manifest["provenance"]["model"].startswith("embedded:SmolLM2-135M")
    print("wheel install test, seconds by phase:", {k: round(v) for k, v in times.items()}, "counts", counts)
