"""The simulated server: an asyncio HTTP/1.1 loopback server (standard library only) and its clock.

:class:`Simulator` holds the sequences in flight. Each has a number of output tokens left; with
``n`` in flight each advances at ``curve.rate(n) / n`` tokens/s, and a sequence whose tokens run
out answers. At most ``concurrency`` run at once; later ones queue (first come, first served).
It integrates the tokens served and the sequences in flight over time, so ``/stats`` can say what
fraction of the server's capacity (``curve.rate(concurrency)``) a client used.

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` (non-streaming), ``GET /stats``,
``POST /stats/reset``. The reply text comes from the fake backend's responder (it recognises our
prompts and answers well-formed text and JSON); ``usage.completion_tokens`` is the simulated
decode length: ``reply_tokens`` capped by ``max_tokens`` when ``reply_tokens`` is set, else the
text's length at ~4 characters a token. ``usage.prompt_tokens`` is the prompt's characters / 4.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Self

from ..backends.base import ChatRequest
from ..backends.fake import default_responder
from ..config import SamplingParams
from ..records import Message
from .curve import ThroughputCurve

#: The answer to the OpenAI backend's structured-output probe (a schema with one enum field).
_PROBE_KEY = "probe"


@dataclass
class _Seq:
    left: float
    done: asyncio.Future[None]


@dataclass
class SimStats:
    """What the server did since start (or the last reset)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: seconds with at least one sequence in flight
    busy_s: float = 0.0
    #: integral of sequences in flight over time (sequence-seconds)
    seq_s: float = 0.0
    peak_in_flight: int = 0
    peak_queued: int = 0
    started: float = field(default_factory=time.monotonic)
    #: wall-clock times (``time.time()``, comparable between processes) of the first chat request's
    #: arrival and the last reply, so several servers' common active window can be measured
    first_at: float | None = None
    last_at: float | None = None


class Simulator:
    """Processor sharing under a throughput curve, with a concurrency cap. Runs on one event loop."""

    def __init__(self, curve: ThroughputCurve, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.curve = curve
        self.concurrency = concurrency
        self.stats = SimStats()
        self._active: list[_Seq] = []
        self._queue: deque[_Seq] = deque()
        self._last = time.monotonic()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def capacity(self) -> float:
        """Output tokens/s with the server full."""
        return self.curve.rate(self.concurrency)

    def reset(self) -> None:
        self._advance()
        self.stats = SimStats(peak_in_flight=len(self._active))

    def _advance(self) -> None:
        now = time.monotonic()
        dt, self._last = now - self._last, now
        n = len(self._active)
        if n == 0 or dt <= 0:
            return
        step = self.curve.rate(n) / n * dt
        self.stats.busy_s += dt
        self.stats.seq_s += n * dt
        for s in self._active:
            s.left -= step

    async def decode(self, tokens: int) -> None:
        """Wait until ``tokens`` output tokens of a new sequence have been decoded."""
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        seq = _Seq(float(max(tokens, 0)), loop.create_future())
        self._advance()
        self._queue.append(seq)
        self._admit()
        assert self._wake is not None
        self._wake.set()
        await seq.done

    async def close(self) -> None:
        """Stop the clock task (sequences still in flight are cancelled)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        for s in [*self._active, *self._queue]:
            s.done.cancel()
        self._active.clear()
        self._queue.clear()

    def _admit(self) -> None:
        while self._queue and len(self._active) < self.concurrency:
            self._active.append(self._queue.popleft())
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, len(self._active))
        self.stats.peak_queued = max(self.stats.peak_queued, len(self._queue))

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._advance()
            finished = [s for s in self._active if s.left <= 1e-9]
            if finished:
                self._active = [s for s in self._active if s.left > 1e-9]
                for s in finished:
                    if not s.done.done():
                        s.done.set_result(None)
                self._admit()
            self._wake.clear()
            if not self._active:
                await self._wake.wait()
                continue
            n = len(self._active)
            soonest = min(s.left for s in self._active) / (self.curve.rate(n) / n)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(soonest, 0.0005))
            except TimeoutError:
                pass


def _reply_text(body: dict[str, Any]) -> str:
    """Plausible text for a request: the probes' answers, else the fake backend's answer to our prompts."""
    messages = [Message(role=m.get("role", "user"), content=str(m.get("content", ""))) for m in body.get("messages", [])]
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        schema = fmt.get("json_schema", {}).get("schema") if fmt.get("type") == "json_schema" else fmt.get("schema")
        if isinstance(schema, dict) and _PROBE_KEY in schema.get("properties", {}):
            enum = schema["properties"][_PROBE_KEY].get("enum") or ["ok"]
            return json.dumps({_PROBE_KEY: enum[0]})
    if messages and messages[-1].content == "Say OK.":
        return "OK"
    seed = body.get("seed")
    request = ChatRequest(
        id="sim:chat:0",
        messages=messages or [Message(role="user", content="")],
        sampling=SamplingParams(max_tokens=int(body.get("max_tokens") or 256)),
        seed=seed if isinstance(seed, int) and seed >= 0 else 0,
    )
    return default_responder(request)


class SimServer:
    """The HTTP side: parses requests, asks :class:`Simulator` for the delay, answers JSON."""

    def __init__(
        self,
        curve: ThroughputCurve,
        *,
        concurrency: int,
        model: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        reply_tokens: int = 0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.curve = curve
        self.concurrency = concurrency
        self.model = model or curve.model
        self.host = host
        self.port = port
        self.reply_tokens = reply_tokens
        self.sim = Simulator(curve, concurrency)
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._serving: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        s = self.sim.stats
        wall = max(time.monotonic() - s.started, 1e-9)
        return {
            "curve": self.curve.name,
            "model": self.model,
            "concurrency": self.concurrency,
            "capacity_tok_s": self.sim.capacity,
            "wall_s": wall,
            "requests": s.requests,
            "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.completion_tokens,
            "busy_s": s.busy_s,
            "mean_in_flight": s.seq_s / wall,
            "mean_in_flight_busy": s.seq_s / s.busy_s if s.busy_s > 0 else 0.0,
            "peak_in_flight": s.peak_in_flight,
            "peak_queued": s.peak_queued,
            "capacity_fraction": s.completion_tokens / (wall * self.sim.capacity),
            "first_at": s.first_at,
            "last_at": s.last_at,
        }

    async def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return 400, {"error": {"message": "'messages' must be a non-empty list"}}
        text = _reply_text(body)
        max_tokens = body.get("max_tokens")
        cap = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None
        tokens = self.reply_tokens if self.reply_tokens > 0 else max(1, len(text) // 4)
        finish = "stop"
        if cap is not None and tokens > cap:
            tokens, finish = cap, ("length" if self.reply_tokens <= 0 else "stop")
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body["messages"] if isinstance(m, dict)) // 4
        if self.sim.stats.first_at is None:
            self.sim.stats.first_at = time.time()
        await self.sim.decode(tokens)
        s = self.sim.stats
        s.last_at = time.time()
        s.requests += 1
        s.prompt_tokens += prompt_tokens
        s.completion_tokens += tokens
        return 200, {
            "id": f"chatcmpl-sim-{s.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": tokens, "total_tokens": prompt_tokens + tokens},
        }

    async def _route(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        path = path.split("?", 1)[0].rstrip("/")
        if method == "GET" and path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "vllm"}]}
        if method == "GET" and path == "/stats":
            return 200, self.stats()
        if method == "POST" and path == "/stats/reset":
            self.sim.reset()
            return 200, self.stats()
        if method == "POST" and path == "/v1/chat/completions":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return 400, {"error": {"message": "the request body is not JSON"}}
            if not isinstance(body, dict):
                return 400, {"error": {"message": "the request body must be a JSON object"}}
            return await self._chat(body)
        return 404, {"error": {"message": f"no route {method} {path}"}}

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) < 2:
                    return
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                length = int(headers.get("content-length", "0") or 0)
                raw = await reader.readexactly(length) if length else b""
                status, payload = await self._route(parts[0].upper(), parts[1], raw)
                data = json.dumps(payload).encode()
                reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n".encode() + data
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def serve(self, ready: threading.Event | None = None) -> None:
        """Listen and serve until cancelled (``ready`` is set once the port is bound)."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        self.sim.reset()
        if ready is not None:
            ready.set()
        async with self._server:
            await self._server.serve_forever()

    # -- in a background thread (tests, benchmarks) --------------------------------------------------

    def start(self) -> Self:
        """Serve from a daemon thread with its own event loop; returns once the port is bound."""
        ready = threading.Event()
        loop = self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            self._serving = loop.create_task(self.serve(ready))
            try:
                loop.run_until_complete(self._serving)
            except asyncio.CancelledError:
                pass
            finally:
                loop.run_until_complete(self.sim.close())
                loop.close()

        self._thread = threading.Thread(target=run, name="sim-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the simulated server did not start")
        return self

    def stop(self) -> None:
        """Stop serving (from another thread than the server's) and wait for its thread."""
        loop, task = self._loop, self._serving
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = self._serving = self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
