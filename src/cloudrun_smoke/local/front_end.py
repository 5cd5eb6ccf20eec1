"""Cloud Run's request path on loopback: the service URL and one URL per traffic tag.

Each URL is its own listener on 127.0.0.1 (loopback has no ``TAG---service.run.app`` host names). A
request to the service URL goes to a revision chosen by the traffic split, a request to a tag URL to
the tagged revision, and then round-robin to one of that revision's live instances. The front end adds
what Cloud Run adds (``X-Forwarded-For``, ``X-Forwarded-Proto``, trace context, the original ``Host``)
and writes one request log entry per request to ``run.googleapis.com/requests``.

Only answers that came from an instance reach the Monitoring emulator, as on Cloud Run, whose
``request_count`` "excludes requests that are not reaching your container instances (e.g. unauthorized
requests or when maximum number of instances is reached)" and whose ``request_latencies`` is "measured
from when the request reaches the running container to when it exits [...] it does not include
container startup latency" (Google Cloud metrics, https://cloud.google.com/monitoring/api/metrics_gcp#gcp-run).
IAM refusals, no route (404) and no instance (503) are in the request log only.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cloudrun_smoke.local.iam import InvokerCheck, Refusal
from cloudrun_smoke.local.log_router import REQUESTS_LOG, RevisionResource, log_name
from cloudrun_smoke.local.logging_api import LoggingApi
from cloudrun_smoke.local.metrics import MetricsRecorder
from cloudrun_smoke.local.run_model import RunState, Service
from cloudrun_smoke.timeutil import format_rfc3339, utcnow

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
_XCTC = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?(?:;o=([01]))?")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

UNAVAILABLE_BODY = b"""<html><head>
<meta http-equiv="content-type" content="text/html;charset=utf-8">
<title>503 Service Unavailable</title>
</head>
<body text=#000000 bgcolor=#ffffff>
<h1>Error: Service Unavailable</h1>
<h2>The service you requested is not available yet. Please try again in 30 seconds.</h2>
<h2></h2>
</body></html>
"""
NOT_FOUND_BODY = b"""<html><head>
<meta http-equiv="content-type" content="text/html;charset=utf-8">
<title>404 Page not found</title>
</head>
<body text=#000000 bgcolor=#ffffff>
<h1>Error: Page not found</h1>
<h2>The requested URL was not found on this server.</h2>
<h2></h2>
</body></html>
"""
TIMEOUT_BODY = b"upstream request timeout"
BURST_BODY = b'{"detail": "Internal Server Error", "fault": "stack:5xx-burst"}'


@dataclass(frozen=True)
class Backend:
    """One instance of a revision, as the front end sees it."""

    revision: str
    instance_id: str
    port: int
    alive: Callable[[], bool]
    # A request in flight on the instance (cpu_idle: it has CPU only meanwhile); None: always has CPU.
    serving: Callable[[], contextlib.AbstractContextManager[None]] | None = None


BackendLookup = Callable[[str], Sequence[Backend]]


class TrafficSplit:
    """Smooth weighted round-robin: percentages are met exactly over every 100 requests, which keeps
    a split test deterministic (Cloud Run's own choice is random; the long-run shares are the same)."""

    def __init__(self) -> None:
        self._shares: tuple[tuple[str, int], ...] = ()
        self._current: dict[str, int] = {}
        self._lock = threading.Lock()

    def pick(self, shares: Sequence[tuple[str, int]]) -> str | None:
        shares = tuple((r, p) for r, p in shares if p > 0)
        if not shares:
            return None
        with self._lock:
            if shares != self._shares:
                self._shares, self._current = shares, dict.fromkeys((r for r, _ in shares), 0)
            total = sum(p for _, p in shares)
            for revision, percent in shares:
                self._current[revision] += percent
            chosen = max(self._current, key=lambda r: self._current[r])
            self._current[chosen] -= total
            return chosen


class ErrorBurst:
    """``stack:5xx-burst``: the last ``length`` of every ``every`` requests that reach an instance are
    answered 500, so a window of whole cycles holds exactly length/every of 5xx, in bursts."""

    def __init__(self, length: int, every: int) -> None:
        if not 0 < length <= every:
            raise ValueError(f"a 5xx burst needs 0 < length <= every, got {length} in {every}")
        self._length, self._every = length, every
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def hit(self) -> bool:
        with self._lock:
            return next(self._counter) % self._every >= self._every - self._length


class _Listener(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, front: FrontEnd, tag: str) -> None:
        self.front = front
        self.tag = tag
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=f"front-end-{tag}"
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Listener

    def version_string(self) -> str:
        return "Google Frontend"

    def _serve(self) -> None:
        self.server.front.handle(self, self.server.tag, self.server.url)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: every request is in the request log instead."""


@dataclass
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    declared_length: int | None = None  # the instance's Content-Length when its body was cut short
    refusal: Refusal | None = None  # Cloud Run IAM's, when it refused the request
    served_ms: float | None = None  # set when an instance answered: how long it took (request_latencies)


class FrontEnd:
    """Listeners for one service: its URL and one per tag of its current traffic."""

    def __init__(
        self, state: RunState, service: Service, backends: BackendLookup, logging: LoggingApi
    ) -> None:
        self._state = state
        self._service = service
        self._backends = backends
        self._logging = logging
        self._split = TrafficSplit()
        self._round_robin: dict[str, itertools.count[int]] = {}
        self.invoker_check: InvokerCheck | None = None  # set for a private service (IAM)
        self.metrics: MetricsRecorder | None = None  # records each answer for the Monitoring API
        self.error_burst: ErrorBurst | None = None  # stack:5xx-burst
        # A revision with no instance running starts one for the request (None: answered 503).
        self.cold_start: Callable[[str], Backend | None] | None = None
        self._listeners: dict[str, _Listener] = {}
        self._lock = threading.Lock()

    # -- listeners -----------------------------------------------------------------------------------
    def start(self) -> FrontEnd:
        self._listeners[""] = _Listener(self, "")
        return self

    @property
    def url(self) -> str:
        return self._listeners[""].url

    def tag_urls(self) -> dict[str, str]:
        with self._lock:
            return {tag: listener.url for tag, listener in self._listeners.items() if tag}

    def sync_tags(self) -> dict[str, str]:
        """Open a listener for each tag of the service's traffic, close those of removed tags; the
        service's ``tag_uris`` follow (call with the state's lock held)."""
        wanted = {t.tag for t in self._service.traffic if t.tag}
        with self._lock:
            for tag in wanted - self._listeners.keys():
                self._listeners[tag] = _Listener(self, tag)
            gone = [self._listeners.pop(tag) for tag in list(self._listeners) if tag and tag not in wanted]
            urls = {tag: listener.url for tag, listener in self._listeners.items() if tag}
        self._service.tag_uris = urls
        for listener in gone:  # shutting down waits for its loop: never under the state's lock
            threading.Thread(target=listener.stop, daemon=True).start()
        return urls

    def stop(self) -> None:
        with self._lock:
            listeners, self._listeners = list(self._listeners.values()), {}
        for listener in listeners:
            listener.stop()

    # -- routing -------------------------------------------------------------------------------------
    def choose(self, tag: str) -> tuple[str | None, Backend | None]:
        with self._state.lock:
            traffic = self._service.resolved_traffic()
        if tag:
            revision = next((t.revision for t in traffic if t.tag == tag), None)
        else:
            revision = self._split.pick([(t.revision, t.percent) for t in traffic if t.revision])
        if revision is None:
            return None, None
        live = [b for b in self._backends(revision) if b.alive()]
        if not live:
            return revision, self.cold_start(revision) if self.cold_start is not None else None
        with self._lock:
            counter = self._round_robin.setdefault(revision, itertools.count())
            return revision, live[next(counter) % len(live)]

    def _timeout(self, revision: str) -> float:
        with self._state.lock:
            found = self._service.find_revision(revision)
            return float(found.spec.timeout_seconds) if found else 300.0

    # -- one request ---------------------------------------------------------------------------------
    def handle(self, handler: BaseHTTPRequestHandler, tag: str, base_url: str) -> None:
        started = utcnow()
        clock = time.perf_counter()
        body = _read_body(handler)
        trace_id, sampled = _incoming_trace(handler)
        span = random.getrandbits(64) or 1
        revision, backend = self.choose(tag)
        refusal = self.invoker_check.refusal(handler.headers) if self.invoker_check else None
        if refusal is not None:
            html = [("Content-Type", "text/html; charset=UTF-8")]
            answer = _Answer(refusal.status, html, refusal.body(handler.path.split("?")[0]), refusal=refusal)
        elif revision is None:
            answer = _Answer(404, [("Content-Type", "text/html; charset=UTF-8")], NOT_FOUND_BODY)
        elif backend is None:
            answer = _Answer(503, [("Content-Type", "text/html; charset=UTF-8")], UNAVAILABLE_BODY)
        else:
            with contextlib.ExitStack() as serving:
                if backend.serving is not None:  # thawed while it serves (cpu_idle)
                    serving.enter_context(backend.serving())
                if self.metrics is not None:
                    serving.enter_context(self.metrics.serving(backend.instance_id))
                reached = time.perf_counter()
                if self.error_burst is not None and self.error_burst.hit():
                    # The instance answers 500: counted by request_count like any answer of the service.
                    answer = _Answer(500, [("Content-Type", "application/json")], BURST_BODY)
                    answer.served_ms = (time.perf_counter() - reached) * 1000
                else:
                    answer = self._forward(handler, backend, body, trace_id, span, sampled)
        latency = time.perf_counter() - clock
        self._respond(handler, answer, trace_id, span, sampled)
        self._log(
            handler, base_url, revision, backend, answer, len(body), started, latency, trace_id, span, sampled
        )

    def _forward(
        self,
        handler: BaseHTTPRequestHandler,
        backend: Backend,
        body: bytes,
        trace: str,
        span: int,
        sampled: bool,
    ) -> _Answer:
        client_ip = handler.client_address[0]
        headers = [(k, v) for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP]
        # Content-Length is recomputed from the body read: two of them make the backend refuse the request.
        headers = [
            (k, v)
            for k, v in headers
            if k.lower() not in ("x-cloud-trace-context", "traceparent", "content-length")
        ]
        forwarded = handler.headers.get("X-Forwarded-For")
        headers = [(k, v) for k, v in headers if k.lower() not in ("x-forwarded-for", "x-forwarded-proto")]
        headers += [
            ("X-Forwarded-For", f"{forwarded}, {client_ip}" if forwarded else client_ip),
            ("X-Forwarded-Proto", "http"),
            ("X-Cloud-Trace-Context", f"{trace}/{span};o={int(sampled)}"),
            ("traceparent", f"00-{trace}-{span:016x}-{int(sampled):02d}"),
        ]
        if not any(k.lower() == "host" for k, _ in headers):
            headers.append(("Host", f"127.0.0.1:{backend.port}"))
        if body or handler.command in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(body))))
        connection = http.client.HTTPConnection(
            "127.0.0.1", backend.port, timeout=self._timeout(backend.revision)
        )
        sent = time.perf_counter()
        try:
            connection.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            connection.endheaders(body or None)
            response = connection.getresponse()
            declared: int | None = None
            try:
                data = response.read()
            except http.client.IncompleteRead as e:
                # A streaming front end has sent the headers by then: pass the body on as far as it
                # came and close the connection, so that the client sees the truncation.
                data, declared = e.partial, len(e.partial) + (e.expected or 0)
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            kept = [(k, v) for k, v in kept if k.lower() not in ("content-length", "server", "date")]
            return _Answer(
                response.status, kept, data, declared, served_ms=(time.perf_counter() - sent) * 1000
            )
        except TimeoutError:  # the instance had the request: it counts, with the time it was given
            return _Answer(
                504,
                [("Content-Type", "text/plain")],
                TIMEOUT_BODY,
                served_ms=(time.perf_counter() - sent) * 1000,
            )
        except (OSError, http.client.HTTPException):  # never reached the instance: not in the metrics
            return _Answer(503, [("Content-Type", "text/html; charset=UTF-8")], UNAVAILABLE_BODY)
        finally:
            connection.close()

    @staticmethod
    def _respond(
        handler: BaseHTTPRequestHandler, answer: _Answer, trace: str, span: int, sampled: bool
    ) -> None:
        with contextlib.suppress(OSError):
            handler.send_response(answer.status)
            for name, value in answer.headers:
                handler.send_header(name, value)
            handler.send_header("X-Cloud-Trace-Context", f"{trace}/{span};o={int(sampled)}")
            handler.send_header("Content-Length", str(answer.declared_length or len(answer.body)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(answer.body)
        if answer.declared_length is not None:
            handler.close_connection = True

    def _log(
        self,
        handler: BaseHTTPRequestHandler,
        base_url: str,
        revision: str | None,
        backend: Backend | None,
        answer: _Answer,
        request_size: int,
        started: Any,
        latency: float,
        trace: str,
        span: int,
        sampled: bool,
    ) -> None:
        service = self._service
        resource = RevisionResource(
            service.project, service.region, service.name, revision or "", service.name
        )
        http_request: dict[str, Any] = {
            "requestMethod": handler.command,
            "requestUrl": f"{base_url}{handler.path}",
            "status": answer.status,
            "requestSize": str(request_size + _header_size(handler)),
            "responseSize": str(len(answer.body)),
            "remoteIp": handler.client_address[0],
            "serverIp": "127.0.0.1",
            "latency": f"{latency:.6f}s",
            "protocol": handler.request_version,
        }
        for header, key in (("User-Agent", "userAgent"), ("Referer", "referer")):
            if handler.headers.get(header):
                http_request[key] = handler.headers[header]
        entry: dict[str, Any] = {
            "logName": log_name(service.project, REQUESTS_LOG),
            "resource": resource.monitored_resource(),
            "timestamp": format_rfc3339(started),
            "severity": "ERROR" if answer.status >= 500 else "WARNING" if answer.status >= 400 else "INFO",
            "httpRequest": http_request,
            "trace": f"projects/{service.project}/traces/{trace}",
            "spanId": f"{span:016x}",
            "traceSampled": sampled,
        }
        if backend is not None:
            entry["labels"] = {"instanceId": backend.instance_id}
        if answer.refusal is not None:  # Cloud Run logs why IAM refused, with the request
            entry["textPayload"] = answer.refusal.log_text
        with contextlib.suppress(Exception):
            self._logging.ingest(entry)
        # Only what reached an instance (see the module's docstring).
        if self.metrics is not None and revision and backend is not None and answer.served_ms is not None:
            self.metrics.record_request(
                revision, answer.status, answer.served_ms, instance_id=backend.instance_id
            )


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _header_size(handler: BaseHTTPRequestHandler) -> int:
    return len(handler.requestline) + sum(len(k) + len(v) + 4 for k, v in handler.headers.items()) + 4


def _incoming_trace(handler: BaseHTTPRequestHandler) -> tuple[str, bool]:
    """Honour the caller's trace id (``X-Cloud-Trace-Context`` first, then ``traceparent``)."""
    match = _XCTC.match(handler.headers.get("X-Cloud-Trace-Context", "").strip())
    if match:
        return match.group(1).lower(), match.group(3) != "0"
    match = _TRACEPARENT.match(handler.headers.get("traceparent", "").strip().lower())
    if match:
        return match.group(1), match.group(3) != "00"
    return f"{random.getrandbits(128):032x}", True
