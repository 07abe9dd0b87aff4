"""Load a taxonomy folder from YAML, validate it, and resolve user-typed names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .._validation import one_line
from ..errors import ConfigError
from ..hashing import canonical_json, sha256_hex
from ..resources import resource_dir
from .models import Taxonomy, TaxonomyIndex, normalize_id

# libyaml's safe loader where available: ~10x faster than the pure-Python one.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"taxonomy file not found: {path}")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{where}: malformed YAML ({problem})") from None


def _list_in(path: Path, key: str) -> list[Any]:
    data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ConfigError(f"{path}: expected a mapping with a '{key}:' list")
    items: list[Any] = data[key]
    return items


def load_taxonomy(folder: str | Path | None = None) -> Taxonomy:
    """Load and validate the taxonomy in ``folder`` (default: the shipped one).

    Raises :class:`ConfigError` with a one-line message naming the file and field at fault. Each
    call reads the files (a few ms): a job loads its taxonomy once, in its config's validator
    (:class:`TaxonomySelection`), and passes that on.
    """
    root = Path(folder) if folder is not None else resource_dir("taxonomy")
    if not root.is_dir():
        raise ConfigError(f"taxonomy folder not found: {root}")
    return _load(root)


def _load(root: Path) -> Taxonomy:
    index_path = root / "taxonomy.yaml"
    raw_index = _read_yaml(index_path)
    try:
        index = TaxonomyIndex.model_validate(raw_index)
    except ValidationError as exc:
        raise ConfigError(one_line(exc, str(index_path))) from None
    files = {
        "domains": root / index.domains_file,
        "traits": root / index.traits_file,
        "pressures": root / index.pressures_file,
    }
    lists = {key: _list_in(path, key) for key, path in files.items()}
    try:
        return Taxonomy(
            name=index.name,
            version=index.version,
            default_pairing_weight=index.default_pairing_weight,
            **lists,
        )
    except ValidationError as exc:
        first_loc = exc.errors()[0].get("loc", ())
        where = str(files.get(str(first_loc[0]), root)) if first_loc else str(root)
        raise ConfigError(one_line(exc, where)) from None


def taxonomy_hash(taxonomy: Taxonomy) -> str:
    """A hash of the validated content (not the file bytes): comments do not change it."""
    return sha256_hex(canonical_json(taxonomy))[:16]


def resolve_domains(taxonomy: Taxonomy, names: list[str] | None) -> list[str]:
    """Map ``--domain`` values (ids or aliases) to domain ids; empty/None means all."""
    if not names:
        return [d.id for d in taxonomy.domains]
    table: dict[str, str] = {}
    for d in taxonomy.domains:
        table[d.id] = d.id
        table.update({normalize_id(a): d.id for a in d.aliases})
    out: list[str] = []
    for name in names:
        key = normalize_id(name)
        if key not in table:
            known = ", ".join(d.id for d in taxonomy.domains)
            raise ConfigError(f"unknown domain {name!r}; known domains: {known}")
        if table[key] not in out:
            out.append(table[key])
    return out


def resolve_traits(
    taxonomy: Taxonomy, names: list[str] | None
) -> list[tuple[str, str | None]]:
    """Map ``--trait`` values to ``(trait_id, facet_id | None)``; empty/None means all traits.

    An alias that names a facet (``epistemic_humility``) selects that facet of its trait.
    """
    if not names:
        return [(t.id, None) for t in taxonomy.traits]
    table: dict[str, tuple[str, str | None]] = {}
    for t in taxonomy.traits:
        facet_ids = {f.id for f in t.facets}
        table[t.id] = (t.id, None)
        for alias in t.aliases:
            key = normalize_id(alias)
            table[key] = (t.id, key if key in facet_ids else None)
        for f in t.facets:
            table.setdefault(f.id, (t.id, f.id))
    out: list[tuple[str, str | None]] = []
    for name in names:
        key = normalize_id(name)
        if key not in table:
            known = ", ".join(t.id for t in taxonomy.traits)
            raise ConfigError(f"unknown trait {name!r}; known traits: {known}")
        if table[key] not in out:
            out.append(table[key])
    return out


@dataclass(frozen=True)
class TaxonomySelection:
    """A loaded taxonomy and the domains and traits a job selected from it, names resolved to ids.

    ``names`` is what was resolved (folder, domain names, trait names), so a holder can tell
    whether the selection still matches its fields."""

    taxonomy: Taxonomy
    hash: str
    domains: list[str]
    traits: list[tuple[str, str | None]]
    names: tuple[str | None, tuple[str, ...], tuple[str, ...]]


def select(folder: str | Path | None, domains: list[str] | None, traits: list[str] | None) -> TaxonomySelection:
    """Load the taxonomy in ``folder`` and resolve ``domains`` and ``traits`` (empty: all).

    >>> sel = select(None, ["medicine"], [])
    >>> sel.domains, len(sel.traits) == len(sel.taxonomy.traits), len(sel.hash)
    (['health'], True, 16)
    """
    taxonomy = load_taxonomy(folder)
    return TaxonomySelection(
        taxonomy=taxonomy,
        hash=taxonomy_hash(taxonomy),
        domains=resolve_domains(taxonomy, domains),
        traits=resolve_traits(taxonomy, traits),
        names=selection_names(folder, domains, traits),
    )


def selection_names(
    folder: str | Path | None, domains: list[str] | None, traits: list[str] | None
) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
    """What :func:`select` resolves, as a comparable key."""
    return (None if folder is None else str(folder), tuple(domains or ()), tuple(traits or ()))
