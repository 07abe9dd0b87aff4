"""The ``end-to-end`` flow: generate (and curate) -> mix -> train -> evaluate -> publish.

Each stage is its own flow, run here as a subflow (its tasks, artifacts and state show under this
run in the Prefect UI). Parameters: :class:`~scenario_forge.orchestration.pipeline.PipelineConfig`,
each later stage's own config less the input this flow fills in (the run, then the mixture).
A rerun with the same parameters resumes generation shard by shard.
"""

from __future__ import annotations

from prefect import flow

from flows.generate import generate_flow
from flows.mix import mix_flow
from flows.publish import publish_flow
from flows.train_eval import train_eval_flow
from scenario_forge.orchestration.pipeline import EndToEndResult, PipelineConfig


@flow(name="end-to-end", validate_parameters=True)
def end_to_end_flow(config: PipelineConfig) -> EndToEndResult:
    """Run the stages in order; returns each stage's record (manifest, mixture, training and report)."""
    generated = generate_flow(config.generate, config.runner)
    mix_config = config.mix_config(config.generate.out / generated.run_id)
    mixed = mix_flow(mix_config)
    train_eval = None
    if config.train is not None:
        train_eval = train_eval_flow(config.train_config(mix_config.out), config.eval_config(mix_config.out))
    published = publish_flow(config.publish_config(mix_config.out)) if config.publish is not None else None
    return EndToEndResult(generate=generated, mix=mixed, train_eval=train_eval, publish=published)
