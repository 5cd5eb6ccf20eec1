"""Where the watcher's lines come from: one page of a filter per call, Cloud Logging's or a fake's."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Protocol

from cloudrun_smoke.logs.lines import LogLine, line_severity
from cloudrun_smoke.logs.pages import list_page
from cloudrun_smoke.timeutil import utcnow


class LogSource(Protocol):
    """Where lines come from, one page (one request) at a time: the lines of the page of ``filter_``
    that ``token`` designates (None: the first), and the token of the next page (None: the last)."""

    def page(self, filter_: str, token: str | None) -> tuple[list[LogLine], str | None]: ...


class CloudLoggingSource:
    """Pages of 1000 entries in ascending timestamps through ``google.cloud.logging.Client`` (JSON API),
    one request per call (see :mod:`cloudrun_smoke.logs.pages`: the client's own iterator would follow
    the tokens unpaced)."""

    PAGE_SIZE = 1000

    def __init__(self, client: Any, project: str) -> None:
        self._client = client
        self._project = project
        self._loggers: dict[str, Any] = {}

    def page(self, filter_: str, token: str | None) -> tuple[list[LogLine], str | None]:
        page = list_page(
            self._client, self._project, filter_, page_size=self.PAGE_SIZE, token=token, loggers=self._loggers
        )
        return [to_line(entry) for entry in page.entries], page.next_token


def entry_text(payload: Any) -> str:
    if isinstance(payload, str):
        return payload
    if isinstance(payload, Mapping):
        message = payload.get("message")
        if isinstance(message, str):
            return message
        return json.dumps(dict(payload), default=str, ensure_ascii=False)
    return "" if payload is None else str(payload)


def to_line(entry: Any) -> LogLine:
    text = entry_text(entry.payload)
    labels = entry.labels or {}
    resource_labels = entry.resource.labels if entry.resource is not None else {}
    return LogLine(
        insert_id=entry.insert_id or f"{entry.timestamp}-{hash(text)}",
        timestamp=entry.timestamp or utcnow(),
        receive_timestamp=getattr(entry, "received_timestamp", None),
        severity=line_severity(entry.severity or "", text),
        text=text,
        log_name=entry.log_name or "",
        revision=resource_labels.get("revision_name", ""),
        instance_id=labels.get("instanceId", ""),
        seen_at=time.time(),
    )
