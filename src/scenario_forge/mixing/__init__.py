"""Training mixtures and held-out splits built the way the paper built them.

Modules: ``config`` (``MixConfig``; its validator resolves the recipe once), ``recipes`` and
``personas`` (what a mixture arm is), ``run`` (the mix job: ``MIX_STEPS`` and ``run_mix``), its
stages ``plan``, ``selection`` (with ``totals``, the exact ratio), ``guard`` (train vs held-out
near-duplicates) and ``write``; ``probes`` (persistence probes), ``rows`` (scenarios as mixture
rows), ``spread`` (rubrics fit for RL), ``standard`` and ``base_tasks`` (the standard RL rows),
``estimate`` (``mix --plan-only``). The mixture folder format is :mod:`scenario_forge.mixture`.
"""
