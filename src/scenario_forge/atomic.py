"""Files written whole or not at all: through a temp file in the same folder, then renamed.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "sub" / "a.txt"
>>> atomic_write_text(path, "hello")
>>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
('hello', ['a.txt'])
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, write: Callable[[str], object]) -> None:
    """Write through a temp file in the same folder, then rename: readers never see half a file.

    ``write`` is called with the temp file's path and writes the whole content there.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically: see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
