"""Stable content hashes: the keys of caches, shards and provenance."""

from __future__ import annotations

import hashlib
import json
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
