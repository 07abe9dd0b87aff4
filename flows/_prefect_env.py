"""Quiet, offline-friendly Prefect defaults, applied before Prefect is imported (users' own settings win)."""

from __future__ import annotations

import os

DEFAULTS = {
    # The temporary local server needs more than the default 20 s to start on a 2-core machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    # No telemetry host is reachable from our machines; don't try.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def apply() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
