"""The vllm backend without vLLM: argument mapping against a stand-in ``vllm`` module, merging of
concurrent callers, isolation of a request vLLM rejects, and the missing-extra error."""

from __future__ import annotations

import sys
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import make_backend
from scenario_forge.cli.main import app
from scenario_forge.config import BackendConfig, SamplingParams
from scenario_forge.errors import MissingExtraError
from scenario_forge.records import Message

pytestmark = pytest.mark.timeout(60)


@dataclass
class FakeCompletion:
    text: str
    token_ids: list[int]
    finish_reason: str | None


@dataclass
class FakeRequestOutput:
    prompt_token_ids: list[int]
    outputs: list[FakeCompletion]


@dataclass
class FakeLLM:
    """Records how it was built and every ``chat`` call; answers from the conversation."""

    model: str
    kwargs: dict
    calls: list[dict] = field(default_factory=list)
    delay_s: float = 0.0

    def chat(self, messages, sampling_params=None, use_tqdm=True, add_generation_prompt=True,
             continue_final_message=False, **kw):
        assert isinstance(messages[0], list), "a list of conversations"
        assert isinstance(sampling_params, list) and len(sampling_params) == len(messages)
        assert not (add_generation_prompt and continue_final_message)
        self.calls.append({"messages": messages, "params": sampling_params, "use_tqdm": use_tqdm,
                           "add_generation_prompt": add_generation_prompt,
                           "continue_final_message": continue_final_message})
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for conv, params in zip(messages, sampling_params):
            last = conv[-1]["content"]
            if "TOO LONG" in last:
                raise ValueError("The decoder prompt (length 9999) is longer than the maximum model length of 2048")
            finish = "abort" if "ABORT" in last else ("length" if params.kwargs["max_tokens"] < 5 else "stop")
            out.append(FakeRequestOutput(list(range(len(last.split()))),
                                         [FakeCompletion(f"reply to {last}", [1, 2, 3], finish)]))
        return out


@pytest.fixture
def fake_vllm(monkeypatch):
    """A stand-in ``vllm`` package with ``LLM``, ``SamplingParams`` and ``StructuredOutputsParams``."""
    vllm = types.ModuleType("vllm")
    sampling = types.ModuleType("vllm.sampling_params")

    class SamplingParamsStub:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class StructuredOutputsParamsStub:
        def __init__(self, json=None, **kwargs):
            self.json = json
            self.kwargs = kwargs

    built: list[FakeLLM] = []

    def llm_factory(model, **kwargs):
        llm = FakeLLM(model, kwargs)
        built.append(llm)
        return llm

    vllm.LLM = llm_factory
    vllm.SamplingParams = SamplingParamsStub
    sampling.SamplingParams = SamplingParamsStub
    sampling.StructuredOutputsParams = StructuredOutputsParamsStub
    vllm.sampling_params = sampling
    vllm.built = built
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)
    return vllm


def req(i: int, text: str = "hi", prefix: str | None = None, schema=None, **sampling) -> ChatRequest:
    return ChatRequest(id=f"r{i}", messages=[Message(role="system", content="sys"), Message(role="user", content=f"{text} {i}")],
                       sampling=SamplingParams(**sampling), seed=100 + i, prefix=prefix, json_schema=schema)


def test_config_maps_to_the_engine_and_sampling_params(fake_vllm):
    b = make_backend(BackendConfig(kind="vllm", model="Qwen/Qwen2.5-7B-Instruct", max_model_len=4096))
    (llm,) = fake_vllm.built
    assert llm.model == "Qwen/Qwen2.5-7B-Instruct" and llm.kwargs == {"max_model_len": 4096}
    assert b.supports_json_schema and b.supports_prefix and b.model_id == "Qwen/Qwen2.5-7B-Instruct"
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    out = b.generate([
        req(0, temperature=0.3, top_p=0.8, max_tokens=50, repeat_penalty=1.2, stop=["\n\n"]),
        req(1, schema=schema),
    ])
    (call,) = llm.calls
    assert call["use_tqdm"] is False and call["add_generation_prompt"] and not call["continue_final_message"]
    assert call["messages"][0] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi 0"}]
    p0, p1 = (p.kwargs for p in call["params"])
    assert p0 == {"temperature": 0.3, "top_p": 0.8, "max_tokens": 50, "repetition_penalty": 1.2,
                  "stop": ["\n\n"], "seed": 100}
    assert "structured_outputs" not in p0 and p1["stop"] is None
    assert p1["structured_outputs"].json == schema
    assert [g.text for g in out] == ["reply to hi 0", "reply to hi 1"]
    assert out[0].prompt_tokens == 2 and out[0].completion_tokens == 3 and out[0].finish_reason == "stop"


def test_prefixed_requests_continue_the_final_message_in_their_own_call(fake_vllm):
    b = make_backend(BackendConfig(kind="vllm", model="m"))
    out = b.generate([req(0), req(1, prefix="The user is"), req(2)])
    llm = fake_vllm.built[0]
    plain, cont = llm.calls
    assert len(plain["messages"]) == 2 and plain["add_generation_prompt"] and not plain["continue_final_message"]
    assert cont["continue_final_message"] and not cont["add_generation_prompt"]
    assert cont["messages"][0][-1] == {"role": "assistant", "content": "The user is"}
    assert [g.request_id for g in out] == ["r0", "r1", "r2"]


def test_a_request_vllm_rejects_fails_alone_and_finish_reasons_map(fake_vllm):
    b = make_backend(BackendConfig(kind="vllm", model="m"))
    out = b.generate([req(0), req(1, text="TOO LONG"), req(2, text="ABORT"), req(3, max_tokens=3)])
    assert out[0].ok and out[3].ok and out[3].finish_reason == "length"
    assert not out[1].ok and "longer than the maximum model length" in out[1].error
    assert not out[2].ok and "abort" in out[2].error


def test_concurrent_callers_are_merged_into_one_engine_call(fake_vllm):
    b = make_backend(BackendConfig(kind="vllm", model="m"))
    llm = fake_vllm.built[0]
    llm.delay_s = 0.3
    results = {}

    def call(k):
        results[k] = b.generate([req(10 * k + i) for i in range(3)])

    first = threading.Thread(target=call, args=(0,))
    first.start()
    time.sleep(0.1)  # the engine is busy with caller 0 when callers 1 and 2 arrive
    others = [threading.Thread(target=call, args=(k,)) for k in (1, 2)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join()
    assert [len(c["messages"]) for c in llm.calls] == [3, 6]  # callers 1 and 2 shared one call
    for k in range(3):
        assert [g.request_id for g in results[k]] == [f"r{10 * k + i}" for i in range(3)]
        assert all(g.text == f"reply to hi {10 * k + i}" for i, g in enumerate(results[k]))


def test_structured_output_off_sends_no_schema(fake_vllm):
    b = make_backend(BackendConfig(kind="vllm", model="m", structured_output="off"))
    assert not b.supports_json_schema


def test_without_vllm_the_error_names_the_extra(monkeypatch, tmp_path: Path):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError, installed or not
    with pytest.raises(MissingExtraError, match=r"scenario-forge\[gpu\]"):
        make_backend(BackendConfig(kind="vllm", model="meta-llama/Llama-3.1-8B-Instruct"))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["generate", "--backend", "vllm", "--model", "meta-llama/Llama-3.1-8B-Instruct",
                                      "--out", str(out), "--n", "2", "--orchestrator", "direct"])
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert result.exit_code != 0 and len(errors) == 1, result.output
    assert "the vllm backend needs the 'vllm' package" in errors[0] and "scenario-forge[gpu]" in errors[0]
    assert not out.exists() or not any(out.iterdir())


def test_max_model_len_is_vllms_own_and_not_llamacpps_per_sequence_context(fake_vllm):
    make_backend(BackendConfig(kind="vllm", model="m", n_ctx=4096))
    (llm,) = fake_vllm.built
    assert llm.kwargs == {}, "n_ctx is llama.cpp's per-sequence context: vLLM keeps the model's own length"


def test_engine_kwargs_reach_the_engine_as_given(fake_vllm):
    cfg = BackendConfig(kind="vllm", model="m", max_model_len=8192,
                        engine_kwargs={"tensor_parallel_size": 2, "gpu_memory_utilization": 0.85})
    make_backend(cfg)
    (llm,) = fake_vllm.built
    assert llm.model == "m"
    assert llm.kwargs == {"max_model_len": 8192, "tensor_parallel_size": 2, "gpu_memory_utilization": 0.85}


def test_engine_kwargs_from_the_command_line_and_yaml(fake_vllm, tmp_path: Path):
    from scenario_forge.cli._common import build_config
    from scenario_forge.config import GenerateConfig

    flags = {"backend.engine_kwargs": "--engine-kwargs", "backend.max_model_len": "--max-model-len"}
    cfg = build_config(GenerateConfig, None, {"backend.kind": "vllm", "backend.model": "m",
                                              "backend.engine_kwargs": '{"tensor_parallel_size": 4}',
                                              "backend.max_model_len": 16384}, flags)
    assert cfg.backend.engine_kwargs == {"tensor_parallel_size": 4} and cfg.backend.max_model_len == 16384
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("backend:\n  kind: vllm\n  model: m\n  engine_kwargs:\n    enforce_eager: true\n")
    assert build_config(GenerateConfig, yaml_file, {}).backend.engine_kwargs == {"enforce_eager": True}


@pytest.mark.parametrize("value, message", [
    ('[1, 2]', "--engine-kwargs: must be a JSON object"),
    ('{"tensor_parallel_size": ', "--engine-kwargs: not valid JSON"),
    ('{"max_model_len": 4096}', "may not set 'max_model_len': use --max-model-len"),
    ('{"structured_output": "off"}', "may not set 'structured_output': use --structured-output"),
    ('{"llm": null}', "may not set 'llm'"),
    ('{"hf_token": "hf_abcdefghijklmnopqrstuvwxyz012345"}', "may not hold credentials (hf_token)"),
])
def test_bad_engine_kwargs_are_one_line_before_any_engine(fake_vllm, tmp_path: Path, value, message):
    result = CliRunner().invoke(app, ["generate", "--backend", "vllm", "--model", "m", "--engine-kwargs", value,
                                      "--n", "2", "--out", str(tmp_path / "runs")])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert fake_vllm.built == [] and not (tmp_path / "runs").exists()


def test_engine_settings_are_part_of_the_run_identity():
    from scenario_forge.backends.factory import backend_identity

    plain = BackendConfig(kind="vllm", model="m")
    assert backend_identity(plain) == "vllm:m"  # unchanged for runs without engine settings
    quantized = BackendConfig(kind="vllm", model="m", engine_kwargs={"quantization": "awq"})
    longer = BackendConfig(kind="vllm", model="m", max_model_len=8192)
    assert len({backend_identity(plain), backend_identity(quantized), backend_identity(longer)}) == 3
