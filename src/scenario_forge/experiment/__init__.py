"""``scenario-forge experiment``: the paper's comparison from one YAML file.

Arms (recipes) are mixed from the same runs, trained with the same compute (steps, completions and
measured training tokens within a stated tolerance), evaluated against the baseline arm on one
shared evaluation set and the external suites, and written up in one report.

- :mod:`.config`: the YAML's typed model (:class:`ExperimentConfig`);
- :mod:`.plan`: validation before any training, per-arm stage configs, compute matching;
- :mod:`.run`: the job as steps (:data:`EXPERIMENT_STEPS`), per-arm resume;
- :mod:`.report`: ``experiment.md``, ``experiment.json`` and the plots.
"""

from .config import ExperimentConfig, load_experiment
from .run import EXPERIMENT_STEPS, ExperimentResult, run_experiment

__all__ = ["EXPERIMENT_STEPS", "ExperimentConfig", "ExperimentResult", "load_experiment", "run_experiment"]
