"""Other users' traffic in the same logs: the neighbours of the local stack, and the correlation rule.

Production logs carry other users' consolidations and preference saves, some in the public code's forms
that name no thread and no user (``Task consolidate_thread failed: ...``, ``Vectorisation préférences
impossible: ...``, ``N préférences/intentions vectorisées.``). Such a line must neither fail a wait of
the run's on its own (a neighbour's failure fails a healthy deploy) nor be taken for the run's own
without a second signal (a neighbour's success hides the run's failure); the smoke-level proof is in
tests/e2e/test_fault_catalogue.py (rows with neighbours).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.errors import ConfigError
from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.logging_api import LoggingApi
from cloudrun_smoke.local.neighbours import Neighbours
from cloudrun_smoke.local.stack import LocalStack
from cloudrun_smoke.local.traffic import TrafficError
from cloudrun_smoke.logs.expectations import LogExpectationFailed
from cloudrun_smoke.logs.lines import LogMatch, names_nobody
from cloudrun_smoke.logs.watcher import LogWatcher
from cloudrun_smoke.report.verdict import markdown_summary
from cloudrun_smoke.waiting import wait_until
from helpers.log_entries import emit_stderr, watcher_on
from helpers.smoke_runs import ROOT
from helpers.stacks import app_lines, healthy, reference_stack_config

PROJECT = "neighbours-test"
PREFIX = "2026-12-04 10:00:00,000"
UPSERT_FAILED = f"{PREFIX} ERROR [prefs] Vectorisation préférences impossible: Expected IDs to be unique"
TASK_FAILED = f"{PREFIX} ERROR [tasks] Task consolidate_thread failed: Expecting value: line 1 column 1"
ENQUEUE_FAILED = f"{PREFIX} WARNING [threads] [Thread Archiving] Failed to enqueue consolidation: queue full"
SAVED = f"{PREFIX} INFO [prefs] 2 préférences/intentions vectorisées."
ENQUEUED = f"{PREFIX} INFO [threads] [Thread Archiving] Consolidation enqueued for thread {{}}"


@pytest.fixture
def watcher(api: tuple[LoggingApi, JsonApiServer]) -> Iterator[LogWatcher]:
    watcher = watcher_on(api[1].endpoint, PROJECT)
    yield watcher
    watcher.close()


def emit(api: LoggingApi, text: str) -> None:
    emit_stderr(api, PROJECT, text)


def test_a_failure_line_that_names_nobody_does_not_end_a_wait(api: tuple, watcher: LogWatcher) -> None:
    """A neighbour's failed save, failed task and failed enqueue come first; the run's own lines after:
    the waits end with the run's lines, not as failures."""
    logging_api, _ = api
    saved = watcher.expect_later("preferences.saved", {}, timeout=10)
    enqueued = watcher.expect_later("archive.enqueued", {"thread_id": "ours"}, timeout=10)
    for line in (UPSERT_FAILED, TASK_FAILED, ENQUEUE_FAILED):
        emit(logging_api, line)
    watcher.refresh()  # the failure lines are read before the success lines exist
    assert not saved.done and not enqueued.done, (saved.error, enqueued.error)
    emit(logging_api, SAVED)
    emit(logging_api, ENQUEUED.format("ours"))
    assert saved.result().fields["count"] == "2"
    assert enqueued.result().fields["thread_id"] == "ours"


def test_a_timeout_shows_the_failure_lines_that_name_nobody_beside_it(
    api: tuple, watcher: LogWatcher
) -> None:
    logging_api, _ = api
    emit(logging_api, ENQUEUE_FAILED)
    emit(logging_api, UPSERT_FAILED)
    started = time.monotonic()
    with pytest.raises(LogExpectationFailed) as failure:
        watcher.expect("archive.enqueued", {"thread_id": "ours"}, timeout=1.5)
    assert time.monotonic() - started >= 1.5  # not ended early by a line that may be another user's
    message = str(failure.value)
    assert "thread_id=ours: not seen after waiting 1.5 s" in message
    assert "1 failure line(s) meanwhile name no thread and no user" in message
    assert "perhaps another user's (not counted on their own)" in message
    assert "Failed to enqueue consolidation: queue full" in message


def test_names_nobody_is_about_thread_and_user_fields(watcher: LogWatcher) -> None:
    line = type("Line", (), {})()
    assert names_nobody(LogMatch("preferences.saved", line, {"count": "2"}))  # type: ignore[arg-type]
    assert not names_nobody(LogMatch("preferences.saved", line, {"count": "2", "user_id": "u"}))  # type: ignore[arg-type]
    assert not names_nobody(LogMatch("queue.consolidated", line, {"thread_id": "t"}))  # type: ignore[arg-type]


# -- the neighbours: real users of the reference service, during the run ---------------------------------
def test_neighbours_log_every_form_successes_and_failures_at_several_lines_a_second() -> None:
    rate = 4.0
    with LocalStack(reference_stack_config("traffic-test", "neighbours-fail")) as stack:
        healthy(stack)
        started = datetime.now(UTC)
        with Neighbours(stack.service_url, rate) as neighbours:
            wait_until(
                lambda: neighbours.summary().archived >= 16 or None,
                timeout=30,
                what="16 threads archived by the neighbours",
                interval=0.2,
            )
        summary = neighbours.summary()
        nobody = (
            "Task consolidate_thread failed",
            "Vectorisation préférences impossible",
            "préférences/intentions vectorisées",
            "ajoutés/mis à jour dans",
        )
        wanted = 2 * summary.elapsed  # lines naming nobody: at least 2 a second over the neighbours' time

        def logged() -> dict[str, list[str]] | None:
            found = {form: app_lines(stack, started, form) for form in nobody}
            return found if all(found.values()) and sum(map(len, found.values())) >= wanted else None

        found = wait_until(logged, timeout=20, what=f"each form, {wanted:.0f} lines in all", interval=0.5)
    assert summary.user_ids and all(u.startswith("neighbour-") for u in summary.user_ids)
    assert set(summary.by_status) <= {200, 201} and summary.transport_errors == 0, summary.describe()
    # On the schedule, `rate` archives a second; a busy machine may slow the service, not stop it.
    assert summary.archived >= 0.5 * rate * summary.elapsed, summary.describe()
    assert all(found.values())
    assert "neighbours: 3 other users archived" in summary.describe()


def test_a_neighbour_rate_must_be_positive() -> None:
    with pytest.raises(TrafficError, match="neighbours need a rate > 0"):
        Neighbours("http://127.0.0.1:1", 0)


def test_the_neighbour_rate_is_a_stack_setting() -> None:
    config = load_config(ROOT / "smoke.toml")
    stack = config.environment("local", environ={}).stack
    assert stack is not None and stack.neighbours == 0  # none unless asked
    stack = config.environment("local", environ={"SMOKE_LOCAL_NEIGHBOURS": "5"}).stack
    assert stack is not None and stack.neighbours == 5
    with pytest.raises(ConfigError, match="SMOKE_LOCAL_NEIGHBOURS"):
        config.environment("local", environ={"SMOKE_LOCAL_NEIGHBOURS": "-1"})


def test_the_markdown_summary_lists_the_lines_that_name_nobody_apart() -> None:
    verdict = {
        "verdict": "pass",
        "checks": [],
        "unattributed": [
            {
                "kind": "unconfirmed",
                "check": "smoke/test_preferences.py::test_preferences_are_persisted",
                "note": "no second signal",
                "line": "2 préférences/intentions vectorisées.",
            },
            {"kind": "failure", "check": "", "note": "inside the run's window", "line": TASK_FAILED},
        ],
    }
    summary = markdown_summary(verdict)
    assert "### Lines that name nobody (not counted on their own)" in summary
    assert "- smoke/test_preferences.py::test_preferences_are_persisted: no second signal" in summary
    assert f"- failure: inside the run's window — `{TASK_FAILED}`" in summary
    assert "### Failures" not in summary
