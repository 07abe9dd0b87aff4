"""Output folders built beside their destination and swapped in whole.

A job that writes a folder (``mix --out``, ``publish --local``) builds it in ``.NAME.partial`` next to
``NAME`` and, once everything is written, swaps it in with :func:`swap_in`. A failed or interrupted
job therefore leaves any earlier folder untouched and no half-made one behind.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> with staging_for(root / "out") as staging:
...     staging.mkdir()
...     _ = (staging / "a.txt").write_text("new")
...     swap_in(staging, root / "out")
>>> sorted(p.name for p in root.iterdir()), (root / "out" / "a.txt").read_text()
(['out'], 'new')
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def staging_path(out: Path) -> Path:
    """The staging folder of ``out``: ``.NAME.partial`` in the same parent (one per destination).

    >>> staging_path(Path("runs/mix-a")).as_posix()
    'runs/.mix-a.partial'
    """
    return out.parent / f".{out.name}.partial"


@contextmanager
def staging_for(out: Path) -> Iterator[Path]:
    """The staging folder of ``out`` for the length of a job: a leftover from an interrupted job is
    cleared on entry, and whatever is still there on exit (a failure, or a job that never swaps
    in, such as an estimate) is removed. The folder is not created: the job makes it when it first
    writes, so a job that fails before writing creates nothing."""
    staging = staging_path(out)
    if staging.exists():
        shutil.rmtree(staging)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def swap_in(staging: Path, out: Path) -> None:
    """Replace ``out`` with the finished ``staging`` folder; the old ``out`` (a folder or a file) is
    moved aside first and removed only after the new one is in place. An empty folder is simply
    replaced."""
    old = None
    if out.exists():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        else:
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
