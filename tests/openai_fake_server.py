"""A tiny OpenAI-compatible HTTP server on 127.0.0.1 for backend tests (standard library only).

Its behaviour is a plain function ``chat(body, attempt) -> (status, payload, headers)`` where
``attempt`` counts how often that exact body was seen, so a test can make a request fail twice and
then succeed, answer garbage, or sleep. It records every request body and the peak number of
requests in flight.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENAI_FIELDS = frozenset({"model", "messages", "max_tokens", "temperature", "top_p", "stop", "response_format", "n"})
Reply = tuple[int, Any, dict[str, str]]
ChatHandler = Callable[[dict[str, Any], int], Reply]


def completion(text: str, finish: str = "stop", prompt_tokens: int = 11) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()), "total_tokens": 0},
    }


def echo_chat(body: dict[str, Any], attempt: int) -> Reply:
    return 200, completion(f"echo: {body['messages'][-1]['content']}"), {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeOpenAIServer:
    def __init__(
        self,
        chat: ChatHandler = echo_chat,
        *,
        models: list[tuple[str, str]] = (("test-model", "vllm"),),  # type: ignore[assignment]
        api_key: str | None = None,
        port: int | None = None,
        structured: str | None = "json_schema",
        strict_fields: bool = False,
        echo_headers: bool = False,
    ) -> None:
        self.chat = chat
        self.models = list(models)
        self.api_key = api_key
        self.port = port or free_port()
        self.structured = structured  # which response_format style this server "enforces"
        self.strict_fields = strict_fields  # answer 400 to fields outside the OpenAI API (hosted APIs do)
        # answer every generation request 400 with the request's headers in the body, as some
        # proxies and servers do (the Authorization header included): the secret-redaction tests
        self.echo_headers = echo_headers
        self.bodies: list[dict[str, Any]] = []
        self.seen: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if outer.api_key is None:
                    return True
                if self.headers.get("Authorization") == f"Bearer {outer.api_key}":
                    return True
                self._send(401, {"error": {"message": "Invalid API key"}})
                return False

            def do_GET(self) -> None:
                if not self._authorized():
                    return
                if self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [
                        {"id": mid, "object": "model", "owned_by": owner} for mid, owner in outer.models
                    ]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                if not self._authorized():
                    return
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                if outer.strict_fields and set(body) - OPENAI_FIELDS:
                    self._send(400, {"error": {"message": f"Unrecognized request arguments: {sorted(set(body) - OPENAI_FIELDS)}"}})
                    return
                fmt = body.get("response_format")
                if fmt is not None:  # the probes and structured requests
                    style = "json_schema" if fmt.get("type") == "json_schema" else "json_object+schema"
                    if outer.structured != style:
                        self._send(500 if style == "json_schema" else 400, {"error": {"message": "unsupported"}})
                        return
                    if body["messages"][-1]["content"] == "Reply with a JSON object.":
                        self._send(200, completion(json.dumps({"probe": "scenario-forge"})))
                        return
                if body.get("max_tokens") == 2 and body["messages"][-1]["content"] == "Say OK.":
                    self._send(200, completion("OK"))  # the construction-time probe
                    return
                if outer.echo_headers:
                    # Authorization first, so it lands in the part of the body a client keeps
                    echoed = "; ".join(f"{k}: {v}" for k, v in sorted(self.headers.items(), key=lambda kv: kv[0].lower() != "authorization"))
                    self._send(400, {"error": {"message": f"bad request (headers: {echoed})", "headers": dict(self.headers)}})
                    return
                key = json.dumps(body, sort_keys=True)
                with outer._lock:
                    outer.bodies.append(body)
                    attempt = outer.seen[key]
                    outer.seen[key] += 1
                    outer.in_flight += 1
                    outer.peak_in_flight = max(outer.peak_in_flight, outer.in_flight)
                try:
                    status, payload, headers = outer.chat(body, attempt)
                finally:
                    with outer._lock:
                        outer.in_flight -= 1
                if status == -1:  # drop the connection without an answer
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._send(status, payload, headers)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def slow_chat(delay_s: float) -> ChatHandler:
    def chat(body: dict[str, Any], attempt: int) -> Reply:
        time.sleep(delay_s)
        return echo_chat(body, attempt)

    return chat
