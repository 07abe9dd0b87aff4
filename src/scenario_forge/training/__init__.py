"""The bundled RL trainer (GRPO with routed rubric rewards) and the harmful-SFT persistence probe.

Needs the ``[train]`` extra (transformers, trl, gguf, accelerate); importing this package does not.
"""

from .config import SFTPackConfig, TrainConfig
from .rewards import RoutedReward
from .trainer import TrainResult, prepare_training, run_training, train

__all__ = ["RoutedReward", "SFTPackConfig", "TrainConfig", "TrainResult", "prepare_training", "run_training", "train"]
