"""The ``openai`` backend against a fake OpenAI-compatible server: checks, feature detection, retries,
bounded concurrency, whole-backend failures, and a full run where the server answers 500s and garbage."""

from __future__ import annotations

import json
import threading
import time

import polars as pl
import pytest
from openai_fake_server import FakeOpenAIServer, completion, free_port, slow_chat
from typer.testing import CliRunner

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import default_responder
from scenario_forge.backends.openai_compat import OpenAIBackend
from scenario_forge.cli.main import app
from scenario_forge.config import BackendConfig, GenerateConfig, SamplingParams
from scenario_forge.errors import BackendError
from scenario_forge.generation.run import run_generate_direct
from scenario_forge.hashing import sha256_hex
from scenario_forge.records import Message

pytestmark = pytest.mark.timeout(60)


def req(i: int, text: str = "hello", **sampling) -> ChatRequest:
    return ChatRequest(
        id=f"r{i}", messages=[Message(role="user", content=f"{text} {i}")], sampling=SamplingParams(**sampling), seed=i
    )


def backend(server: FakeOpenAIServer, **kw) -> OpenAIBackend:
    kw.setdefault("backoff_s", 0.001)
    return OpenAIBackend(server.url, **kw)


def test_detects_a_vllm_like_server():
    with FakeOpenAIServer(models=[("test-model", "vllm")], structured="json_schema") as server:
        b = backend(server)
        assert b.model == "test-model" and b.supports_json_schema and not b.supports_prefix
        d = b.describe()
        assert d["structured_output"] == "json_schema" and d["repeat_penalty_param"] == "repetition_penalty"
        body = b.request_body(
            ChatRequest(
                id="x", messages=[Message(role="user", content="hi")], seed=7, json_schema={"type": "object"},
                sampling=SamplingParams(temperature=0.3, top_p=0.9, max_tokens=33, repeat_penalty=1.2,
                                        stop=["a", "b", "c", "d", "e"]),
            )
        )
        assert body["model"] == "test-model" and body["messages"] == [{"role": "user", "content": "hi"}]
        assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.3, 0.9, 33, 7)
        assert body["repetition_penalty"] == 1.2 and body["stop"] == ["a", "b", "c", "d"]
        assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}}
        assert "n" not in body
        b.close()


def test_detects_a_llamacpp_like_server():
    """llama-cpp-python: HTTP 500 to json_schema, json_object + schema works, ``repeat_penalty``."""
    with FakeOpenAIServer(models=[("/models/x.gguf", "me")], structured="json_object+schema") as server:
        b = backend(server)
        assert b.supports_json_schema
        assert b.describe()["structured_output"] == "json_object+schema"
        body = b.request_body(ChatRequest(
            id="x", messages=[Message(role="user", content="hi")], json_schema={"type": "object"},
            sampling=SamplingParams(repeat_penalty=1.3),
        ))
        assert body["repeat_penalty"] == 1.3 and "repetition_penalty" not in body
        assert body["response_format"] == {"type": "json_object", "schema": {"type": "object"}}
        b.close()


def test_server_without_enforced_schemas_and_strict_fields():
    """A server that ignores response_format (answers free text) and rejects non-OpenAI fields."""
    with FakeOpenAIServer(structured=None, strict_fields=True) as server:
        b = backend(server)
        assert not b.supports_json_schema
        d = b.describe()
        assert d["structured_output"] is None and d["repeat_penalty_param"] is None and d["seed"] is False
        (g,) = b.generate([req(1, repeat_penalty=1.3)])
        assert g.ok and g.text == "echo: hello 1"
        assert set(server.bodies[-1]) <= {"model", "messages", "max_tokens", "temperature", "top_p", "stop"}
        b.close()
    with FakeOpenAIServer() as server:
        assert not backend(server, structured_output="off").supports_json_schema


def test_base_url_without_v1_is_found():
    with FakeOpenAIServer() as server:
        b = OpenAIBackend(server.url.removesuffix("/v1"))
        assert b.base_url == server.url
        b.close()


def test_unreachable_base_url_is_one_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendError) as err:
        OpenAIBackend(url)
    assert f"cannot reach the OpenAI-compatible server at {url}" in str(err.value)
    assert "\n" not in str(err.value)


def test_wrong_model_lists_the_available_ones():
    with FakeOpenAIServer(models=[("alpha", "vllm"), ("beta", "vllm")]) as server:
        with pytest.raises(BackendError, match=r"model 'gamma' is not served at .*; available: alpha, beta"):
            backend(server, model="gamma")
        with pytest.raises(BackendError, match="serves 2 models; choose one with --model: alpha, beta"):
            backend(server)
        assert backend(server, model="beta").model == "beta"


def test_api_key_checks_and_the_key_is_never_shown(monkeypatch):
    secret = "sk-test-" + "z" * 24
    with FakeOpenAIServer(api_key=secret) as server:
        monkeypatch.delenv("FORGE_TEST_KEY", raising=False)
        with pytest.raises(BackendError, match=r"needs an API key .*\$FORGE_TEST_KEY"):
            backend(server, api_key_env="FORGE_TEST_KEY")
        monkeypatch.setenv("FORGE_TEST_KEY", "sk-wrong")
        with pytest.raises(BackendError, match=r"invalid API key \(from \$FORGE_TEST_KEY\)") as err:
            backend(server, api_key_env="FORGE_TEST_KEY")
        assert "sk-wrong" not in str(err.value)
        monkeypatch.setenv("FORGE_TEST_KEY", secret)
        b = backend(server, api_key_env="FORGE_TEST_KEY")
        assert b.generate([req(1)])[0].ok
        shown = repr(b) + json.dumps(b.describe()) + repr(vars(b))
        assert secret not in shown
        b.close()


def test_retries_with_backoff_then_success_are_counted():
    def flaky(body, attempt):
        if attempt == 0:
            return 429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}
        if attempt == 1:
            return 503, {"error": {"message": "overloaded"}}, {}
        return 200, completion("fine now"), {}

    with FakeOpenAIServer(flaky) as server:
        b = backend(server, max_retries=4)
        out = b.generate([req(i) for i in range(3)])
        assert all(g.ok and g.text == "fine now" and g.retries == 2 for g in out)
        assert [g.completion_tokens for g in out] == [2, 2, 2] and out[0].prompt_tokens == 11
        b.close()


def test_500s_and_garbage_become_failures_with_reasons_after_retries():
    def bad(body, attempt):
        text = body["messages"][-1]["content"]
        if text.endswith("0"):
            return 500, {"error": {"message": "boom"}}, {}
        if text.endswith("1"):
            return 200, b"<html>not json</html>", {}
        if text.endswith("2"):
            return 200, {"choices": []}, {}
        if text.endswith("3"):
            return 400, {"error": {"message": "prompt too long"}}, {}
        if text.endswith("4"):
            return -1, None, {}  # connection dropped mid-answer
        return 200, completion("ok"), {}

    with FakeOpenAIServer(bad) as server:
        b = backend(server, max_retries=2)
        out = b.generate([req(i) for i in range(6)])
        assert [g.request_id for g in out] == [f"r{i}" for i in range(6)]
        assert not out[0].ok and "HTTP 500: boom" in out[0].error and out[0].retries == 2
        assert not out[1].ok and "malformed response" in out[1].error and out[1].retries == 2
        assert not out[2].ok and "malformed response" in out[2].error
        assert not out[3].ok and out[3].error == "HTTP 400: prompt too long" and out[3].retries == 0
        assert not out[4].ok and out[4].retries == 2
        assert out[5].ok and out[5].text == "ok"
        sent = [json.loads(k)["messages"][-1]["content"] for k in server.seen]
        assert server.seen[next(k for k in server.seen if "hello 0" in k)] == 3 and len(sent) == 6
        b.close()


def test_stop_strings_length_and_content_filter():
    def answers(body, attempt):
        text = body["messages"][-1]["content"]
        if text.endswith("0"):
            return 200, completion("first line\n\nsecond", finish="length"), {}
        if text.endswith("1"):
            return 200, completion("cut off", finish="length"), {}
        return 200, completion("", finish="content_filter"), {}

    with FakeOpenAIServer(answers) as server:
        b = backend(server)
        a, c, f = b.generate([req(0, stop=["\n\n"]), req(1), req(2)])
        assert a.text == "first line" and a.finish_reason == "stop"
        assert c.text == "cut off" and c.finish_reason == "length"
        assert not f.ok and "content filter" in f.error
        b.close()


def test_concurrency_is_bounded_across_concurrent_callers():
    with FakeOpenAIServer(slow_chat(0.15)) as server:
        b = backend(server, concurrency=4)
        results: list[list] = []

        def call(k: int) -> None:
            results.append(b.generate([req(100 * k + i) for i in range(6)]))

        start = time.perf_counter()
        threads = [threading.Thread(target=call, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        assert server.peak_in_flight == 4  # in flight together, never more than --concurrency
        assert all(g.ok for batch in results for g in batch) and len(results) == 2
        assert wall < 12 * 0.15  # not one at a time
        b.close()


def test_server_gone_is_a_whole_backend_failure_and_recovery(tmp_path):
    server = FakeOpenAIServer().start()
    b = backend(server, max_retries=2)
    assert b.generate([req(0)])[0].ok
    server.stop()
    with pytest.raises(BackendError, match=r"stopped answering .* finished shards are on disk"):
        b.generate([req(i) for i in range(5)])
    with pytest.raises(BackendError, match="is unreachable"):
        b.generate([req(9)])  # fails at once, without retrying every request
    again = FakeOpenAIServer(port=server.port).start()  # the server is back on the same address
    try:
        assert b.generate([req(10)])[0].ok
    finally:
        b.close()
        again.stop()


def _stage_answer(body, attempt):
    """Plausible answers for the pipeline's prompts, with failures mixed in deterministically.

    A failed item is asked once more with a different prompt (``retry.ask_one``), so it is
    rejected only when both prompts fail: about 1 in 25 items here, a few rejects in a run."""
    text = body["messages"][-1]["content"]
    h = int(sha256_hex(text)[:8], 16)
    if h % 8 == 0:
        return 500, {"error": {"message": "upstream exploded"}}, {}  # every attempt: becomes a reject
    if h % 13 == 0:
        return 200, b"{not json", {}  # garbage, every attempt
    if h % 5 == 0 and attempt == 0:
        return 503, {"error": {"message": "busy"}}, {}  # transient: retried, then fine
    fake = ChatRequest(id="http:step:0", messages=[Message(**m) for m in body["messages"]],
                       sampling=SamplingParams(), seed=h % 100000)
    return 200, completion(default_responder(fake)), {}


def test_full_run_with_500s_and_garbage_rejects_with_reasons_and_loses_nothing(tmp_path, monkeypatch):
    secret = "sk-run-" + "q" * 20
    monkeypatch.setenv("FORGE_RUN_KEY", secret)
    with FakeOpenAIServer(_stage_answer, api_key=secret) as server:
        cfg = GenerateConfig(
            n=8, domains=["health"], out=tmp_path / "out", curate=False, shard_size=3, shard_workers=2,
            backend=BackendConfig(kind="openai", base_url=server.url, concurrency=3, api_key_env="FORGE_RUN_KEY",
                                  structured_output="off"),
        )
        b = OpenAIBackend.from_config(cfg.backend)
        b.backoff_s = 0.001
        with use_backend(cfg.backend, b):
            manifest = run_generate_direct(cfg)
        b.close()
    c = manifest.counts
    assert c.planned == 8 == c.kept + c.rejected + c.deduplicated
    assert c.rejected > 0 and c.kept > 0
    (run,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    rejects = pl.read_parquet(run / "rejects.parquet")
    assert rejects.height == c.rejected and rejects["reason"].null_count() == 0
    reasons = " ".join(rejects["reason"].to_list())
    assert "backend_error" in reasons
    # reasons stay short codes; the server's message is the detail
    errors = rejects.filter(pl.col("reason").str.ends_with("backend_error"))
    assert errors.height > 0 and all(d.strip() for d in errors["detail"].to_list())
    usage = manifest.usage
    assert sum(u["retries"] for u in usage.values()) > 0 and sum(u["failures"] for u in usage.values()) > 0
    assert all(u["completion_tokens"] > 0 and u["requests"] > 0 for u in usage.values())
    # The key never lands in anything written.
    for path in run.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_cli_bad_inputs_are_one_line_each(tmp_path, monkeypatch):
    runner = CliRunner()
    out = tmp_path / "out"

    def run(*args):
        result = runner.invoke(app, ["generate", "--out", str(out), "--n", "2", "--no-curate", "--orchestrator", "direct", *args])
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert result.exit_code != 0 and len(errors) == 1, result.output
        return errors[0]

    dead = f"http://127.0.0.1:{free_port()}/v1"
    assert f"cannot reach the OpenAI-compatible server at {dead}" in run("--backend", "openai", "--base-url", dead)
    with FakeOpenAIServer(api_key="sk-right") as server:
        monkeypatch.setenv("FORGE_CLI_KEY", "sk-right")
        line = run("--backend", "openai", "--base-url", server.url, "--api-key-env", "FORGE_CLI_KEY", "--model", "nope")
        assert "model 'nope' is not served" in line and "available: test-model" in line
        monkeypatch.setenv("FORGE_CLI_KEY", "sk-wrong")
        line = run("--backend", "openai", "--base-url", server.url, "--api-key-env", "FORGE_CLI_KEY")
        assert "invalid API key (from $FORGE_CLI_KEY)" in line and "sk-wrong" not in line
    assert not out.exists() or not any(out.iterdir())  # nothing started, nothing half-written


# -- several servers (--base-url given more than once) -------------------------------------------


def _chat_bodies(server: FakeOpenAIServer) -> list[dict]:
    return [b for b in server.bodies if b.get("max_tokens", 0) > 48]  # not the construction probes


def test_several_servers_share_a_batch_least_loaded_and_bounded_per_server():
    servers = [FakeOpenAIServer(slow_chat(0.1)).start() for _ in range(3)]
    try:
        b = OpenAIBackend([s.url for s in servers], concurrency=2, backoff_s=0.001)
        assert b.servers == 3 and b.describe()["base_urls"] == [s.url for s in servers]
        out = b.generate([req(i, max_tokens=64) for i in range(12)])
        assert [g.request_id for g in out] == [f"r{i}" for i in range(12)] and all(g.ok for g in out)
        per_server = [len(_chat_bodies(s)) for s in servers]
        assert sum(per_server) == 12 and min(per_server) >= 3  # equal servers: (about) an even split
        # --concurrency is per server, and every server had its 2 in flight at once (6 together)
        assert [s.peak_in_flight for s in servers] == [2, 2, 2]
        b.close()
    finally:
        for s in servers:
            s.stop()


def test_a_slow_server_gets_fewer_requests():
    fast, slow = FakeOpenAIServer(slow_chat(0.01)).start(), FakeOpenAIServer(slow_chat(1.5)).start()
    try:
        b = OpenAIBackend([fast.url, slow.url], concurrency=2, backoff_s=0.001)
        assert all(g.ok for g in b.generate([req(i, max_tokens=64) for i in range(24)]))
        # a request takes a server when one has a free slot: the slow one's 2 slots stay busy
        assert len(_chat_bodies(fast)) > 3 * len(_chat_bodies(slow)) > 0
        b.close()
    finally:
        fast.stop()
        slow.stop()


def test_a_server_that_goes_away_leaves_its_requests_to_the_others():
    a, gone = FakeOpenAIServer().start(), FakeOpenAIServer().start()
    b = OpenAIBackend([a.url, gone.url], concurrency=2, max_retries=1, backoff_s=0.001)
    gone.stop()
    try:
        out = b.generate([req(i, max_tokens=64) for i in range(8)])
        assert all(g.ok for g in out) and all(g.retries == 0 for g in out)
        assert len(_chat_bodies(a)) == 8
        a.stop()  # none left: the usual whole-backend failure
        with pytest.raises(BackendError, match="stopped answering"):
            b.generate([req(i, max_tokens=64) for i in range(3)])
    finally:
        b.close()
        a.stop()


def test_servers_of_different_models_are_one_clear_error():
    with FakeOpenAIServer() as a, FakeOpenAIServer(models=[("other-model", "vllm")]) as b:
        with pytest.raises(BackendError, match=r"model 'test-model' is not served at .*available: other-model"):
            OpenAIBackend([a.url, b.url])
        from scenario_forge.backends.factory import backend_identity

        cfg = BackendConfig(kind="openai", base_url=[a.url, b.url])
        with pytest.raises(BackendError, match="serve different models"):
            backend_identity(cfg)


def test_base_url_given_once_or_several_times():
    one = BackendConfig(kind="openai", base_url=["http://h:1/v1"], model="m")
    assert one == BackendConfig(kind="openai", base_url="http://h:1/v1", model="m")  # the one-URL config is unchanged
    assert one.base_urls == [] and one.servers == ["http://h:1/v1"]
    two = BackendConfig(kind="openai", base_url=["http://h:1/v1", "http://h:2/v1"], model="m")
    assert two.base_url == "http://h:1/v1" and two.servers == ["http://h:1/v1", "http://h:2/v1"]
    from scenario_forge.backends.factory import backend_identity

    assert backend_identity(one) == backend_identity(two) == "openai:m"  # the servers are not the run's identity
    with pytest.raises(ValueError, match="given twice"):
        BackendConfig(kind="openai", base_url=["http://h:1/v1", "http://h:1/v1"])
    with pytest.raises(ValueError, match="for the openai backend"):
        BackendConfig(kind="fake", base_url=["http://h:1/v1", "http://h:2/v1"])
