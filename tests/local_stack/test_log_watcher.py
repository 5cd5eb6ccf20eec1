"""The LogWatcher against the Logging emulator through the real client: late and out-of-order lines,
overlapping waits, fail-fast on failure lines, absence, the read budget, and what a timeout says."""

from __future__ import annotations

import re
import time
from itertools import pairwise

import pytest

from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.logging_api import Ingestion, LoggingApi, ReadQuota, ShortPages
from cloudrun_smoke.logs.expectations import LogExpectationFailed
from cloudrun_smoke.logs.ingestion_lag import MeasuredWindow
from cloudrun_smoke.logs.pacing import ReadPacer
from cloudrun_smoke.logs.watcher import LogWatcher
from cloudrun_smoke.timeutil import utcnow
from cloudrun_smoke.waiting import wait_until
from helpers.log_entries import REVISION_FILTER, emit_stderr, watcher_on

PROJECT = "watcher-test"
BASE_FILTER = REVISION_FILTER


def watcher_for(server: JsonApiServer, budget: int = 240, **kwargs: object) -> LogWatcher:
    return watcher_on(server.endpoint, PROJECT, BASE_FILTER, budget, **kwargs)


def emit(api: LoggingApi, text: str, *, visible_in: float = 0.0, stamped_ago: float = 0.0) -> None:
    """Write a Cloud Run stderr line that becomes visible ``visible_in`` seconds from now."""
    api.ingestion = Ingestion(delay=visible_in)
    emit_stderr(api, PROJECT, text, stamped_ago=stamped_ago)


ENQUEUED = "2026-11-25 10:00:00,000 INFO [x] [Thread Archiving] Consolidation enqueued for thread {}"
CONSOLIDATED = "2026-11-25 10:00:00,000 INFO [x] [MemoryTaskQueue] Thread {} consolidated: {} new concepts"
FAILED = "2026-11-25 10:00:00,000 ERROR [x] Erreur consolidation thread {}: LLM unreachable"


def test_a_line_that_becomes_visible_after_a_newer_one_is_still_found(api: tuple) -> None:
    logging_api, server = api
    watcher = watcher_for(server)
    try:
        emit(logging_api, ENQUEUED.format("newer"))  # visible now, stamped now
        watcher.expect("archive.enqueued", {"thread_id": "newer"}, timeout=5)
        # Stamped 3 s earlier than the line already seen, visible only after a delay: a reader asking
        # for "timestamp > last seen" would never see it.
        emit(logging_api, ENQUEUED.format("older"), visible_in=1.0, stamped_ago=3.0)
        match = watcher.expect("archive.enqueued", {"thread_id": "older"}, timeout=6)
        assert match.fields["thread_id"] == "older"
    finally:
        watcher.close()


def test_waits_registered_together_overlap(api: tuple) -> None:
    logging_api, server = api
    watcher = watcher_for(server)
    try:
        # The first wait's line never comes: waits served one after the other would hold the second
        # until the first timed out (20 s). Overlapping, the second ends while the first still waits,
        # however slow the machine is.
        first = watcher.expect_later("archive.enqueued", {"thread_id": "never"}, timeout=20)
        second = watcher.expect_later("archive.enqueued", {"thread_id": "b"}, timeout=20)
        emit(logging_api, ENQUEUED.format("b"), visible_in=1.0)
        assert second.result().fields["thread_id"] == "b"
        assert not first.done, "the first wait ended before the second: they did not overlap"
    finally:
        watcher.close()


def test_a_failure_line_for_the_thread_ends_the_wait_at_once_with_the_line(api: tuple) -> None:
    logging_api, server = api
    watcher = watcher_for(server)
    try:
        emit(logging_api, FAILED.format("t1"))
        started = time.monotonic()
        with pytest.raises(LogExpectationFailed) as failure:
            watcher.expect("queue.consolidated", {"thread_id": "t1"}, timeout=20)
        assert time.monotonic() - started < 5
        message = str(failure.value)
        assert "'consolidation.error' appeared" in message
        assert "Erreur consolidation thread t1: LLM unreachable" in message
    finally:
        watcher.close()


def test_a_timeout_says_what_was_expected_what_was_seen_and_where_to_look(api: tuple) -> None:
    logging_api, server = api
    watcher = watcher_for(server, explore_hint=lambda f: "  Logs Explorer: https://example/logs")
    try:
        emit(logging_api, CONSOLIDATED.format("t9", 2))
        with pytest.raises(LogExpectationFailed) as failure:
            watcher.expect("archive.enqueued", {"thread_id": "t9"}, timeout=1.5)
        message = str(failure.value)
        assert "expected log line 'archive.enqueued'" in message
        assert "thread_id=t9: not seen after waiting 1.5 s" in message
        assert "Thread t9 consolidated: 2 new concepts" in message  # the closest line, naming the thread
        assert "filter: " + BASE_FILTER in message
        assert "log reads: " in message and "Logs Explorer: https://example/logs" in message
    finally:
        watcher.close()


def test_absence_fails_when_a_second_line_appears(api: tuple) -> None:
    logging_api, server = api
    watcher = watcher_for(server)
    try:
        emit(logging_api, ENQUEUED.format("t2"))
        once = watcher.expect_absent("archive.enqueued", {"thread_id": "t2"}, window=1.0, allowed=1)
        once.result()  # one line is allowed
        twice = watcher.expect_absent("archive.enqueued", {"thread_id": "t2"}, window=5.0, allowed=1)
        emit(logging_api, ENQUEUED.format("t2"))
        with pytest.raises(LogExpectationFailed, match="must appear at most 1 time"):
            twice.result()
    finally:
        watcher.close()


def _read_once(watcher: LogWatcher) -> None:
    """Let the watcher make one read now, so that its next one is a whole read interval away."""
    watcher.refresh(timeout=10)


def test_a_line_visible_at_the_deadline_but_not_yet_read_still_counts(api: tuple) -> None:
    """CI once cleared a user's memory while its consolidation's end line was visible: the wait had
    expired 2 s after the last read, 2 s before the next one, so nobody looked. A wait now ends by
    its deadline only after a read that started at or after it."""
    logging_api, server = api
    watcher = watcher_for(server, pacer=ReadPacer(12, burst=1))  # no burst: one read every 5.5 s
    try:
        _read_once(watcher)
        waiting = watcher.expect_later("archive.enqueued", {"thread_id": "late"}, timeout=1.0)
        emit(logging_api, ENQUEUED.format("late"))  # visible before the deadline, read after it
        started = time.monotonic()
        assert waiting.result().fields["thread_id"] == "late"
        assert time.monotonic() - started < 5.5 + 2.0, "the last look comes at the next read"
    finally:
        watcher.close()


def test_an_absence_is_judged_on_a_read_made_after_its_window(api: tuple) -> None:
    """The same for an absence: a second line visible within the window, but not yet read when the
    window closed, must fail it (it used to pass unseen)."""
    logging_api, server = api
    watcher = watcher_for(server, pacer=ReadPacer(12, burst=1))
    try:
        _read_once(watcher)
        absent = watcher.expect_absent("archive.enqueued", {"thread_id": "twice"}, window=1.0)
        emit(logging_api, ENQUEUED.format("twice"))
        with pytest.raises(LogExpectationFailed, match="must not appear"):
            absent.result()
    finally:
        watcher.close()


def test_a_wait_ends_one_read_interval_past_its_deadline_when_no_read_can_start(api: tuple) -> None:
    """The last look is bounded: with reads refused (a 429 pauses them 4 s), the wait still ends
    within one read interval of its deadline, and says the read failed."""
    logging_api, server = api
    logging_api.quota = ReadQuota(per_minute=None, refuse_share=1.0)
    pacer = ReadPacer(60)
    watcher = watcher_for(server, pacer=pacer, is_throttled=lambda e: "429" in str(e) or "Quota" in str(e))
    try:
        started = time.monotonic()
        with pytest.raises(LogExpectationFailed, match="last read failed") as failure:
            watcher.expect("archive.enqueued", {"thread_id": "never"}, timeout=1.0)
        took = time.monotonic() - started
        assert 1.0 <= took < 1.0 + pacer.steady_interval + 0.8, f"{took:.1f} s\n{failure.value}"
    finally:
        watcher.close()


def test_reads_stay_within_the_budget_and_stop_when_nobody_waits(api: tuple) -> None:
    logging_api, server = api
    watcher = watcher_for(server, budget=30)  # a burst of 10 one second apart, then one every 3 s
    try:
        with pytest.raises(LogExpectationFailed):
            watcher.expect("archive.enqueued", {"thread_id": "never"}, timeout=5)
        calls = len(logging_api.stats.list_calls)
        # One a second for 5 s, and the last look after the deadline.
        assert 2 <= calls <= 7, f"{calls} reads in 5 s with a budget of 30/min"
        deadline = time.monotonic() + 2.5  # nobody waits now: no further read may happen
        while time.monotonic() < deadline:
            assert len(logging_api.stats.list_calls) == calls, "the watcher read with nobody waiting"
            time.sleep(0.25)
    finally:
        watcher.close()


def test_a_429_pauses_reads_briefly_then_the_watcher_goes_on(api: tuple) -> None:
    """The 50-run soak once failed: three 429s spread over a run paused reads for 40 s (the backoff
    grew with every 429 of the run, from 10 s), past the log deadline. A first 429 in a row now waits 4 s."""
    logging_api, server = api
    logging_api.quota = ReadQuota(per_minute=None, refuse_share=1.0)
    watcher = watcher_for(server, is_throttled=lambda e: "429" in str(e) or "Quota" in str(e))
    try:
        emit(logging_api, ENQUEUED.format("t-429"))
        waiting = watcher.expect_later("archive.enqueued", {"thread_id": "t-429"}, timeout=30)
        wait_until(lambda: watcher.stats.throttled or None, timeout=5, what="a first 429")
        logging_api.quota = ReadQuota(per_minute=None)
        started = time.monotonic()
        waiting.result()
        assert time.monotonic() - started < 4.0 + 2.0, "the first 429 in a row waits 4 s"
    finally:
        watcher.close()


def test_at_the_fifth_429_in_a_row_the_waits_give_up_and_say_why(api: tuple) -> None:
    """The pacer's one policy: four 429s in a row already paused every reader a minute (4+8+16+32 s,
    counted here as if past); the fifth ends the pending waits at once, long before their deadline."""
    logging_api, server = api
    logging_api.quota = ReadQuota(per_minute=None, refuse_share=1.0)
    pacer = ReadPacer(60)
    for _ in range(4):
        pacer.throttled(time.monotonic() - 1000.0)
    watcher = watcher_for(server, pacer=pacer, is_throttled=lambda e: "429" in str(e) or "Quota" in str(e))
    try:
        started = time.monotonic()
        with pytest.raises(LogExpectationFailed, match="answered 429 to 5 reads in a row") as failure:
            watcher.expect("archive.enqueued", {"thread_id": "never"}, timeout=60.0)
        assert time.monotonic() - started < 5.0, str(failure.value)
        assert watcher.stats.throttled == 1
    finally:
        watcher.close()


# -- every page is a read (stack:short-pages) ----------------------------------------------------------
# Cloud Logging may answer a page with fewer entries than asked, or none but a nextPageToken: "the search
# found no log entries so far but it did not have time to search all the possible log entries. Retry the
# method with this value for page_token to continue the search" (ListLogEntriesResponse,
# https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list). Each page is one request
# against the project's "Read requests per minute" quota: what counts is what the emulator received.
def short_pages(api: LoggingApi, empty_first: int = 2, max_entries: int = 20) -> None:
    api.short_pages = ShortPages(empty_first=empty_first, max_entries=max_entries)


def test_a_line_on_page_3_after_two_empty_pages_is_found_and_each_page_is_paid_for(api: tuple) -> None:
    logging_api, server = api
    short_pages(logging_api, empty_first=2)
    watcher = watcher_for(server)
    try:
        emit(logging_api, ENQUEUED.format("p3"))
        match = watcher.expect("archive.enqueued", {"thread_id": "p3"}, timeout=10)
        assert match.fields["thread_id"] == "p3"
        calls = logging_api.stats.list_calls
        assert len(calls) == 3, f"{len(calls)} entries:list requests for one search of 3 pages"
        # Counted per request, each timed when sent, and paced: never two in one second.
        assert watcher.stats.reads == len(watcher.stats.read_times) == 3, watcher.stats
        assert all(b - a >= 0.9 for a, b in pairwise(calls)), calls
        assert watcher.stats.empty_pages == 2
    finally:
        watcher.close()


def test_with_short_pages_the_emulator_never_gets_more_than_the_budget_nor_two_in_a_second(
    api: tuple,
) -> None:
    """A search of 2 empty pages then 12 pages of 2 lines: the reader pays each page, so in 15 s at a
    budget of 9 a minute (a burst of 3, then one every 10 s) the emulator sees at most 5 requests."""
    logging_api, server = api
    short_pages(logging_api, empty_first=2, max_entries=2)
    for n in range(24):
        emit(logging_api, ENQUEUED.format(f"bulk-{n}"))
    watcher = watcher_for(server, budget=9)
    try:
        started = time.monotonic()
        with pytest.raises(LogExpectationFailed) as failure:
            watcher.expect("archive.enqueued", {"thread_id": "bulk-23"}, timeout=4)
        wait_until(lambda: time.monotonic() - started >= 15 or None, timeout=20, what="15 s of reading")
        calls = list(logging_api.stats.list_calls)
        assert len(calls) <= 5, f"{len(calls)} entries:list requests in 15 s at 9 a minute"
        assert all(b - a >= 0.9 for a, b in pairwise(calls)), calls
        assert watcher.stats.reads == len(calls), "each request counted once, where the quota counts it"
        assert "more to come" in str(failure.value), failure.value
    finally:
        watcher.close()


@pytest.mark.slow
def test_with_short_pages_every_page_is_paid_to_the_budget(api: tuple) -> None:
    """Greedy for 20 s: a search that never ends (empty pages forever) and a wait that never resolves.
    Every entries:list request, empty page or not, is paid to the run's pacer: no interval holds more
    requests than its token bucket allows (a burst, then one per refill). That the bucket never allows
    more than the budget in any 60 s is proven on a simulated clock (tests/unit/test_read_pacing.py)."""
    logging_api, server = api
    short_pages(logging_api, empty_first=10**6)
    pacer = ReadPacer(12)  # a burst of 4, then one read every 7.5 s
    watcher = watcher_for(server, pacer=pacer)
    try:
        waiting = watcher.expect_later("archive.enqueued", {"thread_id": "never"}, timeout=20)
        wait_until(lambda: waiting.done or None, timeout=35, what="the 20 s wait to end")
        calls = list(logging_api.stats.list_calls)  # the emulator's clock: what the quota would count
        assert len(calls) > pacer.burst, f"the steady pace was never reached: {calls}"
        for i, first in enumerate(calls):
            for j in range(i, len(calls)):
                allowed = pacer.burst + (calls[j] - first + 0.5) / pacer.steady_interval  # 0.5 s: transport
                assert j - i + 1 <= allowed, f"{j - i + 1} requests in {calls[j] - first:.1f} s: {calls}"
        assert all(b - a >= 0.9 for a, b in pairwise(calls)), calls
    finally:
        watcher.close()


def test_a_search_that_keeps_answering_empty_pages_says_so_at_the_deadline(api: tuple) -> None:
    logging_api, server = api
    short_pages(logging_api, empty_first=10**6)  # the search never finishes
    emit(logging_api, ENQUEUED.format("hidden"))
    watcher = watcher_for(server)
    try:
        waiting = watcher.expect_later("archive.enqueued", {"thread_id": "hidden"}, timeout=3)
        wait_until(lambda: waiting.done or None, timeout=3 + 2 + 5, what="the wait to end near its deadline")
        with pytest.raises(LogExpectationFailed) as failure:
            waiting.result()
        message = str(failure.value)
        empty = re.search(r"got (\d+) empty page\(s\) in a row, each with a nextPageToken", message)
        assert empty and int(empty.group(1)) >= 2, message
        assert "asked to continue the search" in message, message
        assert int(empty.group(1)) <= len(logging_api.stats.list_calls)
    finally:
        watcher.close()


def test_nobody_waiting_ends_an_unfinished_search(api: tuple) -> None:
    """Pages are not read for nobody: once the wait is over, the endless search stops paying."""
    logging_api, server = api
    short_pages(logging_api, empty_first=10**6)
    watcher = watcher_for(server)
    try:
        waiting = watcher.expect_later("archive.enqueued", {"thread_id": "gone"}, timeout=2)
        wait_until(lambda: waiting.done or None, timeout=2 + 2 + 5, what="the wait to end near its deadline")
        calls = len(logging_api.stats.list_calls)
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert len(logging_api.stats.list_calls) == calls, "the watcher read with nobody waiting"
            time.sleep(0.25)
    finally:
        watcher.close()


def test_a_measured_absence_waits_for_the_lag_its_own_kind_of_line_shows(api: tuple) -> None:
    """A second enqueue that surfaces 4 s after it was written: a fixed 1 s window ends before it
    (and passes), the measured one counts the first enqueue, known written and unread, with its age,
    then its 4 s lag plus a margin, and catches the second."""
    logging_api, server = api
    watcher = watcher_for(server)
    try:
        where = {"thread_id": "late"}
        emit(logging_api, ENQUEUED.format("late"), visible_in=4.0)  # the first enqueue, the run knows of it
        first = watcher.expect_later("archive.enqueued", where, timeout=15)
        emit(logging_api, ENQUEUED.format("late"), visible_in=4.0)  # the forbidden second one
        fixed = watcher.expect_absent("archive.enqueued", where, window=1.0, allowed=1)
        rule = MeasuredWindow(cap=15.0, floor=1.0, thin_floor=1.0)
        measured = watcher.expect_absent("archive.enqueued", where, window=rule, allowed=1)
        fixed.result()  # ended at 1 s: the second line was not readable yet
        with pytest.raises(LogExpectationFailed, match="must appear at most 1 time") as failure:
            measured.result()
        assert first.match is not None
        said = str(failure.value)
        shown = r"watched for 5\.\d s \(the largest ingestion lag of the 2 line\(s\) read, 4\.\d s, \+ 1\.0 s \(the"
        assert re.search(shown, said), said
    finally:
        watcher.close()


def test_a_measured_absence_never_outlasts_its_cap_and_says_so(api: tuple) -> None:
    _, server = api
    watcher = watcher_for(server)
    try:
        watcher.expect_later("archive.enqueued", {"thread_id": "never"}, timeout=15)  # never read
        started = time.monotonic()
        absent = watcher.expect_absent(
            "archive.enqueued", {"thread_id": "never"}, window=MeasuredWindow(cap=1.5)
        )
        absent.result()
        assert 1.5 <= time.monotonic() - started < 5
        assert absent.window() == pytest.approx(1.5)
        assert absent.describe_window().startswith(
            "watched for 1.5 s (its cap, log_deadline (1 line(s) of this kind known"
        )
    finally:
        watcher.close()


def test_lines_stamped_up_to_a_moment_have_surfaced_once_a_read_starts_one_measured_window_later(
    api: tuple,
) -> None:
    """12 lines 1 s late: the window is 1 s + the least margin (1 s), so lines stamped up to now count
    as surfaced only once a read started 2 s from now; a '0 new concepts' line waits that long before
    it may be taken for a thread's last."""
    logging_api, server = api
    watcher = watcher_for(server)
    try:
        for n in range(12):
            emit(logging_api, ENQUEUED.format(f"lag-{n}"), visible_in=1.0)
        watcher.expect("archive.enqueued", {"thread_id": "lag-11"}, timeout=10)
        stamp = utcnow()
        started = time.monotonic()
        assert not watcher.surfaced_by(stamp)
        watcher.expect_later("archive.enqueued", {"thread_id": "never"}, timeout=10)  # keeps it reading
        wait_until(lambda: watcher.surfaced_by(stamp) or None, timeout=10, what="the window to pass")
        assert time.monotonic() - started >= 2.0
    finally:
        watcher.close()
