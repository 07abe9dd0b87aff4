"""Any OpenAI-compatible chat-completions server: ``vllm serve``, llama.cpp's servers, SGLang, hosted APIs.

A stage's whole batch goes out at once, at most ``concurrency`` requests in flight. Requests run on
one event loop in a background thread, shared by every concurrent ``generate()`` call (shards run
in threads): one ``asyncio.Semaphore`` bounds what is in flight across all of them, so a second
shard's requests fill the slots the first shard's long tail leaves free, and a high concurrency
against a batching server (vLLM at 256 in flight) costs sockets, not 256 OS threads. Nothing on
our side serializes requests; a server that runs them one at a time (llama-cpp-python's) does so
on its side.

Retries: 429, 5xx, timeouts, connection errors and malformed responses are retried with
exponential backoff and jitter (``Retry-After`` is honoured), up to ``max_retries``; each one is
counted in ``Generation.retries``. After the last retry a request that still fails becomes
``Generation.failed`` (the stage rejects it with the reason) - unless the server cannot be
connected to at all, which is a whole-backend failure: ``BackendError``, the run stops and the
shards already finished stay on disk. A 400/422 (the request itself is bad, e.g. too long for the
server's context) is not retried. A 401/403 mid-run is a whole-backend failure too.

Servers differ, so the constructor checks instead of assuming:

* ``/models`` must answer (else: one line naming the URL), the model must be listed (else: one
  line listing what is), and a key must be accepted (401/403: "invalid API key (from $VAR)").
* Structured output: llama-cpp-python's server answers HTTP 500 to ``response_format`` of type
  ``json_schema`` but accepts ``json_object`` with a ``schema``; vLLM, SGLang and llama.cpp's C++
  server take ``json_schema``. One tiny probe per style, with a schema an unconstrained model would
  never satisfy (an enum), tells which one the server *enforces*; ``supports_json_schema`` and
  ``describe()`` record the result. Grammars may not enforce every bound (llama.cpp ignores
  integer minimum/maximum): the stages validate with pydantic either way.
* The repetition penalty goes out under the name the server knows (``repeat_penalty`` for
  llama.cpp, ``repetition_penalty`` for vLLM/SGLang and unknown servers); a server that rejects
  extra sampling fields (hosted APIs answer 400) gets none.
* ``n`` is never used (llama-cpp-python ignores it): one request per generation.

The API key is read from the environment variable named by ``api_key_env`` and kept only in the
HTTP clients' headers (which httpx masks in reprs); it is never logged, put in ``describe()``,
provenance or the manifest.

Why not distilabel's ``OpenAILLM``: it asks for ``n`` generations per request (llama-cpp-python's
server ignores ``n``), passes ``response_format`` through without knowing which style the server
enforces, and leaves retries to the ``openai`` client without per-request retry counts or a reason
for a request that still fails; here every one of those is ours and tested.

Several servers (``--base-url`` given more than once, :attr:`BackendConfig.base_urls`): they must
serve the same model with the same software (the probes ask the first; every one must list the
model). A request waits until some server has a free slot, then goes to the server with the
fewest of this process's requests in flight (ties: round robin), at most ``concurrency`` in
flight *per server*; a slow server so gets fewer requests. Least loaded rather than "shard i to server i mod k": a shard's stage batch drains unevenly (short and
long replies), and per-request choice keeps every server's batch full while any request is left;
the price is that a scenario's turns may land on different servers, so a server's prefix cache
sees fewer of a conversation's earlier turns. A server that refuses connections is skipped for
the rest of that batch while another answers; when none does, the usual whole-backend failure.
With a Dask or Ray runner each worker process balances its own requests (no shared view of the
servers' load): ``--concurrency`` is then per server per worker.

Prefix continuation (``ChatRequest.prefix``) is not supported: most servers cannot continue an
assistant message, so the prompts ask for the opening instead (``supports_prefix = False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from ..errors import BackendError
from ..redact import redact, register_secret
from .base import Backend, ChatRequest, Generation

T = TypeVar("T")

#: Connections per httpx client ("lane"): a server's ``concurrency`` is spread over several.
LANE_CONNECTIONS = 4
#: Status codes worth retrying (besides every 5xx).
RETRY_STATUS = frozenset({408, 409, 425, 429})
#: A schema an unconstrained model never satisfies: only an enforcing server answers it exactly.
PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"probe": {"type": "string", "enum": ["scenario-forge"]}},
    "required": ["probe"],
    "additionalProperties": False,
}
PROBE_ANSWER = {"probe": "scenario-forge"}
#: ``owned_by`` values that name the server software in ``/models``.
_LLAMACPP_OWNERS = frozenset({"me", "llamacpp"})


class _ServerDown(Exception):
    """The server cannot be connected to after every retry: a whole-backend failure."""


class _Fatal(Exception):
    """A whole-backend failure that is not a connection problem (key revoked, model gone)."""


class _Secret:
    """Holds the API key; its repr never shows it."""

    def __init__(self, value: str | None, source: str) -> None:
        self.value = value
        self.source = source
        register_secret(value)  # never stored or printed: redact() masks it wherever it turns up

    def __repr__(self) -> str:
        return f"<secret from ${self.source}: {'set' if self.value else 'unset'}>"


@dataclass(frozen=True)
class ServerFeatures:
    """What the probes found out about the server."""

    flavour: str  # owned_by of the model in /models (server software, when it says)
    structured: str | None  # "json_schema", "json_object+schema", or None
    penalty_param: str | None  # the name the repetition penalty goes out under, or None
    seed: bool  # whether the server accepts "seed"


def _one_line(text: str, limit: int = 240) -> str:
    """Server and exception text, secrets redacted (before cutting, so no half key survives), on one line."""
    text = " ".join(redact(str(text)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_exc(exc: BaseException) -> str:
    detail = _one_line(str(exc)) or "no details"
    return f"{type(exc).__name__}: {detail}"


def _error_snippet(resp: httpx.Response) -> str:
    """The server's error message, short: ``{"error": {"message": ...}}`` or the raw body."""
    try:
        data = resp.json()
    except ValueError:
        return _one_line(resp.text, 160) or resp.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data))
        if isinstance(err, dict):
            err = err.get("message", err)
        return _one_line(str(err), 160)
    return _one_line(str(data), 160)


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop string (servers usually cut already; some send only 4).

    >>> cut_at_stop("one two\\n\\nthree", ["\\n\\n"])
    ('one two', True)
    >>> cut_at_stop("one two", ["\\n"])
    ('one two', False)
    """
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


def auth_message(url: str, status: int, key: _Secret) -> str:
    if key.value:
        return f"invalid API key (from ${key.source}): {url} answered HTTP {status}"
    return f"{url} needs an API key (HTTP {status}): put it in ${key.source} or name another variable with --api-key-env"


def list_models(client: httpx.Client, url: str, key: _Secret) -> tuple[str, list[tuple[str, str]]]:
    """The API root (``.../v1``) and the served ``(model id, owned_by)`` pairs, or one clear error."""
    root = url.rstrip("/")
    parts = urlsplit(root)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BackendError(f"--base-url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}")
    candidates = [root] if root.endswith("/v1") else [root, f"{root}/v1"]
    for i, cand in enumerate(candidates):
        try:
            resp = client.get(f"{cand}/models")
        except httpx.TransportError as exc:
            raise BackendError(f"cannot reach the OpenAI-compatible server at {url} ({_describe_exc(exc)})") from None
        if resp.status_code in (401, 403):
            raise BackendError(auth_message(url, resp.status_code, key))
        if resp.status_code == 404 and i + 1 < len(candidates):
            continue
        if resp.status_code != 200:
            raise BackendError(
                f"{cand}/models answered HTTP {resp.status_code} ({_error_snippet(resp)}); "
                "is --base-url an OpenAI-compatible server?"
            )
        try:
            data = resp.json()["data"]
            served = [(str(m["id"]), str(m.get("owned_by") or "")) for m in data]
        except (ValueError, KeyError, TypeError):
            raise BackendError(f"{cand}/models did not return a model list; is --base-url an OpenAI-compatible server?") from None
        return cand, served
    raise AssertionError("unreachable")  # pragma: no cover


def pick_model(served: list[tuple[str, str]], wanted: str | None, base_url: str) -> str:
    """``wanted`` if the server lists it, else the server's only model, else one clear error."""
    names = [mid for mid, _ in served]
    if wanted is not None:
        if wanted in names:
            return wanted
        raise BackendError(f"model {wanted!r} is not served at {base_url}; available: {', '.join(names) or 'none'}")
    if len(names) == 1:
        return names[0]
    raise BackendError(f"{base_url} serves {len(names)} models; choose one with --model: {', '.join(names) or 'none'}")


def served_model(base_url: str, api_key_env: str, timeout_s: float = 10.0) -> str:
    """The model a server serves when ``--model`` is not given (names provenance and shard keys
    before the backend starts); the same one-line errors as the backend's own start-up checks."""
    key = _Secret(os.environ.get(api_key_env) or None, api_key_env)
    headers = {"Authorization": f"Bearer {key.value}"} if key.value else {}
    with httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))) as client:
        root, served = list_models(client, base_url, key)
    return pick_model(served, None, root)


class _LoopThread:
    """One asyncio event loop in a daemon thread; sync callers submit coroutines to it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()


class OpenAIBackend(Backend):
    """Chat completions over HTTP with bounded concurrency, retries and server feature detection."""

    kind = "openai"
    supports_json_schema = False
    supports_prefix = False

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str | None = None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        structured_output: str = "auto",
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        probe_timeout_s: float | None = None,
    ) -> None:
        super().__init__()
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise BackendError("the openai backend needs --base-url")
        self.requested_urls = urls
        self.requested_url = urls[0] if len(urls) == 1 else ", ".join(urls)
        self.servers = len(urls)
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._key = _Secret(os.environ.get(api_key_env) or None, api_key_env)
        self._usage_estimated = False
        self._down = False
        self._runner: _LoopThread | None = None
        self._client: httpx.AsyncClient | None = None
        self._down_event: asyncio.Event | None = None
        self._start_lock = threading.Lock()
        self._sem: asyncio.Semaphore | None = None
        self._sems: list[asyncio.Semaphore] = []
        self._lanes: list[list[httpx.AsyncClient]] = []  # per server: small clients (see _start)
        self._lane_load: list[list[int]] = []  # per server, per lane: requests in flight
        self._load = [0] * len(urls)  # this process's requests in flight, per server
        self._dead: set[int] = set()  # servers that refused connections during the current batch
        self._turn = 0
        probe_timeout = probe_timeout_s or min(timeout_s, 60.0)
        with httpx.Client(headers=self._headers(), timeout=httpx.Timeout(probe_timeout, connect=10.0)) as client:
            self.base_url, served = list_models(client, urls[0], self._key)
            self.model = pick_model(served, model, self.base_url)
            self.base_urls = [self.base_url]
            for url in urls[1:]:  # every further server must serve the same model
                root, more = list_models(client, url, self._key)
                self.base_urls.append(root)
                pick_model(more, self.model, root)
            flavour = next((owner for mid, owner in served if mid == self.model), "") or "unknown"
            penalty, seed = self._probe_sampling(client, flavour)
            structured = self._probe_structured(client) if structured_output == "auto" else None
        self.features = ServerFeatures(flavour=flavour, structured=structured, penalty_param=penalty, seed=seed)
        self.supports_json_schema = structured is not None

    @classmethod
    def from_config(cls, cfg: Any) -> OpenAIBackend:
        return cls(
            cfg.servers,
            cfg.model,
            api_key_env=cfg.api_key_env,
            concurrency=cfg.concurrency,
            timeout_s=cfg.timeout_s,
            max_retries=cfg.max_retries,
            structured_output=cfg.structured_output,
        )

    # -- facts ---------------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return self.model

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.kind,
            "model": self.model,
            "base_url": self.base_url,
            "server": self.features.flavour,
            "structured_output": self.features.structured,
            "repeat_penalty_param": self.features.penalty_param,
            "seed": self.features.seed,
            "concurrency": self.concurrency,
            "usage_estimated": self._usage_estimated,
            **({"base_urls": self.base_urls} if len(self.base_urls) > 1 else {}),
        }

    def __repr__(self) -> str:
        urls = self.base_url if len(self.base_urls) == 1 else self.base_urls
        return f"OpenAIBackend(base_url={urls!r}, model={self.model!r}, concurrency={self.concurrency})"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key.value}"} if self._key.value else {}

    def _auth_message(self, url: str, status: int) -> str:
        return auth_message(url, status, self._key)

    # -- construction-time checks --------------------------------------------------------------

    def _probe_post(self, client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
        try:
            resp = client.post(f"{self.base_url}/chat/completions", json={"model": self.model, **body})
        except httpx.TransportError as exc:
            raise BackendError(f"cannot reach the OpenAI-compatible server at {self.requested_url} ({_describe_exc(exc)})") from None
        if resp.status_code in (401, 403):
            raise BackendError(self._auth_message(self.requested_url, resp.status_code))
        return resp

    def _probe_sampling(self, client: httpx.Client, flavour: str) -> tuple[str | None, bool]:
        """A minimal chat completion; which sampling extras the server accepts."""
        penalty = "repeat_penalty" if flavour in _LLAMACPP_OWNERS else "repetition_penalty"
        base = {"messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 2, "temperature": 0.0}
        for extras, result in (({penalty: 1.05, "seed": 1}, (penalty, True)), ({"seed": 1}, (None, True)), ({}, (None, False))):
            resp = self._probe_post(client, {**base, **extras})
            if resp.status_code == 200:
                return result
            if resp.status_code not in (400, 422):
                break
        raise BackendError(
            f"{self.base_url} rejected a minimal chat completion for model {self.model!r} "
            f"(HTTP {resp.status_code}: {_error_snippet(resp)})"
        )

    def _probe_structured(self, client: httpx.Client) -> str | None:
        """Which ``response_format`` style the server enforces, or None."""
        for style in ("json_schema", "json_object+schema"):
            body = {
                "messages": [{"role": "user", "content": "Reply with a JSON object."}],
                "max_tokens": 48,
                "temperature": 0.0,
                "response_format": self._response_format(style, PROBE_SCHEMA),
            }
            resp = self._probe_post(client, body)
            if resp.status_code != 200:
                continue  # llama-cpp-python answers 500 to json_schema; others 400
            try:
                content = resp.json()["choices"][0]["message"]["content"]
                if json.loads(content) == PROBE_ANSWER:
                    return style
            except (ValueError, KeyError, IndexError, TypeError):
                continue
        return None

    @staticmethod
    def _response_format(style: str, schema: dict[str, Any]) -> dict[str, Any]:
        if style == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
        return {"type": "json_object", "schema": schema}

    # -- requests ------------------------------------------------------------------------------

    def request_body(self, r: ChatRequest) -> dict[str, Any]:
        """The JSON body for one request (public for tests and the benchmark's replay)."""
        s = r.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in r.messages],
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
        }
        if self.features.seed:
            body["seed"] = r.seed
        if s.stop:
            body["stop"] = list(s.stop[:4])  # the OpenAI API takes at most 4; the rest are cut here
        if self.features.penalty_param and s.repeat_penalty != 1.0:
            body[self.features.penalty_param] = s.repeat_penalty
        if r.json_schema is not None and self.features.structured:
            body["response_format"] = self._response_format(self.features.structured, r.json_schema)
        return body

    def _parse(self, r: ChatRequest, resp: httpx.Response, retries: int) -> tuple[Generation | None, str | None]:
        """A generation from a 200 response, or why the response is malformed."""
        try:
            data = resp.json()
            choice = data["choices"][0]
            text = choice["message"]["content"]
            finish = choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError):
            return None, f"malformed response: {_one_line(resp.text, 120)!r}"
        if not isinstance(text, str):
            return None, f"malformed response: no text content (finish_reason {finish!r})"
        if finish == "content_filter":
            return Generation.failed(r.id, "the server's content filter stopped the reply", retries), None
        text, stopped = cut_at_stop(text, r.sampling.stop)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        if not isinstance(prompt_tokens, int) or not isinstance(completion_tokens, int):
            # No usage block: estimate (~4 characters a token) and say so in describe().
            self._usage_estimated = True
            prompt_tokens = sum(len(m.content) for m in r.messages) // 4
            completion_tokens = max(1, len(text) // 4) if text else 0
        return Generation(
            request_id=r.id,
            text=text,
            finish_reason="length" if finish == "length" and not stopped else "stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            retries=retries,
        ), None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter: half fixed, half random (or the server's Retry-After)."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        step = min(self.max_backoff_s, self.backoff_s * 2.0 ** (attempt - 1))
        return step / 2 + random.uniform(0, step / 2)

    def _pick_server(self) -> int:
        """The server with the fewest requests in flight (round robin among equals),
        skipping servers that refused connections in this batch while another one is left.

        Runs on the event loop's thread only, so the counts need no lock."""
        k = len(self._load)
        alive = [i for i in range(k) if i not in self._dead] or list(range(k))
        start, self._turn = self._turn, (self._turn + 1) % k
        return min(alive, key=lambda i: (self._load[i], (i - start) % k))

    async def _one(self, r: ChatRequest) -> Generation:
        assert self._client is not None and self._sem is not None and self._down_event is not None
        body = self.request_body(r)
        retries = 0
        while True:
            retry_after: float | None = None
            unreachable = False
            server = -1
            try:
                # A request takes a server only once one has a free slot (the shared semaphore holds
                # every server's slots): the least loaded then, so a slow server gets fewer requests.
                async with self._sem:
                    server = self._pick_server()
                    url = f"{self.base_urls[server]}/chat/completions"
                    self._load[server] += 1
                    try:
                        async with self._sems[server]:
                            lane = self._pick_lane(server)
                            try:
                                resp = await self._lanes[server][lane].post(url, json=body)
                            finally:
                                self._lane_load[server][lane] -= 1
                    finally:
                        self._load[server] -= 1
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error, unreachable = _describe_exc(exc), True
                if len(self._dead | {server}) < len(self.base_urls):
                    self._dead.add(server)  # another server is left: send this request and the rest there
                    continue
            except httpx.TimeoutException:
                error = f"no answer within {self.timeout_s:g} s"

            except httpx.TransportError as exc:  # connection dropped mid-answer, protocol errors
                error = _describe_exc(exc)
            except httpx.HTTPError as exc:  # a corrupt (e.g. badly compressed) body: retried like the rest
                error = _describe_exc(exc)
            else:
                status = resp.status_code
                if status == 200:
                    gen, problem = self._parse(r, resp, retries)
                    if gen is not None:
                        return gen
                    error = problem or "malformed response"
                elif status in (401, 403):
                    raise _Fatal(self._auth_message(self.requested_url, status))
                elif status == 404:
                    raise _Fatal(f"{url} answered HTTP 404 for model {self.model!r} ({_error_snippet(resp)})")
                elif status >= 500 or status in RETRY_STATUS:
                    error, retry_after = f"HTTP {status}: {_error_snippet(resp)}", _retry_after(resp)
                else:  # 400, 413, 422...: this request is bad; sending it again will not help
                    return Generation.failed(r.id, f"HTTP {status}: {_error_snippet(resp)}", retries)
            if unreachable and self._down_event.is_set():
                raise _ServerDown(error)  # another request already found the server gone
            if retries >= self.max_retries:
                if unreachable:
                    self._down_event.set()
                    raise _ServerDown(error)
                return Generation.failed(r.id, f"{error} (after {retries} retries)", retries)
            retries += 1
            await asyncio.sleep(self._delay(retries, retry_after))

    def _pick_lane(self, server: int) -> int:
        """The least busy of ``server``'s lanes (loop thread only); counts the request in it.

        A server's requests in flight never pass ``concurrency`` (its semaphore), so the least busy
        lane always has a free connection: no request waits inside httpx's pool."""
        loads = self._lane_load[server]
        lane = loads.index(min(loads))
        loads[lane] += 1
        return lane

    async def _start(self) -> None:
        total = self.concurrency * len(self.base_urls)
        timeout = httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 10.0), pool=None)
        # Connections are spread over small clients ("lanes"): httpx's pool scans all its
        # connections (and polls each idle socket) whenever a request enters or leaves it, so
        # one pool of 256 connections costs the client several ms of CPU a request.
        size = min(LANE_CONNECTIONS, self.concurrency)
        lanes = -(-self.concurrency // size)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        tls = httpx.create_ssl_context()  # one TLS context for every lane (each costs a CA bundle load)
        self._client = httpx.AsyncClient(headers=self._headers(), timeout=timeout, verify=tls)
        self._lanes = [
            [httpx.AsyncClient(headers=self._headers(), timeout=timeout, limits=limits, verify=tls) for _ in range(lanes)]
            for _ in self.base_urls
        ]
        self._lane_load = [[0] * lanes for _ in self.base_urls]
        self._sem = asyncio.Semaphore(total)
        self._sems = [asyncio.Semaphore(self.concurrency) for _ in self.base_urls]
        self._down_event = asyncio.Event()

    async def _close_clients(self) -> None:
        for client in [self._client, *(c for lanes in self._lanes for c in lanes)]:
            if client is not None:
                with contextlib.suppress(Exception):  # closing a broken connection pool
                    await client.aclose()

    async def _batch(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        self._dead.clear()  # a new batch tries every server again
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._one(r)) for r in requests]
        except BaseExceptionGroup as eg:
            fatal = next((e for e in eg.exceptions if isinstance(e, (_ServerDown, _Fatal))), None)
            if fatal is not None:
                raise fatal from None
            raise
        return [t.result() for t in tasks]

    def _ensure_started(self) -> _LoopThread:
        with self._start_lock:
            if self._runner is None:
                runner = _LoopThread("openai-backend")
                runner.run(self._start())
                self._runner = runner
            return self._runner

    async def _reachable(self) -> bool:
        """Whether a connection opens to any server (any HTTP answer, even a slow one, counts)."""
        assert self._client is not None
        for root in self.base_urls:
            try:
                await self._client.get(f"{root}/models", timeout=5.0)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                continue
            except httpx.HTTPError:
                return True
            return True
        return False

    def _generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        runner = self._ensure_started()
        if self._down:
            # A previous batch found the server gone: check once instead of retrying every request.
            if not runner.run(self._reachable()):
                raise BackendError(f"the server at {self.requested_url} is unreachable; finished shards are on disk")
            self._down = False
            assert self._down_event is not None
            runner.loop.call_soon_threadsafe(self._down_event.clear)
        try:
            return runner.run(self._batch(requests))
        except _ServerDown as exc:
            self._down = True
            raise BackendError(
                f"the server at {self.requested_url} stopped answering ({exc}) after {self.max_retries} retries; "
                "finished shards are on disk: rerun the same command once it is back"
            ) from None
        except _Fatal as exc:
            raise BackendError(str(exc)) from None

    def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        with contextlib.suppress(Exception):
            runner.run(self._close_clients())
        runner.stop()
