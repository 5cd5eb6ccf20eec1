"""The 404 diagnosis reads Cloud Run's request logs from the run's one read budget, page by page.

Every ``entries:list`` page is one request against the project's "Read requests per minute" quota, and
a search may answer empty pages that carry a ``nextPageToken`` before its entries
(``ListLogEntriesResponse``, https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list).
The diagnosis re-reads while the request logs surface: those reads wait their turn at the log
watcher's pacer and count as its reads, like its own polls.
"""

from __future__ import annotations

import time
from datetime import timedelta
from itertools import pairwise

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.logging_api import LoggingApi, ShortPages
from cloudrun_smoke.logs.diagnosis import diagnose_404
from cloudrun_smoke.logs.pacing import ReadPacer
from cloudrun_smoke.logs.source import CloudLoggingSource
from cloudrun_smoke.logs.watcher import LogWatcher
from cloudrun_smoke.timeutil import utcnow
from helpers.log_entries import logging_client, request_entry

PROJECT = "diag-test"
SERVICE = "svc"
ENV = Environment(name="test", source="test", project=PROJECT, region="europe-west1", service=SERVICE)
THREAD = "thread-0042"
TRACE = "0123456789abcdef0123456789abcdef"


def client_for(server: JsonApiServer) -> object:
    return logging_client(server.endpoint, PROJECT)


def request_log(api: LoggingApi, method: str, status: int, instance: str, trace: str = "") -> None:
    """A Cloud Run request log entry for the thread, served by ``instance``."""
    url = f"https://svc.run.app/api/threads/{THREAD}"
    api.ingest(request_entry(PROJECT, ENV.region, SERVICE, url, method, status, instance, trace))


def watcher_with(server: JsonApiServer, pacer: ReadPacer) -> LogWatcher:
    return LogWatcher(
        CloudLoggingSource(client_for(server), PROJECT),
        'resource.type="cloud_run_revision"',
        utcnow(),
        pacer=pacer,
    )


def test_with_short_pages_the_diagnosis_pays_each_page_and_still_names_both_instances(api: tuple) -> None:
    logging_api, server = api
    logging_api.short_pages = ShortPages(empty_first=2, max_entries=20)
    request_log(logging_api, "POST", 201, "instance-aaaaaaaaaaaaaaaa", TRACE)
    request_log(logging_api, "GET", 404, "instance-bbbbbbbbbbbbbbbb")
    watcher = watcher_with(server, ReadPacer(30))
    try:
        text = diagnose_404(
            client_for(server),
            ENV,
            THREAD,
            TRACE,
            wait=10.0,
            pay_for_read=watcher.pay_for_read,
            since=utcnow() - timedelta(minutes=1),
        )
        assert "reached 2 different instances" in text, text
        calls = logging_api.stats.list_calls
        assert len(calls) == 3, f"{len(calls)} entries:list requests: two empty pages, then the entries"
        assert watcher.stats.reads == len(watcher.stats.read_times) == 3, "counted as the run's reads"
        assert all(b - a >= 0.9 for a, b in pairwise(calls)), calls
    finally:
        watcher.close()


def test_re_reads_while_the_404_has_not_surfaced_wait_their_turn_at_the_pacer(api: tuple) -> None:
    """It re-read every second on its own (7 reads in 6 s); with 6 a minute (a burst of 2, then one
    every 15 s) the budget allows 2 within the diagnosis's 6 s, and it gives up at its deadline."""
    logging_api, server = api
    request_log(logging_api, "POST", 201, "instance-aaaaaaaaaaaaaaaa", TRACE)  # the 404's log never comes
    watcher = watcher_with(server, ReadPacer(6))
    try:
        started = time.monotonic()
        text = diagnose_404(
            client_for(server), ENV, THREAD, TRACE, wait=6.0, pay_for_read=watcher.pay_for_read
        )
        took = time.monotonic() - started
        assert text == ""  # one instance only: nothing to explain
        assert len(logging_api.stats.list_calls) == 2 == watcher.stats.reads, logging_api.stats.list_calls
        assert took < 6.0 + 1.0, f"the diagnosis took {took:.1f} s for a 6 s wait"
    finally:
        watcher.close()


def test_a_429_ends_the_diagnosis_and_pauses_every_reader_of_the_budget(api: tuple) -> None:
    """The diagnosis shares the run's quota: a 429 it meets pauses the watcher's next poll too (4 s after
    the first 429 in a row), as a 429 of the watcher's own would."""
    logging_api, server = api
    logging_api.quota.throttle_for = 60.0
    request_log(logging_api, "POST", 201, "instance-aaaaaaaaaaaaaaaa", TRACE)
    pacer = ReadPacer(60)
    throttled: list[bool] = []
    text = diagnose_404(
        client_for(server),
        ENV,
        THREAD,
        TRACE,
        wait=6.0,
        pay_for_read=pacer.take_turn,
        on_throttled=lambda: throttled.append(pacer.throttled(pacer.clock())),
    )
    assert text == "(request logs unavailable: TooManyRequests)"
    assert throttled == [False] and pacer.throttled_in_a_row == 1
    now = pacer.clock()
    assert pacer.next_read(now) - now > 3.0, "the next reader waits out the pause"
