"""Curation: quality gates, an LLM judge, rubric sign checks, embedding near-duplicate removal
(within a run, against the output store's index, across train/held-out splits), and the run
report. See ``docs/curation.md``."""

from .dedup import components, contaminated, cross_split_pairs, keep_one, near_duplicate_pairs
from .embed import Embedder, get_embedder, scenario_text

__all__ = [
    "Embedder",
    "components",
    "contaminated",
    "cross_split_pairs",
    "get_embedder",
    "keep_one",
    "near_duplicate_pairs",
    "scenario_text",
]
