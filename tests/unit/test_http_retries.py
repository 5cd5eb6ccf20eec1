"""Never do twice what may have happened once: the retry policy of the suite's HTTP client, as a
service sees it.

A loopback service counts every request it receives and answers from a script. A write (POST, PATCH,
DELETE) that may have been processed (the request was sent and then: no answer in time, the
connection closed without an answer, 502, 504) reaches the service exactly once: a retry could
archive twice, consolidate twice or create a second thread. A read, and a write the service provably
did not process (connection refused, 429, 503), are retried. Every request carries the run's
``X-Smoke-Run-Id`` and the suite's User-Agent.

Why 429 and 503 mean "not processed": Cloud Run answers 429 when no instance could take the request
and 503 when the request could not be served (https://cloud.google.com/run/docs/troubleshooting);
Google's retry guidance (https://cloud.google.com/storage/docs/retry-strategy) retries 429 and 5xx
only for idempotent operations, which a POST to this service is not.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cloudrun_smoke.service.http import (
    RUN_ID_HEADER,
    USER_AGENT,
    RetryPolicy,
    ServiceClient,
    ServiceUnreachable,
)

RUN_ID = "retry-test-run"
TIMEOUT = 0.5  # the client's: a held request is one the service received and has not answered yet
HOLD_LIMIT = 10.0  # a held request is released at the latest then (or when the test ends)
POLICY = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, max_total=10.0)
WRITES = ("POST", "PATCH", "DELETE")
MAYBE_PROCESSED = (502, 504, "hold", "drop")  # hold: no answer in time; drop: closed without one
NOT_PROCESSED = (429, 503)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class ScriptedService:
    """Answers each request with the next step of the script (then 200), counting what it received."""

    script: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def count(self, method: str) -> int:
        return sum(1 for r in self.received if r.method == method)


def _handler(service: ScriptedService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet: the test reads what it counted
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            with service.lock:
                service.received.append(
                    Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                step = service.script.pop(0) if service.script else 200
            if step == "hold":
                service.release.wait(HOLD_LIMIT)
                return
            if step == "drop":
                self.close_connection = True
                return
            body = b'{"ok": true}'
            self.send_response(int(step))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

    return Handler


@pytest.fixture
def service() -> Iterator[ScriptedService]:
    scripted = ScriptedService()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(scripted))
    server.daemon_threads = True
    scripted.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield scripted
    finally:
        scripted.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    for request in scripted.received:
        assert request.headers.get(RUN_ID_HEADER.lower()) == RUN_ID, request
        assert request.headers.get("user-agent") == USER_AGENT, request


def _client(url: str) -> ServiceClient:
    return ServiceClient(url, {"x-user-id": "u"}, RUN_ID, timeout=TIMEOUT, retry=POLICY)


def _send(client: ServiceClient, method: str) -> int | None:
    """The status the caller sees, or None when the client raised (no usable answer)."""
    try:
        body = None if method in ("GET", "DELETE") else {}
        return client.request(method, "/api/threads/t1", json_body=body).status_code
    except ServiceUnreachable:
        return None
    finally:
        client.close()


@pytest.mark.parametrize("outcome", MAYBE_PROCESSED)
@pytest.mark.parametrize("method", WRITES)
def test_a_write_that_may_have_been_processed_reaches_the_service_once(
    service: ScriptedService, method: str, outcome: int | str
) -> None:
    service.script = [outcome, 200, 200, 200]
    client = _client(service.url)
    result = _send(client, method)
    assert service.count(method) == 1, (
        f"{method} after {outcome}: the service received it {service.count(method)} times"
    )
    assert client.timings[-1].attempts == 1
    if isinstance(outcome, int):
        assert result == outcome  # the caller sees the answer and judges it
    else:
        assert result is None  # no usable answer: the caller fails with one line, nothing resent


@pytest.mark.parametrize("outcome", (*MAYBE_PROCESSED, *NOT_PROCESSED))
def test_a_read_is_retried(service: ScriptedService, outcome: int | str) -> None:
    service.script = [outcome, 200]
    client = _client(service.url)
    result = _send(client, "GET")
    assert service.count("GET") == 2
    assert result == 200
    assert client.timings[-1].attempts == 2


@pytest.mark.parametrize("outcome", NOT_PROCESSED)
@pytest.mark.parametrize("method", WRITES)
def test_a_write_the_service_refused_to_process_is_retried(
    service: ScriptedService, method: str, outcome: int
) -> None:
    service.script = [outcome, outcome, 200]
    client = _client(service.url)
    result = _send(client, method)
    assert service.count(method) == 3
    assert result == 200
    assert client.timings[-1].attempts == 3


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port bound but not listening: every connection is refused, so no request was ever sent."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("method", ("GET", *WRITES))
def test_a_refused_connection_is_retried_for_reads_and_writes(refusing_port: int, method: str) -> None:
    client = _client(f"http://127.0.0.1:{refusing_port}")
    with pytest.raises(ServiceUnreachable, match=r"cannot connect .*\(4 attempts in"):
        client.request(method, "/api/threads/t1", json_body=None)
    client.close()
    assert client.timings[-1].attempts == POLICY.attempts
