"""The Cloud Logging API emulator, driven through the real ``google-cloud-logging`` client (JSON API)."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import httpx
import pytest
from google.api_core import exceptions as gexc
from google.cloud import logging as cloud_logging

from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.log_store import LogStore
from cloudrun_smoke.local.logging_api import Ingestion, LoggingApi, ReadQuota
from helpers.log_entries import logging_client
from helpers.log_filter_cases import CASES, ENTRIES
from helpers.log_filter_cases import PROJECT as CASES_PROJECT

PROJECT = "p"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def serve(api: LoggingApi) -> JsonApiServer:
    return JsonApiServer("logging", api.routes()).start()


def client_for(endpoint: str, project: str = PROJECT) -> cloud_logging.Client:
    return logging_client(endpoint, project)


def with_project(entry: dict, project: str = PROJECT) -> dict:
    """The shared cases name their own project in logName; scope them to this one."""
    entry = copy.deepcopy(entry)
    _, _, rest = entry["logName"].partition("/logs/")
    entry["logName"] = f"projects/{project}/logs/{rest}"
    return entry


@pytest.fixture(scope="module")
def loaded() -> Iterator[tuple[LoggingApi, cloud_logging.Client]]:
    """The fixed entries of the filter table, already visible, behind an unlimited quota."""
    api = LoggingApi(LogStore(), Ingestion(delay=0.0), ReadQuota(per_minute=None))
    for entry in ENTRIES:
        api.store.add(copy.deepcopy(entry), visible_at=0.0)
    server = serve(api)
    yield api, client_for(server.endpoint, CASES_PROJECT)
    server.stop()


def ids(entries: object) -> set[str]:
    return {e.insert_id for e in entries}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("filter_", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_filter_table_through_the_real_client(
    loaded: tuple[LoggingApi, cloud_logging.Client], filter_: str, expected: set[str]
) -> None:
    _, client = loaded
    # The client adds `timestamp>=<24 h ago>` when a filter has no timestamp term; the fixed
    # entries are older, so widen the window explicitly in that case.
    query = filter_ if "timestamp" in filter_ else f'({filter_}) AND timestamp>="2000-01-01T00:00:00Z"'
    assert ids(client.list_entries(filter_=query, page_size=1000)) == expected


def test_page_size_one_pages_through_every_entry_in_order(
    loaded: tuple[LoggingApi, cloud_logging.Client],
) -> None:
    api, client = loaded
    before = len(api.stats.list_calls)
    entries = list(client.list_entries(filter_='timestamp>="2000-01-01T00:00:00Z"', page_size=1))
    assert ids(entries) == {e["insertId"] for e in ENTRIES}
    stamps = [e.timestamp for e in entries]
    assert stamps == sorted(stamps)
    # One entries:list call per page: the client followed every nextPageToken.
    assert len(api.stats.list_calls) - before == len(ENTRIES)


def test_order_by_descending(loaded: tuple[LoggingApi, cloud_logging.Client]) -> None:
    _, client = loaded
    entries = list(
        client.list_entries(filter_='timestamp>="2000-01-01T00:00:00Z"', order_by=cloud_logging.DESCENDING)
    )
    stamps = [e.timestamp for e in entries]
    assert stamps == sorted(stamps, reverse=True) and len(entries) == len(ENTRIES)


def test_a_filter_the_grammar_rejects_is_a_400_naming_the_problem(
    loaded: tuple[LoggingApi, cloud_logging.Client],
) -> None:
    _, client = loaded
    with pytest.raises(gexc.BadRequest, match="Invalid filter"):
        list(client.list_entries(filter_='(textPayload:"x" AND'))


def test_resource_names_scope_the_read() -> None:
    api = LoggingApi(LogStore(), Ingestion(delay=0.0), ReadQuota(per_minute=None))
    api.store.add(with_project(ENTRIES[0], "other"), visible_at=0.0)
    server = serve(api)
    try:
        assert (
            list(client_for(server.endpoint).list_entries(filter_='timestamp>="2000-01-01T00:00:00Z"')) == []
        )
    finally:
        server.stop()


def test_written_entries_surface_only_after_the_ingestion_delay() -> None:
    clock = FakeClock()
    api = LoggingApi(LogStore(clock=clock), Ingestion(delay=5.0), ReadQuota(per_minute=None))
    server = serve(api)
    try:
        client = client_for(server.endpoint)
        client.logger("smoke-test").log_text("hello from the client")
        query = 'textPayload:"hello from the client"'
        assert list(client.list_entries(filter_=query)) == []
        clock.now += 4.9
        assert list(client.list_entries(filter_=query)) == []
        clock.now += 0.2
        [entry] = list(client.list_entries(filter_=query))
        assert entry.payload == "hello from the client"
        assert entry.log_name == f"projects/{PROJECT}/logs/smoke-test"
        assert entry.insert_id and entry.received_timestamp is not None
    finally:
        server.stop()


def test_reads_beyond_the_quota_are_answered_429() -> None:
    api = LoggingApi(LogStore(), Ingestion(delay=0.0), ReadQuota(per_minute=3))
    server = serve(api)
    try:
        client = client_for(server.endpoint)
        for _ in range(3):
            list(client.list_entries(filter_='textPayload:"x"'))
        with pytest.raises(gexc.TooManyRequests, match="per minute"):
            list(client.list_entries(filter_='textPayload:"x"'))
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"resourceNames": ["projects/p"], "pageSize": 1001}, "pageSize"),
        ({"resourceNames": ["projects/p"], "orderBy": "severity"}, "orderBy"),
        ({"resourceNames": ["organizations/1"]}, "resourceNames"),
        ({"resourceNames": ["projects/p"], "pageToken": "garbage"}, "pageToken"),
    ],
)
def test_malformed_list_requests_are_invalid_argument(body: dict, message: str) -> None:
    api = LoggingApi(LogStore(), Ingestion(delay=0.0), ReadQuota(per_minute=None))
    server = serve(api)
    try:
        response = httpx.post(f"{server.endpoint}/v2/entries:list", json=body)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT" and message in error["message"]
    finally:
        server.stop()


def test_a_reader_of_timestamp_after_last_seen_misses_lines_that_surface_late() -> None:
    """Per-entry ingestion delay + jitter: an entry can surface after a later-stamped one. A poller
    that asks only for ``timestamp > last seen`` loses it; re-reading a lookback window and
    de-duplicating by insertId loses nothing."""
    from datetime import UTC, datetime

    clock = FakeClock()
    api = LoggingApi(
        LogStore(clock=clock), Ingestion(delay=1.0, jitter=6.0, seed=7), ReadQuota(per_minute=None)
    )
    server = serve(api)
    try:
        client = client_for(server.endpoint)
        written: set[str] = set()
        naive_seen: set[str] = set()
        careful_seen: set[str] = set()
        last_seen = "2000-01-01T00:00:00Z"
        for step in range(40):
            stamp = datetime.fromtimestamp(clock.now, UTC).isoformat().replace("+00:00", "Z")
            entry = api.ingest(
                {"logName": f"projects/{PROJECT}/logs/app", "timestamp": stamp, "textPayload": f"line {step}"}
            )
            written.add(entry["insertId"])
            clock.now += 0.5
            naive = list(client.list_entries(filter_=f'timestamp>"{last_seen}"'))
            naive_seen |= {e.insert_id for e in naive}
            if naive:
                last_seen = max(e.timestamp for e in naive).isoformat().replace("+00:00", "Z")
            lookback = datetime.fromtimestamp(clock.now - 30, UTC).isoformat().replace("+00:00", "Z")
            careful_seen |= {e.insert_id for e in client.list_entries(filter_=f'timestamp>="{lookback}"')}
        clock.now += 10  # everything has surfaced
        lookback = datetime.fromtimestamp(clock.now - 60, UTC).isoformat().replace("+00:00", "Z")
        careful_seen |= {e.insert_id for e in client.list_entries(filter_=f'timestamp>="{lookback}"')}
        naive_seen |= {e.insert_id for e in client.list_entries(filter_=f'timestamp>"{last_seen}"')}
        assert careful_seen == written
        assert written - naive_seen, "the naive reader saw every line: no out-of-order visibility"
    finally:
        server.stop()


# -- short pages (stack:short-pages) -------------------------------------------------------------------
# ListLogEntriesResponse (https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list, and
# google/logging/v2/logging.proto in googleapis/googleapis): "If entries is empty, nextPageToken may still
# be returned, indicating that more entries may exist"; "If a value for next_page_token appears and the
# entries field is empty, it means that the search found no log entries so far but it did not have time
# to search all the possible log entries. Retry the method with this value for page_token to continue
# the search." pageSize is "the maximum number of results to return", not a promise of a full page.
def short_paged(empty_first: int = 2, max_entries: int = 3) -> tuple[LoggingApi, JsonApiServer]:
    from cloudrun_smoke.local.logging_api import ShortPages

    api = LoggingApi(
        LogStore(), Ingestion(delay=0.0), ReadQuota(per_minute=None), ShortPages(empty_first, max_entries)
    )
    for entry in ENTRIES:
        api.store.add(with_project(entry), visible_at=0.0)
    return api, serve(api)


def raw_list(endpoint: str, token: str | None = None, page_size: int = 1000) -> dict:
    body: dict = {
        "resourceNames": [f"projects/{PROJECT}"],
        "filter": 'timestamp>="2000-01-01T00:00:00Z"',
        "pageSize": page_size,
    }
    if token:
        body["pageToken"] = token
    response = httpx.post(f"{endpoint}/v2/entries:list", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_short_pages_start_empty_with_a_token_then_hold_fewer_entries_than_asked() -> None:
    _, server = short_paged(empty_first=2, max_entries=3)
    try:
        pages, token = [], None
        while True:
            page = raw_list(server.endpoint, token)
            pages.append(page)
            token = page.get("nextPageToken")
            if not token:
                break
        # The first two: no entries (proto3 JSON leaves the empty list out), but a token to continue.
        assert pages[0] == {"nextPageToken": pages[0]["nextPageToken"]}
        assert pages[1] == {"nextPageToken": pages[1]["nextPageToken"]}
        sizes = [len(p.get("entries", [])) for p in pages[2:]]
        assert all(0 < size <= 3 for size in sizes), sizes  # pageSize 1000 asked, at most 3 answered
        seen = [e["insertId"] for p in pages for e in p.get("entries", [])]
        assert sorted(seen) == sorted(e["insertId"] for e in ENTRIES) and len(seen) == len(set(seen))
    finally:
        server.stop()


def test_short_pages_with_no_match_still_begin_with_empty_pages_that_carry_a_token() -> None:
    api, server = short_paged(empty_first=2)
    try:
        body = {"resourceNames": [f"projects/{PROJECT}"], "filter": 'textPayload:"no such line"'}
        first = httpx.post(f"{server.endpoint}/v2/entries:list", json=body, timeout=10).json()
        assert "entries" not in first and first["nextPageToken"]
        client = client_for(server.endpoint)
        before = len(api.stats.list_calls)
        assert list(client.list_entries(filter_='textPayload:"no such line"')) == []
        # The client library follows the tokens on its own: three requests for one generator.
        assert len(api.stats.list_calls) - before == 3
    finally:
        server.stop()


def test_the_stack_switch_turns_short_pages_on() -> None:
    from cloudrun_smoke.local.faults import SHORT_PAGES
    from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig

    assert LocalStack(LocalStackConfig(faults=(SHORT_PAGES,))).logging.short_pages is not None
    assert LocalStack(LocalStackConfig()).logging.short_pages is None
