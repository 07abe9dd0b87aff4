"""A reply cache for the judge backend, so re-curating with new thresholds asks the judge nothing
it has already answered.

Only deterministic requests are cached (temperature 0): the key hashes the model, the messages,
the sampling parameters, the seed and the reply prefix, never the request id. Failed requests are
not cached. Replies live under ``OUT/.cache/judge/`` in JSON chunks, written through a temp file
and renamed, one chunk per batch that asked something new.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..backends.base import Backend, ChatRequest, Generation
from ..hashing import content_key
from ..atomic import atomic_write_text


class CachedBackend(Backend):
    """Wraps a backend; answers repeated deterministic requests from disk."""

    def __init__(self, inner: Backend, folder: Path) -> None:
        super().__init__()
        self.inner = inner
        self.folder = folder
        self.kind = inner.kind
        self.supports_prefix = inner.supports_prefix
        self.supports_json_schema = inner.supports_json_schema
        self._auto_json_schema = inner.auto_json_schema
        self.hits = 0
        self._cache: dict[str, str] | None = None

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def auto_json_schema(self) -> bool:
        return self._auto_json_schema

    def key(self, request: ChatRequest) -> str | None:
        if request.sampling.temperature != 0:
            return None
        return content_key(
            self.inner.model_id,
            [m.model_dump() for m in request.messages],
            request.sampling.model_dump(),
            request.seed,
            request.prefix,
            request.json_schema,
            length=32,
        )

    def _load(self) -> dict[str, str]:
        if self._cache is None:
            self._cache = {}
            for chunk in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
                try:
                    self._cache.update(json.loads(chunk.read_text(encoding="utf-8")))
                except (OSError, ValueError):
                    continue  # a damaged chunk only costs a cache miss
        return self._cache

    def _generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        cache = self._load()
        out: list[Generation] = []
        misses: list[tuple[ChatRequest, str | None]] = []
        for r in requests:
            key = self.key(r)
            if key is not None and key in cache:
                self.hits += 1
                out.append(Generation(request_id=r.id, text=cache[key], finish_reason="stop"))
            else:
                misses.append((r, key))
        if misses:
            fresh = self.inner.generate([r for r, _ in misses])
            new = {key: g.text for (_, key), g in zip(misses, fresh) if key is not None and g.ok and g.text is not None}
            out.extend(fresh)
            if new:
                cache.update(new)
                atomic_write_text(self.folder / f"{content_key(sorted(new), length=16)}.json", json.dumps(new))
        return out
