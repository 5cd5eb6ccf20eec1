"""Cloud Logging API v2 emulator: ``entries:list`` and ``entries:write`` over REST.

It accepts exactly what ``google.cloud.logging.Client(_use_grpc=False)`` sends (query parameters such as
``prettyPrint=false`` included) and answers in the API's JSON shapes, so the harness's production code
path runs unchanged against it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudrun_smoke.local.json_api import ApiError, JsonApiServer, Request, route
from cloudrun_smoke.local.log_query import FilterError, compile_filter
from cloudrun_smoke.local.log_store import LogStore
from cloudrun_smoke.timeutil import format_rfc3339, utcnow

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass
class ReadQuota:
    """Reads per minute per project, as Cloud Logging enforces (60 by default); ``None`` = unlimited."""

    per_minute: int | None = 60
    clock: Callable[[], float] = time.monotonic
    throttle_for: float = 0.0  # a fault switch: every read is refused for this long from the first one
    refuse_share: float = 0.0  # a fault switch: this share of reads is refused at random, all along
    _calls: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _throttle_from: float | None = None

    def take(self) -> None:
        now = self.clock()
        if self.refuse_share > 0 and random.random() < self.refuse_share:
            raise ApiError(
                429,
                "Quota exceeded for quota metric 'Read requests' of service 'logging.googleapis.com' "
                "(the local stack's flaky-logging fault is on).",
            )
        if self.throttle_for > 0:
            with self._lock:
                if self._throttle_from is None:
                    self._throttle_from = now
                if now - self._throttle_from < self.throttle_for:
                    raise ApiError(
                        429,
                        "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' "
                        "of service 'logging.googleapis.com' (the local stack's logging-429 fault is on).",
                    )
        if self.per_minute is None:
            return
        with self._lock:
            while self._calls and now - self._calls[0] >= 60:
                self._calls.popleft()
            if len(self._calls) >= self.per_minute:
                raise ApiError(
                    429,
                    "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' "
                    f"of service 'logging.googleapis.com' ({self.per_minute} per minute).",
                )
            self._calls.append(now)


@dataclass(frozen=True)
class ShortPages:
    """How Cloud Logging really pages (the ``stack:short-pages`` switch): a search may answer fewer
    entries than ``pageSize`` and, before finding any, pages with no entries but a ``nextPageToken``.

    ``ListLogEntriesResponse`` (https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list):
    "If entries is empty, nextPageToken may still be returned, indicating that more entries may
    exist"; "If a value for next_page_token appears and the entries field is empty, it means that the
    search found no log entries so far but it did not have time to search all the possible log
    entries. Retry the method with this value for page_token to continue the search."
    """

    empty_first: int = 2  # pages of every search that come back empty, with a token to continue
    max_entries: int = 20  # entries a page holds at most, whatever pageSize asked


@dataclass
class LoggingStats:
    """What the emulator served, for our tests and the benchmark."""

    list_calls: list[float] = field(default_factory=list)
    written_entries: int = 0


class Ingestion:
    """When a written entry becomes visible: a fixed delay plus uniform jitter, per entry."""

    def __init__(self, delay: float = 0.5, jitter: float = 0.0, seed: int | None = None) -> None:
        self.delay = delay
        self.jitter = jitter
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def visible_at(self, received: float) -> float:
        with self._lock:
            extra = self._random.uniform(0, self.jitter) if self.jitter > 0 else 0.0
        return received + self.delay + extra


class LoggingApi:
    """The emulator's request handlers over one :class:`LogStore`."""

    def __init__(
        self,
        store: LogStore,
        ingestion: Ingestion,
        quota: ReadQuota | None = None,
        short_pages: ShortPages | None = None,
    ) -> None:
        self.store = store
        self.ingestion = ingestion
        self.quota = quota or ReadQuota(per_minute=None)
        self.short_pages = short_pages  # None: full pages, as long as entries remain
        self.stats = LoggingStats()
        self._ids = itertools.count(1)
        self._id_prefix = hashlib.sha1(str(time.time_ns()).encode()).hexdigest()[:8]

    def routes(self) -> list:
        return [
            route("POST", "/v2/entries:list", self.list_entries),
            route("POST", "/v2/entries:write", self.write_entries),
        ]

    def serve(self) -> JsonApiServer:
        return JsonApiServer("logging-api-emulator", self.routes()).start()

    # -- entries:write -------------------------------------------------------------------------------
    def new_insert_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):010d}"

    def ingest(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Stamp an entry as Cloud Logging does on receipt and schedule its visibility."""
        received = self.store.now()
        visible_at = self.ingestion.visible_at(received)
        entry.setdefault("insertId", self.new_insert_id())
        entry.setdefault("timestamp", format_rfc3339(utcnow()))
        # Stamped at visibility, so receiveTimestamp - timestamp is the lag a reader observes.
        entry["receiveTimestamp"] = format_rfc3339(datetime.fromtimestamp(visible_at, UTC))
        self.store.add(entry, visible_at)
        self.stats.written_entries += 1
        return entry

    def write_entries(self, request: Request) -> tuple[int, Any]:
        body = request.body
        entries = body.get("entries")
        if not isinstance(entries, list) or not entries:
            raise ApiError(400, "entries: at least one entry is required")
        for raw in entries:
            if not isinstance(raw, dict):
                raise ApiError(400, "entries: each entry must be an object")
            entry = dict(raw)
            entry.setdefault("logName", body.get("logName"))
            entry.setdefault("resource", body.get("resource") or {"type": "global", "labels": {}})
            if body.get("labels"):
                entry["labels"] = {**body["labels"], **entry.get("labels", {})}
            if not entry.get("logName"):
                raise ApiError(400, "logName: required on the request or on every entry")
            if body.get("dry_run") or body.get("dryRun"):
                continue
            self.ingest(entry)
        return 200, {}

    # -- entries:list --------------------------------------------------------------------------------
    def list_entries(self, request: Request) -> tuple[int, Any]:
        body = request.body
        self.stats.list_calls.append(time.monotonic())
        self.quota.take()
        projects = _projects(body.get("resourceNames") or body.get("projectIds") or [])
        descending = _descending(body.get("orderBy", "timestamp asc"))
        page_size = _page_size(body.get("pageSize"))
        filter_text = body.get("filter") or ""
        try:
            log_filter = compile_filter(filter_text)
        except FilterError as e:
            raise ApiError(400, f"Invalid filter: {e}") from None

        fingerprint = hashlib.sha1(
            json.dumps([sorted(projects), filter_text, descending]).encode()
        ).hexdigest()
        as_of, after, searched = _read_token(body.get("pageToken"), fingerprint, self.store.now())
        short = self.short_pages
        if short is not None and searched < short.empty_first:
            # The search "did not have time": nothing yet, and a token to continue from the same place.
            return 200, {"nextPageToken": _make_token(fingerprint, as_of, after, searched + 1)}
        if short is not None:
            page_size = min(page_size, short.max_entries)
        selected = [
            e
            for e in self.store.snapshot(as_of)
            if _in_projects(e.entry, projects) and log_filter.matches(e.entry)
        ]
        if descending:
            selected.reverse()
        if after is not None:
            selected = [e for e in selected if (e.sort_key < after if descending else e.sort_key > after)]
        page = selected[:page_size]
        # proto3 JSON leaves an empty repeated field out: no ``entries`` key on an empty page.
        response: dict[str, Any] = {"entries": [e.entry for e in page]} if page else {}
        if len(selected) > page_size:
            response["nextPageToken"] = _make_token(fingerprint, as_of, page[-1].sort_key, searched + 1)
        return 200, response


def _projects(resource_names: list[str]) -> list[str]:
    projects = []
    for name in resource_names:
        if not isinstance(name, str) or not name.startswith("projects/") or name.count("/") != 1:
            raise ApiError(400, f"resourceNames: unsupported resource name {name!r} (expected projects/ID)")
        projects.append(name.split("/", 1)[1])
    if not projects:
        raise ApiError(400, "resourceNames: at least one resource name is required")
    return projects


def _in_projects(entry: dict[str, Any], projects: list[str]) -> bool:
    return any(entry.get("logName", "").startswith(f"projects/{p}/logs/") for p in projects)


def _descending(order_by: str) -> bool:
    normalized = " ".join(str(order_by).lower().split())
    if normalized in ("timestamp", "timestamp asc"):
        return False
    if normalized == "timestamp desc":
        return True
    raise ApiError(400, f"orderBy: only 'timestamp asc' and 'timestamp desc' are supported, got {order_by!r}")


def _page_size(value: Any) -> int:
    if value in (None, 0, "0", ""):
        return DEFAULT_PAGE_SIZE
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"pageSize: not an integer: {value!r}") from None
    if size < 0 or size > MAX_PAGE_SIZE:
        raise ApiError(400, f"pageSize: must be between 0 and {MAX_PAGE_SIZE}, got {size}")
    return size


def _make_token(fingerprint: str, as_of: float, after: tuple[float, str] | None, pages: int) -> str:
    """A cursor, not an offset: entries that surface between pages cannot shift what a page holds.
    ``after`` is the last entry answered (None: none yet); ``pages`` how many this search answered."""
    raw = json.dumps({"f": fingerprint, "t": as_of, "k": None if after is None else list(after), "n": pages})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _read_token(
    token: str | None, fingerprint: str, now: float
) -> tuple[float, tuple[float, str] | None, int]:
    """(as of when the search sees the store, the last entry answered, pages answered so far)."""
    if not token:
        return now, None, 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        key = None if data["k"] is None else (float(data["k"][0]), str(data["k"][1]))
        as_of = float(data["t"])
        fp = data["f"]
        pages = int(data.get("n", 1))
    except (ValueError, KeyError, TypeError, IndexError):
        raise ApiError(400, "pageToken: malformed") from None
    if fp != fingerprint:
        raise ApiError(400, "pageToken: the other parameters must be the same as in the previous call")
    return as_of, key, pages
