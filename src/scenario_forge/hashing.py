"""Stable content hashes: the keys of caches, shards and provenance."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace; pydantic models are dumped first."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def content_key(*parts: Any, length: int = 16) -> str:
    """A short hex key over any JSON-able parts (order matters)."""
    return sha256_hex(canonical_json(list(parts)))[:length]


def file_digest(path: Path) -> str:
    """sha256[:12] of a file's bytes (provenance: which weights produced the text).

    Remembered per process by path, size and modification time: a model file is hashed once,
    however many shard keys and caches ask, and again if it changes."""
    stat = Path(path).stat()
    return _file_digest(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()[:12]


def weights_digest(folder: Path) -> str:
    """sha256[:12] over a model folder's config and the digests of its weight files."""
    folder = Path(folder)
    config = folder / "config.json"
    files = sorted(p for pattern in ("*.safetensors", "*.bin", "*.gguf") for p in folder.glob(pattern) if p.is_file())
    parts = [f"config:{file_digest(config)}"] if config.is_file() else []
    return sha256_hex("".join(parts + [f"{p.name}:{file_digest(p)}" for p in files]))[:12]
