"""The policy a trainer starts from: ``embedded``, a GGUF file, or a Hugging Face model folder.

TRL trains a ``transformers`` causal LM. The embedded SmolLM2-135M-Instruct ships only as a Q4_1
GGUF; ``transformers`` + ``gguf`` dequantize it to fp32 on load, but the loaded model is flagged as
quantized and the Trainer refuses to train it. So we dequantize once, clear the quantization flags,
save an fp32 safetensors folder (~520 MB) under the project cache, and train from that folder. The
folder name carries the GGUF's content digest, so a changed file converts again.

A path that is not a causal LM fails here, before anything heavy starts, with one line.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..backends.embedded import EMBEDDED_NAME, cache_dir, embedded_model_path
from ..hashing import file_digest
from ..errors import ConfigError
from ._extra import require

_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_DONE = "scenario-forge-dequantized.json"


def resolve_policy(spec: str | Path) -> Path:
    """A trainable model folder for ``spec``, a model spec (docs/models.md) naming the embedded
    model, a ``.gguf`` file or a Hugging Face model folder."""
    from ..modelspec import parse_model_spec

    kind, model = parse_model_spec(str(spec), role="policy")
    if kind == "embedded":
        return dequantized_folder(embedded_model_path(), name=EMBEDDED_NAME)
    path = Path(model or "").expanduser()
    if kind == "llamacpp" and path.is_file():
        return dequantized_folder(path, name=path.stem)
    if kind == "transformers" and path.is_dir():
        check_causal_lm(path)
        return path
    raise ConfigError(f"policy {spec}: give 'embedded', a .gguf file or a Hugging Face model folder (a {kind} model is not trainable here)")


def check_causal_lm(folder: Path) -> str:
    """The folder's model type if it holds a causal LM with weights; a one-line error otherwise."""
    transformers = require("transformers", "training a policy")
    if not (folder / "config.json").is_file():
        raise ConfigError(f"policy {folder} is not a Hugging Face model folder (no config.json)")
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - reported in one line
        raise ConfigError(f"policy {folder}: unreadable config.json ({type(exc).__name__}: {exc})") from None
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    causal_classes = {c for v in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values() for c in ((v,) if isinstance(v, str) else v)}
    architectures = list(getattr(config, "architectures", None) or [])
    not_causal = (
        model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        or getattr(config, "is_encoder_decoder", False)
        # encoders (BERT, RoBERTa...) have a causal head only when configured as decoders
        or (model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False))
        or (architectures and not any(a in causal_classes or a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures))
    )
    if not_causal:
        what = architectures[0] if architectures else f"{model_type or 'unknown'} model"
        raise ConfigError(
            f"policy {folder} is a {what}, not a causal language model (GRPO needs e.g. a Llama, Qwen or SmolLM checkpoint)"
        )
    if not any((folder / w).is_file() for w in _WEIGHTS):
        raise ConfigError(f"policy {folder} has a config but no weights (model.safetensors or pytorch_model.bin)")
    if not any((folder / t).is_file() for t in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise ConfigError(f"policy {folder} has no tokenizer files")
    return str(model_type)


def dequantized_folder(gguf: Path, name: str | None = None) -> Path:
    """``gguf`` as an fp32 safetensors folder the Trainer accepts; converted once and cached.

    Concurrent first calls each convert into their own temporary folder; the first to finish wins
    the rename and the others discard their copy.
    """
    target = cache_dir() / "models" / f"{name or gguf.stem}.{file_digest(gguf)}.hf-fp32"
    if (target / _DONE).is_file():
        return target
    transformers = require("transformers", "dequantizing a GGUF policy")
    require("gguf", "dequantizing a GGUF policy")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        kwargs = {"gguf_file": gguf.name, "local_files_only": True}
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), **kwargs)
        model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), dtype="float32", **kwargs)
        # The GGUF loader marks the model quantized; it is plain fp32 now, and the Trainer refuses
        # quantized models without adapters. Clear every trace before saving.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(str(tmp))
        (tmp / _DONE).write_text(
            json.dumps({"source": str(gguf), "digest": file_digest(gguf), "dtype": "float32"}), encoding="utf-8"
        )
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / _DONE).is_file():  # a half-made target from a crash: replace it
                shutil.rmtree(target, ignore_errors=True)
                os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
