"""The prompts an arm trains on, drawn before training, stratified by source.

Left to itself, TRL's sampler draws a run's ``max_steps x prompts per step`` prompts uniformly at
random from the dataset it is given. At a small budget a small share is then a coin toss: 5% of a
12-prompt run is 0.6 prompts in expectation, and an arm mixed at 5% can train on no beneficial row
at all. So the experiment draws each arm's prompts itself, before any training:

- the budget's prompts are **apportioned by source** (``beneficial`` / ``standard``, from the
  mixture rows) in proportion to the arm's train split, by **largest remainder**: each source gets
  the whole part of its share, and the prompts left over go to the largest fractional parts
  (ties: the larger source, then the name). 2 beneficial + 38 standard rows and 12 prompts:
  0.6 and 11.4 -> 1 beneficial, 11 standard;
- within a source, rows are taken in the order of ``sha256(seed:row id)``: seeded, the same for a
  given seed, and the same across arms for the rows they share (arms mixed from the same standard
  rows draw the same standard prompts, so they differ in their beneficial prompts, not by chance in
  their standard ones). A source asked for more prompts than it has rows is passed over whole as
  many times as fit, then the rest in that order (``short_data: cycle``);
- the drawn prompts are written as a mixture folder of their own (``OUT/arms/ARM/prompts``, its
  train split exactly those prompts, ``trained_domains`` the domains of the drawn beneficial rows)
  and that folder is what the arm trains on: TRL's sampler then takes each drawn prompt exactly once
  (one epoch of ``max_steps x prompts per step`` rows), in its own seeded order.

After training, :func:`used_prompts` counts the prompts the trainer actually scored per source from
``rewards.jsonl``, so the report shows planned and used side by side.

>>> apportion({"beneficial": 2, "standard": 38}, 12)
{'beneficial': 1, 'standard': 11}
>>> apportion({"beneficial": 1, "standard": 99}, 12)
{'beneficial': 0, 'standard': 12}
>>> apportion({"beneficial": 3, "standard": 3}, 3)
{'beneficial': 2, 'standard': 1}
>>> apportion({"standard": 5}, 12)
{'standard': 12}
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from ..errors import ConfigError
from ..hashing import sha256_hex
from ..mixture import MixtureMeta, read_meta, write_meta, write_split
from ..records import MixtureRow

#: The sources a mixture row can have, in the order the report names them.
SOURCES = ("beneficial", "standard")
#: The arm's drawn prompts, a mixture folder under ``OUT/arms/ARM``.
PROMPTS_DIR = "prompts"


def apportion(sizes: dict[str, int], n: int) -> dict[str, int]:
    """``n`` prompts split over the sources in proportion to ``sizes``, by largest remainder
    (exact fractions; ties go to the larger source, then to the name that sorts first)."""
    total = sum(sizes.values())
    if n < 0 or total <= 0:
        raise ValueError(f"cannot apportion {n} prompts over {total} rows")
    shares = {s: Fraction(n * k, total) for s, k in sizes.items()}
    counts = {s: int(q) for s, q in shares.items()}  # floor: shares are >= 0
    left = n - sum(counts.values())
    order = sorted(sizes, key=lambda s: (-(shares[s] - counts[s]), -sizes[s], s))
    for s in order[:left]:
        counts[s] += 1
    return {s: counts[s] for s in sorted(sizes)}


def rank(seed: int, row_id: str) -> str:
    """A row's place in the draw: depends only on the seed and the row's id."""
    return sha256_hex(f"{seed}:{row_id}")


def draw_prompts(rows: Sequence[MixtureRow], n: int, seed: int) -> list[MixtureRow]:
    """``n`` rows of ``rows`` stratified by source (see the module docstring); a source with fewer
    rows than its quota is passed over whole, then the rest. Ordered by source, then pass, then rank."""
    ids = [r.id for r in rows]
    twice = sorted(k for k, c in Counter(ids).items() if c > 1)
    if twice:
        raise ConfigError(f"the train split holds row id(s) {', '.join(twice[:3])} more than once: the draw needs unique ids")
    by_source: dict[str, list[MixtureRow]] = defaultdict(list)
    for r in rows:
        by_source[r.source].append(r)
    quotas = apportion({s: len(rs) for s, rs in by_source.items()}, n)
    drawn: list[MixtureRow] = []
    for source in sorted(by_source):
        ranked = sorted(by_source[source], key=lambda r: rank(seed, r.id))
        k = quotas[source]
        passes, rest = divmod(k, len(ranked))
        drawn += ranked * passes + ranked[:rest]
    return drawn


def by_source(rows: Sequence[MixtureRow]) -> dict[str, int]:
    """Rows per source, every source named (0 when absent)."""
    counts: Counter[str] = Counter(r.source for r in rows)
    return {s: counts[s] for s in SOURCES}


def write_prompts(mixture: Path, rows: Sequence[MixtureRow], ids: Sequence[str], out: Path, seed: int) -> Path:
    """Write the drawn prompts (``ids``, in order, repeats kept) as a mixture folder at ``out``: its
    train split is exactly what the arm trains on; ``trained_domains`` are the drawn beneficial rows'."""
    meta = read_meta(mixture)
    index = {r.id: r for r in rows}
    missing = [i for i in ids if i not in index]
    if missing:
        raise ConfigError(f"arm prompts: row(s) {', '.join(missing[:3])} are not in {mixture}'s train split (mix again)")
    drawn = [index[i] for i in ids]
    out.mkdir(parents=True, exist_ok=True)
    split = meta.train_split
    kept = write_split(out, split, drawn)
    write_meta(out, MixtureMeta(
        recipe=meta.recipe, seed=meta.seed, splits={split: kept}, train_split=split,
        trained_domains=sorted({r.domain for r in drawn if r.source == "beneficial" and r.domain}),
        provenance={"drawn_from": str(mixture), "draw_seed": seed, "prompts": len(drawn), "by_source": by_source(drawn),
                    "how": "stratified by source, largest remainder (scenario_forge.experiment.draw)"},
    ))
    return out


def used_prompts(train_dir: Path, num_generations: int, completions_per_step: int) -> dict[str, int] | None:
    """Prompts the trainer actually scored, per source, from ``rewards.jsonl`` (one line per
    completion, ``num_generations`` per prompt). A step logged twice (rerun after a resume from an
    earlier checkpoint) counts once: its last ``completions_per_step`` lines. None without a log."""
    path = train_dir / "rewards.jsonl"
    if not path.is_file():
        return None
    steps: dict[int, list[str]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            steps[int(entry.get("step") or 0)].append(str(entry.get("source")))
    completions = Counter(s for lines in steps.values() for s in lines[-completions_per_step:])
    return {s: completions.get(s, 0) // num_generations for s in SOURCES}
