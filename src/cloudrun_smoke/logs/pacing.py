"""When the next Cloud Logging read may go: quick while a short run waits, within the budget over any minute.

A read is one ``entries:list`` request, one page: that is what the project's quota counts ("Read
requests per minute", 60 by default, shared with everyone reading the project's logs), and a search
may take several pages, some of them empty (see :mod:`log_pages`). Every reader of a run pays each
page here before sending it: the log watcher's polls and the 404 diagnosis alike.

A line is noticed, on average, half a read interval after it becomes visible. Reading every
60 / budget seconds (2 s at 30 a minute) costs a gate run about a second per wait; reading every
second throughout would spend the whole project's quota (60 a minute) on one run. A token bucket
gives both: ``burst`` reads one second apart, then the rest of the budget spread evenly. In any 60 s
there are at most ``burst`` + 60 x refill = ``per_minute`` reads, and never two in the same second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MIN_SPACING_S = 1.0  # never two reads in one second


class ReadPacer:
    """One budget for every reader of a run; safe to share between threads."""

    def __init__(self, per_minute: int, *, burst: int | None = None) -> None:
        per_minute = max(1, per_minute)
        self.per_minute = per_minute
        self.burst = max(1, min(per_minute, per_minute // 3 if burst is None else burst))
        # The bucket's refill: what the burst leaves of the budget (at least one read a minute).
        self.steady_interval = 60.0 / max(1, per_minute - self.burst)
        self._tokens = float(self.burst)
        self._at = 0.0  # when ``_tokens`` was counted
        self._last = -1e9
        self._lock = threading.Lock()

    def _refilled(self, now: float) -> float:
        return min(float(self.burst), self._tokens + (now - self._at) / self.steady_interval)

    def next_read(self, now: float) -> float:
        """The earliest time (on the caller's clock) the next read may start."""
        with self._lock:
            return self._next_read(now)

    def _next_read(self, now: float) -> float:
        spacing = self._last + MIN_SPACING_S
        missing = 1.0 - self._refilled(now)
        return max(spacing, now + missing * self.steady_interval if missing > 0 else now)

    def spend(self, now: float) -> None:
        """A read starts now."""
        with self._lock:
            self._spend(now)

    def _spend(self, now: float) -> None:
        self._tokens = self._refilled(now) - 1.0
        self._at = now
        self._last = now

    def try_spend(self, now: float) -> bool:
        """Pay for a read that starts now if the budget allows it (another reader may have just paid)."""
        with self._lock:
            if self._next_read(now) > now:
                return False
            self._spend(now)
            return True

    def take_turn(
        self,
        until: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> bool:
        """Block until a read may start and pay for it; False (nothing paid) if that is after ``until``."""
        while True:
            now = clock()
            if self.try_spend(now):
                return True
            turn = self.next_read(now)
            if turn > until:
                return False
            sleep(max(0.01, turn - now))  # rate limiting, not synchronisation
