"""Background traffic against the local stack running the reference service: what the summary says is
what the stack logged (request logs and the service's own lines, read through the Logging client),
a healthy service consolidates every archived thread, and neither 5xx answers nor failed
consolidations stop the traffic or hold it past its deadline."""

from __future__ import annotations

import re
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from google.cloud import logging as cloud_logging

from cloudrun_smoke.local.stack import LocalStack
from cloudrun_smoke.local.traffic import (
    USER_AGENT,
    TrafficError,
    TrafficSummary,
    dev_bypass_headers,
    run_background_traffic,
)
from cloudrun_smoke.timeutil import format_rfc3339
from cloudrun_smoke.waiting import wait_until
from helpers.stacks import app_lines, healthy, reference_stack_config, stack_logs

PROJECT = "traffic-test"
REQUESTS = 'log_id("run.googleapis.com/requests")'
ENQUEUED = re.compile(r"\[Thread Archiving\] Consolidation enqueued for thread (\w+)")
CONSOLIDATED = re.compile(r"\[MemoryTaskQueue\] Thread (\w+) consolidated: (\d+) new concepts")
FAILED = re.compile(r"Erreur consolidation thread (\w+): ")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(reference_stack_config(PROJECT)) as running:
        yield healthy(running)


def since(moment: datetime) -> str:
    return f'timestamp>="{format_rfc3339(moment)}"'


def request_entries(stack: LocalStack, started: datetime, count: int) -> list[cloud_logging.entries.LogEntry]:
    """The traffic's request log entries, once all ``count`` are visible (more would be a mismatch)."""
    client = stack_logs(stack)
    filter_ = f'{REQUESTS} AND httpRequest.userAgent="{USER_AGENT}" AND {since(started)}'
    return wait_until(
        lambda: found if len(found := list(client.list_entries(filter_=filter_))) >= count else None,
        timeout=15,
        what=f"{count} request log entries of the traffic",
        interval=0.3,
    )


def path_of(entry: cloud_logging.entries.LogEntry) -> str:
    return "/" + entry.http_request["requestUrl"].split("/", 3)[3].split("?")[0]


def run(stack: LocalStack, **options: object) -> tuple[datetime, TrafficSummary]:
    started = datetime.now(UTC)
    summary = run_background_traffic(stack.service_url, **options)  # type: ignore[arg-type]
    return started, summary


def test_summary_matches_the_request_logs_and_every_thread_is_consolidated(stack: LocalStack) -> None:
    asked: list[str] = []

    def headers_for(user_id: str) -> dict[str, str]:
        asked.append(user_id)
        return dev_bypass_headers(user_id)

    started, summary = run(stack, headers_for=headers_for)

    assert summary.users == 6 and list(summary.user_ids) == asked
    assert all(re.fullmatch(r"user-\d+-[0-9a-f]+", u) and not u.startswith("smoke-") for u in asked)
    assert len(set(asked)) == 6
    # 8 threads per user archived, a quarter renamed, plus one active notes thread each for the garden.
    assert (summary.threads_archived, summary.renames, summary.threads_created) == (48, 12, 54)
    assert summary.consolidated == 48 and summary.unconsolidated_ids == ()
    assert summary.preferences_saved > 0
    assert set(summary.by_status) <= {200, 201} and summary.transport_errors == 0
    assert summary.requests == sum(summary.by_status.values()) > 6 * 8 * 4

    entries = request_entries(stack, started, summary.requests)
    assert len(entries) == summary.requests
    assert dict(Counter(e.http_request["status"] for e in entries)) == summary.by_status
    calls = Counter((e.http_request["requestMethod"], path_of(e)) for e in entries)
    assert calls[("POST", "/api/threads/")] == summary.threads_created
    patches = sum(n for (method, path), n in calls.items() if method == "PATCH")
    assert patches == summary.threads_archived + summary.renames
    assert calls[("POST", "/api/memory/tend-garden")] == summary.users
    assert calls[("GET", "/api/health")] >= summary.users

    enqueued = {
        m[1] for line in app_lines(stack, started, "Consolidation enqueued") if (m := ENQUEUED.search(line))
    }
    done = [m for line in app_lines(stack, started, "new concepts") if (m := CONSOLIDATED.search(line))]
    assert len(enqueued) == summary.threads_archived
    assert {m[1] for m in done} == enqueued and all(int(m[2]) >= 1 for m in done)
    assert not app_lines(stack, started, "Erreur consolidation")
    assert app_lines(stack, started, "préférences/intentions vectorisées")


def test_5xx_answers_are_counted_and_the_traffic_goes_on() -> None:
    # One request in three answers 503 before it is processed; one user, so every retry gets through.
    with LocalStack(reference_stack_config(PROJECT, "transient-503=3")) as flaky:
        started, summary = run(healthy(flaky), users=1, threads_per_user=8)
        assert summary.by_status.get(503, 0) >= 10
        assert (summary.threads_archived, summary.consolidated, summary.renames) == (8, 8, 2)
        assert summary.preferences_saved > 0
        entries = request_entries(flaky, started, summary.requests)
        assert len(entries) == summary.requests
        errors = [e for e in entries if e.http_request["status"] == 503]
        assert len(errors) == summary.by_status[503] and {e.severity for e in errors} == {"ERROR"}


def test_failed_consolidations_are_reported_once_the_deadline_passes() -> None:
    with LocalStack(reference_stack_config(PROJECT, "consolidation-fails-some=0.25")) as failing:
        started, summary = run(healthy(failing), users=2, threads_per_user=4, deadline=4.0)
        assert summary.threads_archived == 8 and summary.consolidated == 6
        assert 4.0 <= summary.elapsed < 8.0
        failed = wait_until(
            lambda: (
                ids
                if len(
                    ids := {
                        m[1]
                        for line in app_lines(failing, started, "Erreur consolidation")
                        if (m := FAILED.search(line))
                    }
                )
                >= 2
                else None
            ),
            timeout=10,
            what="two 'Erreur consolidation' lines",
            interval=0.3,
        )
        assert set(summary.unconsolidated_ids) == failed


def test_an_unreachable_service_is_one_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(TrafficError, match=rf"cannot reach the service at http://127.0.0.1:{port}"):
        run_background_traffic(f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 5
    with pytest.raises(TrafficError, match="not a service URL"):
        run_background_traffic("ftp://127.0.0.1/")
    with pytest.raises(TrafficError, match="users must be >= 1"):
        run_background_traffic(f"http://127.0.0.1:{port}", users=0)


def test_local_up_with_traffic_prints_the_summary_before_ready() -> None:
    from helpers.local_up import local_up

    up = local_up("--traffic")
    try:
        assert re.search(
            r"^background traffic: 6 users, \d+ requests in [\d.]+ s \(200: \d+", up.banner, re.M
        )
        assert "threads: 54 created, 48 archived, 12 renamed, 48 consolidated" in up.banner, up.banner
        assert re.search(r"preferences saved \(tend-garden\): [1-9]", up.banner)
    finally:
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(timeout=20) == 0
