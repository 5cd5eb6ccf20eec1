"""LogWatcher: one poller of Cloud Logging for the whole run, that tests wait on.

Entries become visible seconds after their timestamp and out of order, so a poll of
``timestamp > last seen`` loses lines. Every poll re-reads from a lookback longer than the ingestion
lag observed so far, and de-duplicates by ``insertId``. Lines seen before a test asked still count.
The poller reads only while someone waits, and never faster than the read pacer allows, whose 429
policy it follows (:mod:`cloudrun_smoke.logs.pacing`). A read is one page: a poll that takes three
pages pays three times, each page when it is sent, and new lines count as soon as their page arrives.
A wait is in :mod:`~cloudrun_smoke.logs.expectations`, what its failure says in :mod:`~.explain`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from cloudrun_smoke.logs.expectations import Absence, Expectation
from cloudrun_smoke.logs.explain import (
    ReadState,
    closest_lines,
    failure_message,
    read_context,
    timeout_message,
)
from cloudrun_smoke.logs.ingestion_lag import MeasuredWindow
from cloudrun_smoke.logs.lines import LogLine, LogMatch, Unattributed, matches_in, names_nobody
from cloudrun_smoke.logs.pacing import ReadPacer
from cloudrun_smoke.logs.patterns import FAILURES_FOR, LogPattern, pattern
from cloudrun_smoke.logs.reads import Search, WatcherStats
from cloudrun_smoke.logs.source import LogSource
from cloudrun_smoke.timeutil import format_rfc3339, utcnow


class LogWatcher:
    def __init__(
        self,
        source: LogSource,
        base_filter: str,
        start: datetime,
        *,
        budget_per_minute: int = 30,
        lookback_seconds: float = 120.0,
        explore_hint: Callable[[str], str] = lambda f: "",
        is_throttled: Callable[[Exception], bool] = lambda e: False,
        clock: Callable[[], float] = time.monotonic,
        catalogue: Mapping[str, LogPattern] | None = None,
        pacer: ReadPacer | None = None,
    ) -> None:
        self.base_filter = base_filter
        self.start = start
        self.stats = WatcherStats()
        self.expectations: list[Expectation] = []
        self.unattributed: list[Unattributed] = []  # lines naming nobody, for the verdict (see report)
        self._source = source
        self._pacer = pacer or ReadPacer(budget_per_minute)
        self._lookback = timedelta(seconds=lookback_seconds)
        self._explore_hint = explore_hint
        self._is_throttled = is_throttled
        self._clock = clock
        self._catalogue = catalogue
        self._lines: list[LogLine] = []
        self._ids: set[str] = set()
        self._cond = threading.Condition()
        self._pending: list[Expectation | Absence] = []
        self._refresh_requested = False
        self._closed = False
        self._last_read = -1e9  # when the last complete search started (watcher clock)
        self._search: Search | None = None
        self._complete: Search | None = None  # the last search read to its end
        self._last_error: str = ""
        self._thread = threading.Thread(target=self._run, name="log-watcher", daemon=True)
        self._thread.start()

    # -- public API --------------------------------------------------------------------------------------
    @property
    def budget_per_minute(self) -> int:
        return self._pacer.per_minute

    def pay_for_read(self, until: float) -> bool:
        """For another reader of the run's logs (the 404 diagnosis): wait for the budget's next turn and
        count the request as the watcher's own; False (nothing paid) when that turn comes after
        ``until`` (watcher clock)."""
        if not self._pacer.take_turn(until, clock=self._clock):
            return False
        with self._cond:
            self.stats.reads += 1
            self.stats.read_times.append(time.time())
        return True

    def surfaced_by(self, stamp: datetime) -> bool:
        """Whether the lines stamped up to ``stamp`` have all surfaced in a read, as far as the lags
        measured tell (a measured absence's window)."""
        with self._cond:
            window = MeasuredWindow(cap=self._lookback.total_seconds()).after(self.stats.lags)
            last = self._complete
            return last is not None and last.started_at >= stamp + timedelta(seconds=window.seconds)

    def pattern(self, name: str) -> LogPattern:
        return pattern(name, self._catalogue)

    def lines(self) -> list[LogLine]:
        with self._cond:
            return list(self._lines)

    def current_filter(self, since: datetime | None = None) -> str:
        return f'{self.base_filter} AND timestamp>="{format_rfc3339(since or self._since())}"'

    def _since(self) -> datetime:
        newest = max((line.timestamp for line in self.lines()), default=None)
        lookback = max(self._lookback, timedelta(seconds=3 * self.stats.max_lag_seconds))
        since = self.start - timedelta(seconds=5)
        return since if newest is None else max(since, newest - lookback)

    def find(
        self, name: str, where: Mapping[str, str] | None = None, since: datetime | None = None
    ) -> list[LogMatch]:
        return self._find(self.pattern(name), where or {}, since)

    def expect_later(
        self,
        name: str,
        where: Mapping[str, str] | None = None,
        *,
        timeout: float,
        since: datetime | None = None,
        failures: Iterable[str] | None = None,
        accept: Callable[[LogMatch], bool] | None = None,
        record: bool = True,
    ) -> Expectation:
        """Start waiting for a line of pattern ``name`` whose fields equal ``where``; return at once.

        A failure line for the same subject (e.g. the thread id) resolves it early as a failure.
        ``accept`` narrows the matches further (it is called under the watcher's lock, at each poll).
        ``record=False`` keeps it out of ``expectations`` (the run's checks and its verdict), e.g. for
        teardown's own waits.
        """
        failure_names = FAILURES_FOR.get(name, ()) if failures is None else tuple(failures)
        now = self._clock()
        expectation = Expectation(
            self.pattern(name),
            dict(where or {}),
            since,
            now,
            now + timeout,
            self,
            failures=tuple(self.pattern(f) for f in failure_names),
            timeout=timeout,
            accept=accept,
        )
        with self._cond:
            if record:
                self.expectations.append(expectation)
            self._evaluate(expectation)
            if not expectation.done:
                self._pending.append(expectation)
            self._cond.notify_all()
        return expectation

    def expect(
        self,
        name: str,
        where: Mapping[str, str] | None = None,
        *,
        timeout: float,
        since: datetime | None = None,
        failures: Iterable[str] | None = None,
    ) -> LogMatch:
        """Wait for a line of pattern ``name`` whose fields equal ``where``; fail early on a failure line."""
        return self.expect_later(name, where, timeout=timeout, since=since, failures=failures).result()

    def expect_absent(
        self,
        name: str,
        where: Mapping[str, str] | None = None,
        *,
        window: float | MeasuredWindow,
        since: datetime | None = None,
        allowed: int = 0,
    ) -> Absence:
        """Start watching that no more than ``allowed`` lines of ``name`` for ``where`` appear for
        ``window`` s, or for the window its rule chooses from the lags measured (chosen again at each read)."""
        now = self._clock()
        rule, seconds = (window, window.cap) if isinstance(window, MeasuredWindow) else (None, window)
        absence = Absence(
            self.pattern(name), dict(where or {}), since, now, now + seconds, self, allowed=allowed, rule=rule
        )
        with self._cond:
            self._measure_window(absence, now)
            self._pending.append(absence)
            self._cond.notify_all()
        return absence

    def report_unattributed(self, item: Unattributed) -> None:
        """Keep a line that names nobody for the verdict and the summary (once per line and check)."""
        with self._cond:
            if all(
                (u.line.insert_id, u.check) != (item.line.insert_id, item.check) for u in self.unattributed
            ):
                self.unattributed.append(item)

    def refresh(self, timeout: float = 30.0) -> None:
        """One more poll as soon as the budget allows, and return when it is done (e.g. before a final scan)."""
        with self._cond:
            target = self.stats.polls + 1
            self._refresh_requested = True
            self._cond.notify_all()
            end = self._clock() + timeout
            while self.stats.polls < target and not self._closed and self._clock() < end:
                self._cond.wait(timeout=0.5)

    def wait_idle(self) -> None:
        """Return once every expectation registered so far is resolved (each has its own deadline)."""
        with self._cond:
            while self._pending and not self._closed:
                self._cond.wait(timeout=0.5)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for item in self._pending:
                self._resolve_at_deadline(item)
            self._pending.clear()
            self._cond.notify_all()
        self._thread.join(timeout=10)

    def _wait_for(self, item: Expectation | Absence) -> None:
        with self._cond:
            while not item.done:
                self._cond.wait(timeout=0.5)

    # -- resolution (under the lock) -----------------------------------------------------------------------
    def _evaluate(self, item: Expectation | Absence) -> None:
        now = self._clock()
        if isinstance(item, Absence):
            self._measure_window(item, now)
            found = self._find(item.pattern, item.where, item.since)
            if len(found) > item.allowed:
                item.match = found[item.allowed]
                item.resolved_at = now
            elif self._looked_after_deadline(item, now):
                item.resolved_at = now
            return
        # A failure line naming the same subject wins even when the awaited line came too: the public
        # service logs "consolidated: 0 new concepts" after a failed consolidation.
        for failure in item.failures:
            named = self._find(failure, item.where, item.since) if item.where else []
            if named and all(k in named[0].fields for k in item.where):
                context = self._context(item.pattern, item.where)
                item.error = failure_message(
                    item.pattern, item.where, named[0], now - item.registered_at, context
                )
                item.resolved_at = now
                return
        found = self._find(item.pattern, item.where, item.since)
        if item.accept is not None:
            found = [m for m in found if item.accept(m)]
        if found:
            item.match = found[0]
            item.resolved_at = now
            return
        # A failure line that names nobody does not end the wait: it may be another user's (it is shown
        # if the wait times out).
        if self._looked_after_deadline(item, now):
            self._resolve_at_deadline(item)

    def _measure_window(self, item: Absence, now: float) -> None:
        """Choose a measured absence's window from the lags so far (under the lock)."""
        if item.rule is None:
            return
        same = (e for e in self.expectations if e.pattern.name == item.pattern.name)
        unread = [now - e.registered_at for e in same if not e.done]  # known written, not read yet
        item.choice = item.rule.after(self.stats.lags, unread)
        item.deadline = item.registered_at + item.choice.seconds

    def _looked_after_deadline(self, item: Expectation | Absence, now: float) -> bool:
        """A wait ends by its deadline only once a read started after it: a line already visible at
        the deadline but not yet read must count (else "not seen after 20 s" would be untrue by up
        to a read interval). Bounded: when no read can start within one interval of the deadline (a
        429 pause, a failing API), the wait ends anyway, for the caller's deadline is a promise."""
        if now < item.deadline:
            return False
        return self._last_read >= item.deadline or now >= item.deadline + self._pacer.steady_interval

    def _next_deadline_check(self, now: float) -> float | None:
        """When the poller must look at the pending waits again without a read (see above)."""
        late = self._pacer.steady_interval
        moments = (i.deadline if now < i.deadline else i.deadline + late for i in self._pending)
        return min((m for m in moments if m > now), default=None)

    def _resolve_at_deadline(self, item: Expectation | Absence) -> None:
        if item.done:
            return
        if isinstance(item, Expectation):
            waited = min(item.timeout, self._clock() - item.registered_at)  # less when reads gave up
            unnamed = [m for f in item.failures for m in self._find(f, {}, item.since) if names_nobody(m)]
            context = self._context(item.pattern, item.where)
            item.error = timeout_message(item.pattern, item.where, waited, unnamed, context)
        item.expired = True
        item.resolved_at = self._clock()

    def _evaluate_pending(self) -> None:
        for item in self._pending:
            self._evaluate(item)
        if any(item.done for item in self._pending):
            self._pending = [item for item in self._pending if not item.done]
            self._cond.notify_all()

    # -- matching ----------------------------------------------------------------------------------------
    def _find(self, expected: LogPattern, where: Mapping[str, str], since: datetime | None) -> list[LogMatch]:
        return matches_in(self.lines(), expected, where, since)

    # -- polling -----------------------------------------------------------------------------------------
    def _someone_waits(self) -> bool:
        return bool(self._pending) or self._refresh_requested

    def _request_page(self, search: Search) -> None:
        """One page of ``search``, already paid for; its new lines are kept and judged at once."""
        issued = time.time()  # a read's time is when it was sent: the quota counts requests
        try:
            lines, token = self._source.page(search.filter, search.token)
        except Exception as e:  # the watcher must keep going; waiters get the error in their report
            throttled = self._is_throttled(e)
            give_up = throttled and self._pacer.throttled(self._clock())
            self._last_error = f"{type(e).__name__}: {e}"
            with self._cond:
                self.stats.reads += 1
                self.stats.read_times.append(issued)
                self.stats.throttled += int(throttled)
                if not throttled or give_up:  # a 429 resumes from the same page; anything else starts afresh
                    self._search = None
                if give_up:  # the pacer's policy: waiting on would not make the quota come back
                    for item in self._pending:
                        self._resolve_at_deadline(item)
                    self._pending.clear()
                self.stats.polls += 1
                self._refresh_requested = False
                self._cond.notify_all()
            return
        self._last_error = ""
        self._pacer.served()
        with self._cond:
            self.stats.reads += 1
            self.stats.read_times.append(issued)
            search.pages += 1
            search.token = token
            if not lines and token is not None:
                search.empty_in_a_row += 1
                self.stats.empty_pages += 1
            else:
                search.empty_in_a_row = 0
            fresh = [line for line in lines if line.insert_id not in self._ids]
            self._ids.update(line.insert_id for line in fresh)
            self.stats.count_lags(fresh, self._complete)
            if fresh:
                self._lines.extend(fresh)
                self._lines.sort(key=lambda line: (line.timestamp, line.insert_id))
            if token is None:  # the search is complete: waits past their deadline may now end
                self._search = None
                self._complete = search
                self._last_read = search.started
                self.stats.polls += 1
                self._refresh_requested = False
            self._evaluate_pending()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._someone_waits():
                    self._search = None  # nobody waits: the rest of a search is not worth its reads
                    self._cond.wait()
                if self._closed:
                    return
                self._evaluate_pending()  # deadlines pass between reads too
                if not self._someone_waits():
                    continue
                now = self._clock()
                if not self._pacer.try_spend(now):
                    next_read = self._pacer.next_read(now)
                    soonest = self._next_deadline_check(now) or next_read
                    self._cond.wait(timeout=max(0.01, min(next_read, soonest) - now))
                    continue
                if self._search is None:
                    since = self._since()
                    self._search = Search(self.current_filter(since), now, since, utcnow())
                search = self._search
            self._request_page(search)

    # -- diagnostics -------------------------------------------------------------------------------------
    def _context(self, expected: LogPattern, where: Mapping[str, str]) -> str:
        current = self.current_filter()
        return read_context(
            closest_lines(self.lines(), expected, where),
            ReadState(len(self.lines()), self.stats, self._last_error, self._pacer.throttled_in_a_row),
            self._search,
            current,
            self._explore_hint(current),
        )
