"""What every generation stage needs: the backend, prompts, taxonomy, sampling and accounting."""

from __future__ import annotations

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

    def generate(self, stage: str, requests: Sequence[ChatRequest]) -> list[Generation]:
        """Run one batch for ``stage`` and account for it."""
        progress.report("batch", stage=stage, requests=len(requests))
        out = timed_generate(self.backend, requests, self.usage.setdefault(stage, StageUsage()))
        progress.report("batch_done", stage=stage, requests=len(out), completion_tokens=sum(g.completion_tokens for g in out))
        return out

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
