"""Build a Hugging Face Hub-layout dataset folder from a run or a mixture.

Layout::

    README.md                                    dataset card: YAML front matter (configs, license,
                                                 task_categories, tags, size_categories), counts,
                                                 coverage heatmap, full provenance, the recipe
    coverage.png                                 the heatmap the card shows
    .scenario-forge-published.json               marker: tool version and source (not pushed to the Hub);
                                                 ``--overwrite`` replaces only a folder that carries it
    mixture.json | manifest.json                 the source's own description, as written
    data/<config>/<split>-NNNNN-of-NNNNN.parquet  the rows, sharded

For a mixture the configs are ``mixture`` (split ``train``), one per held-out split (split ``test``),
``persistence`` (splits ``plain``, ``harmful``, ``helpful``) and the trainer exports ``trl`` and
``verl`` (every mixture split under its own name). For a run: ``scenarios`` (the full scenario
records) and the exports of them as rubric rows. ``datasets.load_dataset(DIR, CONFIG)`` loads each.
The folder is built in a staging folder and swapped in, so a failed publish leaves nothing half-made.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import yaml

from .. import __version__, templating
from ..atomic import atomic_write_text
from ..curation.quality import read_run_quality, source_readiness
from ..errors import ConfigError
from ..mixing.rows import beneficial_row
from ..mixture import MixtureMeta, mixture_features, mixture_table, read_meta
from ..parquet import features
from ..records import Scenario
from ..schema import read_scenarios
from ..staging import staging_for, swap_in
from ..taxonomy.models import Taxonomy
from .config import PublishConfig
from .exports import EXPORTS, REWARD_FUNCTIONS
from .heatmap import draw_heatmap, find_run_figure

#: The dataset card's Jinja template (rendered in the sandbox, see :mod:`scenario_forge.templating`).
CARD_TEMPLATE = Path(__file__).parent / "card.md.j2"
#: Written into every published folder; ``--overwrite`` replaces only folders that carry it.
MARKER = ".scenario-forge-published.json"
HOMEPAGE = "https://github.com/scenario-forge/scenario-forge"
TASK_CATEGORIES = ["text-generation", "reinforcement-learning"]
BASE_TAGS = ["synthetic", "rlhf", "grpo", "rubrics", "alignment", "beneficial-traits", "scenario-forge"]
ABOUT = {
    "train": "training mixture: beneficial-trait scenarios (rubric reward) + standard RL tasks (exact-match reward)",
    "heldout": "in-distribution held-out scenarios (same domains and traits as training)",
    "heldout_domains": "scenarios from domains held out of training",
    "heldout_traits": "scenarios from traits held out of training",
    "plain": "persistence probes: held-out scenarios as they are",
    "harmful": "persistence probes: the same scenarios under a harmful operator persona",
    "helpful": "persistence probes: the same scenarios under a helpful operator persona (control)",
}


@dataclass
class Part:
    """One split of one config: where its rows come from and how they are shaped."""

    config: str
    split: str
    source: Path
    features: Any
    transform: Callable[..., pl.DataFrame] | None = None
    about: str = ""
    rows: int = 0
    files: list[str] = field(default_factory=list)


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows.

    >>> size_category(999), size_category(12_000), size_category(10_000_000)
    ('n<1K', '10K<n<100K', '10M<n<100M')
    """
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")):
        if n < limit:
            return name
    return "n>1T" if n >= 10**12 else "1B<n<10B"


def _write_part(part: Part, root: Path, shard_rows: int) -> None:
    total = pq.ParquetFile(part.source).metadata.num_rows
    part.rows = total
    folder = root / "data" / part.config
    folder.mkdir(parents=True, exist_ok=True)
    shards = max(1, math.ceil(total / shard_rows))
    schema = part.features.arrow_schema
    lazy = pl.scan_parquet(part.source)
    for i in range(shards):
        frame = lazy.slice(i * shard_rows, shard_rows).collect()
        if part.transform is not None:
            frame = part.transform(frame, i * shard_rows)
        table = frame.to_arrow(compat_level=pl.CompatLevel.oldest()).select(schema.names).cast(schema)
        name = f"{part.split}-{i:05d}-of-{shards:05d}.parquet"
        pq.write_table(table, folder / name)
        part.files.append(f"data/{part.config}/{name}")


def _mixture_parts(source: Path, meta: MixtureMeta, exports: list[str], staging: Path) -> list[Part]:
    parts: list[Part] = []
    splits = {name: source / f"{name}.parquet" for name, n in meta.splits.items() if n > 0}
    for name, path in splits.items():
        if name == meta.train_split:
            parts.append(Part("mixture", "train", path, mixture_features(), about=ABOUT["train"]))
        elif name.startswith("heldout"):
            parts.append(Part(name, "test", path, mixture_features(), about=ABOUT.get(name, "held-out scenarios")))
        elif name.startswith("persistence_"):
            variant = name.removeprefix("persistence_")
            parts.append(Part("persistence", variant, path, mixture_features(), about=ABOUT.get(variant, name)))
        else:
            parts.append(Part(name, "test", path, mixture_features(), about="evaluation split"))
    for export in exports:
        transform, export_features = EXPORTS[export]
        for name, path in splits.items():
            parts.append(Part(export, name, path, export_features(), transform, about=f"{export} format of split `{name}`"))
    return parts


def _run_parts(source: Path, exports: list[str], staging: Path) -> list[Part]:
    scenarios = source / "scenarios.parquet"
    if pq.ParquetFile(scenarios).metadata.num_rows == 0:
        return []
    parts = [Part("scenarios", "train", scenarios, features(Scenario), about="curated scenarios with rubrics and provenance")]
    if exports:
        rows_path = staging / ".rows.parquet"
        table = mixture_table(beneficial_row(s, "train") for s in read_scenarios(scenarios))
        pq.write_table(table, rows_path)
        for export in exports:
            transform, export_features = EXPORTS[export]
            parts.append(Part(export, "train", rows_path, export_features(), transform, about=f"{export} format of the scenarios"))
    return parts


def _coverage(config: PublishConfig, parts: list[Part], figure: Path) -> str:
    """Write the heatmap to ``figure``; returns a one-line note about it."""
    sources: list[Path] = [config.source]
    if config.kind == "mixture":
        runs = (read_meta(config.source).sources or {}).get("runs") or []
        sources = [Path(r["path"]) for r in runs if r.get("path")]
    found = find_run_figure(sources)
    if found is not None:
        shutil.copyfile(found, figure)
        return f"The run's own coverage figure ({found.name})."
    frames = []
    for part in parts:
        if part.config in ("mixture", "scenarios") or part.config.startswith("heldout"):
            cols = ["domain", "trait"] + (["source"] if part.config != "scenarios" else [])
            frame = pl.scan_parquet(part.source).select(cols)
            if "source" in cols:
                frame = frame.filter(pl.col("source") == "beneficial")
            frames.append(frame.select("domain", "trait").collect())
    cells: Counter[tuple[str, str]] = Counter()
    if frames:
        counted = pl.concat(frames).group_by("domain", "trait").len()
        cells.update({(d, t): n for d, t, n in counted.iter_rows() if d is not None and t is not None})
    # Rows and columns in the order of the taxonomy the source was made with (ids it does not know last).
    taxonomy = source_taxonomy(config)
    known_domains = [d.id for d in taxonomy.domains] if taxonomy is not None else []
    known_traits = [t.id for t in taxonomy.traits] if taxonomy is not None else []

    def ordered(known: list[str], present: set[str]) -> list[str]:
        return [i for i in known if i in present] + sorted(present - set(known))

    domains = ordered(known_domains, {d for d, _ in cells})
    traits = ordered(known_traits, {t for _, t in cells})
    draw_heatmap(cells, figure, "beneficial-trait scenarios per domain x trait (train + held-out)", domains, traits)
    return f"{sum(cells.values())} scenarios over {len(cells)} domain x trait cells (training and held-out rows)."


def source_taxonomy(config: PublishConfig) -> Taxonomy | None:
    """The taxonomy the source was made with, as its own record names it: a mixture's
    ``mixture.json`` (the taxonomy its recipe was resolved against), a run's ``manifest.json``
    (the one it generated from): the folder in the recorded config (none: the shipped one), used
    only if its hash is the recorded one. None when the source records none, or that taxonomy is
    gone or has changed since (the heatmap then orders ids alphabetically)."""
    from ..taxonomy.loader import load_taxonomy, taxonomy_hash

    if config.kind == "mixture":
        provenance = read_meta(config.source).provenance
        folder = (provenance.get("config") or {}).get("taxonomy")
        want = (provenance.get("taxonomy") or {}).get("hash")
    else:
        manifest = _run_manifest(config.source)
        folder = (manifest.get("config") or {}).get("taxonomy")
        want = (manifest.get("provenance") or {}).get("taxonomy_hash")
    if not want:
        return None
    try:
        taxonomy = load_taxonomy(folder)
    except ConfigError:
        return None
    return taxonomy if taxonomy_hash(taxonomy) == want else None


def _run_manifest(source: Path) -> dict[str, Any]:
    """A run folder's ``manifest.json`` ({} if it has none)."""
    path = source / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return data if isinstance(data, dict) else {}


def _provenance(config: PublishConfig) -> tuple[dict[str, Any], str | None, str, dict[str, Any]]:
    """``(provenance, recipe YAML, provenance file name, counts)`` of the source."""
    if config.kind == "mixture":
        meta = read_meta(config.source).model_dump(mode="json")
        provenance = {
            "recipe": meta.get("recipe"),
            "seed": meta.get("seed"),
            "ratio": meta.get("ratio"),
            "runs": (meta.get("sources") or {}).get("runs"),
            "base": (meta.get("sources") or {}).get("base"),
            "mixer": meta.get("provenance"),
            "spread_check": meta.get("spread_check"),
            "contamination": meta.get("contamination"),
            "persistence": meta.get("persistence"),
            "created_at": meta.get("created_at"),
        }
        recipe_yaml = yaml.safe_dump(meta.get("recipe"), sort_keys=False).strip()
        counts = {"splits": meta.get("splits"), **(meta.get("counts") or {})}
        return provenance, recipe_yaml, "mixture.json", counts
    manifest = _run_manifest(config.source)
    if not manifest:
        scenarios = read_scenarios(config.source / "scenarios.parquet")
        manifest = {"provenance": scenarios[0].provenance.model_dump(mode="json") if scenarios else {}}
    provenance = {k: manifest.get(k) for k in ("run_id", "generator", "created_at", "provenance", "config", "usage", "curation") if k in manifest}
    counts = manifest.get("counts") or {}
    return provenance, None, "manifest.json", counts


def _card(config: PublishConfig, parts: list[Part], heatmap_note: str) -> str:
    from huggingface_hub import DatasetCard, DatasetCardData

    configs: list[dict[str, Any]] = []
    for part in parts:
        entry = next((c for c in configs if c["config_name"] == part.config), None)
        if entry is None:
            entry = {"config_name": part.config, "data_files": []}
            configs.append(entry)
        entry["data_files"].append({"split": part.split, "path": f"data/{part.config}/{part.split}-*.parquet"})
    configs[0]["default"] = True
    provenance, recipe_yaml, provenance_file, counts = _provenance(config)
    main_rows = sum(p.rows for p in parts if p.config == configs[0]["config_name"])
    name = config.pretty_name or (
        f"scenario-forge mixture {provenance['recipe']['name']}" if config.kind == "mixture" else f"scenario-forge run {provenance.get('run_id') or config.source.name}"
    )
    data = DatasetCardData(
        language=["en"],
        license=config.license,
        pretty_name=name,
        task_categories=TASK_CATEGORIES,
        tags=BASE_TAGS + [t for t in config.tags if t not in BASE_TAGS],
        size_categories=[size_category(main_rows)],
        configs=configs,
    )
    if config.kind == "mixture":
        ratio = provenance.get("ratio") or {}
        summary = (
            f"A training mixture built with recipe `{provenance['recipe']['name']}`: "
            f"{(provenance['recipe'].get('description') or '').strip()} Beneficial share {ratio.get('fraction')} "
            f"(exact: {ratio.get('exact')}); held-out and persistence splits are contamination-checked against training."
        )
        spread = provenance.get("spread_check") or {}
        spread_note = (
            f"Rubrics were checked for RL fitness before training: {spread.get('k')} answers sampled per scenario by "
            f"`{spread.get('policy')}` and graded by `{spread.get('judge')}`; {spread.get('flat')} rubrics with no score "
            f"spread and {spread.get('unscoreable')} unscoreable ones were "
            f"{'kept' if spread.get('kept_flagged') else 'kept out of training'}. `rubric_spread` holds each row's spread."
            + judge_qualification_note(spread.get("judge_qualification"))
            if spread.get("enabled") else "The rubric spread check was off for this mixture."
        )
    else:
        summary = "Curated multi-turn pressure scenarios, each with a per-item rubric, from one scenario-forge run."
        spread_note = ""
    # What DatasetCard.from_template does, but rendered in Jinja's sandbox with StrictUndefined.
    template_path = CARD_TEMPLATE
    template = templating.sandboxed_environment().from_string(template_path.read_text(encoding="utf-8"))
    variables = dict(
        data.to_dict(),  # type: ignore[no-untyped-call]  # huggingface_hub leaves it unannotated
        card_data=data.to_yaml(),
        pretty_name=name,
        summary=summary,
        homepage=HOMEPAGE,
        generator_version=__version__,
        repo_ref=config.repo_id or "ORG/NAME",
        configs=configs,
        config_rows=[{"config": p.config, "split": p.split, "rows": p.rows, "about": p.about} for p in parts],
        exports=bool(config.exports),
        rewards={name: REWARD_FUNCTIONS[name] for name in config.exports},
        heatmap="coverage.png",
        coverage_note=heatmap_note,
        counts_json=json.dumps(counts, indent=2, default=str),
        spread_note=spread_note,
        provenance_json=json.dumps(provenance, indent=2, default=str),
        provenance_file=f"`{provenance_file}`",
        readiness=_readiness(config),
        recipe_yaml=recipe_yaml,
        license=f"License: `{config.license}`",
    )
    return str(DatasetCard(templating.render(template, template_path, **variables)))


def _readiness(config: PublishConfig) -> dict[str, Any]:
    """The card's "Training readiness" section: the verdict, why, and the run's quality figures."""
    ready, because = source_readiness(config.source)
    figures = None
    if config.kind == "run":
        quality = read_run_quality(config.source)
        if quality is not None:
            figures = json.dumps({k: v for k, v in quality.items() if k != "verdict"}, indent=2, default=str)
    return {"ready": "yes" if ready else "no", "because": because, "figures_json": figures}


@dataclass
class PublishResult:
    folder: Path
    configs: dict[str, dict[str, int]]
    files: list[str]
    url: str | None = None

    def summary(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "configs": self.configs, "files": len(self.files), "url": self.url}


def build_hub_folder(config: PublishConfig, target: Path | None = None) -> PublishResult:
    """Write the Hub-layout folder to ``target`` (default ``config.local``)."""
    target = target or config.local
    if target is None:
        raise ConfigError("no folder to build into: pass --local DIR")
    resolved, source = target.resolve(), config.source.resolve()
    if resolved == source or resolved in source.parents:
        raise ConfigError(f"--local {target} is the source folder or holds it; not writing there")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        if not config.overwrite:
            raise ConfigError(f"--local {target} exists and is not empty; pass --overwrite to replace it")
        if published_marker(target) is None:
            # --overwrite replaces an earlier publish (it carries our marker), never a folder of something else
            raise ConfigError(
                f"--local {target} is not a published dataset folder (no {MARKER} written by scenario-forge publish); "
                "not replacing it"
            )
    if config.kind == "mixture":
        read_meta(config.source)  # a one-line error for a broken mixture folder
    if config.strict:
        ready, because = source_readiness(config.source)
        if not ready:
            raise ConfigError(f"--strict: {config.source} is not training-ready, because {'; '.join(because)}; nothing was written")
    with staging_for(target) as staging:
        staging.mkdir(parents=True)
        if config.kind == "mixture":
            meta = read_meta(config.source)
            parts = _mixture_parts(config.source, meta, list(config.exports), staging)
            shutil.copyfile(config.source / "mixture.json", staging / "mixture.json")
        else:
            parts = _run_parts(config.source, list(config.exports), staging)
            if (config.source / "manifest.json").is_file():
                shutil.copyfile(config.source / "manifest.json", staging / "manifest.json")
        # Empty splits are left out of the card and the folder (a 0-row parquet config does not load).
        parts = [p for p in parts if pq.ParquetFile(p.source).metadata.num_rows > 0]
        if not parts:
            raise ConfigError(f"{config.source} has no rows to publish (0 scenarios); nothing written")
        for part in parts:
            _write_part(part, staging, config.shard_rows)
        atomic_write_text(staging / MARKER, json.dumps(
            {"tool": "scenario-forge", "version": __version__, "source": str(source), "kind": config.kind}, indent=2
        ))
        note = _coverage(config, parts, staging / "coverage.png")
        atomic_write_text(staging / "README.md", _card(config, parts, note))
        (staging / ".rows.parquet").unlink(missing_ok=True)
        swap_in(staging, target)
    configs: dict[str, dict[str, int]] = {}
    for part in parts:
        configs.setdefault(part.config, {})[part.split] = part.rows
    return PublishResult(folder=target, configs=configs, files=[f for p in parts for f in p.files])


def published_marker(folder: Path) -> dict[str, Any] | None:
    """The marker a publish leaves in its folder (``MARKER``), or None if ``folder`` has none.

    ``--overwrite`` replaces only folders that carry it.
    """
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "scenario-forge" else None


def judge_qualification_note(q: dict[str, Any] | None) -> str:
    """One sentence on the grading judge's qualification (``scenario-forge judge check``) for the card."""
    if not q:
        return ""
    if q.get("status") == "unqualified":
        return " That judge had no qualification against hand labels (`scenario-forge judge check`) when the mixture was built."
    f1, n = q.get("macro_f1"), q.get("n")
    verdict = "qualified" if q.get("status") == "qualified" else f"below the {q.get('threshold')} threshold"
    return (f" Against {n} hand-labelled verdicts that judge had macro-F1 {f1:.2f} and accuracy "
            f"{q.get('accuracy'):.2f} ({verdict}; `scenario-forge judge check`, key `{q.get('key')}`).")
