"""The request log entry Cloud Run writes for every request (``run.googleapis.com/requests``).

One per request, whoever answered it: an instance, IAM (with its reason as ``textPayload``), or the
front end itself (404 without a route, 503 without an instance). Its severity follows the status.
"""

from __future__ import annotations

from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from cloudrun_smoke.local.log_router import REQUESTS_LOG, RevisionResource, log_name
from cloudrun_smoke.local.proxy import Answer, Trace
from cloudrun_smoke.local.run_model import Service
from cloudrun_smoke.timeutil import format_rfc3339


def request_log_entry(
    service: Service,
    handler: BaseHTTPRequestHandler,
    base_url: str,
    revision: str | None,
    instance_id: str | None,
    answer: Answer,
    request_size: int,
    started: datetime,
    latency: float,
    trace: Trace,
) -> dict[str, Any]:
    """The ``run.googleapis.com/requests`` entry of one request, as Cloud Run writes it."""
    trace_id, span, sampled = trace
    resource = RevisionResource(service.project, service.region, service.name, revision or "", service.name)
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
        "trace": f"projects/{service.project}/traces/{trace_id}",
        "spanId": f"{span:016x}",
        "traceSampled": sampled,
    }
    if instance_id is not None:
        entry["labels"] = {"instanceId": instance_id}
    if answer.refusal is not None:  # Cloud Run logs why IAM refused, with the request
        entry["textPayload"] = answer.refusal.log_text
    return entry


def _header_size(handler: BaseHTTPRequestHandler) -> int:
    return len(handler.requestline) + sum(len(k) + len(v) + 4 for k, v in handler.headers.items()) + 4
