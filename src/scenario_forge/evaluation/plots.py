"""PNG plots for the report: domain x trait heatmaps, paired bars, persistence bars.

Drawn with matplotlib's object-oriented API (:mod:`scenario_forge.figures`): a ``Figure`` on its
own Agg canvas, so plotting never changes the session's backend or pyplot state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..figures import new_figure, save_png

DPI = 110


def heatmap(table: list[dict[str, Any]], title: str, path: Path, diverging: bool = False) -> Path | None:
    """``table`` rows: ``{domain, trait, mean}``; empty cells stay blank."""
    import numpy as np

    cells = [t for t in table if t.get("mean") is not None]
    if not cells:
        return None
    domains = sorted({t["domain"] for t in cells})
    traits = sorted({t["trait"] for t in cells})
    grid = np.full((len(domains), len(traits)), np.nan)
    for t in cells:
        grid[domains.index(t["domain"]), traits.index(t["trait"])] = t["mean"]
    fig = new_figure((1.4 + 1.1 * len(traits), 1.2 + 0.5 * len(domains)))
    ax = fig.subplots()
    bound = 1.0
    if diverging:
        bound = max(0.05, float(np.nanmax(np.abs(grid))))
        image = ax.imshow(grid, cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
    else:
        image = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(traits)), [t.replace("_", " ") for t in traits], rotation=40, ha="right")
    ax.set_yticks(range(len(domains)), domains)
    for i in range(len(domains)):
        for j in range(len(traits)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:+.2f}" if diverging else f"{grid[i, j]:.2f}", ha="center", va="center",
                        color=_text_color(grid[i, j], diverging, bound if diverging else 1.0), fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title)
    return save_png(fig, path, dpi=DPI, tight=True)


def _text_color(value: float, diverging: bool, bound: float) -> str:
    if diverging:
        return "white" if abs(value) > 0.6 * bound else "black"
    return "black" if value > 0.55 else "white"


def paired_bars(names: list[str], series: dict[str, list[float | None]], title: str, path: Path) -> Path | None:
    """Grouped bars: one group per name, one bar per series (e.g. model and baseline); a missing
    value (nothing scored) is drawn as an empty slot."""
    if not names or not series:
        return None
    width = 0.8 / len(series)
    fig = new_figure((max(4.0, 0.9 * len(names) * len(series) + 1.5), 3.6))
    ax = fig.subplots()
    for k, (label, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(names))]
        ax.bar(xs, [v if v is not None else float("nan") for v in values], width, label=label)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean score")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_png(fig, path, dpi=DPI, tight=True)
