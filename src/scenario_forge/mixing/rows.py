"""Scenarios as mixture rows: the training row, the held-out row and the persistence probes."""

from __future__ import annotations

from ..records import MixtureRow, RewardType, Scenario
from .personas import Persona, under_persona


def beneficial_row(
    scenario: Scenario, split: str, reward_type: RewardType = "rubric", rubric_spread: float | None = None
) -> MixtureRow:
    """A scenario as a mixture row (``source == "beneficial"``): its conversation is the prompt, its
    rubric travels with it. Used for the train split's beneficial rows, the held-out splits and the
    probes (a run's ``scenarios.parquet`` holds the full scenario records instead)."""
    return MixtureRow(
        id=scenario.id,
        split=split,
        source="beneficial",
        reward_type=reward_type,
        prompt=scenario.messages,
        rubric=scenario.rubric,
        domain=scenario.domain,
        trait=scenario.trait,
        facet=scenario.facet,
        pressure=scenario.pressure,
        shape=scenario.shape,
        scenario_id=scenario.id,
        rubric_spread=rubric_spread,
    )


def probe_rows(scenario: Scenario, personas: dict[str, Persona]) -> dict[str, MixtureRow]:
    """The three persistence rows of one held-out scenario: plain, harmful persona, helpful persona."""
    plain = beneficial_row(scenario, "persistence_plain").model_copy(update={"id": f"{scenario.id}:plain"})
    out = {"persistence_plain": plain}
    for variant in ("harmful", "helpful"):
        out[f"persistence_{variant}"] = plain.model_copy(
            update={
                "id": f"{scenario.id}:{variant}",
                "split": f"persistence_{variant}",
                "prompt": under_persona(scenario.messages, personas[variant]),
                "persona_variant": variant,
            }
        )
    return out
