"""Consolidation figures from log lines: pairing by thread id, pending versus lost, failures counted
once, and the server-side narrowing of the read to the catalogue's literal text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from cloudrun_smoke.logs.lines import LogLine
from cloudrun_smoke.logs.patterns import CATALOGUE, catalogue_with
from cloudrun_smoke.window.consolidations import consolidation_stats
from cloudrun_smoke.window.logs import APP_PATTERNS, latency_ms, search_terms

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
END = T0 + timedelta(minutes=10)
_ids = count()


def line(seconds: float, text: str, instance: str = "i1") -> LogLine:
    stamp = T0 + timedelta(seconds=seconds)
    return LogLine(
        f"id{next(_ids):05d}",
        stamp,
        stamp,
        "INFO",
        f"2026-11-25 12:00:00,000 INFO [x] {text}",
        "stderr",
        "r",
        instance,
    )


def enqueued(s: float, thread: str, instance: str = "i1") -> LogLine:
    return line(s, f"[Thread Archiving] Consolidation enqueued for thread {thread}", instance)


def consolidated(s: float, thread: str, n: int = 3, instance: str = "i1") -> LogLine:
    return line(s, f"[MemoryTaskQueue] Thread {thread} consolidated: {n} new concepts", instance)


def error(s: float, thread: str, instance: str = "i1") -> LogLine:
    return line(s, f"Erreur consolidation thread {thread}: invalid LLM response", instance)


def task_failed(s: float, instance: str = "i1") -> LogLine:
    return line(s, "Task consolidate_thread failed: boom", instance)


def stats(*lines: LogLine, grace: float = 300.0):  # type: ignore[no-untyped-def]
    return consolidation_stats(list(reversed(lines)), CATALOGUE, end=END, grace=grace)


def test_enqueued_and_consolidated_pair_by_thread_id_and_give_queue_times() -> None:
    s = stats(enqueued(0, "a"), enqueued(1, "b"), consolidated(3, "b"), consolidated(4.5, "a"))
    assert sorted(s.queue_times) == [2.0, 4.5]
    assert s.consolidated_threads == {"a", "b"} and s.failed == 0 and s.failure_pct == 0.0


def test_a_recent_thread_without_outcome_is_pending_an_old_one_is_lost() -> None:
    s = stats(enqueued(0, "old"), enqueued(590, "recent"), grace=60)
    assert (s.pending, s.lost, s.failed, s.tried) == (1, 1, 1, 2)
    assert s.failure_pct == 50.0


def test_a_named_failure_and_its_task_failure_count_once() -> None:
    # consolidation-fails-some: the error line, "consolidated: 0", then the task's own failure line.
    s = stats(
        enqueued(0, "a"),
        enqueued(0.1, "b"),
        consolidated(1, "a"),
        error(2, "b"),
        consolidated(2.001, "b", n=0),
        task_failed(2.002),
    )
    assert (s.failed, s.tried, s.unattributed_failures) == (1, 2, 0)
    assert s.consolidated_threads == {"a"} and s.failure_pct == 50.0


def test_an_unnamed_task_failure_goes_to_the_oldest_open_attempt_of_its_instance() -> None:
    s = stats(
        enqueued(0, "x", "i2"),
        enqueued(1, "a", "i1"),
        enqueued(2, "b", "i1"),
        consolidated(3, "b", instance="i1"),
        task_failed(4, "i1"),
        consolidated(5, "x", instance="i2"),
    )
    assert [a.thread_id for a in s.attempts if a.failed] == ["a"]
    assert (s.failed, s.pending, s.lost) == (1, 0, 0)


def test_a_success_just_before_a_failure_is_not_taken_for_it() -> None:
    s = stats(enqueued(0, "a"), enqueued(0.5, "b"), consolidated(1, "a", n=4), task_failed(1.2))
    assert [a.thread_id for a in s.attempts if a.failed] == ["b"]


def test_failures_of_tasks_enqueued_before_the_window_still_count() -> None:
    s = stats(enqueued(0, "a"), consolidated(1, "a"), task_failed(2))
    assert (s.unattributed_failures, s.failed, s.tried) == (1, 1, 2)


def test_a_failure_to_enqueue_is_a_failed_attempt() -> None:
    s = stats(
        enqueued(0, "a"),
        consolidated(1, "a"),
        line(2, "[Thread Archiving] Failed to enqueue consolidation: full"),
    )
    assert (s.enqueue_failures, s.failed, s.tried) == (1, 1, 2)


def test_archiving_twice_pairs_each_enqueue_with_its_own_outcome() -> None:
    s = stats(enqueued(0, "a"), consolidated(2, "a"), enqueued(10, "a"), consolidated(11, "a"))
    assert sorted(s.queue_times) == [1.0, 2.0] and s.tried == 2


def test_preferences_saved_is_a_lower_bound_never_a_double_count() -> None:
    s = stats(
        line(1, "2 items ajoutés/mis à jour dans 'memory_preferences'."),
        line(1.1, "2 préférences/intentions vectorisées."),
        line(5, "1 items ajoutés/mis à jour dans 'memory_preferences'."),
        line(5.1, "1 préférences/intentions vectorisées."),
    )
    assert (s.preferences_saved, s.preference_lines) == (3, 4)


def test_json_lines_count_like_text_lines() -> None:
    plain = LogLine("j1", T0, T0, "INFO", "[Thread Archiving] Consolidation enqueued for thread j", "stdout")
    assert stats(plain).tried == 1


# -- reading ----------------------------------------------------------------------------------------------
def test_the_read_is_narrowed_to_the_literal_text_of_each_pattern() -> None:
    terms = search_terms(CATALOGUE[name] for name in APP_PATTERNS)
    assert terms is not None
    assert "[Thread Archiving] Consolidation enqueued for thread" in terms
    assert "Task consolidate_thread failed:" in terms
    assert "préférences/intentions vectorisées" in terms
    assert "ajoutés/mis à jour dans 'memory_preferences'" in terms
    assert "[MemoryTaskQueue] Stopped" in terms


def test_an_override_without_literal_text_reads_unnarrowed() -> None:
    catalogue = catalogue_with({"archive.enqueued": [r"(?P<thread_id>\w+) (queued|enqueued)"]})
    assert search_terms(catalogue[name] for name in APP_PATTERNS) is None


def test_request_log_latency_in_milliseconds() -> None:
    assert latency_ms({"latency": "0.125s"}) == pytest.approx(125.0)
    assert latency_ms({"latency": "2s"}) == 2000.0
    assert latency_ms({}) is None and latency_ms(None) is None


# Cloud Run shuts an instance down with SIGTERM and SIGKILL 10 s later (container runtime contract,
# "Instance shutdown", https://cloud.google.com/run/docs/container-contract#instance-shutdown) and documents
# no log entry for it: an instance silent for longer while others log was shut down.
def test_a_thread_queued_on_an_instance_shut_down_is_lost_not_pending_and_named() -> None:
    s = stats(
        enqueued(575, "done", "old"),
        consolidated(576, "done", instance="old"),
        enqueued(578, "queued", "old"),  # young: pending by age alone
        enqueued(580, "x", "new"),
        consolidated(591, "x", instance="new"),  # 13 s after the old instance's last line
    )
    assert (s.lost, s.pending, s.failed) == (1, 0, 1)
    assert [a.thread_id for a in s.lost_with_instance] == ["queued"]
    message = s.shutdown_losses()
    assert "1 lost at an instance shutdown: instance old logged nothing after 12:09:38 UTC" in message
    assert "thread(s) queued still queued" in message and "SIGTERM" in message


def test_a_thread_on_an_instance_quiet_for_less_than_the_grace_period_stays_pending() -> None:
    s = stats(
        enqueued(578, "queued", "old"), enqueued(580, "x", "new"), consolidated(587, "x", instance="new")
    )
    assert (s.lost, s.pending, s.shutdown_losses()) == (0, 1, "")


def test_a_quiet_instance_of_a_revision_that_still_serves_is_pending_not_lost() -> None:
    """Silence alone proves no shutdown: an instance of a revision with traffic (or a tag) may be waiting
    on an LLM or starved of CPU between requests. Its thread keeps the grace period."""
    lines = (
        enqueued(578, "queued", "quiet"),
        enqueued(580, "x", "busy"),
        consolidated(591, "x", instance="busy"),  # 13 s after the quiet instance's last line
    )
    serving = consolidation_stats(list(lines), CATALOGUE, end=END, grace=300.0, still_serving={"r"})
    assert (serving.lost, serving.pending, serving.shutdown_losses()) == (0, 1, "")
    moved_away = consolidation_stats(list(lines), CATALOGUE, end=END, grace=300.0, still_serving={"other"})
    assert (moved_away.lost, moved_away.pending) == (1, 0)


def stopped(s: float, dropped: int, instance: str) -> LogLine:
    return line(s, f"[MemoryTaskQueue] Stopped 1 workers, {dropped} pending tasks dropped", instance)


def test_the_queues_own_stop_line_loses_what_its_instance_held_even_on_a_serving_revision() -> None:
    """An instance that scaled in belongs to a revision that still serves: silence proves nothing there,
    but the service's own stop line does. What its instance enqueued before it and never finished is
    lost, named with the line; what another instance holds, or what came after, is not."""
    lines = [
        enqueued(570, "done", "gone"),
        consolidated(571, "done", instance="gone"),
        enqueued(572, "queued", "gone"),
        enqueued(573, "elsewhere", "busy"),
        stopped(574, 1, "gone"),
        enqueued(575, "after", "gone"),  # not possible in practice; not the stop's to claim
    ]
    s = consolidation_stats(lines, CATALOGUE, end=END, grace=300.0, still_serving={"r"})
    assert [a.thread_id for a in s.lost_with_instance] == ["queued"]
    assert (s.lost, s.pending) == (1, 2)
    message = s.shutdown_losses()
    assert (
        "instance gone logged '[MemoryTaskQueue] Stopped 1 workers, 1 pending tasks dropped' at 12:09:34 UTC"
        in message
    )
    assert "thread(s) queued still queued" in message


def test_a_stop_line_after_the_queue_drained_loses_nothing() -> None:
    s = stats(enqueued(570, "a", "gone"), consolidated(573, "a", instance="gone"), stopped(574, 0, "gone"))
    assert (s.lost, s.pending, s.shutdown_losses()) == (0, 0, "")
