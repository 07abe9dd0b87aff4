"""``manifest.json``: what a run was asked to do, what it produced, and what it cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import AccountingError
from .records import Provenance, Reject

DEDUP_STAGE = "dedup"


class Counts(BaseModel):
    """``planned = kept + rejected + deduplicated``, with the rejects broken down."""

    model_config = ConfigDict(extra="forbid")

    planned: int
    kept: int
    rejected: int
    deduplicated: int
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    rejected_by_stage: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def tally(cls, planned: int, kept: int, rejects: Iterable[Reject]) -> Counts:
        rejects = list(rejects)
        dropped = [r for r in rejects if r.stage != DEDUP_STAGE]
        counts = cls(
            planned=planned,
            kept=kept,
            rejected=len(dropped),
            deduplicated=len(rejects) - len(dropped),
            rejected_by_reason=dict(sorted(Counter(f"{r.stage}:{r.reason}" for r in dropped).items())),
            rejected_by_stage=dict(sorted(Counter(r.stage for r in rejects).items())),
        )
        counts.check()
        return counts

    def check(self) -> None:
        if self.planned != self.kept + self.rejected + self.deduplicated:
            raise AccountingError(
                f"accounting does not add up: planned {self.planned} != kept {self.kept} + "
                f"rejected {self.rejected} + deduplicated {self.deduplicated}"
            )


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    generator: str
    config: dict[str, Any]
    provenance: Provenance
    counts: Counts
    usage: dict[str, dict[str, float | int]]
    timings: dict[str, float | int]
    files: dict[str, str]
    #: What the run cost, per stage and in total, and per kept scenario (:func:`run_cost`): always
    #: derived from ``usage`` and ``counts`` (a re-curated run's manifest, or one written before
    #: the field existed, gets its own figures, never a stale copy).
    cost: dict[str, dict[str, float | int]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _derive_cost(self) -> Manifest:
        self.cost = run_cost(self.usage, self.counts.kept) if self.usage else {}
        return self


#: The usage fields a cost row sums, and the per-kept-scenario figures derived from them.
COST_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "server_s")


def run_cost(usage: dict[str, dict[str, float | int]], kept: int) -> dict[str, dict[str, float | int]]:
    """Requests, tokens and server-seconds per stage and in total, and each per kept scenario
    (``*_per_kept``; absent when nothing was kept). Server-seconds are the stage's share of the
    backend's busy time times its servers (``scenario_forge.backends.busy``): GPU-seconds on a GPU
    server. Rejected scenarios' requests are in every figure: that is what a kept one costs.

    >>> c = run_cost({"brief": {"requests": 8, "prompt_tokens": 800, "completion_tokens": 200, "server_s": 2.0}}, kept=4)
    >>> c["total"]["tokens_per_kept"], c["brief"]["server_s_per_kept"], c["total"]["requests_per_kept"]
    (250.0, 0.5, 2.0)
    """
    rows: dict[str, dict[str, float | int]] = {}
    for stage, u in usage.items():
        rows[stage] = {f: u.get(f, 0) for f in COST_FIELDS}
    rows["total"] = {f: sum(r[f] for r in rows.values()) for f in COST_FIELDS}
    for row in rows.values():
        row["server_s"] = round(float(row["server_s"]), 3)
        row["tokens"] = row["prompt_tokens"] + row["completion_tokens"]
        if kept > 0:
            for f in (*COST_FIELDS, "tokens"):
                row[f"{f}_per_kept"] = round(row[f] / kept, 4)
    rows["total"]["kept"] = kept
    return rows


def cost_markdown(cost: dict[str, dict[str, float | int]]) -> list[str]:
    """The cost table of ``report.md`` (``Manifest.cost``)."""
    if not cost:
        return []
    kept = cost.get("total", {}).get("kept", 0)
    lines = [
        "## Cost",
        "",
        f"Per stage, over every request (rejected scenarios' included), and per kept scenario ({kept} kept). "
        "Server-seconds: the stage's share of the backend's busy time, times its servers.",
        "",
        "| stage | requests | prompt tokens | completion tokens | server-s | tokens / kept | server-s / kept |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for stage, r in cost.items():
        per_tok = f"{r['tokens_per_kept']:,.0f}" if "tokens_per_kept" in r else "-"
        per_s = f"{r['server_s_per_kept']:.3f}" if "server_s_per_kept" in r else "-"
        name = f"**{stage}**" if stage == "total" else stage
        lines.append(f"| {name} | {r['requests']:,} | {r['prompt_tokens']:,} | {r['completion_tokens']:,} | "
                     f"{r['server_s']:.1f} | {per_tok} | {per_s} |")
    return [*lines, ""]
