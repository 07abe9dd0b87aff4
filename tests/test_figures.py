"""Every plot the library draws uses matplotlib's ``Figure`` API: the PNGs are written, and the
session's backend and pyplot state are exactly as they were (a notebook user's backend survives)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import REPO

SCRIPT = textwrap.dedent(
    """
    import sys
    from collections import Counter
    from pathlib import Path

    import matplotlib
    import numpy as np

    matplotlib.use("svg")  # a session that chose another backend (a notebook's inline one, say)
    out = Path(sys.argv[1])

    from scenario_forge.curation.report import write_figures
    from scenario_forge.evaluation.plots import heatmap, paired_bars
    from scenario_forge.manifest import Counts
    from scenario_forge.publishing.heatmap import draw_heatmap

    table = [{"domain": "health", "trait": "truthfulness", "mean": 0.4}, {"domain": "law", "trait": "fairness", "mean": -0.1}]
    written = [
        heatmap(table, "means", out / "eval_heatmap.png"),
        heatmap(table, "deltas", out / "eval_delta.png", diverging=True),
        paired_bars(["a", "b"], {"model": [0.5, None], "baseline": [0.3, 0.2]}, "bars", out / "bars.png"),
        draw_heatmap(Counter({("health", "truthfulness"): 3}), out / "coverage.png", "coverage"),
        draw_heatmap(Counter(), out / "empty.png", "coverage"),
    ]
    write_figures(out / "report", [], None, Counts(planned=2, kept=0, rejected=2, deduplicated=0,
                  rejected_by_reason={"lint": 2}), np.array([0.2, np.nan]), 0.9)
    print(matplotlib.get_backend())
    print("matplotlib.pyplot" in sys.modules)
    print(len(written), len(list((out / "report").glob("*.png"))))
    """
)


def test_plots_leave_the_backend_and_pyplot_alone(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    backend, pyplot_loaded, counts = result.stdout.split()[-4:-2] + [" ".join(result.stdout.split()[-2:])]
    assert backend == "svg"  # unchanged: no matplotlib.use(...) inside the library
    assert pyplot_loaded == "False"  # no pyplot figure manager, nothing to close or show
    assert counts == "5 4"
    for name in ("eval_heatmap.png", "eval_delta.png", "bars.png", "coverage.png", "empty.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
