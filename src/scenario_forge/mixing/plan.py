"""The mix job's first stage: load the runs, assign every scenario per the recipe, open the base set.

It loads no model and writes nothing to ``--out``; every check that can fail early fails here. The
recipe, its personas and the taxonomy come resolved from the config
(:attr:`~scenario_forge.mixing.config.MixConfig.resolution`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..curation.quality import source_readiness
from ..errors import ConfigError
from ..mixture import META_FILE
from ..prompts import PromptSet
from ..records import Reject, Scenario
from ..schema import read_scenarios
from .config import MixConfig
from .personas import Persona
from .probes import HELDOUT_ORDER, probe_domains, probe_pool, seeded_rng, without_probes
from .recipes import ResolvedRecipe
from .standard import BaseSource, open_base
from .totals import exact_total, plan_counts, short_message

#: The stage name on every row the mix drops (``dropped.parquet``).
STAGE = "mix"


class MixPlan(BaseModel):
    """What the recipe makes of the loaded scenarios, before any model runs."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    config: MixConfig
    scenarios: dict[str, Scenario]
    loaded: int
    candidates: list[str]
    heldout: dict[str, list[str]]
    dropped: list[Reject]
    runs: list[dict[str, Any]]
    base: BaseSource

    @property
    def resolved(self) -> ResolvedRecipe:
        return self.config.resolution.resolved

    @property
    def personas(self) -> dict[str, Persona]:
        return self.config.resolution.personas

    @property
    def seed(self) -> int:
        return self.resolved.recipe.seed

    @property
    def fraction(self) -> Fraction:
        return self.resolved.recipe.ratio_fraction()

    def held(self, heldout: dict[str, list[str]] | None = None) -> dict[str, list[Scenario]]:
        """The held-out splits as scenarios (default: the plan's own, before the contamination guard)."""
        ids = self.heldout if heldout is None else heldout
        return {n: [self.scenarios[i] for i in v] for n, v in ids.items()}


def drop(scenario: Scenario, reason: str, detail: str = "") -> Reject:
    """A scenario the mix leaves out of every split, with its reason (``dropped.parquet``)."""
    return Reject.of_scenario(scenario, STAGE, reason, detail)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / META_FILE).is_file():
            raise ConfigError(f"--out {out} is a non-empty folder that holds no mixture; choose a new or empty folder")
        if not overwrite:
            raise ConfigError(f"{out} already holds a mixture; pass --overwrite to replace it")


def _run_info(path: Path) -> dict[str, Any]:
    folder = path.parent
    manifest = folder / "manifest.json"
    ready, because = source_readiness(path)
    info: dict[str, Any] = {"path": str(folder), "training_ready": ready, "because": because}
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            info.update(run_id=data.get("run_id"), provenance=data.get("provenance"), counts=data.get("counts"))
        except json.JSONDecodeError:
            info["manifest"] = "unreadable"
    return info


def _configured(resolved: ResolvedRecipe, split: str) -> bool:
    if split == "heldout":
        return resolved.recipe.heldout.fraction > 0
    if split == "heldout_domains":
        return bool(resolved.heldout_domains)
    return bool(resolved.heldout_traits)


def _check_inputs(config: MixConfig) -> None:
    """The checks that need no scenario: readiness under ``--strict``, the judge, ``--out``, the template."""
    if config.strict:
        for path in config.scenario_files():
            ready, because = source_readiness(path)
            if not ready:
                raise ConfigError(
                    f"--strict: {path.parent} is not training-ready, because {'; '.join(because)}; nothing was written"
                )
    if config.spread.enabled:  # the spread check's judge: one warning line if unqualified, or a refusal
        from ..grading.qualification import gate_judge

        gate_judge(config.spread.grader, "mix", require=config.spread.require_qualified_judge)
    _check_out(config.out, config.overwrite)
    PromptSet(config.prompts).render_text("policy_answer.j2", conversation=[])  # template present and valid


def _load_runs(config: MixConfig) -> tuple[dict[str, Scenario], list[Reject], list[dict[str, Any]], int]:
    """Every run's scenarios by id (a repeated id is dropped), what each run is, how many were loaded."""
    scenarios: dict[str, Scenario] = {}
    dropped: list[Reject] = []
    runs: list[dict[str, Any]] = []
    loaded = 0
    for path in config.scenario_files():
        rows = read_scenarios(path)
        info = _run_info(path)
        info["scenarios"] = len(rows)
        if info.get("provenance") is None and rows:
            info["provenance"] = rows[0].provenance.model_dump(mode="json")
        runs.append(info)
        loaded += len(rows)
        for s in rows:
            if s.id in scenarios:
                dropped.append(drop(s, "duplicate_id", f"also in an earlier run: {scenarios[s.id].provenance.run_id}"))
            else:
                scenarios[s.id] = s
    if not scenarios:
        raise ConfigError(f"the runs hold no scenarios ({', '.join(str(p) for p in config.runs)})")
    return scenarios, dropped, runs, loaded


def _assign(
    config: MixConfig, scenarios: dict[str, Scenario], dropped: list[Reject]
) -> tuple[dict[str, list[str]], list[str]]:
    """Held-out domains, then held-out traits, then the recipe's selection; then the in-distribution
    held-out share and the caps. Returns ``(held-out ids per split, training candidates)``; drops
    are appended to ``dropped``."""
    resolved, personas = config.resolution.resolved, config.resolution.personas
    recipe = resolved.recipe
    heldout: dict[str, list[str]] = {"heldout": [], "heldout_domains": [], "heldout_traits": []}
    eligible: dict[str, list[str]] = defaultdict(list)
    for sid in sorted(scenarios):
        s = scenarios[sid]
        if s.domain in resolved.heldout_domains:
            heldout["heldout_domains"].append(sid)
        elif resolved.heldout_trait(s.trait, s.facet):
            heldout["heldout_traits"].append(sid)
        elif resolved.eligible(s.domain, s.trait, s.facet):
            eligible[s.domain].append(sid)
        else:
            dropped.append(drop(s, "not_selected", f"recipe {recipe.name} does not use {s.domain}/{s.trait}"))
    # In-distribution held-out: a seeded fraction of each domain's eligible scenarios.
    # Stratified for the persistence probes: when they draw from this split, each of the personas'
    # domains that the runs hold gets at least one held-out scenario (a domain with a single
    # eligible scenario gives it to the probes rather than to training).
    candidates: list[str] = []
    fraction = recipe.heldout.fraction
    must_hold: set[str] = set()
    sources = (recipe.persistence.from_splits or list(HELDOUT_ORDER)) if recipe.persistence is not None else []
    if fraction > 0 and "heldout" in sources:
        probed = {scenarios[i].domain for n in sources for i in heldout.get(n, [])}  # already held out elsewhere
        allowed = probe_domains(personas)
        must_hold = (allowed or set()) - probed
        if allowed is None and not probed and eligible and all(len(v) < 2 for v in eligible.values()):
            must_hold = {min(eligible)}  # any domain will do, and the fraction holds out none
    rng = seeded_rng(recipe.seed, 1)
    for domain in sorted(eligible):
        ids = eligible[domain]
        order = [ids[i] for i in rng.permutation(len(ids))]
        n_out = 0
        if fraction > 0 and len(ids) >= 2:
            n_out = min(len(ids) - 1, max(1, round(fraction * len(ids))))
        if n_out == 0 and domain in must_hold:
            n_out = 1
        heldout["heldout"] += sorted(order[:n_out])
        candidates += order[n_out:]
    candidates.sort()
    # Caps per held-out split.
    cap = recipe.heldout.max_rows
    for name, ids in heldout.items():
        if cap is not None and len(ids) > cap:
            keep = {ids[i] for i in seeded_rng(recipe.seed, 2).permutation(len(ids))[:cap]}
            dropped += [drop(scenarios[i], "heldout_over_cap", f"{name} keeps {cap}") for i in ids if i not in keep]
            heldout[name] = [i for i in ids if i in keep]
    active = [n for n in HELDOUT_ORDER if _configured(resolved, n)]
    for name in [n for n in heldout if n not in active]:
        del heldout[name]
    return heldout, candidates


def plan_mixture(config: MixConfig, staging: Path) -> MixPlan:
    """Load the runs, assign every scenario per the recipe and open the base set. Loads no model;
    writes nothing but, for a row-wise base file, its parquet copy under ``staging/.base`` (the
    job's staging folder, which the job clears: see :func:`~scenario_forge.staging.staging_for`)."""
    recipe, personas = config.resolution.resolved.recipe, config.resolution.personas
    _check_inputs(config)
    scenarios, dropped, runs, loaded = _load_runs(config)
    heldout, candidates = _assign(config, scenarios, dropped)

    # Early checks: persistence needs held-out scenarios; an explicit total needs enough candidates.
    if recipe.persistence is not None:
        matching, pool = probe_pool(recipe, personas, {n: [scenarios[i] for i in ids] for n, ids in heldout.items()})
        if not matching:
            without_probes(recipe, personas, pool, config.strict)
    p, q = recipe.ratio_fraction().numerator, recipe.ratio_fraction().denominator
    if recipe.total_rows is not None:
        exact_total(recipe.total_rows, p, q)
        want = recipe.total_rows * p // q
        if want > len(candidates) and not config.allow_smaller:
            raise ConfigError(short_message(recipe.name, want, recipe.total_rows, p, q, len(candidates), plan_counts(loaded, heldout, dropped)))

    base = open_base(
        config.base,
        split=config.base_split,
        prompt_column=config.base_prompt_column,
        answer_column=config.base_answer_column,
        task_column=config.base_task_column,
        staging=staging / ".base",
        seed=recipe.seed,
    )
    if recipe.total_rows is not None and base.n_rows is not None and not config.allow_smaller:
        need = recipe.total_rows if recipe.standard_only else recipe.total_rows - recipe.total_rows * p // q
        if need > base.n_rows:
            raise ConfigError(
                f"base set {base.name} has {base.n_rows} rows but recipe {recipe.name} needs {need} standard "
                f"rows (total {recipe.total_rows}); use a larger base set, a smaller total, or --allow-smaller"
            )
    return MixPlan(
        config=config,
        scenarios=scenarios,
        loaded=loaded,
        candidates=candidates,
        heldout=heldout,
        dropped=dropped,
        runs=runs,
        base=base,
    )
