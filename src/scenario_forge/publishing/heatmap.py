"""The coverage heatmap on the dataset card: scenarios per domain x trait.

A run's own figure is reused when it has one (any ``*.png`` in the run folder whose name mentions
``coverage`` or ``heatmap``); otherwise one is drawn from the published rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from ..figures import new_figure, save_png


def find_run_figure(folders: Iterable[Path]) -> Path | None:
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.png")):
            name = path.name.lower()
            if "coverage" in name or "heatmap" in name:
                return path
    return None


def draw_heatmap(cells: Counter[tuple[str, str]], path: Path, title: str, domains: list[str] | None = None, traits: list[str] | None = None) -> Path:
    """Counts per ``(domain, trait)`` as an annotated heatmap PNG."""
    import numpy as np

    domains = domains or sorted({d for d, _ in cells})
    traits = traits or sorted({t for _, t in cells})
    if not domains or not traits:
        fig = new_figure((5, 1.5))
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, "no beneficial-trait scenarios", ha="center", va="center")
        return save_png(fig, path, dpi=110)
    grid = np.array([[cells.get((d, t), 0) for t in traits] for d in domains], dtype=float)
    fig = new_figure((max(6, 0.55 * len(traits) + 3), max(3, 0.45 * len(domains) + 2)))
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(traits)), labels=traits, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(domains)), labels=domains, fontsize=8)
    if grid.size and grid.size <= 400:
        top = grid.max() or 1
        for i in range(len(domains)):
            for j in range(len(traits)):
                ax.text(j, i, str(int(grid[i, j])), ha="center", va="center", fontsize=7, color="white" if grid[i, j] > top / 2 else "black")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)
