"""The simulated OpenAI-compatible server (scenario_forge.simulate) and the fleet/floor benchmarks' quick modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from helpers import REPO

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.openai_compat import OpenAIBackend
from scenario_forge.config import SamplingParams
from scenario_forge.records import Message
from scenario_forge.simulate.curve import CurveError, ThroughputCurve, load_curve, shipped_curves
from scenario_forge.simulate.server import SimServer


def _curve(points: list[tuple[int, float]]) -> ThroughputCurve:
    return ThroughputCurve(name="t", model="sim-model", source="a test", points=points)


def test_shipped_curves_load_and_say_where_they_come_from():
    names = shipped_curves()
    assert {"vllm-h100-smollm2-135m", "vllm-h100-qwen3-8b"} <= set(names)
    small, big = load_curve("vllm-h100-smollm2-135m"), load_curve("vllm-h100-qwen3-8b")
    assert small.rate(256) == 28000 and big.rate(256) == 6300  # the full-batch figures
    assert "not a measurement" in small.source and "not a measurement" in big.source
    for c in (small, big):  # more sequences never lower the total rate
        rates = [c.rate(n) for n in range(1, 300)]
        assert rates == sorted(rates)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "not a JSON curve file"),
        (json.dumps({"name": "x", "model": "m", "source": "s", "points": []}), "invalid curve at points"),
        (json.dumps({"name": "x", "model": "m", "source": "s", "points": [[1, 10], [1, 20]]}), "increase strictly"),
        (json.dumps({"name": "x", "model": "m", "source": "s", "points": [[1, 10], [4, -2]]}), "positive"),
        (json.dumps({"name": "x", "model": "m", "source": "s", "points": [[2, 10]]}), "start at 1"),
        (json.dumps({"name": "x", "model": "m", "points": [[1, 10]]}), "invalid curve at source"),
    ],
)
def test_malformed_curve_is_one_line(tmp_path: Path, text: str, needle: str):
    path = tmp_path / "curve.json"
    path.write_text(text)
    with pytest.raises(CurveError) as err:
        load_curve(path)
    assert needle in str(err.value) and "\n" not in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--concurrency", "0"], "--concurrency must be at least 1"), (["--curve", "BAD"], "curve file not found: BAD")],
)
def test_cli_bad_input_one_line_nonzero(args: list[str], needle: str, tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "scenario_forge.simulate", "--port", "0", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr


def test_cli_malformed_curve_file(tmp_path: Path):
    bad = tmp_path / "c.json"
    bad.write_text('{"name": "x", "model": "m", "source": "s", "points": [[1, "fast"]]}')
    proc = subprocess.run([sys.executable, "-m", "scenario_forge.simulate", "--port", "0", "--curve", str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "invalid curve at points" in proc.stderr


def test_latency_follows_the_curve_and_the_cap():
    # 2 in flight decode 2000 tok/s together (1000 each): 4 replies of 100 tokens at a cap of 2 take
    # two rounds of 0.1 s; one reply alone (1000 tok/s at 1) takes 0.1 s too
    with SimServer(_curve([(1, 1000.0), (2, 2000.0)]), concurrency=2, reply_tokens=100) as server:
        body = {"model": "sim-model", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 500}
        results: list[dict[str, object]] = []

        def post() -> None:
            results.append(httpx.post(f"{server.url}/chat/completions", json=body, timeout=30).json())

        start = time.perf_counter()
        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        stats = httpx.get(server.url.removesuffix("/v1") + "/stats").json()
    assert wall >= 0.19  # two rounds of 0.1 s can never be faster (the upper bound depends on load)
    assert stats["requests"] == 4 and stats["completion_tokens"] == 400
    assert stats["peak_in_flight"] == 2 and stats["peak_queued"] >= 1
    assert stats["busy_s"] >= 0.19
    usage = results[0]["usage"]
    assert isinstance(usage, dict) and usage["completion_tokens"] == 100 and usage["prompt_tokens"] == len("hello there") // 4


def test_max_tokens_caps_the_reply_and_bad_requests_are_400():
    with SimServer(_curve([(1, 50_000.0)]), concurrency=1, reply_tokens=100) as server:
        r = httpx.post(f"{server.url}/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 7})
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 7
        assert httpx.post(f"{server.url}/chat/completions", content=b"{nope").status_code == 400
        assert httpx.post(f"{server.url}/chat/completions", json={"messages": []}).status_code == 400
        assert httpx.get(server.url.removesuffix("/v1") + "/nowhere").status_code == 404


def test_openai_backend_talks_to_the_simulated_server():
    with SimServer(_curve([(1, 20_000.0), (8, 80_000.0)]), concurrency=8, reply_tokens=40) as server:
        backend = OpenAIBackend(server.url, concurrency=8)
        try:
            assert backend.model == "sim-model"
            assert backend.features.structured == "json_schema"  # the probe is answered as an enforcing server
            reqs = [ChatRequest(id=f"r:{i}:0", messages=[Message(role="user", content=f"question {i}")],
                                sampling=SamplingParams(max_tokens=64)) for i in range(12)]
            gens = backend.generate(reqs)
        finally:
            backend.close()
    assert all(g.text and g.completion_tokens == 40 for g in gens)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bench_floor_quick_prints_a_finite_ratio():
    # the embedded model: generate N=1, then raw llama.cpp prefill/decode at the pipeline's batch size
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_floor.py"), "--quick"],
                          capture_output=True, text=True, timeout=580, cwd=REPO, check=False,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ratio = float(proc.stdout.split("pipeline wall / floor = ", 1)[1].split("= ", 1)[1].split("x", 1)[0])
    assert ratio > 0
    assert "decode" in proc.stdout and "prefill" in proc.stdout
    # issue 18 item 2: the decode batch's mean occupancy (active sequences / slots) is printed
    occupancy = float(proc.stdout.split("decode-batch occupancy", 1)[1].split("mean ", 1)[1].split("%", 1)[0])
    assert 0 < occupancy <= 100


def test_decode_batch_occupancy_is_counted_per_step():
    """Issue 18 item 2: the scheduler counts active sequences per decode step; 4 equal jobs on 4
    slots keep the batch full until they finish together, 1 job on 4 slots fills a quarter."""
    from test_llama_scheduler import FakeEngine, prompts, run

    from scenario_forge.backends.llama_scheduler import DecodeScheduler, occupancy

    full = DecodeScheduler(FakeEngine(), 4, prefix_sharing=False)
    run(full, prompts(1), max_tokens=8)  # 4 prompts
    lone = DecodeScheduler(FakeEngine(), 4, prefix_sharing=False)
    run(lone, prompts(2)[:1], max_tokens=8)
    for s in (full, lone):
        s.close()
    assert full.stats.active_sum <= 4 * full.stats.decode_calls and full.stats.active_s > 0
    busy, quarter = occupancy(full.stats, 4), occupancy(lone.stats, 4)
    assert quarter["per_step"] == 0.25 and 0.5 < busy["per_step"] <= 1.0
    idle = occupancy(full.stats, 4, wall_s=10 * full.stats.decode_s)["wall"]
    assert 0 < idle < busy["decode_time"]  # time without decode steps counts as empty
