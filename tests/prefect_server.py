"""One real Prefect server for the whole test session, and helpers to run Prefect commands against it.

Started on first use (``prefect server start`` on 127.0.0.1 and a free port, with its own
``PREFECT_HOME`` in a temp folder), stopped at exit. Every process this module starts runs in a
session of its own (a stray Ctrl-C does not reach it) and gets SIGTERM if the test process dies,
even by ``kill -9`` (``PR_SET_PDEATHSIG``), so nothing outlives a test run.

Import as ``from prefect_server import ...``. A session fixture would be created once per test
module that imports it; this module-level singleton is shared by all of them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from helpers import REPO

BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> subprocess.Popen[bytes]:
    """A background process in its own session, output to ``log``, that dies with us."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it does not exit within ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.is_file() else ""


@dataclass
class PrefectServer:
    home: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    started_s: float = 0.0
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process that talks to this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL="WARNING",
            PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
            HF_HUB_OFFLINE="1",
        )
        env.update(extra)
        return env

    def start(self, timeout: float = 180) -> PrefectServer:
        env = self.env(PREFECT_UI_ENABLED="false")
        del env["PREFECT_API_URL"]
        t0 = time.monotonic()
        self.process = spawn(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)], env, self.log
        )
        with httpx.Client(timeout=2) as client:
            while time.monotonic() - t0 < timeout:
                if self.process.poll() is not None:
                    raise RuntimeError(f"prefect server exited ({self.process.returncode}): {tail(self.log)}")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        self.started_s = time.monotonic() - t0
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"prefect server not healthy after {timeout} s: {tail(self.log)}")

    def stop(self) -> None:
        for child in reversed(self.children):  # workers before the server
            stop(child)
        stop(self.process)
        shutil.rmtree(self.home, ignore_errors=True)


_SERVER: PrefectServer | None = None


def shared_server() -> PrefectServer:
    """The session's server, started on first call."""
    global _SERVER
    if _SERVER is None or _SERVER.process is None or _SERVER.process.poll() is not None:
        _SERVER = PrefectServer(home=Path(tempfile.mkdtemp(prefix="sf-prefect-")), port=free_port()).start()
        atexit.register(_SERVER.stop)
    return _SERVER


def prefect_cli(server: PrefectServer, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``prefect ARGS`` against ``server`` from the repository root."""
    return subprocess.run(
        [PREFECT, *args], cwd=REPO, env=server.env(**env), capture_output=True, text=True, timeout=timeout
    )
