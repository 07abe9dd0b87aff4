"""Matplotlib figures without pyplot: every plot the library draws starts here.

A :class:`matplotlib.figure.Figure` with its own Agg canvas renders to PNG whatever backend the
user's session has chosen: no ``matplotlib.use(...)``, no pyplot figure manager (nothing to close,
nothing shown in a notebook), no global state touched.

>>> import matplotlib
>>> before = matplotlib.get_backend()
>>> fig = new_figure((2, 1))
>>> _ = fig.subplots().plot([0, 1], [1, 0])
>>> png_bytes(fig)[:8] == b"\\x89PNG\\r\\n\\x1a\\n", matplotlib.get_backend() == before
(True, True)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import atomic_write_bytes

if TYPE_CHECKING:  # matplotlib is imported when a figure is drawn, not when a command starts
    from matplotlib.figure import Figure


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure of ``figsize`` inches drawn on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, dpi: int = 110, tight: bool = False) -> bytes:
    """The figure as PNG bytes (``tight``: trimmed to what is drawn, like ``bbox_inches="tight"``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def save_png(fig: Figure, path: Path, dpi: int = 110, tight: bool = False) -> Path:
    """Write the figure to ``path`` as PNG, through a temp file and a rename."""
    data = png_bytes(fig, dpi=dpi, tight=tight)
    atomic_write_bytes(path, lambda tmp: Path(tmp).write_bytes(data))
    return path
