"""The artifacts a run leaves in the Prefect UI, under stable keys.

Per run (``STAGE-RUNID-KIND``, lowercased, anything but ``a-z0-9-`` turned into ``-``):

- ``...-progress``: a progress artifact, created at 0 % when the shards are submitted and updated
  as each one finishes (resumed shards count: they are done);
- ``...-counts``: a table of kept/planned scenarios per domain (rows) and trait (columns);
- ``...-report``: a markdown report of the manifest: counts, rejects by reason, model usage,
  timings, provenance.

A rerun of the same run (same ``run_id``) adds a new version under the same keys, so the UI's
artifact page shows the run's history; every version is also attached to its flow run.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

from ..store import ShardSpec, ShardSummary


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) from free-form parts.

    >>> artifact_key("generate", "health-n20-s0_ab12CD", "progress")
    'generate-health-n20-s0-ab12cd-progress'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower())
    return re.sub(r"-{2,}", "-", slug).strip("-")


def counts_table(shards: list[ShardSpec], kept_pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Rows of ``kept/planned`` per domain x trait (only traits the plan contains become columns)."""
    planned = Counter((seed.domain, seed.trait) for shard in shards for seed in shard.seeds)
    kept = Counter(kept_pairs)
    domains = sorted({d for d, _ in planned})
    traits = sorted({t for _, t in planned})
    rows: list[dict[str, Any]] = []
    for domain in domains:
        row: dict[str, Any] = {"domain": domain}
        for trait in traits:
            p = planned[(domain, trait)]
            row[trait] = f"{kept[(domain, trait)]}/{p}" if p else ""
        row["total"] = f"{sum(kept[(domain, t)] for t in traits)}/{sum(planned[(domain, t)] for t in traits)}"
        rows.append(row)
    return rows


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def run_report_markdown(manifest: dict[str, Any]) -> str:
    """A readable report of a run's manifest (the markdown artifact)."""
    counts, prov, timings = manifest["counts"], manifest["provenance"], manifest.get("timings", {})
    out = Path(str(manifest["config"].get("out", "."))) / manifest["run_id"]
    lines = [
        f"# Run `{manifest['run_id']}`",
        "",
        f"Output: `{out}` ({', '.join(f'`{v}`' for v in manifest.get('files', {}).values())})",
        "",
        *_table(
            ["planned", "kept", "rejected", "deduplicated"],
            [[counts["planned"], counts["kept"], counts["rejected"], counts["deduplicated"]]],
        ),
        "",
    ]
    if counts.get("rejected_by_reason"):
        lines += ["## Dropped rows by reason", ""]
        lines += _table(["stage:reason", "rows"], sorted(counts["rejected_by_reason"].items(), key=lambda kv: -kv[1]))
        lines.append("")
    if counts.get("deduplicated"):
        lines += [f"Near-duplicates removed: {counts['deduplicated']}", ""]
    if manifest.get("usage"):
        lines += ["## Model usage by stage", ""]
        lines += _table(
            ["stage", "requests", "prompt tok", "completion tok", "wall s", "tok/s", "retries", "failures"],
            [
                [
                    stage,
                    u["requests"],
                    u["prompt_tokens"],
                    u["completion_tokens"],
                    f"{u['wall_s']:.1f}",
                    f"{u['tokens_per_s']:.1f}",
                    u["retries"],
                    u["failures"],
                ]
                for stage, u in manifest["usage"].items()
            ],
        )
        lines.append("")
    if timings:
        lines += ["## Timings", ""] + _table(list(timings), [list(timings.values())]) + [""]
    lines += [
        "## Provenance",
        "",
        f"- model: `{prov['model']}` ({prov['backend']} backend)",
        f"- taxonomy: {prov['taxonomy_name']} {prov['taxonomy_version']} (`{prov['taxonomy_hash']}`)",
        f"- plan seed: {prov['plan_seed']}",
        f"- prompt templates: {', '.join(f'{k} `{str(v)[:12]}`' for k, v in sorted(prov['templates'].items()))}",
        f"- generator: {prov['generator']}",
    ]
    return "\n".join(lines) + "\n"


class RunArtifacts:
    """Creates and updates one run's artifacts (call inside a flow run: they attach to it)."""

    def __init__(self, stage: str, run_id: str, total_shards: int) -> None:
        from prefect.artifacts import create_progress_artifact

        self.stage, self.run_id, self.total = stage, run_id, total_shards
        self.keys = {kind: artifact_key(stage, run_id, kind) for kind in ("progress", "counts", "report")}
        self.resumed = 0
        created = create_progress_artifact(0.0, key=self.keys["progress"], description=self._describe(0))
        if not isinstance(created, UUID):  # called from a sync flow: the id itself, never a coroutine
            raise TypeError("RunArtifacts must be used from a synchronous flow")
        self.progress_id: UUID = created

    def _describe(self, done: int) -> str:
        resumed = f", {self.resumed} resumed" if self.resumed else ""
        return f"{self.stage} `{self.run_id}`: {done}/{self.total} shards done{resumed}"

    def shard_done(self, summary: ShardSummary, done: int) -> None:
        """Advance the progress artifact (called as each shard finishes, in any order)."""
        from prefect.artifacts import update_progress_artifact

        self.resumed += summary.resumed
        update_progress_artifact(self.progress_id, 100.0 * done / max(self.total, 1), description=self._describe(done))

    def finish(self, shards: list[ShardSpec], scenarios_path: Path, manifest: dict[str, Any]) -> None:
        """The counts table and the markdown report, from the finished run's files."""
        import pyarrow.parquet as pq
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        kept = pq.read_table(scenarios_path, columns=["domain", "trait"]).to_pydict()
        create_table_artifact(
            counts_table(shards, list(zip(kept["domain"], kept["trait"]))),
            key=self.keys["counts"],
            description=f"{self.stage} `{self.run_id}`: kept/planned scenarios per domain and trait",
        )
        create_markdown_artifact(
            run_report_markdown(manifest),
            key=self.keys["report"],
            description=f"{self.stage} `{self.run_id}`: run report",
        )
