"""Reading a whole window of Cloud Logging entries for the window checks: few, large pages.

Two reads per run, one filter each: Cloud Run's request logs of ``PATCH /api/threads/{id}`` (the
archive latency), and the service's own lines that the consolidation figures need, narrowed
server-side to the literal text of their catalogue patterns, so a day of uvicorn access lines is never
fetched. Pages hold 1000 entries; at most ``max_pages`` per read (the figure says so when the cap is
hit); pages are paced to ``read_budget_per_minute`` and a 429 backs off and resumes from the page token.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cloudrun_smoke.gcp.errors import GOOGLE_ERRORS, LOGGING_API, api_error, is_throttled
from cloudrun_smoke.gcp.scope import CloudRunScope
from cloudrun_smoke.logs.pages import list_page
from cloudrun_smoke.logs.patterns import LogPattern
from cloudrun_smoke.logs.watcher import to_line
from cloudrun_smoke.window.period import Window

PAGE_SIZE = 1000
THROTTLE_RETRIES = 4
ARCHIVE_URL = r"/api/threads/[^/?]+/?([?].*)?$"
_LATENCY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")

# The catalogue patterns the consolidation figures read (see consolidations.py).
APP_PATTERNS = (
    "archive.enqueued",
    "archive.enqueue_failed",
    "queue.consolidated",
    "consolidation.error",
    "queue.task_failed",
    "batch.thread_consolidated",
    "preferences.saved",
)


@dataclass(frozen=True)
class Read:
    """What one read returned; ``capped`` when more pages were left unread."""

    items: list[Any]
    pages: int
    capped: bool
    filter: str


def _longest_literal(regex: str) -> str:
    """The longest run of literal characters a match of ``regex`` must contain ('' when unknown)."""
    try:
        from re import _parser  # type: ignore[attr-defined]

        parsed = _parser.parse(regex)
    except Exception:
        return ""
    best, run = "", ""
    for op, argument in parsed:
        if str(op) == "LITERAL":
            run += chr(argument)
            continue
        if str(op) == "BRANCH":  # a top-level alternative: no text is certain
            return ""
        best, run = max(best, run, key=len), ""
    return max(best, run, key=len).strip()


def search_terms(patterns: Iterable[LogPattern]) -> list[str] | None:
    """One literal per form of each pattern, for a server-side ``:`` (substring) narrowing; None when a
    form has none (an environment's override), in which case the read is not narrowed."""
    terms: list[str] = []
    for p in patterns:
        for form in p.forms:
            literal = _longest_literal(form.pattern)
            if len(literal) < 4:
                return None
            if literal not in terms:
                terms.append(literal)
    return terms


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ReadBudget:
    """At most ``per_minute`` reads in any 60 s: the first ones go at once, the next wait their turn."""

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._per_minute = max(1, per_minute)
        self._clock, self._sleep = clock, sleep
        self._times: deque[float] = deque()

    def take(self) -> None:
        now = self._clock()
        while self._times and self._times[0] <= now - 60.0:
            self._times.popleft()
        if len(self._times) >= self._per_minute:
            self._sleep(self._times[0] + 60.0 - now)  # rate limiting, not synchronisation
            self._times.popleft()
        self._times.append(self._clock())

    def back_off(self, seconds: float) -> None:
        """After a 429: the quota is shared with other readers, so wait before the next read."""
        self._sleep(seconds)


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
        budget: ReadBudget,
        endpoint: str = "",
    ) -> None:
        self._client = client
        self._project = project
        self._endpoint = endpoint  # the configured Logging endpoint, for messages ("" for Google's)
        self.window = window
        self._max_pages = max_pages
        self._budget = budget
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

    def app_lines(self, catalogue: Mapping[str, LogPattern]) -> Read:
        read = self._read(self.app_lines_filter(catalogue))
        return Read([to_line(e) for e in read.items], read.pages, read.capped, read.filter)

    def _read(self, filter_: str) -> Read:
        """Pages of ``filter_`` in timestamp order, up to the cap; a 429 backs off and resumes. Any other
        failure, or a 429 too many, is a :class:`SmokeError` naming what to do."""
        entries: list[Any] = []
        calls, pages, token, throttled = 0, 0, None, 0
        while pages < self._max_pages:
            self._budget.take()
            calls += 1
            self.pages += 1
            try:
                page, token = self._page(filter_, token)
            except GOOGLE_ERRORS as e:
                throttled += 1
                if not is_throttled(e) or throttled > THROTTLE_RETRIES:
                    where = f"project {self._project!r}"
                    raise api_error(
                        e, LOGGING_API, what="read log entries", endpoint=self._endpoint, where=where
                    ) from None
                self._budget.back_off(min(30.0, 2.0**throttled))
                continue  # resumes from the same page token
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
