"""Reading a whole window of Cloud Logging entries for the window checks: few, large pages.

Two reads per run, one filter each: Cloud Run's request logs of ``PATCH /api/threads/{id}`` (the
archive latency), and the service's own lines that the consolidation figures need, narrowed
server-side to the search text of their catalogue patterns, so a day of uvicorn access lines is never
fetched. Pages hold 1000 entries; at most ``max_pages`` per read (the figure says so when the cap is
hit); pages are paid from the run's read pacer, whose 429 policy pauses the read, which then resumes from
the page token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cloudrun_smoke.gcp.errors import GOOGLE_ERRORS, LOGGING_API, api_error, is_throttled
from cloudrun_smoke.gcp.scope import CloudRunScope
from cloudrun_smoke.logs.pacing import ReadPacer
from cloudrun_smoke.logs.pages import list_page
from cloudrun_smoke.logs.patterns import LogPattern
from cloudrun_smoke.logs.source import to_line
from cloudrun_smoke.window.period import Window

PAGE_SIZE = 1000
ARCHIVE_URL = r"/api/threads/[^/?]+/?([?].*)?$"
_LATENCY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")

# The catalogue patterns the consolidation figures read (see consolidations.py).
APP_PATTERNS = (
    "archive.enqueued",
    "archive.enqueue_failed",
    "queue.consolidated",
    "consolidation.error",
    "queue.task_failed",
    "queue.stopped",
    "batch.thread_consolidated",
    "preferences.saved",
)


@dataclass(frozen=True)
class Request:
    """One entry of Cloud Run's request log: what the regression figures compare."""

    method: str
    url: str
    status: int | None
    latency_ms: float | None

    @property
    def is_archive(self) -> bool:
        """``PATCH /api/threads/{id}``: the archive (renames too: request logs carry no body)."""
        return self.method == "PATCH" and re.search(ARCHIVE_URL, self.url) is not None


@dataclass(frozen=True)
class Read:
    """What one read returned; ``capped`` when more pages were left unread."""

    items: list[Any]
    pages: int
    capped: bool
    filter: str


def search_terms(patterns: Iterable[LogPattern]) -> list[str] | None:
    """The search text of every form of each pattern, for a server-side ``:`` (substring) narrowing;
    None when a pattern has none (an environment's override), in which case the read is not narrowed."""
    terms: list[str] = []
    for p in patterns:
        if len(p.search) != len(p.forms):
            return None
        terms += [t for t in p.search if t not in terms]
    return terms


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class WindowLogReader:
    """Entries of one window and scope; ``pages`` counts the ``entries:list`` calls made."""

    def __init__(
        self,
        client: Any,
        *,
        project: str,
        service: str,
        region: str,
        revision: str,
        window: Window,
        max_pages: int,
        pacer: ReadPacer,
        endpoint: str = "",
    ) -> None:
        self._client = client
        self._project = project
        self._endpoint = endpoint  # the configured Logging endpoint, for messages ("" for Google's)
        self.window = window
        self._max_pages = max_pages
        self._pacer = pacer
        self._loggers: dict[str, Any] = {}
        self.pages = 0
        self.scope = CloudRunScope(project, region, service, revision)

    def archive_requests_filter(self) -> str:
        requests = self.scope.request_logs_filter(self.window.start, self.window.end)
        return f'{requests} AND httpRequest.requestMethod="PATCH" AND httpRequest.requestUrl=~{_quoted(ARCHIVE_URL)}'

    def app_lines_filter(self, catalogue: Mapping[str, LogPattern]) -> str:
        lines = self.scope.service_logs_filter(self.window.start, self.window.end)
        terms = search_terms(catalogue[name] for name in APP_PATTERNS)
        if not terms:
            return lines
        has = " OR ".join(f"textPayload:{_quoted(t)} OR jsonPayload.message:{_quoted(t)}" for t in terms)
        return f"{lines} AND ({has})"

    def archive_latencies(self) -> Read:
        """Server-side latency (ms) of every ``PATCH /api/threads/{id}`` in the window."""
        read = self._read(self.archive_requests_filter())
        values = [ms for ms in (latency_ms(e.http_request) for e in read.items) if ms is not None]
        return Read(values, read.pages, read.capped, read.filter)

    def requests(self) -> Read:
        """Every request the scope served in the window (:class:`Request`), one read for all of them."""
        read = self._read(self.scope.request_logs_filter(self.window.start, self.window.end))
        return Read([request_of(e.http_request) for e in read.items], read.pages, read.capped, read.filter)

    def app_lines(self, catalogue: Mapping[str, LogPattern]) -> Read:
        read = self._read(self.app_lines_filter(catalogue))
        return Read([to_line(e) for e in read.items], read.pages, read.capped, read.filter)

    def _read(self, filter_: str) -> Read:
        """Pages of ``filter_`` in timestamp order, up to the cap; after a 429 the pacer pauses and the
        read resumes from the same page, or gives up (:mod:`cloudrun_smoke.logs.pacing`). Any other
        failure, or the 429 the pacer gives up at, is a :class:`SmokeError` naming what to do."""
        entries: list[Any] = []
        calls, pages, token = 0, 0, None
        while pages < self._max_pages:
            self._pacer.take_turn()
            calls += 1
            self.pages += 1
            try:
                page, token = self._page(filter_, token)
            except GOOGLE_ERRORS as e:
                if not is_throttled(e) or self._pacer.throttled(self._pacer.clock()):
                    where = f"project {self._project!r}"
                    raise api_error(
                        e, LOGGING_API, what="read log entries", endpoint=self._endpoint, where=where
                    ) from None
                continue  # resumes from the same page token
            self._pacer.served()
            pages += 1
            entries.extend(page)
            if not token:
                return Read(entries, calls, False, filter_)
        return Read(entries, calls, True, filter_)

    def _page(self, filter_: str, token: str | None) -> tuple[list[Any], str | None]:
        page = list_page(
            self._client, self._project, filter_, page_size=PAGE_SIZE, token=token, loggers=self._loggers
        )
        return page.entries, page.next_token


def latency_ms(http_request: Mapping[str, Any] | None) -> float | None:
    """``httpRequest.latency`` (``"0.123456s"`` in the JSON API) in milliseconds."""
    match = _LATENCY.match(str((http_request or {}).get("latency", "")))
    return float(match.group(1)) * 1000 if match else None


def request_of(http_request: Mapping[str, Any] | None) -> Request:
    """A request log entry's ``httpRequest`` (its JSON field names, as the Logging client returns them)."""
    fields = http_request or {}
    status = fields.get("status")
    return Request(
        str(fields.get("requestMethod", "")),
        str(fields.get("requestUrl", "")),
        int(status) if isinstance(status, int | str) and str(status).isdigit() else None,
        latency_ms(fields),
    )
