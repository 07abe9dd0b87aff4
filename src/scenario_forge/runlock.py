"""One writer per output folder: an advisory ``flock`` on a lock file, with its owner written in it.

``generate`` and ``curate`` lock their run folder (``OUT/RUN_ID/.scenario-forge.lock``); ``mix`` and
``publish`` build in a staging folder and swap it in, so they lock a file next to their output
(``.NAME.lock`` beside ``--out``/``--local``). A second process that wants the same folder gets one
line naming the owner (``pid@host``) and a non-zero exit, and touches nothing.

The kernel drops a ``flock`` when its process dies, however it dies (``kill -9`` included), so a
lock left by a dead process is taken over by the next run with no clean-up step; the owner line in
the file is then simply rewritten. A finished holder removes the file while it still holds the lock;
a process that opened the old file meanwhile sees that the path now names another file (or none)
and locks afresh, so two processes never hold two files of the same name.

Within one process the lock is re-entrant: the CLI takes it around a whole command, and the stage
functions that a Prefect worker may run on their own take it again without deadlocking.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with hold(run_lock(folder), f"run folder {folder}"):
...     owner_of(folder / LOCK_NAME) == f"{os.getpid()}@{socket.gethostname()}"
True
>>> (folder / LOCK_NAME).exists()
False
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ForgeError

#: The lock file inside a run folder.
LOCK_NAME = ".scenario-forge.lock"


class LockedError(ForgeError):
    """Another process is writing the same folder."""

    exit_code = 5


_held: dict[Path, tuple[int, int, list[Path]]] = {}  # lock path -> (fd, depth, folders made for it)
_guard = threading.Lock()


def owner_of(lock_file: Path) -> str:
    """The ``pid@host`` written in ``lock_file`` (empty if none)."""
    try:
        return lock_file.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def sibling_lock(folder: Path) -> Path:
    """The lock file for a folder that is swapped in whole (mix ``--out``, publish ``--local``)."""
    return folder.parent / f".{folder.name}.lock"


def run_lock(run_folder: Path) -> Path:
    """The lock file inside a run folder."""
    return run_folder / LOCK_NAME


def _acquire(path: Path, what: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = owner_of(path) or "another process"
            raise LockedError(
                f"{what} is being written by {owner} (lock file {path}); wait for it to finish or use another folder"
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its holder removed it between our open and our flock: lock the new file
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}@{socket.gethostname()}\n".encode(), 0)
    return fd


def _missing_parents(path: Path) -> list[Path]:
    return [p for p in path.parents if not p.exists()]


@contextmanager
def hold(lock_file: Path, what: str = "folder") -> Iterator[Path]:
    """Hold the lock on ``lock_file`` for the ``with`` block; :class:`LockedError` (saying ``what``
    is being written, and by whom) if another process holds it. Re-entrant within this process.

    On release the lock file is removed (while still locked; a process that opened it meanwhile
    notices and locks a fresh one), and so are folders made only to hold it, if still empty."""
    key = lock_file.resolve()
    with _guard:
        if key in _held:
            fd, depth, made = _held[key]
            _held[key] = (fd, depth + 1, made)
        else:
            made = _missing_parents(lock_file)
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            try:
                _held[key] = (_acquire(lock_file, what), 1, made)
            except BaseException:
                _remove_empty(made)
                raise
    try:
        yield lock_file
    finally:
        with _guard:
            fd, depth, made = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1, made)
            else:
                del _held[key]
                with contextlib.suppress(OSError):
                    lock_file.unlink()
                os.close(fd)  # releases the flock
                _remove_empty(made)


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()
