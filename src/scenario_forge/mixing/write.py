"""The mix job's last stage: write every split, ``dropped.parquet`` and ``mixture.json`` into the
staging folder, check that the counts add up, and swap the folder in as ``--out``."""

from __future__ import annotations

import math
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__, progress
from ..curation.quality import mixture_quality
from ..errors import AccountingError
from ..mixture import DROPPED_FILE, MixtureMeta, mixture_table, write_meta, write_split
from ..prompts import PromptSet
from ..records import Reject, Scenario
from ..schema import write_rejects
from ..staging import swap_in
from .guard import Guarded
from .plan import MixPlan, drop
from .probes import PERSISTENCE_SPLITS, no_probes_reason, probe_domains, probe_pool, probe_scenarios, without_probes
from .rows import beneficial_row, probe_rows
from .selection import TrainSelection
from .standard import prefetch, standard_chunks, write_train


def write_stage(plan: MixPlan, selection: TrainSelection, guarded: Guarded, staging: Path) -> MixtureMeta:
    """Write the mixture into ``staging`` and swap it in as ``--out`` (the job removes ``staging``
    if this fails: see :func:`~scenario_forge.staging.staging_for`)."""
    config, recipe = plan.config, plan.resolved.recipe
    staging.mkdir(parents=True, exist_ok=True)
    progress.report("mix", step="writing", rows=selection.total)
    splits: dict[str, int] = {}
    bene = mixture_table(
        beneficial_row(plan.scenarios[i], "train", recipe.reward_type, selection.rubric_spread.get(i))
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
    held = plan.held(guarded.heldout)
    for name, items in held.items():
        splits[name] = write_split(staging, name, (beneficial_row(s, name) for s in items))
    probes: list[Scenario] = []
    skipped: str | None = None  # why a recipe with persistence probes has none
    if recipe.persistence is not None:
        probes = probe_scenarios(recipe, plan.personas, held)
        if not probes:
            guarded_away = bool(probe_pool(recipe, plan.personas, plan.held())[0])  # the plan had some
            _, pool = probe_pool(recipe, plan.personas, held)
            if guarded_away:  # the contamination guard removed the last ones (the plan stage said the rest)
                without_probes(recipe, plan.personas, pool, config.strict, guard=True)
            skipped = no_probes_reason(recipe.name, pool, probe_domains(plan.personas), guard=guarded_away)
        rows = [probe_rows(s, plan.personas) for s in probes]
        for name in PERSISTENCE_SPLITS if probes else ():  # no probes: no persistence splits
            splits[name] = write_split(staging, name, (r[name] for r in rows))
    dropped = plan.dropped + selection.dropped + guarded.dropped
    if recipe.standard_only:
        dropped += [drop(plan.scenarios[i], "standard_only", "sizes the compute-matched control") for i in selection.train]
    write_rejects(staging / DROPPED_FILE, dropped)
    counts = _counts(plan, selection, guarded, dropped, splits, len(probes))
    meta = MixtureMeta(
        recipe=recipe.model_dump(mode="json"),
        seed=recipe.seed,
        splits=splits,
        train_split="train",
        sources={"runs": plan.runs, "base": plan.base.describe()},
        provenance=_provenance(plan),
        trained_domains=[] if recipe.standard_only else sorted({plan.scenarios[i].domain for i in selection.train}),
        counts=counts,
        ratio=_ratio(plan, selection),
        spread_check=selection.spread,
        contamination=guarded.report,
        persistence=_persistence(plan, len(probes), skipped),
        quality=mixture_quality(plan.runs),
        files={"dropped": DROPPED_FILE},
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    shutil.rmtree(staging / ".base", ignore_errors=True)  # a row-wise --base file's parquet copy
    write_meta(staging, meta)
    swap_in(staging, config.out)
    progress.report("mix", step="done", out=str(config.out))
    return meta


def _counts(plan: MixPlan, selection: TrainSelection, guarded: Guarded, dropped: list[Reject], splits: dict[str, int], probes: int) -> dict[str, Any]:
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


def _ratio(plan: MixPlan, selection: TrainSelection) -> dict[str, Any]:
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


def _persistence(plan: MixPlan, probes: int, skipped: str | None) -> dict[str, Any] | None:
    if plan.resolved.recipe.persistence is None:
        return None
    out: dict[str, Any] = {
        "scenarios": probes,
        "splits": list(PERSISTENCE_SPLITS) if probes else [],
        "personas": {v: p.model_dump(mode="json") for v, p in plan.personas.items()},
    }
    if skipped is not None:
        out["skipped"] = skipped
    return out


def _provenance(plan: MixPlan) -> dict[str, Any]:
    config = plan.config
    prompts = PromptSet(config.prompts)
    return {
        "generator": f"scenario-forge {__version__}",
        "recipe_file": str(config.resolution.recipe_file),
        "taxonomy": config.resolution.taxonomy.model_dump(mode="json"),
        "config": config.model_dump(mode="json"),
        "templates": prompts.hash_of([t for t in ("policy_answer.j2", "grade_criterion.j2") if t in prompts.hashes]),
        "scenario_models": sorted({(r.get("provenance") or {}).get("model") or "?" for r in plan.runs}),
    }
