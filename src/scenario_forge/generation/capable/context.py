"""What every capable-path stage shares: the generation context, the capable settings, where the
run's cache lives, and the embedder that deduplicates ideas."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ...config import CapableConfig
from ...lint.brief import BriefWords, brief_of
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

    @cached_property
    def brief_words(self) -> BriefWords:
        """The run's taxonomy texts by domain and trait, built once per run: a rubric criterion
        restating them grades nothing in its conversation (:mod:`scenario_forge.lint.brief`)."""
        return brief_of(self.ctx.taxonomy)
