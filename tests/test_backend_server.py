"""The ``openai`` backend against a real llama.cpp server (``python -m llama_cpp.server``, the embedded
GGUF) that the tests start on 127.0.0.1 and stop: feature detection, a full ``generate`` run with
concurrency > 1, and a server killed mid-run (clear failure, finished shards kept, resumed rerun)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from openai_fake_server import free_port
from typer.testing import CliRunner

from scenario_forge import progress
from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.embedded import embedded_model_path
from scenario_forge.backends.factory import close_backends, use_backend
from scenario_forge.backends.openai_compat import OpenAIBackend
from scenario_forge.cli.main import app
from scenario_forge.config import BackendConfig, GenerateConfig, SamplingParams, StageSampling
from scenario_forge.errors import BackendError
from scenario_forge.generation.run import run_generate_direct
from scenario_forge.records import Message

pytest.importorskip("llama_cpp.server.app", reason="needs the [server] extra")
pytestmark = [pytest.mark.slow]


SHORT = StageSampling().model_copy(
    update={name: params.model_copy(update={"max_tokens": 32}) for name, params in StageSampling()}
)


class LlamaServer:
    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path()), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", "2048"]
        env = {**os.environ}
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see backends/llamacpp.py: shared cores
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("llama.cpp server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    s = LlamaServer(free_port(), tmp_path / "server.log").start()
    yield s
    s.kill()


@pytest.mark.timeout(120)
def test_detects_what_the_llamacpp_server_supports(server):
    b = OpenAIBackend(server.url, concurrency=2)
    d = b.describe()
    # llama-cpp-python: 500 on json_schema, json_object + schema enforced; owned_by "me" -> repeat_penalty
    assert d["structured_output"] == "json_object+schema" and b.supports_json_schema
    assert d["repeat_penalty_param"] == "repeat_penalty" and d["model"] == str(embedded_model_path())
    schema = {"type": "object", "properties": {"color": {"type": "string", "enum": ["red", "blue"]}}, "required": ["color"]}
    plain, structured = b.generate([
        ChatRequest(id="p", messages=[Message(role="user", content="Say hello.")], sampling=SamplingParams(max_tokens=12)),
        ChatRequest(id="s", messages=[Message(role="user", content="Pick a color, as JSON.")],
                    sampling=SamplingParams(max_tokens=24, temperature=0.0), json_schema=schema),
    ])
    assert plain.ok and plain.completion_tokens > 0 and plain.prompt_tokens > 5
    assert structured.ok and json.loads(structured.text)["color"] in ("red", "blue")
    b.close()


@pytest.mark.timeout(240)
def test_full_generate_run_through_the_server_with_concurrency(server, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "generate", "--backend", "openai", "--base-url", server.url, "--concurrency", "3", "--structured-output", "off",
        "--domain", "health", "--n", "2", "--no-curate", "--orchestrator", "direct", "--out", str(out),
    ])
    close_backends()
    assert result.exit_code == 0, result.output
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    manifest = json.loads((run / "manifest.json").read_text())
    c = manifest["counts"]
    assert c["planned"] == 2 == c["kept"] + c["rejected"] + c["deduplicated"]
    # a run that keeps nothing is not a pass (2 planned: the 135M model fails lint on some scenarios)
    assert c["kept"] >= 1, c
    assert manifest["provenance"]["backend"] == "openai"
    assert manifest["provenance"]["model"] == f"openai:{embedded_model_path()}"
    assert manifest["usage"]["brief"]["completion_tokens"] > 0 and manifest["usage"]["brief"]["requests"] >= 4
    assert manifest["config"]["backend"]["concurrency"] == 3


@pytest.mark.timeout(300)
def test_server_killed_mid_run_fails_clearly_and_a_rerun_resumes(server, tmp_path):
    cfg = GenerateConfig(
        domains=["health"], n=2, shard_size=1, shard_workers=1, out=tmp_path / "out", curate=False,
        backend=BackendConfig(kind="openai", base_url=server.url, concurrency=2, max_retries=2, structured_output="off"),
        sampling=SHORT,  # resume plumbing, not text quality: short answers keep the test quick
    )

    def kill_after_first_shard(event, data):
        if event == "shard_done" and not data["summary"].resumed:
            server.kill()

    stop = progress.listen(kill_after_first_shard)
    backend = OpenAIBackend.from_config(cfg.backend)
    try:
        with use_backend(cfg.backend, backend), pytest.raises(BackendError) as err:
            run_generate_direct(cfg)
    finally:
        stop()
        backend.close()
    message = str(err.value)
    assert "stopped answering" in message and server.url.removesuffix("/v1") in message and "\n" not in message
    (run,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    done = sorted(p.name for p in (run / "shards").glob("*.done.json"))
    assert len(done) == 1 and not (run / "manifest.json").exists()
    first = (run / "shards" / done[0].replace(".done.json", ".scenarios.parquet")).read_bytes()

    server.start()  # back on the same address
    again = OpenAIBackend.from_config(cfg.backend)
    try:
        with use_backend(cfg.backend, again):
            manifest = run_generate_direct(cfg)
    finally:
        again.close()
    assert manifest.timings["shards_resumed"] == 1 and manifest.counts.planned == 2
    assert manifest.counts.kept + manifest.counts.rejected == 2
    assert again.calls > 0 and len(list((run / "shards").glob("*.done.json"))) == 2
    assert (run / "shards" / done[0].replace(".done.json", ".scenarios.parquet")).read_bytes() == first  # not redone
