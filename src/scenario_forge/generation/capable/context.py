"""What every capable-path stage shares: the generation context, the capable settings, where the
run's cache lives, and the embedder that deduplicates ideas."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...config import CapableConfig
from ..context import StageContext

#: Texts in, unit-length vectors out (one row per text): curation's MiniLM, or a fake in tests.
Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass
class CapableContext:
    ctx: StageContext
    config: CapableConfig
    #: The run folder's cache (``OUT/RUN_ID/.cache``): understandings live under it.
    cache_dir: Path
    embed: Embed

    @property
    def retries(self) -> int:
        return self.config.json_retries
