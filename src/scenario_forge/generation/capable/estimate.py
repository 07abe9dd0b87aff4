"""``generate --plan-only`` for the capable path: its requests and token upper bounds, first attempts.

Requests: one *understanding* per (domain, trait) cell; one *ideation* call per cell per shard for
every ``ideas_per_call`` seeds of that cell in that shard; in the *rollout*, one request per user
turn and one per assistant turn in between (user turns - 1; the operator prompt is written by
ideation, not asked apart); one *rubric* per scenario. Near-duplicate ideas are dropped before the
rollout, so the rollout and rubric figures are upper bounds too.

Tokens follow the plain-path estimate's rule (:mod:`scenario_forge.generation.estimate`): each
template rendered with the capable pre-flight's sample values (characters / 4), plus the
``max_tokens`` of what the request carries: ideation the understanding; a turn the idea (an
ideation reply's share) and every earlier turn; the rubric the understanding, the idea and the
whole dialogue. Completion tokens are each request kind's ``max_tokens``.
"""

from __future__ import annotations

import math
import numpy as np

from ...config import CapableConfig
from ...planning import Plan
from ...prompts import PromptSet
from ...taxonomy.models import Taxonomy
from ..estimate import StageEstimate, stage_estimate
from .preflight import sample_prompt_chars


def capable_stages(
    seeds: Plan, capable: CapableConfig, shard_size: int, prompts: PromptSet, taxonomy: Taxonomy,
) -> dict[str, StageEstimate]:
    """The capable path's first-attempt requests and token upper bounds, per request kind."""
    cols = seeds.columns
    n = len(seeds)
    turns = cols["turns"].astype(np.int64)
    T = int(turns.sum())
    s = capable.sampling
    tokens = {name: math.ceil(chars / 4) for name, chars in sample_prompt_chars(prompts, taxonomy, seeds[0]).items()}

    cell = cols["domain"].astype(np.int64) * (int(cols["selection"].max()) + 1) + cols["selection"].astype(np.int64)
    n_cells = int(np.unique(cell).size)
    shard = np.arange(n, dtype=np.int64) // shard_size
    _, per_shard_cell = np.unique(np.stack([shard, cell], axis=1), axis=0, return_counts=True)
    ideation_calls = int(np.ceil(per_shard_cell / capable.ideas_per_call).sum())
    slots = n  # every seed is one slot of some ideation call

    idea = math.ceil(s.ideation.max_tokens / capable.ideas_per_call)  # one idea's share of a reply
    u, a = s.user_turn.max_tokens, s.assistant_turn.max_tokens
    pairs_before = int((turns * (turns - 1) // 2).sum())  # earlier turn pairs carried, summed over turns
    pairs_asst = int(((turns - 1) * (turns - 2) // 2).clip(min=0).sum())
    return {
        "understanding": stage_estimate(n_cells, n_cells * tokens["understanding"], s.understanding),
        "ideation": stage_estimate(
            ideation_calls,
            ideation_calls * (tokens["ideation"] + s.understanding.max_tokens) + slots * tokens["ideation_slot"],
            s.ideation,
        ),
        "user_turn": stage_estimate(T, T * (tokens["user_turn"] + idea) + (u + a) * pairs_before, s.user_turn),
        "assistant_turn": stage_estimate(T - n, (T - n) * (tokens["assistant_turn"] + idea) + u * pairs_before + a * pairs_asst, s.assistant_turn),
        "rubric": stage_estimate(
            n, n * (tokens["rubric"] + s.understanding.max_tokens + idea) + T * u + (T - n) * a, s.rubric,
        ),
    }
