"""Log entries on the Logging emulator: written as Cloud Run writes them, read as the suite reads them.

The suite reads through the real ``google-cloud-logging`` client over REST, anonymously; the tests that
feed the emulator entries by hand write the two kinds the harness reads: a revision's stderr line and
a request log entry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from google.auth.credentials import AnonymousCredentials
from google.cloud import logging as cloud_logging

from cloudrun_smoke.gcp.clients import reading_client_class
from cloudrun_smoke.local.logging_api import LoggingApi
from cloudrun_smoke.logs.source import CloudLoggingSource
from cloudrun_smoke.logs.watcher import LogWatcher
from cloudrun_smoke.timeutil import format_rfc3339, utcnow
from cloudrun_smoke.waiting import wait_until

REVISION_FILTER = 'resource.type="cloud_run_revision" AND resource.labels.service_name="svc"'


def logging_client(endpoint: str, project: str) -> cloud_logging.Client:
    """The suite's reading client, pointed at an emulator."""
    client: cloud_logging.Client = reading_client_class()(
        project=project,
        credentials=AnonymousCredentials(),
        _use_grpc=False,
        client_options={"api_endpoint": endpoint},
    )
    return client


def entries_when(
    client: cloud_logging.Client, filter_: str, count: int = 1, timeout: float = 10, interval: float = 0.1
) -> list[cloud_logging.entries.LogEntry]:
    """The entries matching ``filter_`` once there are at least ``count`` (ingestion takes its time)."""
    found: list[cloud_logging.entries.LogEntry] = wait_until(
        lambda: got if len(got := list(client.list_entries(filter_=filter_))) >= count else None,
        timeout=timeout,
        what=f"{count} entries matching {filter_}",
        interval=interval,
    )
    return found


def watcher_on(
    endpoint: str, project: str, base_filter: str = REVISION_FILTER, budget: int = 240, **kwargs: Any
) -> LogWatcher:
    """A LogWatcher on the emulator that sees the last 30 s, as the suite's does at the start of a run."""
    return LogWatcher(
        CloudLoggingSource(logging_client(endpoint, project), project),
        base_filter,
        utcnow() - timedelta(seconds=30),
        budget_per_minute=budget,
        **kwargs,
    )


def stderr_entry(project: str, text: str, *, stamped_ago: float = 0.0) -> dict[str, Any]:
    """A line revision ``r1`` of service ``svc`` wrote on stderr, stamped ``stamped_ago`` seconds ago."""
    return {
        "logName": f"projects/{project}/logs/run.googleapis.com%2Fstderr",
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": "svc", "revision_name": "r1"}},
        "textPayload": text,
        "timestamp": format_rfc3339(utcnow() - timedelta(seconds=stamped_ago)),
    }


def emit_stderr(api: LoggingApi, project: str, text: str, *, stamped_ago: float = 0.0) -> None:
    api.ingest(stderr_entry(project, text, stamped_ago=stamped_ago))


def request_entry(
    project: str,
    region: str,
    service: str,
    url: str,
    method: str,
    status: int,
    instance: str,
    trace: str = "",
) -> dict[str, Any]:
    """A Cloud Run request log entry (run.googleapis.com/requests) served by ``instance``."""
    entry: dict[str, Any] = {
        "logName": f"projects/{project}/logs/run.googleapis.com%2Frequests",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {"service_name": service, "revision_name": "r1", "location": region},
        },
        "httpRequest": {"requestMethod": method, "requestUrl": url, "status": status},
        "labels": {"instanceId": instance},
        "timestamp": format_rfc3339(utcnow()),
    }
    if trace:
        entry["trace"] = f"projects/{project}/traces/{trace}"
    return entry
