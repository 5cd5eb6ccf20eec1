"""Window log reads through the real ``google-cloud-logging`` client against the Logging emulator: one
filter per kind, narrowed on the server, pages of 1000, a hard cap that says it was hit, and a 429
that backs off and resumes from the page token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.log_router import RevisionResource
from cloudrun_smoke.local.log_store import LogStore
from cloudrun_smoke.local.logging_api import Ingestion, LoggingApi, ReadQuota
from cloudrun_smoke.logs.pacing import ReadPacer
from cloudrun_smoke.logs.patterns import CATALOGUE
from cloudrun_smoke.timeutil import format_rfc3339
from cloudrun_smoke.window.logs import WindowLogReader
from cloudrun_smoke.window.period import Window
from helpers.log_entries import logging_client

PROJECT, SERVICE, REGION = "p", "svc", "us-central1"
RESOURCE = RevisionResource(PROJECT, REGION, SERVICE, "svc-00001-abc", SERVICE).monitored_resource()
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
WINDOW = Window(T0, T0 + timedelta(hours=1), "--window 1h")
ARCHIVES = 2500


def entry(n: int, log: str, **fields: object) -> dict[str, object]:
    return {
        "insertId": f"e{n:06d}",
        "logName": f"projects/{PROJECT}/logs/run.googleapis.com%2F{log}",
        "resource": RESOURCE,
        "timestamp": format_rfc3339(T0 + timedelta(milliseconds=n)),
        **fields,
    }


def request(n: int, method: str, path: str, latency: str = "0.040s") -> dict[str, object]:
    url = f"https://svc-xyz.a.run.app{path}"
    return entry(n, "requests", httpRequest={"requestMethod": method, "requestUrl": url, "latency": latency})


def entries() -> Iterator[dict[str, object]]:
    for n in range(ARCHIVES):
        yield request(n, "PATCH", f"/api/threads/t{n}", "0.120s" if n % 2 else "0.040s")
    n = ARCHIVES
    for method, path in (
        ("GET", "/api/threads/t1"),
        ("PATCH", "/api/threads/t1/messages"),
        ("POST", "/api/threads/"),
    ):
        n += 1
        yield request(n, method, path)
    lines = [
        (
            "stderr",
            {
                "textPayload": "2026-11-25 09:00:01,000 INFO [x] [Thread Archiving] Consolidation enqueued for thread a"
            },
        ),
        ("stdout", {"jsonPayload": {"message": "[MemoryTaskQueue] Thread a consolidated: 2 new concepts"}}),
        ("stdout", {"textPayload": 'INFO:     127.0.0.1:5000 - "GET /api/health HTTP/1.1" 200 OK'}),
        (
            "stderr",
            {"textPayload": "2026-11-25 09:00:01,000 INFO [x] Worker 0 completed consolidate_thread in 0.1s"},
        ),
    ]
    for log, payload in lines:
        n += 1
        yield entry(n, log, **payload)
    n += 1
    outside = entry(n, "stderr", textPayload="[Thread Archiving] Consolidation enqueued for thread late")
    outside["timestamp"] = format_rfc3339(WINDOW.end + timedelta(seconds=1))
    yield outside


@pytest.fixture
def api() -> Iterator[LoggingApi]:
    api = LoggingApi(LogStore(), Ingestion(delay=0.0), ReadQuota(per_minute=None))
    for e in entries():
        api.store.add(e, visible_at=0.0)
    yield api


@pytest.fixture
def server(api: LoggingApi) -> Iterator[JsonApiServer]:
    server = JsonApiServer("logging", api.routes()).start()
    yield server
    server.stop()


def reader(endpoint: str, max_pages: int = 10, pacer: ReadPacer | None = None) -> WindowLogReader:
    client = logging_client(endpoint, PROJECT)
    return WindowLogReader(
        client,
        project=PROJECT,
        service=SERVICE,
        region=REGION,
        revision="",
        window=WINDOW,
        max_pages=max_pages,
        pacer=pacer or ReadPacer(60),
    )


def test_archive_requests_are_every_patch_of_a_thread_in_pages_of_1000(server: JsonApiServer) -> None:
    r = reader(server.endpoint)
    read = r.archive_latencies()
    assert len(read.items) == ARCHIVES and not read.capped
    assert (read.pages, r.pages) == (3, 3)
    assert sorted(set(read.items)) == [pytest.approx(40.0), pytest.approx(120.0)]


def test_a_read_past_the_cap_stops_and_says_so(server: JsonApiServer) -> None:
    read = reader(server.endpoint, max_pages=2).archive_latencies()
    assert (len(read.items), read.pages, read.capped) == (2000, 2, True)


def test_service_lines_are_narrowed_on_the_server_text_and_json_alike(
    server: JsonApiServer, api: LoggingApi
) -> None:
    read = reader(server.endpoint).app_lines(CATALOGUE)
    texts = [line.text for line in read.items]
    assert len(texts) == 2, texts  # no access line, no worker line, nothing after the window
    assert "Consolidation enqueued for thread a" in texts[0]
    assert texts[1] == "[MemoryTaskQueue] Thread a consolidated: 2 new concepts"
    assert read.pages == 1


def test_a_429_backs_off_and_resumes_where_it_stopped(api: LoggingApi, server: JsonApiServer) -> None:
    now = [0.0]
    api.quota = ReadQuota(per_minute=None, clock=lambda: now[0], throttle_for=5.0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    r = reader(server.endpoint, pacer=ReadPacer(60, clock=lambda: now[0], sleep=sleep))
    read = r.archive_latencies()
    assert len(read.items) == ARCHIVES
    # Refused at 0 s and 4 s (the pacer's 429 policy: 4 s, then 8 s), served from 12 s, one page a second.
    assert slept == [4.0, 8.0, 1.0, 1.0]
    assert read.pages == 5  # 2 refused calls (each a read against the quota) + 3 pages


def test_the_fifth_429_in_a_row_gives_up(api: LoggingApi, server: JsonApiServer) -> None:
    now = [0.0]
    api.quota = ReadQuota(per_minute=None, clock=lambda: now[0], refuse_share=1.0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    r = reader(server.endpoint, pacer=ReadPacer(60, clock=lambda: now[0], sleep=sleep))
    with pytest.raises(SmokeError) as refused:
        r.archive_latencies()
    assert (slept, r.pages) == ([4.0, 8.0, 16.0, 32.0], 5)
    assert "TooManyRequests: 429" in str(refused.value)
