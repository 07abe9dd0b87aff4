"""The run report: ``OUT/RUN_ID/report.md`` and its PNG figures (matplotlib's ``Figure`` API, no pyplot).

Figures: coverage (domain x trait kept counts), rejects by reason, the nearest-neighbour
similarity histogram with the threshold, and diversity per domain x trait cell (distinct-2 of the
user turns, mean nearest-neighbour similarity of the kept scenarios). Every file is written
through a temp file and renamed.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_text
from ..figures import new_figure, save_png
from ..manifest import Counts
from ..records import Scenario

FIGURES = {
    "coverage": "coverage.png",
    "rejects": "rejects.png",
    "similarity": "similarity.png",
    "diversity": "diversity.png",
}
_WORD = re.compile(r"[a-z0-9']+")


def distinct_n(texts: Sequence[str], n: int = 2) -> float | None:
    """Unique n-grams over all n-grams of the texts (lower-cased words); None if there are none.

    >>> distinct_n(["the cat sat", "the cat ran"])
    0.75
    """
    grams: list[tuple[str, ...]] = []
    for text in texts:
        words = _WORD.findall(text.lower())
        grams.extend(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return len(set(grams)) / len(grams) if grams else None


def cell_nn_similarity(scenarios: Sequence[Scenario], vectors: np.ndarray) -> dict[tuple[str, str], float]:
    """Per (domain, trait) cell: the mean over its kept scenarios of the highest cosine to another
    scenario of the same cell (cells with one scenario have none)."""
    cells: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, s in enumerate(scenarios):
        cells[(s.domain, s.trait)].append(i)
    out = {}
    for cell, rows in cells.items():
        if len(rows) < 2:
            continue
        v = vectors[rows]
        sims = v @ v.T
        np.fill_diagonal(sims, -np.inf)
        out[cell] = float(sims.max(axis=1).mean())
    return out


def cell_distinct2(scenarios: Sequence[Scenario]) -> dict[tuple[str, str], float]:
    texts: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in scenarios:
        texts[(s.domain, s.trait)].extend(m.content for m in s.messages if m.role == "user")
    return {cell: d for cell, t in texts.items() if (d := distinct_n(t)) is not None}


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    save_png(fig, path, dpi=100)


def _heatmap(ax: Any, table: dict[tuple[str, str], float], rows: list[str], cols: list[str], title: str, fmt: str) -> None:
    grid = np.full((len(rows), len(cols)), np.nan)
    for (r, c), value in table.items():
        if r in rows and c in cols:
            grid[rows.index(r), cols.index(c)] = value
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_title(title, fontsize=9)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, format(grid[i, j], fmt), ha="center", va="center", fontsize=6, color="white")
    ax.figure.colorbar(image, ax=ax, fraction=0.04)


def write_figures(
    root: Path,
    kept: Sequence[Scenario],
    kept_vectors: np.ndarray | None,
    counts: Counts,
    nn_similarity: np.ndarray | None,
    threshold: float,
) -> dict[str, str]:
    """Write the PNGs into ``root``; returns ``{figure: file name}``."""
    domains = sorted({s.domain for s in kept})
    traits = sorted({s.trait for s in kept})

    fig = new_figure((max(5, 0.45 * len(traits) + 3), max(3, 0.35 * len(domains) + 2)))
    ax = fig.subplots()
    coverage = Counter((s.domain, s.trait) for s in kept)
    if coverage:
        _heatmap(ax, {k: float(v) for k, v in coverage.items()}, domains, traits, "kept scenarios (domain x trait)", ".0f")
    else:
        ax.text(0.5, 0.5, "no kept scenarios", ha="center", va="center")
        ax.set_axis_off()
    _save(fig, root / FIGURES["coverage"])

    reasons = dict(counts.rejected_by_reason)
    if counts.deduplicated:
        reasons["dedup (near-duplicates)"] = counts.deduplicated
    fig = new_figure((7, max(2.5, 0.3 * len(reasons) + 1.5)))
    ax = fig.subplots()
    if reasons:
        items = sorted(reasons.items(), key=lambda kv: kv[1])
        ax.barh([k for k, _ in items], [v for _, v in items], color="tab:red")
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("rows")
    else:
        ax.text(0.5, 0.5, "nothing rejected", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title(f"planned {counts.planned} = kept {counts.kept} + rejected {counts.rejected} + deduplicated {counts.deduplicated}", fontsize=9)
    _save(fig, root / FIGURES["rejects"])

    fig = new_figure((6, 3.5))
    ax = fig.subplots()
    sims = nn_similarity[~np.isnan(nn_similarity)] if nn_similarity is not None else np.zeros(0)
    if len(sims):
        ax.hist(sims, bins=40, range=(min(0.0, float(sims.min())), 1.0), color="tab:blue")
        ax.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold}")
        ax.legend(fontsize=8)
        ax.set_xlabel("cosine similarity to the nearest other candidate")
        ax.set_ylabel("scenarios")
    else:
        ax.text(0.5, 0.5, "fewer than two candidates", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title("nearest-neighbour similarity before deduplication", fontsize=9)
    _save(fig, root / FIGURES["similarity"])

    fig = new_figure((max(9, 0.9 * len(traits) + 5), max(3, 0.35 * len(domains) + 2)))
    axes = fig.subplots(1, 2)
    d2 = cell_distinct2(kept)
    nn = cell_nn_similarity(kept, kept_vectors) if kept_vectors is not None and len(kept_vectors) else {}
    for ax, table, title in ((axes[0], d2, "distinct-2 of user turns"), (axes[1], nn, "mean nearest-neighbour similarity")):
        if table:
            _heatmap(ax, table, domains, traits, title, ".2f")
        else:
            ax.text(0.5, 0.5, "not enough kept scenarios", ha="center", va="center")
            ax.set_axis_off()
            ax.set_title(title, fontsize=9)
    _save(fig, root / FIGURES["diversity"])
    return dict(FIGURES)


def render_markdown(
    run_id: str, counts: Counts, report: dict[str, Any], figures: dict[str, str], quality: dict[str, Any] | None = None
) -> str:
    """``report.md``: the accounting first, then the quality figures and the training-ready
    verdict, then each curation step, then the figures."""
    lines = [
        f"# Curation report: {run_id}",
        "",
        (
            f"**planned {counts.planned} = kept {counts.kept} + rejected {counts.rejected} + "
            f"deduplicated {counts.deduplicated}**"
        ),
        "",
        "| rejected (stage:reason) | rows |",
        "|---|---:|",
    ]
    lines += [f"| {reason} | {n} |" for reason, n in sorted(counts.rejected_by_reason.items(), key=lambda kv: -kv[1])]
    lines += [f"| **rejected** | **{counts.rejected}** |", f"| dedup (near-duplicates) | {counts.deduplicated} |", ""]
    if quality:
        lines += quality_markdown(quality)
    settings = report.get("config", {})
    lines += [
        "## Settings",
        "",
        f"- near-duplicate threshold: {settings.get('threshold')} (cosine), embedding model `{report.get('embedding_model')}`",
        f"- judge: {'on' if settings.get('judge') else 'off'}"
        + (f", model `{report.get('judge', {}).get('judge_model')}`, threshold {settings.get('judge_threshold')}" if settings.get("judge") else "")
        + f"; sign checks: {'on' if settings.get('judge') and settings.get('sign_checks') else 'off'}",
        f"- cross-run dedup against the store's index: {'on' if settings.get('cross_run') else 'off'}",
    ]
    if report.get("curated_with"):
        lines.append(f"- curated together with: {', '.join(report['curated_with'])} (usage figures are for the joint job)")
    gates = report.get("gates", {})
    lines += ["", "## Quality gates", "", f"{gates.get('checked', 0)} checked, {gates.get('rejected', 0)} rejected."]
    for reason, n in gates.get("by_reason", {}).items():
        lines.append(f"- {reason}: {n}")
    judge = report.get("judge")
    if judge:
        lines += [
            "",
            "## LLM judge",
            "",
            (
                f"{judge['judged']} judged: {judge['scored']} scored (mean {judge['mean_score']}), {judge['partial']} "
                f"partial and {judge['unscoreable']} unscoreable ({judge['failed_requests']} failed requests); "
                f"unscoreable verdicts are never read as 0. Rejected: {judge['rejected_low_quality']} below "
                f"{judge['threshold']}, {judge['rejected_unscoreable']} unscoreable; kept unscoreable: "
                f"{judge['kept_unscoreable']}."
            ),
        ]
    signs = report.get("sign_checks")
    if signs:
        lines += [
            "",
            "## Rubric sign checks",
            "",
            (
                f"{signs['checked_criteria']} criteria checked: {signs['removed_criteria']} removed for a sign that "
                f"contradicts the judge, {signs['unscoreable_verdicts']} unscoreable verdicts (not held against the "
                f"criterion); {signs['scenarios_pruned']} rubrics pruned, {signs['rejected']} scenarios rejected "
                "(rubric_sign_mismatch)."
            ),
        ]
        for ex in signs.get("removed_examples", [])[:5]:
            lines.append(f"- `{ex['id']}` ({ex['points']:+d}) {ex['criterion']}")
    dedup = report.get("dedup", {})
    if dedup:
        lines += [
            "",
            "## Near-duplicates",
            "",
            (
                f"{dedup.get('candidates', 0)} candidates, search `{dedup.get('method')}`: {dedup.get('pairs', 0)} "
                f"pairs at cosine >= {dedup.get('threshold')} in {dedup.get('clusters', 0)} clusters; "
                f"{dedup.get('dropped_within', 0)} dropped within this curation, {dedup.get('dropped_cross_run', 0)} "
                f"as near-duplicates of {dedup.get('index_size', 0)} scenarios kept by other runs of the store. "
                f"Keep-one policy: {dedup.get('policy')}."
            ),
        ]
        for c in dedup.get("largest_clusters", [])[:10]:
            lines.append(f"- cluster of {c['size']}: kept {', '.join(c['kept'])}; dropped {', '.join(c['dropped'][:8])}")
        if dedup.get("stale_index_runs"):
            lines.append(f"- ignored index segments of runs that no longer exist: {', '.join(dedup['stale_index_runs'])}")
    lines += ["", "## Figures", ""]
    for name, file in figures.items():
        lines += [f"![{name}]({file})", ""]
    return "\n".join(lines).rstrip() + "\n"


def quality_markdown(quality: dict[str, Any]) -> list[str]:
    """The report's "Quality and training readiness" section (definitions in ``docs/curation.md``)."""
    from .quality import verdict_line

    v = quality["verdict"]
    lint, div, spec, flaw, judge = (
        quality["lint"], quality["diversity"], quality["rubric_specificity"], quality["flaw_standing"], quality["judge"],
    )

    def f(x: Any, pct: bool = False) -> str:
        return "n/a" if x is None else (f"{100 * x:.1f}%" if pct else f"{x:.3f}")

    lines = [
        "## Quality and training readiness",
        "",
        f"**{verdict_line(quality)}**",
        "",
    ]
    if v.get("advice"):
        lines += [f"Instead: {v['advice']}.", ""]
    lines += [
        "| figure | value |",
        "|---|---:|",
        f"| lint pass rate, generated rows | {f(lint['pass_rate'], True)} ({lint['usable']}/{lint['checked']}) |",
        f"| lint pass rate, kept rows | {f(lint['kept_pass_rate'], True)} ({lint['kept_usable']}/{lint['kept_checked']}) |",
        f"| kept / planned | {quality['kept']}/{quality['planned']} ({f(quality['kept_rate'], True)}) |",
        f"| mean pairwise cosine, kept | {f(div['mean_pairwise_cosine'])} |",
        f"| distinct-2 of user turns, kept | {f(div['distinct_2_user'])} |",
        f"| rubric specificity, kept | {f(spec['rate'], True)} ({spec['specific']}/{spec['criteria']} criteria) |",
        f"| flaw standing rate, generated | {f(flaw['rate'], True)} ({flaw['standing']}/{flaw['flawed']}) |",
        f"| judge qualified | {'unknown (no record)' if judge.get('qualified') is None else 'yes' if judge['qualified'] else 'no'} |",
        "",
    ]
    if lint["by_reason"]:
        lines += ["| lint reason (generated rows) | rows |", "|---|---:|"]
        lines += [f"| {code} | {n} |" for code, n in lint["by_reason"].items()]
        lines.append("")
    lines += ["| check | passed | value | threshold |", "|---|---|---:|---:|"]
    lines += [f"| {c['check']} | {'yes' if c['passed'] else '**no**'} | {c['value']} | {c['threshold']} |" for c in v["checks"]]
    return lines + [""]


def write_report(
    root: Path,
    run_id: str,
    counts: Counts,
    report: dict[str, Any],
    kept: Sequence[Scenario],
    kept_vectors: np.ndarray | None,
    nn_similarity: np.ndarray | None,
    quality: dict[str, Any] | None = None,
) -> dict[str, str]:
    settings = report.get("config", {})
    figures = (
        write_figures(root, kept, kept_vectors, counts, nn_similarity, settings.get("threshold", 0.9))
        if settings.get("figures", True)
        else {}
    )
    atomic_write_text(root / "report.md", render_markdown(run_id, counts, report, figures, quality))
    return {**figures, "report": "report.md"}


def summary_line(manifest: dict[str, Any]) -> str:
    """One line for the CLI summary: what the judge, the sign checks and dedup did, and where the report is."""
    cur = manifest["curation"]
    parts = []
    judge = cur.get("judge")
    if judge:
        parts.append(
            f"judge scored {judge['scored']}/{judge['judged']} ({judge['partial'] + judge['unscoreable']} unscoreable)"
        )
    signs = cur.get("sign_checks")
    if signs:
        parts.append(f"sign checks removed {signs['removed_criteria']} criteria ({signs['unscoreable_verdicts']} unscoreable verdicts)")
    dedup = cur.get("dedup") or {}
    if dedup:
        parts.append(f"{dedup.get('clusters', 0)} near-duplicate clusters at {dedup.get('threshold')}")
    report = (cur.get("files") or {}).get("report")
    where = f"; report: {manifest['config'].get('out', '.')}/{manifest['run_id']}/{report}" if report else ""
    return "curation: " + ", ".join(parts) + where
