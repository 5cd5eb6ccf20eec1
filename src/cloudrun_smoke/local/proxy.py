"""The front end's proxying of one request: read it, pass it on to an instance, answer the client.

On the way in Cloud Run drops hop-by-hop headers and adds ``X-Forwarded-For``, ``X-Forwarded-Proto``
and trace context (``X-Cloud-Trace-Context`` and ``traceparent``, honouring the caller's trace id);
the pages it answers itself (404, 503) are Google's own.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import NamedTuple

from cloudrun_smoke.local.iam import Refusal

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


class Trace(NamedTuple):
    """A request's trace context: the caller's trace id (or a new one), the front end's span."""

    trace_id: str
    span: int
    sampled: bool


@dataclass
class Answer:
    """What the client gets, and what the request log and the metrics need to know of it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    declared_length: int | None = None  # the instance's Content-Length when its body was cut short
    refusal: Refusal | None = None  # Cloud Run IAM's, when it refused the request
    served_ms: float | None = None  # set when an instance answered: how long it took (request_latencies)


def forward(handler: BaseHTTPRequestHandler, port: int, body: bytes, trace: Trace, timeout: float) -> Answer:
    """Pass the request on to the instance listening on ``port``, with what Cloud Run adds to it."""
    trace_id, span, sampled = trace
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
        ("X-Cloud-Trace-Context", f"{trace_id}/{span};o={int(sampled)}"),
        ("traceparent", f"00-{trace_id}-{span:016x}-{int(sampled):02d}"),
    ]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.append(("Host", f"127.0.0.1:{port}"))
    if body or handler.command in ("POST", "PUT", "PATCH"):
        headers.append(("Content-Length", str(len(body))))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
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
        return Answer(response.status, kept, data, declared, served_ms=(time.perf_counter() - sent) * 1000)
    except TimeoutError:  # the instance had the request: it counts, with the time it was given
        return Answer(
            504,
            [("Content-Type", "text/plain")],
            TIMEOUT_BODY,
            served_ms=(time.perf_counter() - sent) * 1000,
        )
    except (OSError, http.client.HTTPException):  # never reached the instance: not in the metrics
        return Answer(503, [("Content-Type", "text/html; charset=UTF-8")], UNAVAILABLE_BODY)
    finally:
        connection.close()


def respond(handler: BaseHTTPRequestHandler, answer: Answer, trace: Trace) -> None:
    """Send the answer to the client, with the request's trace context."""
    trace_id, span, sampled = trace
    with contextlib.suppress(OSError):
        handler.send_response(answer.status)
        for name, value in answer.headers:
            handler.send_header(name, value)
        handler.send_header("X-Cloud-Trace-Context", f"{trace_id}/{span};o={int(sampled)}")
        handler.send_header("Content-Length", str(answer.declared_length or len(answer.body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(answer.body)
    if answer.declared_length is not None:
        handler.close_connection = True


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
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


def incoming_trace(handler: BaseHTTPRequestHandler) -> Trace:
    """Honour the caller's trace id (``X-Cloud-Trace-Context`` first, then ``traceparent``); a new span."""
    match = _XCTC.match(handler.headers.get("X-Cloud-Trace-Context", "").strip())
    if match:
        return Trace(match.group(1).lower(), _new_span(), match.group(3) != "0")
    match = _TRACEPARENT.match(handler.headers.get("traceparent", "").strip().lower())
    if match:
        return Trace(match.group(1), _new_span(), match.group(3) != "00")
    return Trace(f"{random.getrandbits(128):032x}", _new_span(), True)


def _new_span() -> int:
    return random.getrandbits(64) or 1
