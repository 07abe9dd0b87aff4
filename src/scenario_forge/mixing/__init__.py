"""Training mixtures and held-out splits built the way the paper built them.

Modules: ``io`` (the mixture folder format, shared with the trainer and the evaluation),
``recipes`` and ``personas`` (what a mixture arm is), ``base_tasks`` (the embedded verifiable tasks
and ``exact_match_reward``), ``standard`` (base sets, streamed into the train split), ``spread`` (rubrics
fit for RL), ``guard`` (train vs held-out near-duplicates), ``run`` (the stage functions), ``config``.
"""
