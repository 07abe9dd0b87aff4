"""The transformers backend on a tiny random Llama built here (no download, ~1 s to load): left
padding, stop strings, finish reasons, prefixes, token counts, order, and its errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import backend_identity, make_backend
from scenario_forge.backends.transformers_backend import TransformersBackend, resolve_model
from scenario_forge.config import BackendConfig, SamplingParams
from scenario_forge.errors import BackendError, MissingExtraError
from scenario_forge.records import Message

pytestmark = pytest.mark.timeout(180)
WORDS = ["<pad>", "<|im_start|>", "<|im_end|>", "<unk>", "user", "assistant", "system"] + [f"w{i}" for i in range(120)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   eos_token="<|im_end|>", bos_token="<|im_start|>")
    fast.chat_template = (
        "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
        "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
    )
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      eos_token_id=vocab["<|im_end|>"], pad_token_id=0, bos_token_id=1)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def req(i: int, words: int, **sampling) -> ChatRequest:
    text = " ".join(f"w{(i * 7 + k) % 120}" for k in range(words))
    sampling.setdefault("temperature", 0.0)
    sampling.setdefault("repeat_penalty", 1.0)
    return ChatRequest(id=f"r{i}", messages=[Message(role="user", content=text)], sampling=SamplingParams(**sampling), seed=i)


def test_batched_left_padded_generation_matches_one_at_a_time(tiny_model):
    b = TransformersBackend(str(tiny_model), batch_size=8)
    reqs = [req(0, 3, max_tokens=6), req(1, 20, max_tokens=6), req(2, 9, max_tokens=6)]
    together = b.generate(reqs)
    alone = [b.generate([r])[0] for r in reqs]
    assert [g.request_id for g in together] == ["r0", "r1", "r2"]
    assert [g.text for g in together] == [g.text for g in alone]  # padding does not leak into the text
    for r, g in zip(reqs, together):
        assert g.prompt_tokens == len(b.tokenizer(b.prompt_text(r), add_special_tokens=False).input_ids)
        assert g.completion_tokens <= 6 and g.finish_reason in ("stop", "length")
        if g.finish_reason == "length":
            assert g.completion_tokens == 6
    assert b.describe() == {"backend": "transformers", "model": str(tiny_model), "batch_size": 8}


def test_stop_strings_prefix_and_sampling_groups(tiny_model):
    b = TransformersBackend(str(tiny_model), batch_size=2)
    (free,) = b.generate([req(3, 5, max_tokens=8)])
    words = free.text.split()
    assert len(words) >= 3, free
    (cut,) = b.generate([req(3, 5, max_tokens=8, stop=[words[2]])])
    assert cut.finish_reason == "stop", cut
    assert words[2] not in cut.text and cut.text.split() == words[:2]
    prefixed = ChatRequest(**{**req(4, 5, max_tokens=4).model_dump(), "id": "p4", "prefix": "w1 w2"})
    plain, with_prefix = b.generate([req(4, 5, max_tokens=4), prefixed])
    assert with_prefix.prompt_tokens == plain.prompt_tokens + 2
    # Mixed sampling parameters go out in separate generate() calls, results in request order.
    mixed = [req(i, 4, max_tokens=3 + i % 2, temperature=0.7 * (i % 2)) for i in range(5)]
    out = b.generate(mixed)
    assert [g.request_id for g in out] == [r.id for r in mixed]
    assert all(g.completion_tokens <= 4 for g in out)


def test_factory_identity_and_errors(tiny_model, monkeypatch, tmp_path):
    cfg = BackendConfig(kind="transformers", model=str(tiny_model), parallel_sequences=4)
    ident = backend_identity(cfg)
    assert ident.startswith(f"transformers:{tiny_model.name}@") and ident == backend_identity(cfg)
    assert make_backend(cfg).batch_size == 4
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(str(gguf)) == (str(tmp_path), "m.gguf")
    with pytest.raises(BackendError, match="model file not found"):
        resolve_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(BackendError, match="transformers could not load"):
        TransformersBackend(str(tmp_path / "empty-folder-that-does-not-exist"))
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingExtraError, match=r"scenario-forge\[train\]"):
        TransformersBackend(str(tiny_model))
