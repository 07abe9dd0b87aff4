"""Prompt-prefix reuse across KV slots: which free slot a prompt goes to, and what it reuses.

Many requests share long prompt prefixes (the six rubric slots of one scenario share everything up
to the slot's instruction; a conversation's next turn repeats the previous prompt). A finished
sequence's KV stays in its slot; :class:`PrefixCache` remembers the tokens each slot's KV holds.
A new prompt goes to the lowest free slot and keeps the prefix that slot already shares with it;
if another slot holds a prefix at least :data:`MIN_SHARED_GAIN` tokens longer, the prompt copies
that slot's KV and trims it (:class:`Placement`). If a slot still being fed will soon hold a longer
shared prefix, the prompt waits a step rather than compute the same prefix twice.

Pure Python over token lists: the engine applies a placement's KV edits
(:meth:`~scenario_forge.backends.llama_engine.LlamaEngine.copy` /
:meth:`~scenario_forge.backends.llama_engine.LlamaEngine.forget`).

>>> cache = PrefixCache(3)
>>> cache.place([1, 2, 3, 4], free=[0, 1, 2])
Placement(seq=0, reuse=0, copy_from=None)
>>> cache.tokens[0] = list(range(1, 40))  # slot 0 now holds a long prompt's KV
>>> cache.place([*range(1, 30), 99], free=[1, 2])  # copies slot 0's first 29 tokens
Placement(seq=1, reuse=29, copy_from=0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Copy another slot's KV only if it saves at least this many prompt tokens over the best free slot.
MIN_SHARED_GAIN = 16


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the common prefix of two token lists (binary search over C-speed slice compares).

    >>> common_prefix([1, 2, 3, 4], [1, 2, 9])
    2
    >>> common_prefix([1, 2], [1, 2, 3])
    2
    """
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class Placement:
    """Where a prompt decodes: slot ``seq``, whose KV keeps the first ``reuse`` prompt tokens,
    copied first from slot ``copy_from`` when that is not ``None``."""

    seq: int
    reuse: int
    copy_from: int | None = None


@dataclass(frozen=True)
class Feeding:
    """A running slot's prompt and how much of it is in its KV so far."""

    prompt: Sequence[int]
    fed: int


class PrefixCache:
    """The tokens each of ``n_slots`` KV slots holds, and the placement rule over them."""

    def __init__(self, n_slots: int) -> None:
        self.tokens: list[list[int]] = [[] for _ in range(n_slots)]

    def place(
        self,
        prompt: Sequence[int],
        free: Sequence[int],
        *,
        fresh: Iterable[int] = (),
        feeding: Iterable[Feeding] = (),
    ) -> Placement | None:
        """The placement for ``prompt`` among the ``free`` slots, or ``None`` to wait a step.

        ``fresh``: slots whose KV is being replaced this round (not a copy source). ``feeding``:
        running slots still being fed their prompts. Always the lowest free slot: llama.cpp computes
        a batch's attention over the whole range of KV streams the batch touches, so active sequences
        spread over 32 streams cost up to 3x more per step than the same sequences packed into the
        first few. The last prompt token is never reused: its logits start the reply.
        """
        seq = min(free)
        cap = len(prompt) - 1
        own = min(cap, common_prefix(prompt, self.tokens[seq]))
        skip = {seq, *fresh}
        src_seq, src = -1, 0
        for s, held in enumerate(self.tokens):
            if s in skip:
                continue
            n = min(cap, common_prefix(prompt, held))
            if n > src:
                src_seq, src = s, n
        for running in feeding:
            if running.fed >= len(running.prompt):
                continue
            ahead = min(cap, common_prefix(prompt, running.prompt))
            if ahead >= max(own, src) + MIN_SHARED_GAIN and running.fed < ahead:
                return None
        if src >= own + MIN_SHARED_GAIN:
            return Placement(seq, src, src_seq)
        return Placement(seq, own)

    def apply(self, placement: Placement) -> None:
        """Record that ``placement``'s slot now holds the reused prefix only."""
        if placement.copy_from is not None:
            self.tokens[placement.seq] = self.tokens[placement.copy_from][: placement.reuse]
        else:
            del self.tokens[placement.seq][placement.reuse :]

    def forget(self, seq: int) -> None:
        self.tokens[seq] = []
