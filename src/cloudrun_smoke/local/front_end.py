"""Cloud Run's request path on loopback: the service URL and one URL per traffic tag.

Each URL is its own listener on 127.0.0.1 (loopback has no ``TAG---service.run.app`` host names). A
request to the service URL goes to a revision chosen by the traffic split, a request to a tag URL to
the tagged revision, and then round-robin to one of that revision's live instances. The front end adds
what Cloud Run adds (``X-Forwarded-For``, ``X-Forwarded-Proto``, trace context, the original ``Host``;
see :mod:`~cloudrun_smoke.local.proxy`) and writes one request log entry per request to
``run.googleapis.com/requests`` (:mod:`~cloudrun_smoke.local.request_log`).

Only answers that came from an instance reach the Monitoring emulator, as on Cloud Run, whose
``request_count`` "excludes requests that are not reaching your container instances (e.g. unauthorized
requests or when maximum number of instances is reached)" and whose ``request_latencies`` is "measured
from when the request reaches the running container to when it exits [...] it does not include
container startup latency" (Google Cloud metrics, https://cloud.google.com/monitoring/api/metrics_gcp#gcp-run).
IAM refusals, no route (404) and no instance (503) are in the request log only.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cloudrun_smoke.local.iam import InvokerCheck
from cloudrun_smoke.local.logging_api import LoggingApi
from cloudrun_smoke.local.metrics import MetricsRecorder
from cloudrun_smoke.local.proxy import (
    NOT_FOUND_BODY,
    UNAVAILABLE_BODY,
    Answer,
    Trace,
    forward,
    incoming_trace,
    read_body,
    respond,
)
from cloudrun_smoke.local.request_log import request_log_entry
from cloudrun_smoke.local.run_model import RunState, Service
from cloudrun_smoke.timeutil import utcnow

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
        body = read_body(handler)
        trace = incoming_trace(handler)
        revision, backend = self.choose(tag)
        refusal = self.invoker_check.refusal(handler.headers) if self.invoker_check else None
        if refusal is not None:
            html = [("Content-Type", "text/html; charset=UTF-8")]
            answer = Answer(refusal.status, html, refusal.body(handler.path.split("?")[0]), refusal=refusal)
        elif revision is None:
            answer = Answer(404, [("Content-Type", "text/html; charset=UTF-8")], NOT_FOUND_BODY)
        elif backend is None:
            answer = Answer(503, [("Content-Type", "text/html; charset=UTF-8")], UNAVAILABLE_BODY)
        else:
            with contextlib.ExitStack() as serving:
                if backend.serving is not None:  # thawed while it serves (cpu_idle)
                    serving.enter_context(backend.serving())
                if self.metrics is not None:
                    serving.enter_context(self.metrics.serving(backend.instance_id))
                reached = time.perf_counter()
                if self.error_burst is not None and self.error_burst.hit():
                    # The instance answers 500: counted by request_count like any answer of the service.
                    answer = Answer(500, [("Content-Type", "application/json")], BURST_BODY)
                    answer.served_ms = (time.perf_counter() - reached) * 1000
                else:
                    answer = forward(handler, backend.port, body, trace, self._timeout(backend.revision))
        latency = time.perf_counter() - clock
        respond(handler, answer, trace)
        self._log(handler, base_url, revision, backend, answer, len(body), started, latency, trace)

    def _log(
        self,
        handler: BaseHTTPRequestHandler,
        base_url: str,
        revision: str | None,
        backend: Backend | None,
        answer: Answer,
        request_size: int,
        started: datetime,
        latency: float,
        trace: Trace,
    ) -> None:
        instance_id = backend.instance_id if backend is not None else None
        entry = request_log_entry(
            self._service,
            handler,
            base_url,
            revision,
            instance_id,
            answer,
            request_size,
            started,
            latency,
            trace,
        )
        with contextlib.suppress(Exception):
            self._logging.ingest(entry)
        # Only what reached an instance (see the module's docstring).
        if self.metrics is not None and revision and backend is not None and answer.served_ms is not None:
            self.metrics.record_request(
                revision, answer.status, answer.served_ms, instance_id=backend.instance_id
            )
