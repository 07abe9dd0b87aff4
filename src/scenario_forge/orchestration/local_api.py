"""The Prefect API a CLI command talks to, and running a flow from the CLI.

With ``PREFECT_API_URL`` set (a ``prefect server start`` or Prefect Cloud), flows report there.
Without it Prefect would start its own temporary server as a child process in our process group:
Ctrl-C in the terminal then kills that server along with us, and the flow engine spends a minute
retrying to report the crash before dying with a traceback; after ``kill -9`` the server is
orphaned and keeps running. :func:`prefect_api` starts the same temporary server itself instead,
in its own session (a terminal's Ctrl-C does not reach it) and, on Linux, tied to our lifetime
with ``PR_SET_PDEATHSIG`` (it gets SIGTERM when we die, even by ``kill -9``).

:func:`run_flow_from_cli` runs a flow with that API and turns its outcome into what the CLI
promises: the flow's return value, or the error that failed it (one line via ``guarded``), and
Prefect's own console logs kept off the terminal (they stay in the Prefect API and UI).

Nothing here changes settings or the environment when imported: the temporary server's defaults
(:data:`STARTUP_TIMEOUT_S`, :data:`SERVER_ENV_DEFAULTS`) apply to that server only, and the API URL
is set with ``temporary_settings`` for the duration of :func:`prefect_api`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import httpx

from ..errors import ForgeError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The temporary server's start-up limit unless ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``
#: is set: Prefect's default (20 s) is too short on a small, busy machine.
STARTUP_TIMEOUT_S = 90.0

#: Set in the temporary server's own environment only (never in ours), unless set already: no
#: telemetry host is reachable from an offline machine, so don't try.
SERVER_ENV_DEFAULTS = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def server_startup_timeout_s() -> float:
    """The temporary server's start-up limit: ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``
    if set in the environment, else the larger of Prefect's setting and :data:`STARTUP_TIMEOUT_S`."""
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    given = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
    if given:
        return float(given)
    return max(STARTUP_TIMEOUT_S, float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()))


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class TemporaryServer:
    """A Prefect API server for one command: its own session, dies with its parent."""

    def __init__(self, startup_timeout_s: float | None = None) -> None:
        self.port = _free_port()
        self.timeout_s = startup_timeout_s or server_startup_timeout_s()
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> TemporaryServer:
        import prefect
        from prefect.settings import get_current_settings

        # The command Prefect 3 itself runs for its temporary server (prefect/server/api/server.py:
        # SubprocessASGIServer), plus a session of its own and a parent-death signal.
        env = {
            **SERVER_ENV_DEFAULTS,
            **os.environ,
            **get_current_settings().to_environment_variables(exclude_unset=True),
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        env.pop("PREFECT_API_URL", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(prefect.__module_path__.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl only, no locks taken
        )
        deadline = time.monotonic() + self.timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self._fail(f"exited with code {self.process.returncode}")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        self._fail(
            f"not healthy after {self.timeout_s:.0f} s (raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS "
            "or point PREFECT_API_URL at a running server)"
        )
        return self  # unreachable

    def _fail(self, why: str) -> None:
        self._log.seek(0)
        tail = self._log.read().decode(errors="replace").strip().splitlines()[-1:] or [""]
        self.stop()
        raise ForgeError(f"the temporary Prefect server {why}: {tail[0]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._log.close()


@contextmanager
def prefect_api() -> Iterator[str]:
    """The configured Prefect API URL, or a temporary server's for the duration of the block."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        _check_reachable(configured)
        yield configured
        return
    server = TemporaryServer().start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                _drain_to_api()
    finally:
        server.stop()


def _check_reachable(api_url: str) -> None:
    """A clear one-line error at once, instead of a minute of client retries and a traceback."""
    from prefect.settings import PREFECT_API_KEY

    key = PREFECT_API_KEY.value()
    secret = key.get_secret_value() if hasattr(key, "get_secret_value") else key
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", headers=headers, timeout=10)
        failure = None if response.status_code == 200 else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        failure = f"{type(exc).__name__}: {exc}"
    if failure is not None:
        raise ForgeError(
            f"the Prefect API at {api_url} is not reachable ({failure}); start the server, "
            "unset PREFECT_API_URL to use a temporary local one, or run with --orchestrator direct"
        )


def _drain_to_api() -> None:
    """Send the logs and events still queued for the API while the server is up."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=5)
        except Exception:  # noqa: BLE001 - best effort: the run's data is on disk already
            pass


class _NotPrefect(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("prefect")


@contextmanager
def prefect_console_quiet() -> Iterator[None]:
    """Keep Prefect's records off the console (they still reach the API and the UI)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    quiet = _NotPrefect()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    for h in handlers:
        h.addFilter(quiet)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(quiet)


def run_flow_from_cli(flow: Callable[..., Any], **parameters: Any) -> Any:
    """Run ``flow(**parameters)`` for a CLI command; return its result or raise what failed it.

    Ctrl-C stops new shards from starting, lets the shards in flight finish and save, marks the
    flow run crashed and raises ``KeyboardInterrupt`` (the CLI prints one line and exits 130).
    Set ``SCENARIO_FORGE_PREFECT_LOGS=1`` to see Prefect's own logs on the terminal too.
    """
    from prefect.client.schemas.objects import State

    quiet = os.environ.get("SCENARIO_FORGE_PREFECT_LOGS", "") in ("", "0")
    with prefect_api():
        with prefect_console_quiet() if quiet else nullcontext():
            state: State[Any] = flow(**parameters, return_state=True)
        return state.result(raise_on_failure=True)
