"""A revision's stdout and stderr → Cloud Logging entries, as Cloud Run ships container output.

A line that is one JSON object becomes ``jsonPayload`` with Cloud Run's structured-logging fields moved
into the entry; anything else becomes ``textPayload`` with no severity (the level, if any, is only in
the text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cloudrun_smoke.local.logging_api import LoggingApi
from cloudrun_smoke.timeutil import format_rfc3339, parse_rfc3339, utcnow

STDOUT_LOG = "run.googleapis.com/stdout"
STDERR_LOG = "run.googleapis.com/stderr"
REQUESTS_LOG = "run.googleapis.com/requests"
SYSTEM_LOG = "run.googleapis.com/varlog/system"

_SPECIAL_FIELDS = {
    "logging.googleapis.com/trace": "trace",
    "logging.googleapis.com/spanId": "spanId",
    "logging.googleapis.com/insertId": "insertId",
    "logging.googleapis.com/trace_sampled": "traceSampled",
}


def log_name(project: str, log_id: str) -> str:
    """``projects/P/logs/run.googleapis.com%2Fstderr``: the log id is URL-encoded, as Logging stores it."""
    return f"projects/{project}/logs/{quote(log_id, safe='')}"


@dataclass(frozen=True)
class RevisionResource:
    project: str
    region: str
    service: str
    revision: str
    configuration: str

    def monitored_resource(self) -> dict[str, Any]:
        return {
            "type": "cloud_run_revision",
            "labels": {
                "project_id": self.project,
                "service_name": self.service,
                "revision_name": self.revision,
                "location": self.region,
                "configuration_name": self.configuration,
            },
        }


class LogRouter:
    def __init__(self, api: LoggingApi) -> None:
        self._api = api

    def route_line(
        self, resource: RevisionResource, stream: str, line: str, instance_id: str | None = None
    ) -> dict[str, Any] | None:
        text = line.rstrip("\r\n")
        if not text.strip():
            return None
        log_id = STDOUT_LOG if stream == "stdout" else STDERR_LOG
        entry: dict[str, Any] = {
            "logName": log_name(resource.project, log_id),
            "resource": resource.monitored_resource(),
            "timestamp": format_rfc3339(utcnow()),
            "labels": {},
        }
        payload = _json_object(text)
        if payload is None:
            entry["textPayload"] = text
        else:
            _structured(entry, payload)
        if instance_id:
            entry["labels"]["instanceId"] = instance_id
        if not entry["labels"]:
            del entry["labels"]
        return self._api.ingest(entry)

    def route_system(
        self, resource: RevisionResource, message: str, severity: str, instance_id: str | None = None
    ) -> dict[str, Any]:
        """What Cloud Run itself says about an instance (start-up failures, exits)."""
        entry: dict[str, Any] = {
            "logName": log_name(resource.project, SYSTEM_LOG),
            "resource": resource.monitored_resource(),
            "timestamp": format_rfc3339(utcnow()),
            "severity": severity,
            "textPayload": message,
        }
        if instance_id:
            entry["labels"] = {"instanceId": instance_id}
        return self._api.ingest(entry)


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _structured(entry: dict[str, Any], payload: dict[str, Any]) -> None:
    """Cloud Run's structured logging: special fields leave the payload; ``message`` stays in it."""
    severity = payload.pop("severity", None)
    if isinstance(severity, str) and severity.strip():
        entry["severity"] = severity.strip().upper()
    labels = payload.pop("logging.googleapis.com/labels", None)
    if isinstance(labels, dict):
        entry["labels"].update({str(k): str(v) for k, v in labels.items()})
    for source, target in _SPECIAL_FIELDS.items():
        if source in payload:
            entry[target] = payload.pop(source)
    moment = payload.pop("time", None) or payload.pop("timestamp", None)
    if isinstance(moment, str):
        try:
            entry["timestamp"] = format_rfc3339(parse_rfc3339(moment))
        except ValueError:
            payload["time"] = moment
    entry["jsonPayload"] = payload
