"""A small threaded HTTP server for Google-style JSON REST emulators.

Google's client libraries turn an error body of the shape ``{"error": {"code", "message", "status"}}``
into ``google.api_core.exceptions`` classes (``NotFound``, ``InvalidArgument`` ...), so every emulator
answers errors in that shape and the harness sees exactly what it would see against Google.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}


class ApiError(Exception):
    """An error answered in Google's JSON error shape."""

    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or _STATUS_NAMES.get(code, "UNKNOWN")

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    body: Any
    params: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], tuple[int, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def route(method: str, pattern: str, handler: Handler) -> Route:
    """A route whose ``{name}`` placeholders match one path segment each."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
    return Route(method, re.compile(f"^{regex}$"), handler)


class JsonApiServer:
    """Serves a route table on 127.0.0.1 from a background thread."""

    def __init__(self, name: str, routes: list[Route], host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self._routes = routes
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> JsonApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def dispatch(self, method: str, raw_path: str, raw_body: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        try:
            body = json.loads(raw_body) if raw_body.strip() else {}
        except ValueError:
            return 400, ApiError(400, "request body is not valid JSON").body()
        allowed = False
        for r in self._routes:
            m = r.pattern.match(path)
            if not m:
                continue
            allowed = True
            if r.method != method:
                continue
            request = Request(method, path, parse_qs(parts.query), body, m.groupdict())
            try:
                return r.handler(request)
            except ApiError as e:
                return e.code, e.body()
        if allowed:
            return 405, ApiError(405, f"method {method} not allowed on {path}", "UNIMPLEMENTED").body()
        return 404, ApiError(404, f"no such API path: {path}").body()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Keep-alive clients otherwise wait ~40 ms per response (Nagle against delayed ACK).
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = server.dispatch(self.command, self.path, raw)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the emulators' own access lines are noise in test output."""

        return _Handler
