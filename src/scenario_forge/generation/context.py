"""What every generation stage needs: the backend, prompts, taxonomy, sampling and accounting."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import progress
from ..backends.base import Backend, ChatRequest, Generation, StageUsage, timed_generate
from ..config import SamplingParams, StageSampling
from ..hashing import content_key
from ..prompts import PromptSet
from ..records import ScenarioSeed
from ..taxonomy.models import Taxonomy


@dataclass
class StageContext:
    backend: Backend
    prompts: PromptSet
    taxonomy: Taxonomy
    sampling: StageSampling
    run_id: str
    structured: bool = False
    #: Re-asks for a conversation turn that fails a turn-level lint detector.
    turn_reasks: int = 2
    usage: dict[str, StageUsage] = field(default_factory=dict)
    #: Scenarios of one shard advancing side by side (:mod:`.schedule`; ``GenerateConfig.scenario_workers``).
    workers: int = 256
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    #: stage -> (its requests' calls in flight, since when at least one has been)
    _active: dict[str, tuple[int, float]] = field(default_factory=dict, repr=False, compare=False)

    def generate(self, stage: str, requests: Sequence[ChatRequest]) -> list[Generation]:
        """Run one batch for ``stage`` and account for it (safe from many threads: scenarios send
        their own requests side by side, :mod:`.schedule`).

        The stage's ``wall_s`` counts the time at least one of its requests was in flight (with one
        batch at a time, the batches' times; stages of different scenarios overlap, so the stages'
        times may add up to more than the shard's)."""
        progress.report("batch", stage=stage, requests=len(requests))
        usage = StageUsage()
        with self._lock:
            flying, since = self._active.get(stage, (0, 0.0))
            self._active[stage] = (flying + 1, time.perf_counter() if flying == 0 else since)
        try:
            out = timed_generate(self.backend, requests, usage)
        finally:
            with self._lock:
                flying, since = self._active[stage]
                self._active[stage] = (flying - 1, since)
                total = self.usage.setdefault(stage, StageUsage())
                if flying == 1:
                    total.wall_s += time.perf_counter() - since
                usage.wall_s = 0.0
                total.merge(usage)
        progress.report("batch_done", stage=stage, requests=len(out), completion_tokens=usage.completion_tokens)
        return out

    #: One scenario's requests (:func:`.schedule.drive`): the same accounting as a stage's batch.
    send = generate

    def count_reask(self, stage: str) -> None:
        """One more request asked again for a lint finding, in ``stage``'s usage."""
        with self._lock:
            self.usage.setdefault(stage, StageUsage()).reasks += 1

    def request(
        self,
        seed: ScenarioSeed,
        step: str,
        attempt: int,
        template: str,
        sampling: SamplingParams,
        *,
        prefix: str | None = None,
        json_schema: dict[str, Any] | None = None,
        **variables: Any,
    ) -> ChatRequest:
        """A request for one scenario; id and sampling seed are derived from the scenario seed."""
        return ChatRequest(
            id=f"{seed.id}:{step}:{attempt}",
            messages=self.prompts.render(template, **self.scenario_vars(seed), prefix=prefix or "", **variables),
            sampling=sampling,
            seed=int(content_key(seed.sample_seed, step, attempt, length=8), 16) & 0x7FFFFFFF,
            prefix=prefix if self.backend.supports_prefix else None,
            json_schema=json_schema if self.backend.supports_json_schema else None,
        )

    def scenario_vars(self, seed: ScenarioSeed) -> dict[str, Any]:
        domain = self.taxonomy.domain(seed.domain)
        trait = self.taxonomy.trait(seed.trait)
        persona = next(p.description for p in domain.personas if p.id == seed.persona)
        facet = next((f for f in trait.facets if f.id == seed.facet), None)
        return {
            "domain": domain,
            "trait": trait,
            "facet": facet,
            "pressure": self.taxonomy.pressure(seed.pressure),
            "persona": persona,
            "flaw": seed.flaw,
        }
