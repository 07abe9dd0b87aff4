"""Publishing runs and mixtures as Hugging Face datasets: a Hub-layout folder with a dataset card,
trainer exports (TRL, verl) and rubric shapes (HealthBench, Rubrics-as-Rewards), optionally pushed."""

from .build import PublishResult, build_hub_folder
from .config import PublishConfig
from .exports import healthbench_rubric, rar_rubric, to_trl, to_verl
from .run import run_publish

__all__ = [
    "PublishConfig",
    "PublishResult",
    "build_hub_folder",
    "healthbench_rubric",
    "rar_rubric",
    "run_publish",
    "to_trl",
    "to_verl",
]
