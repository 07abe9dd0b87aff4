"""Inputs an attacker or a careless user hands us (issue 13): templates that try to run code, YAML
that tries to build objects, publish --overwrite aimed at someone else's folder, runs with nothing
to publish, servers that echo the API key, two writers on one run folder, and a plan looked at
before it is run. Each test fails on the code before the fix."""

from __future__ import annotations

import doctest
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import FAKE
from mix_data import HashEmbedder, grid, write_run
from openai_fake_server import FakeOpenAIServer
from typer.testing import CliRunner

from scenario_forge import redact, runlock, templating
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.cli.main import app
from scenario_forge.errors import ConfigError
from scenario_forge.generation import estimate
from scenario_forge.mixing import guard
from scenario_forge.mixing.config import MixConfig
from scenario_forge.mixing.recipes import load_recipe
from scenario_forge.mixing.run import run_mix
from scenario_forge.prompts import PromptSet
from scenario_forge.publishing import PublishConfig, build, push, run_publish
from scenario_forge.records import Reject
from scenario_forge.taxonomy.loader import load_taxonomy

runner = CliRunner()
EXE = Path(sys.executable).with_name("scenario-forge")


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


def test_doctests():
    from scenario_forge.cli import generate as generate_cli

    for module in (templating, redact, runlock, estimate, generate_cli):
        assert doctest.testmod(module).failed == 0, module.__name__


# -- 1. templates run in the sandbox; YAML builds no objects ---------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    ],
)
def test_prompt_folder_cannot_run_code(tmp_path: Path, prompts_copy: Path, payload: str):
    marker = tmp_path / "pwned"
    (prompts_copy / "brief.j2").write_text(
        (prompts_copy / "brief.j2").read_text() + "\n" + payload.replace("MARKER", str(marker)) + "\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["generate", "--prompts", str(prompts_copy), "--backend", "fake", "--no-curate",
                                 "--n", "1", "--domain", "health", "--out", str(out), "--orchestrator", "direct"])
    assert result.exit_code == 2, result.output
    (line,) = error_lines(result.output)
    assert str(prompts_copy / "brief.j2") in line and "outside the sandbox" in line
    assert not marker.exists() and not out.exists()


def test_sandbox_keeps_strict_undefined_and_immutability(prompts_copy: Path):
    (prompts_copy / "probe.j2").write_text("{{ items.append(1) }}")
    (prompts_copy / "missing.j2").write_text("{{ nothing_here }}")
    prompts = PromptSet(prompts_copy)
    with pytest.raises(ConfigError, match="probe.j2 reaches outside the sandbox"):
        prompts.render_text("probe.j2", items=[])
    with pytest.raises(ConfigError, match="missing.j2 uses an undefined variable: 'nothing_here'"):
        prompts.render_text("missing.j2")


def test_dataset_card_renders_in_the_sandbox(tmp_path: Path, monkeypatch):
    run = write_run(tmp_path / "runs", grid(1, domains=["health"]))
    card = tmp_path / "card.md.j2"
    marker = tmp_path / "pwned"
    card.write_text("{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}".replace("MARKER", str(marker)))
    monkeypatch.setattr(build, "CARD_TEMPLATE", card)
    with pytest.raises(ConfigError, match=f"template {card} reaches outside the sandbox"):
        run_publish(PublishConfig(source=run, local=tmp_path / "hub", exports=[]))
    assert not marker.exists() and not (tmp_path / "hub").exists()


def test_yaml_loaders_build_no_objects(tmp_path: Path, taxonomy_copy: Path):
    marker = tmp_path / "pwned"
    tag = f'!!python/object/apply:os.system ["touch {marker}"]'
    (taxonomy_copy / "pressures.yaml").write_text(f"pressures: {tag}\n")
    with pytest.raises(ConfigError):
        load_taxonomy(taxonomy_copy)
    recipe = tmp_path / "evil.yaml"
    recipe.write_text(f"name: evil\ndescription: {tag}\n")
    with pytest.raises(ConfigError):
        load_recipe(str(recipe))
    assert not marker.exists()


# -- 2. publish --overwrite replaces only its own folders -----------------------------------------------


def test_overwrite_never_replaces_a_folder_it_did_not_write(tmp_path: Path):
    run = write_run(tmp_path / "runs", grid(1, domains=["health"]))
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "src").mkdir()
    (repo / "README.md").write_text("# my project\n")
    (repo / "data" / "train.csv").write_text("a,b\n")
    (repo / "src" / "main.py").write_text("print('mine')\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    before = sorted(str(p.relative_to(repo)) for p in repo.rglob("*"))
    result = runner.invoke(app, ["publish", str(run), "--local", str(repo), "--overwrite", "--no-exports"])
    assert result.exit_code == 2
    (line,) = error_lines(result.output)
    assert "is not a published dataset folder" in line and build.MARKER in line
    assert sorted(str(p.relative_to(repo)) for p in repo.rglob("*")) == before
    assert (repo / "src" / "main.py").read_text() == "print('mine')\n" and (repo / ".git").is_dir()

    # Its own folder, marked when published, is replaced; the marker names the tool and the source.
    ours = tmp_path / "hub"
    assert runner.invoke(app, ["publish", str(run), "--local", str(ours), "--no-exports"]).exit_code == 0
    marker = json.loads((ours / build.MARKER).read_text())
    assert marker["tool"] == "scenario-forge" and marker["source"] == str(run.resolve())
    (ours / "stale.txt").write_text("old")
    assert runner.invoke(app, ["publish", str(run), "--local", str(ours), "--no-exports", "--overwrite"]).exit_code == 0
    assert not (ours / "stale.txt").exists() and (ours / build.MARKER).is_file()


def test_marker_is_not_pushed(tmp_path: Path, monkeypatch):
    run = write_run(tmp_path / "runs", grid(1, domains=["health"]))
    calls = []

    class Api:
        def create_repo(self, repo_id, **kw):
            return f"https://huggingface.co/datasets/{repo_id}"

        def upload_folder(self, **kw):
            calls.append(kw)

    monkeypatch.setattr(push, "_api", lambda: Api())
    run_publish(PublishConfig(source=run, repo_id="org/name", exports=[]))
    assert calls and build.MARKER in calls[0]["ignore_patterns"]


# -- 3. nothing to publish, nothing kept --------------------------------------------------------------------


def test_publishing_an_empty_run_is_refused(tmp_path: Path):
    run = write_run(tmp_path / "runs", [])
    result = runner.invoke(app, ["publish", str(run), "--local", str(tmp_path / "hub")])
    assert result.exit_code == 2
    (line,) = error_lines(result.output)
    assert "has no rows to publish" in line
    assert not (tmp_path / "hub").exists() and not list(tmp_path.glob(".hub*"))


def test_empty_split_is_left_out_and_every_config_loads(tmp_path: Path):
    from datasets import load_dataset

    run = write_run(tmp_path / "runs", grid(1, domains=["health", "science", "business", "law_ethics"]))
    original = guard.make_embedder
    guard.make_embedder = lambda model, cache_dir: HashEmbedder()
    try:
        run_mix(MixConfig(runs=[run], out=tmp_path / "mix", recipe="no-health-science", heldout_traits=["corrigibility"],
                          spread={"enabled": False}))
    finally:
        guard.make_embedder = original
    split = tmp_path / "mix" / "heldout_traits.parquet"
    table = pq.read_table(split)
    pq.write_table(table.slice(0, 0), split)  # a split that ends up empty
    result = run_publish(PublishConfig(source=tmp_path / "mix", local=tmp_path / "hub", exports=["trl"]))
    assert "heldout_traits" not in result.configs and all("heldout_traits" not in s for s in result.configs["trl"])
    for config, splits in result.configs.items():
        loaded = load_dataset(str(tmp_path / "hub"), config)
        assert {name: len(loaded[name]) for name in splits} == splits


def test_generate_that_keeps_nothing_fails_with_the_reasons(tmp_path: Path):
    out = tmp_path / "out"
    with use_backend(FAKE, FakeBackend(responder=lambda request: None)):
        result = runner.invoke(app, ["generate", "--backend", "fake", "--no-curate", "--n", "2", "--domain", "health",
                                     "--out", str(out), "--run-id", "r", "--orchestrator", "direct"])
    assert result.exit_code == 1, result.output
    (line,) = error_lines(result.output)
    assert "0 of 2 planned scenarios kept (brief:situation_" in line and " 2)" in line
    assert (out / "r" / "manifest.json").is_file() and pq.read_table(out / "r" / "rejects.parquet").num_rows == 2


# -- 4. secrets never stored or printed ----------------------------------------------------------------------


def test_records_redact_secrets():
    reject = Reject(id="x", run_id="r", stage="brief", reason="backend_error", domain="d", trait="t", pressure="p",
                    detail='HTTP 400: {"Authorization": "Bearer abcdef1234567890"}', raw="token hf_abcdefghijklmnop")
    assert "abcdef1234567890" not in reject.detail and "hf_abcdefghijklmnop" not in (reject.raw or "")


def test_echoed_api_key_reaches_no_file_and_no_console(tmp_path: Path):
    key = "sk-test-" + os.urandom(12).hex()
    with FakeOpenAIServer(api_key=key, echo_headers=True) as server:
        result = runner.invoke(
            app,
            ["generate", "--backend", "openai", "--base-url", server.url, "--model", "test-model", "--no-curate",
             "--n", "2", "--domain", "health", "--out", str(tmp_path / "out"), "--run-id", "echo",
             "--orchestrator", "direct", "--max-retries", "0"],
            env={"OPENAI_API_KEY": key},
        )
    assert result.exit_code == 1, result.output  # 0 of 2 kept
    (line,) = error_lines(result.output)
    assert "0 of 2 planned scenarios kept" in line
    assert key not in result.output and key[8:] not in result.output
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert any(p.name == "rejects.parquet" for p in files)
    for path in files:
        data = path.read_bytes()
        assert key.encode() not in data and key[8:].encode() not in data, path
    details = " ".join(pq.read_table(tmp_path / "out" / "echo" / "rejects.parquet").column("detail").to_pylist())
    assert "[redacted]" in details and "HTTP 400" in details  # the server did echo the header; it was masked


# -- 5. one writer per folder ----------------------------------------------------------------------------------


def _generate_cmd(out: Path, delay: float, n: int = 4) -> list[str]:
    return [str(EXE), "generate", "--backend", "fake", "--model", f"delay={delay}", "--no-curate", "--n", str(n),
            "--shard-size", "2", "--domain", "health", "--out", str(out), "--run-id", "same", "--orchestrator", "direct"]


@pytest.mark.slow  # two CLI processes: ~30 s on 2 cores
def test_two_writers_on_one_run_folder(tmp_path: Path):
    out = tmp_path / "out"
    cmd = _generate_cmd(out, 1.0)
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 5], results
    winner = next(p for p, (rc, _, _) in zip(procs, results) if rc == 0)
    _, _, stderr = next(r for r in results if r[0] == 5)
    (line,) = [line for line in stderr.splitlines() if line.strip()]
    assert line.startswith("error: run folder ") and f"is being written by {winner.pid}@{socket.gethostname()}" in line
    root = out / "same"
    manifest = json.loads((root / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["planned"] == 4 and counts["kept"] + counts["rejected"] + counts["deduplicated"] == 4
    assert pq.read_table(root / "scenarios.parquet").num_rows == counts["kept"]
    assert len(list((root / "shards").glob("*.done.json"))) == 2 and not (root / runlock.LOCK_NAME).exists()


@pytest.mark.slow  # two CLI processes, one killed: ~25 s on 2 cores
def test_a_killed_writer_leaves_a_lock_the_next_run_takes_over(tmp_path: Path):
    out = tmp_path / "out"
    cmd = _generate_cmd(out, 0.5, n=2)
    holder = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = out / "same" / runlock.LOCK_NAME
    deadline = time.monotonic() + 120
    while not (lock.is_file() and runlock.owner_of(lock)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runlock.owner_of(lock) == f"{holder.pid}@{socket.gethostname()}"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert lock.is_file()  # left behind, with a dead owner in it
    rerun = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((out / "same" / "manifest.json").read_text())["counts"]["planned"] == 2
    assert not lock.exists()


@pytest.fixture
def held(tmp_path: Path):
    """Hold a lock file from another process (``4242@elsewhere`` written in it) until the test ends."""
    procs = []

    def hold(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        code = (
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, b'4242@elsewhere')\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_curate_mix_and_publish_take_the_lock(tmp_path: Path, held):
    generated = runner.invoke(app, ["generate", "--backend", "fake", "--no-curate", "--n", "2", "--domain", "health",
                                    "--out", str(tmp_path / "out"), "--run-id", "r", "--orchestrator", "direct"])
    assert generated.exit_code == 0, generated.output
    held(runlock.run_lock(tmp_path / "out" / "r"))
    result = runner.invoke(app, ["curate", str(tmp_path / "out" / "r"), "--no-judge", "--orchestrator", "direct"])
    assert result.exit_code == 5 and "is being written by 4242@elsewhere" in error_lines(result.output)[0]
    result = runner.invoke(app, ["generate", "--backend", "fake", "--no-curate", "--n", "2", "--domain", "health",
                                 "--out", str(tmp_path / "out"), "--run-id", "r", "--orchestrator", "direct"])
    assert result.exit_code == 5 and "run folder" in error_lines(result.output)[0]

    run = write_run(tmp_path / "runs", grid(1, domains=["health", "science", "business", "law_ethics"]))

    held(runlock.sibling_lock(tmp_path / "mix"))
    result = runner.invoke(app, ["mix", str(run), "--out", str(tmp_path / "mix"), "--no-spread-check"])
    assert result.exit_code == 5 and "mixture folder" in error_lines(result.output)[0]
    assert not (tmp_path / "mix").exists()

    held(runlock.sibling_lock(tmp_path / "hub"))
    result = runner.invoke(app, ["publish", str(run), "--local", str(tmp_path / "hub")])
    assert result.exit_code == 5 and "publish folder" in error_lines(result.output)[0]
    assert not (tmp_path / "hub").exists()


# -- 7. plan-only ---------------------------------------------------------------------------------------------------


def test_generate_plan_only_writes_nothing(tmp_path: Path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["generate", "--plan-only", "--backend", "fake", "--n", "1000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "plan: 1000 scenarios in 32 shards" in result.output and "nothing written" in result.output
    assert not out.exists()


def test_plan_counts_requests(tmp_path: Path):
    from scenario_forge.config import GenerateConfig
    from scenario_forge.planning import plan_selection

    cfg = GenerateConfig(out=tmp_path / "out", backend=FAKE, n=50, domains=["health"], curate=False)
    p = estimate.estimate_run(cfg)
    turns = p.user_turns
    flawed = int(plan_selection(cfg.selection, 50, cfg.seed).columns["flawed"].sum())  # 2 more rubric slots each
    assert p.plain["brief"].requests == 200 and p.plain["rubric"].requests == 300 + 2 * flawed and p.structured["brief"].requests == 50
    assert p.plain["user_turn"].requests == turns and p.plain["assistant_turn"].requests == turns - 50
    assert p.plain["brief"].completion_tokens == 200 * cfg.sampling.brief.max_tokens
    assert all(e.prompt_tokens > 0 for e in p.plain.values() if e.requests) and sum(p.cells.values()) == 50
    assert not p.curation and not (tmp_path / "out").exists()


def test_plan_requests_match_a_run(tmp_path: Path, fake_backend):
    """On a backend that answers every request well the first time, the run sends exactly the requests
    the plan counted, and uses no more tokens than the plan's upper bounds."""
    from scenario_forge.config import GenerateConfig
    from scenario_forge.generation.run import run_generate_direct

    cfg = GenerateConfig(out=tmp_path / "out", backend=FAKE, n=20, curate=False)
    p = estimate.estimate_run(cfg)
    manifest = run_generate_direct(cfg)
    assert manifest.counts.kept == 20  # nothing was asked twice
    used = manifest.usage
    planned_dialogue = sum(p.plain[k].requests for k in ("operator", "user_turn", "assistant_turn"))
    assert used["brief"]["requests"] == p.plain["brief"].requests
    assert used["dialogue"]["requests"] == planned_dialogue and used["rubric"]["requests"] == p.plain["rubric"].requests
    for stage, kinds in (("brief", ["brief"]), ("dialogue", ["operator", "user_turn", "assistant_turn"]), ("rubric", ["rubric"])):
        assert used[stage]["prompt_tokens"] <= sum(p.plain[k].prompt_tokens for k in kinds)
        assert used[stage]["completion_tokens"] <= sum(p.plain[k].completion_tokens for k in kinds)


def test_mix_plan_only_writes_nothing(tmp_path: Path):
    run = write_run(tmp_path / "runs", grid(1, domains=["health", "science", "business", "law_ethics"]))
    out = tmp_path / "new" / "mix"
    result = runner.invoke(app, ["mix", str(run), "--out", str(out), "--recipe", "no-health-science", "--plan-only",
                                 "--no-spread-check"])
    assert result.exit_code == 0, result.output
    assert "plan: recipe no-health-science" in result.output and "train:" in result.output
    assert not out.exists() and not (tmp_path / "new").exists()
