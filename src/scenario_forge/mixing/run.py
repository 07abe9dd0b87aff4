"""The mix job as plain stage functions: plan, spread check, select, guard, write.

Orchestrators (the Prefect flow in ``flows/mix.py``, :func:`run_mix` below) only call these.
Every scenario loaded ends in exactly one place -- the train split, a held-out split, or
``dropped.parquet`` with its stage and reason -- and ``mixture.json`` checks that the counts add up.
Nothing is written to ``--out`` until the last stage, which builds the whole mixture in a staging
folder and swaps it in, so a failed or interrupted mix leaves any earlier mixture untouched.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from .. import __version__, progress
from ..curation.quality import mixture_quality, source_readiness
from ..errors import AccountingError, ConfigError
from ..prompts import PromptSet
from ..records import Reject, Scenario
from ..schema import read_scenarios, write_rejects
from ..taxonomy.loader import taxonomy_hash
from . import guard as guard_mod
from .config import MixConfig, load_taxonomy_cached
from .io import META_FILE, MixtureMeta, mixture_table, write_meta, write_split
from .personas import Persona
from .recipes import ResolvedRecipe
from .rows import probe_rows, scenario_row
from .spread import SpreadReport, check_spread
from .standard import open_base, prefetch, standard_chunks, write_train

STAGE = "mix"
DROPPED_FILE = "dropped.parquet"
HELDOUT_ORDER = ("heldout", "heldout_domains", "heldout_traits")
PERSISTENCE_SPLITS = ("persistence_plain", "persistence_harmful", "persistence_helpful")


class MixPlan(BaseModel):
    """What the recipe makes of the loaded scenarios, before any model runs."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    config: MixConfig
    resolved: ResolvedRecipe
    recipe_file: str
    personas: dict[str, Persona]
    scenarios: dict[str, Scenario]
    loaded: int
    candidates: list[str]
    heldout: dict[str, list[str]]
    dropped: list[Reject]
    runs: list[dict[str, Any]]
    taxonomy: dict[str, str]
    base: Any  # BaseSource
    staging: Path

    @property
    def seed(self) -> int:
        return self.resolved.recipe.seed

    @property
    def fraction(self) -> Fraction:
        return self.resolved.recipe.ratio_fraction()


class Selection(BaseModel):
    """Which candidates train, the exact totals, and the spread check's verdicts."""

    model_config = ConfigDict(extra="forbid")

    train: list[str]
    beneficial: int
    standard: int
    total: int
    spread: dict[str, Any]
    rubric_spread: dict[str, float | None]
    dropped: list[Reject]


class Guarded(BaseModel):
    model_config = ConfigDict(extra="forbid")

    heldout: dict[str, list[str]]
    dropped: list[Reject]
    report: dict[str, Any]


# -- 1. plan ---------------------------------------------------------------------------------------


def _rng(seed: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, purpose])


def _drop(scenario: Scenario, reason: str, detail: str = "") -> Reject:
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


def plan_mixture(config: MixConfig) -> MixPlan:
    """Load the runs, assign every scenario per the recipe and open the base set. Loads no model,
    writes nothing outside a staging folder; every check that can fail early fails here."""
    resolved, recipe_file, personas = config.resolved_recipe()
    recipe = resolved.recipe
    if config.strict:
        for path in config.scenario_files():
            ready, because = source_readiness(path)
            if not ready:
                raise ConfigError(
                    f"--strict: {path.parent} is not training-ready, because {'; '.join(because)}; nothing was written"
                )
    if config.spread.enabled:  # the spread check's judge: one warning line if unqualified, or a refusal
        from ..grading.qualification import gate_judge

        gate_judge(config.spread.judge or config.spread.policy, "mix", require=config.spread.require_qualified_judge)
    taxonomy = load_taxonomy_cached(config.taxonomy)
    _check_out(config.out, config.overwrite)
    PromptSet(config.prompts).render_text("policy_answer.j2", conversation=[])  # template present and valid

    scenarios: dict[str, Scenario] = {}
    dropped: list[Reject] = []
    runs = []
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
                dropped.append(_drop(s, "duplicate_id", f"also in an earlier run: {scenarios[s.id].provenance.run_id}"))
            else:
                scenarios[s.id] = s
    if not scenarios:
        raise ConfigError(f"the runs hold no scenarios ({', '.join(str(p) for p in config.runs)})")

    # Held-out domains, then held-out traits, then the recipe's selection.
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
            dropped.append(_drop(s, "not_selected", f"recipe {recipe.name} does not use {s.domain}/{s.trait}"))
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
        must_hold = (_probe_domains(personas) or set()) - probed
        if _probe_domains(personas) is None and not probed and eligible and all(len(v) < 2 for v in eligible.values()):
            must_hold = {sorted(eligible)[0]}  # any domain will do, and the fraction holds out none
    rng = _rng(recipe.seed, 1)
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
            keep = {ids[i] for i in _rng(recipe.seed, 2).permutation(len(ids))[:cap]}
            dropped += [_drop(scenarios[i], "heldout_over_cap", f"{name} keeps {cap}") for i in ids if i not in keep]
            heldout[name] = [i for i in ids if i in keep]
    active = [n for n in HELDOUT_ORDER if _configured(resolved, n)]
    for name in [n for n in heldout if n not in active]:
        del heldout[name]

    # Early checks: persistence needs held-out scenarios; an explicit total needs enough candidates.
    if recipe.persistence is not None:
        matching, pool = _probe_pool(recipe, personas, {n: [scenarios[i] for i in ids] for n, ids in heldout.items()})
        if not matching:
            _without_probes(recipe, personas, pool, config.strict)
    p, q = recipe.ratio_fraction().numerator, recipe.ratio_fraction().denominator
    if recipe.total_rows is not None:
        _exact_total(recipe.total_rows, p, q)
        want = recipe.total_rows * p // q
        if want > len(candidates) and not config.allow_smaller:
            raise ConfigError(_short_message(recipe.name, want, recipe.total_rows, p, q, len(candidates), plan_counts(loaded, heldout, dropped)))

    # One staging folder per --out: a leftover from an interrupted mix is cleared here.
    staging = config.out.parent / f".{config.out.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    try:
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
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return MixPlan(
        config=config,
        resolved=resolved,
        recipe_file=str(recipe_file),
        personas=personas,
        scenarios=scenarios,
        loaded=loaded,
        candidates=candidates,
        heldout=heldout,
        dropped=dropped,
        runs=runs,
        taxonomy={"name": taxonomy.name, "version": taxonomy.version, "hash": taxonomy_hash(taxonomy)},
        base=base,
        staging=staging,
    )


def _configured(resolved: ResolvedRecipe, split: str) -> bool:
    if split == "heldout":
        return resolved.recipe.heldout.fraction > 0
    if split == "heldout_domains":
        return bool(resolved.heldout_domains)
    return bool(resolved.heldout_traits)


def plan_counts(loaded: int, heldout: dict[str, list[str]], dropped: list[Reject]) -> str:
    reasons = Counter(r.reason for r in dropped)
    parts = [f"{loaded} loaded"]
    held = sum(len(v) for v in heldout.values())
    if held:
        parts.append(f"{held} held out")
    parts += [f"{n} {reason.replace('_', ' ')}" for reason, n in sorted(reasons.items())]
    return ", ".join(parts)


def _exact_total(total: int, p: int, q: int) -> None:
    if total % q:
        lower, upper = total // q * q, (total // q + 1) * q
        raise ConfigError(
            f"total_rows {total} does not split exactly at ratio {p}/{q}: use a multiple of {q} "
            f"(e.g. {lower or upper} or {upper})"
        )


def _short_message(name: str, want: int, total: int, p: int, q: int, have: int, counts: str) -> str:
    return (
        f"recipe {name} asks for {want} beneficial rows (total {total} x {p}/{q}) but only {have} scenarios "
        f"are eligible ({counts}); generate more, lower the total, or pass --allow-smaller"
    )


# -- 2. spread check ---------------------------------------------------------------------------------


def spread_stage(plan: MixPlan) -> SpreadReport:
    """Sample and grade answers for every training candidate (the only stage that runs models)."""
    config = plan.config
    progress.report("mix", step="spread check", scenarios=len(plan.candidates))
    return check_spread(
        [plan.scenarios[i] for i in plan.candidates],
        config.spread,
        seed=plan.seed,
        prompts=PromptSet(config.prompts),
        cache_dir=config.cache_root() / "spread",
    )


# -- 3. select ---------------------------------------------------------------------------------------


def choose_totals(
    p: int, q: int, available: int, total_rows: int | None, base_rows: int | None, allow_smaller: bool,
    standard_only: bool, name: str = "recipe", counts: str = "",
) -> tuple[int, int, int]:
    """``(B, S, T)`` with ``B / T == p / q`` exactly: B beneficial, S = T - B standard rows.

    Without ``total_rows`` B is the largest multiple of ``p`` not above the rows available; with it
    B = total * p / q (the total must be a multiple of ``q``). ``standard_only`` arms need T standard rows.

    >>> choose_totals(1, 20, 37, None, None, False, False)
    (37, 703, 740)
    >>> choose_totals(3, 10, 37, None, None, False, False)
    (36, 84, 120)
    >>> choose_totals(1, 20, 37, None, 100, True, False)   # base has 100 rows: S <= 100
    (5, 95, 100)
    """
    if total_rows is not None:
        _exact_total(total_rows, p, q)
        b = total_rows * p // q
        if b > available:
            if not allow_smaller:
                raise ConfigError(_short_message(name, b, total_rows, p, q, available, counts or f"{available} eligible"))
            b = available // p * p
    else:
        b = available // p * p
    need = (lambda b: b * q // p) if standard_only else (lambda b: b * (q - p) // p)
    if base_rows is not None and need(b) > base_rows:
        if not allow_smaller:
            raise ConfigError(
                f"the base set has {base_rows} rows but recipe {name} needs {need(b)} standard rows "
                f"({b} beneficial at {p}/{q}); use a larger base set or --allow-smaller"
            )
        b = (base_rows // q if standard_only else base_rows // (q - p)) * p
        b = min(b, available // p * p)
    if b <= 0:
        raise ConfigError(
            f"recipe {name} has no beneficial rows to mix: {available} eligible after the checks"
            f"{' (' + counts + ')' if counts else ''}, and ratio {p}/{q} needs a multiple of {p}"
        )
    t = b * q // p
    return b, t - b, t


def select_stage(plan: MixPlan, spread: SpreadReport) -> Selection:
    """Apply the spread check, choose the exact totals and the beneficial rows."""
    recipe = plan.resolved.recipe
    keep_flagged = plan.config.spread.keep_flagged
    dropped: list[Reject] = []
    passing = []
    for sid in plan.candidates:
        result = spread.results.get(sid)
        if result is not None and result.flag is not None and not keep_flagged:
            detail = f"scores {result.scores}" if result.flag == "flat" else f"{sum(s is not None for s in result.scores)} of {len(result.scores)} answers scoreable"
            dropped.append(_drop(plan.scenarios[sid], f"spread_{result.flag}", detail))
        else:
            passing.append(sid)
    p, q = plan.fraction.numerator, plan.fraction.denominator
    counts = plan_counts(plan.loaded, plan.heldout, plan.dropped + dropped)
    b, s, t = choose_totals(
        p, q, len(passing), recipe.total_rows, plan.base.n_rows, plan.config.allow_smaller, recipe.standard_only,
        recipe.name, counts,
    )
    order = [passing[i] for i in _rng(recipe.seed, 4).permutation(len(passing))]
    chosen, unused = order[:b], order[b:]  # chosen stays in seeded random order: the train split's order
    dropped += [_drop(plan.scenarios[i], "not_needed", f"the ratio uses {b} of {len(passing)}") for i in sorted(unused)]
    if recipe.standard_only:
        s = t  # the control: all T rows standard
    return Selection(
        train=chosen,
        beneficial=0 if recipe.standard_only else b,
        standard=s,
        total=t,
        spread=spread.summary(keep_flagged),
        rubric_spread={sid: r.spread for sid, r in spread.results.items()},
        dropped=dropped,
    )


# -- 4. contamination guard -------------------------------------------------------------------------


def guard_stage(plan: MixPlan, selection: Selection) -> Guarded:
    """Remove held-out scenarios that nearly duplicate a selected training scenario."""
    config = plan.config
    progress.report("mix", step="contamination guard", heldout=sum(len(v) for v in plan.heldout.values()))
    held = {n: [plan.scenarios[i] for i in ids] for n, ids in plan.heldout.items()}
    train = [plan.scenarios[i] for i in selection.train]
    needs = bool(train) and any(held.values())
    embedder = guard_mod.make_embedder(config.embedding_model, config.cache_root() / "embeddings") if needs else None
    clean, removed, report = guard_mod.guard_heldout(train, held, embedder, config.threshold)
    if embedder is not None:
        report["embedding_model"] = getattr(embedder, "model_id", type(embedder).__name__)
    report["compared_with"] = "selected beneficial scenarios" + (" (sized like the beneficial arm)" if plan.resolved.recipe.standard_only else "")
    dropped = [
        _drop(s, "near_duplicate_of_train", f"{name}: near-duplicate of training scenario {tid}")
        for name, items in removed.items()
        for s, tid in items
    ]
    return Guarded(heldout={n: [s.id for s in v] for n, v in clean.items()}, dropped=dropped, report=report)


# -- 5. write ---------------------------------------------------------------------------------------


def _probe_domains(personas: dict[str, Persona]) -> set[str] | None:
    """The domains a persistence probe may come from: the intersection of both personas' domains
    (None: any domain)."""
    domains = [set(p.domains) for p in personas.values() if p.domains]
    return set.intersection(*domains) if domains else None


def warn(line: str) -> None:
    """One warning line on stderr (the mix goes on)."""
    print(f"warning: {line}", file=sys.stderr)


def _probe_pool(recipe, personas: dict[str, Persona], held: dict[str, list[Scenario]]) -> tuple[list[Scenario], int]:
    """The held-out scenarios the probes may use (sorted by id, uncapped) and how many held-out
    scenarios they were chosen from."""
    spec = recipe.persistence
    sources = spec.from_splits or list(held)
    unknown = [n for n in sources if n not in HELDOUT_ORDER]
    if unknown:
        raise ConfigError(f"recipe {recipe.name}: persistence.from_splits names unknown split(s) {unknown}; use {', '.join(HELDOUT_ORDER)}")
    pool = sorted({s.id: s for n in sources for s in held.get(n, [])}.values(), key=lambda s: s.id)
    allowed = _probe_domains(personas)
    return [s for s in pool if allowed is None or s.domain in allowed], len(pool)


def _probe_scenarios(recipe, personas: dict[str, Persona], held: dict[str, list[Scenario]]) -> list[Scenario]:
    """The held-out scenarios the persistence probes use (seeded sample of at most ``max_rows``)."""
    matching, _ = _probe_pool(recipe, personas, held)
    spec = recipe.persistence
    if spec.max_rows is not None and len(matching) > spec.max_rows:
        keep = {int(i) for i in _rng(recipe.seed, 3).permutation(len(matching))[: spec.max_rows]}
        matching = [s for i, s in enumerate(matching) if i in keep]
    return matching


def _without_probes(recipe, personas: dict[str, Persona], pool: int, strict: bool, guard: bool = False) -> None:
    """No scenario for the persistence probes: one warning line and the mix goes on without them, or
    ``--strict`` refuses (nothing is written)."""
    message = no_probes_reason(recipe.name, pool, _probe_domains(personas), guard)
    if strict:
        raise ConfigError(f"--strict: {message}; nothing was written")
    warn(f"{message}: mixing without persistence probes (--strict refuses instead)")


def no_probes_reason(name: str, pool: int, allowed: set[str] | None, guard: bool = False) -> str:
    """Why a recipe that asks for persistence probes gets none, in one clause.

    >>> no_probes_reason("paper-5pct", 3, {"health"})
    "recipe paper-5pct asks for persistence probes but none of the 3 held-out scenarios is in the personas' domains (health)"
    """
    where = f" in the personas' domains ({', '.join(sorted(allowed))})" if allowed is not None else ""
    after = " left after the contamination guard" if guard else ""
    return f"recipe {name} asks for persistence probes but none of the {pool} held-out scenarios{after} is{where}"


def write_stage(plan: MixPlan, selection: Selection, guarded: Guarded) -> MixtureMeta:
    """Write every split, ``dropped.parquet`` and ``mixture.json`` into the staging folder, then
    swap it in as ``--out``."""
    config, recipe = plan.config, plan.resolved.recipe
    staging = plan.staging
    staging.mkdir(parents=True, exist_ok=True)
    progress.report("mix", step="writing", rows=selection.total)
    try:
        splits: dict[str, int] = {}
        bene = mixture_table(
            scenario_row(plan.scenarios[i], "train", recipe.reward_type, selection.rubric_spread.get(i))
            for i in ([] if recipe.standard_only else selection.train)
        )
        chunks = prefetch(standard_chunks(plan.base, selection.standard, plan.seed, config.shuffle_limit))
        b_written, s_written = write_train(staging / "train.parquet", bene, chunks, selection.standard)
        if (b_written, s_written) != (selection.beneficial, selection.standard):
            raise AccountingError(
                f"train split has {b_written} beneficial + {s_written} standard rows, planned "
                f"{selection.beneficial} + {selection.standard}"
            )
        splits["train"] = b_written + s_written
        held = {n: [plan.scenarios[i] for i in ids] for n, ids in guarded.heldout.items()}
        for name, items in held.items():
            splits[name] = write_split(staging, name, (scenario_row(s, name) for s in items))
        probes: list[Scenario] = []
        if recipe.persistence is not None:
            probes = _probe_scenarios(recipe, plan.personas, held)
            planned = _probe_pool(recipe, plan.personas, {n: [plan.scenarios[i] for i in ids] for n, ids in plan.heldout.items()})[0]
            if not probes and planned:  # the contamination guard removed the last ones (the plan stage said the rest)
                _, pool = _probe_pool(recipe, plan.personas, held)
                _without_probes(recipe, plan.personas, pool, config.strict, guard=True)
            rows = [probe_rows(s, plan.personas) for s in probes]
            for name in PERSISTENCE_SPLITS if probes else ():  # no probes: no persistence splits
                splits[name] = write_split(staging, name, (r[name] for r in rows))
        dropped = plan.dropped + selection.dropped + guarded.dropped
        if recipe.standard_only:
            dropped += [_drop(plan.scenarios[i], "standard_only", "sizes the compute-matched control") for i in selection.train]
        write_rejects(staging / DROPPED_FILE, dropped)
        counts = _counts(plan, selection, guarded, dropped, splits, len(probes))
        meta = MixtureMeta(
            recipe=recipe.model_dump(mode="json"),
            seed=recipe.seed,
            splits=splits,
            train_split="train",
            sources={"runs": plan.runs, "base": plan.base.describe()},
            provenance=_provenance(plan, selection),
            trained_domains=[] if recipe.standard_only else sorted({plan.scenarios[i].domain for i in selection.train}),
            counts=counts,
            ratio=_ratio(plan, selection),
            spread_check=selection.spread,
            contamination=guarded.report,
            persistence=_persistence(plan, len(probes), held),
            quality=mixture_quality(plan.runs),
            files={"dropped": DROPPED_FILE},
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        shutil.rmtree(staging / ".base", ignore_errors=True)
        write_meta(staging, meta)
        _swap_in(staging, config.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress.report("mix", step="done", out=str(config.out))
    return meta


def _counts(plan: MixPlan, selection: Selection, guarded: Guarded, dropped: list[Reject], splits: dict[str, int], probes: int) -> dict[str, Any]:
    held = {n: len(v) for n, v in guarded.heldout.items()}
    train_beneficial = len(selection.train) if not plan.resolved.recipe.standard_only else 0
    counts = {
        "scenarios_loaded": plan.loaded,
        "train_beneficial": train_beneficial,
        "train_standard": selection.standard,
        "train_total": splits["train"],
        "heldout": held,
        "persistence_scenarios": probes,
        "dropped": len(dropped),
        "dropped_by_reason": dict(sorted(Counter(r.reason for r in dropped).items())),
    }
    if plan.loaded != train_beneficial + sum(held.values()) + len(dropped):
        raise AccountingError(
            f"mixture accounting does not add up: loaded {plan.loaded} != train {train_beneficial} + "
            f"held out {sum(held.values())} + dropped {len(dropped)}"
        )
    return counts


def _ratio(plan: MixPlan, selection: Selection) -> dict[str, Any]:
    frac = plan.fraction
    recipe = plan.resolved.recipe
    out: dict[str, Any] = {
        "requested": recipe.beneficial_ratio,
        "fraction": f"{frac.numerator}/{frac.denominator}",
        "beneficial": selection.beneficial,
        "total": selection.total,
    }
    if recipe.standard_only:
        out["sized_as"] = {"beneficial": len(selection.train), "total": selection.total}
        out["exact"] = len(selection.train) * frac.denominator == selection.total * frac.numerator
    else:
        out["exact"] = selection.beneficial * frac.denominator == selection.total * frac.numerator
        out["actual"] = selection.beneficial / selection.total if selection.total else math.nan
    return out


def _persistence(plan: MixPlan, probes: int, held: dict[str, list[Scenario]]) -> dict[str, Any] | None:
    recipe = plan.resolved.recipe
    spec = recipe.persistence
    if spec is None:
        return None
    out: dict[str, Any] = {
        "scenarios": probes,
        "splits": list(PERSISTENCE_SPLITS) if probes else [],
        "personas": {v: p.model_dump(mode="json") for v, p in plan.personas.items()},
    }
    if not probes:
        _, pool = _probe_pool(recipe, plan.personas, held)
        planned = _probe_pool(recipe, plan.personas, {n: [plan.scenarios[i] for i in ids] for n, ids in plan.heldout.items()})[0]
        out["skipped"] = no_probes_reason(recipe.name, pool, _probe_domains(plan.personas), guard=bool(planned))
    return out


def _provenance(plan: MixPlan, selection: Selection) -> dict[str, Any]:
    config = plan.config
    prompts = PromptSet(config.prompts)
    return {
        "generator": f"scenario-forge {__version__}",
        "recipe_file": plan.recipe_file,
        "taxonomy": plan.taxonomy,
        "config": config.model_dump(mode="json"),
        "templates": prompts.hash_of([t for t in ("policy_answer.j2", "grade_criterion.j2") if t in prompts.hashes]),
        "scenario_models": sorted({(r.get("provenance") or {}).get("model") or "?" for r in plan.runs}),
    }


def _swap_in(staging: Path, out: Path) -> None:
    """Replace ``out`` with the finished staging folder (the old mixture is removed only after)."""
    old = None
    if out.exists():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        else:
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- the whole job ------------------------------------------------------------------------------------


def run_mix(config: MixConfig) -> MixtureMeta:
    """The mix job without an orchestrator: the same stage functions, called in order."""
    plan = plan_mixture(config)
    try:
        spread = spread_stage(plan)
        selection = select_stage(plan, spread)
        guarded = guard_stage(plan, selection)
    except BaseException:
        shutil.rmtree(plan.staging, ignore_errors=True)
        raise
    return write_stage(plan, selection, guarded)
