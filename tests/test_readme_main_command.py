"""The README's main command, exactly as written there, at a small N: generate + curate on the
embedded model through the installed CLI (the default orchestrator, a temporary Prefect server).

The command line is read from README.md's set-up block, so this test breaks if the README changes
it; only ``--n 2`` and an isolated ``--out`` are appended (nothing is written under ``outputs/``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from helpers import REPO

from scenario_forge.schema import read_rejects, read_scenarios


def readme_main_command() -> list[str]:
    """The generate command from README.md's first bash block (the part after ``setup.sh &&``)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert block, "README.md has no bash block"
    lines = [ln for ln in block.group(1).splitlines() if "scenario-forge generate" in ln and not ln.lstrip().startswith("#")]
    assert len(lines) == 1, f"expected one generate command in README.md's set-up block, found {lines}"
    setup, _, command = lines[0].rpartition("&&")
    assert setup.strip() == "bash scripts/setup.sh", lines[0]
    return shlex.split(command)


def test_readme_command_is_the_one_this_test_runs():
    cmd = readme_main_command()
    assert cmd[0] == ".venv/bin/scenario-forge" and cmd[1] == "generate" and "--domain" in cmd


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_readme_main_command_generates_and_curates(tmp_path: Path):
    cmd = readme_main_command()
    if not (REPO / cmd[0]).is_file():
        pytest.skip(f"{cmd[0]} is not there: run `bash scripts/setup.sh` first (the README's set-up)")
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    t0 = time.monotonic()
    proc = subprocess.run([*cmd, "--n", "2", "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=850, check=False)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (run,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    manifest = json.loads((run / "manifest.json").read_text())
    c = manifest["counts"]
    print(f"README main command at --n 2: {wall:.0f} s, counts {c}")
    assert c["planned"] == 2 == c["kept"] + c["rejected"] + c["deduplicated"]
    assert c["kept"] >= 1
    assert manifest["config"]["curate"] is True and manifest["provenance"]["model"].startswith("embedded:SmolLM2-135M")
    assert manifest["usage"]["judge"]["requests"] > 0  # curation ran, with the embedded judge
    assert len(read_scenarios(run / "scenarios.parquet")) == c["kept"]
    assert len(read_rejects(run / "rejects.parquet")) == c["rejected"] + c["deduplicated"]
    assert (run / "report.md").is_file()
    assert not (REPO / "outputs" / run.name).exists() or (REPO / "outputs" / run.name).stat().st_mtime < t0
