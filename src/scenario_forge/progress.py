"""A hook for progress displays: the CLI's progress bar listens, Prefect artifacts listen.

Stages call :func:`report`; whoever wants to show progress calls :func:`listen`. Nothing listens by
default, and a failing listener never breaks a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]
_LISTENERS: list[Listener] = []
log = logging.getLogger(__name__)


def listen(listener: Listener) -> Callable[[], None]:
    """Register ``listener(event, data)``; returns a function that unregisters it."""
    _LISTENERS.append(listener)
    return lambda: _LISTENERS.remove(listener) if listener in _LISTENERS else None


def report(event: str, **data: Any) -> None:
    for listener in list(_LISTENERS):
        try:
            listener(event, data)
        except Exception:  # noqa: BLE001 - a display problem must not stop generation
            log.debug("progress listener failed", exc_info=True)
