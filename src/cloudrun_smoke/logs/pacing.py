"""When the next Cloud Logging read may go: the run's one read budget and its one 429 policy.

A read is one ``entries:list`` request, one page: that is what the project's quota counts ("Read
requests per minute", 60 by default per project, shared with everyone reading the project's logs:
Cloud Logging "Quotas and limits", https://cloud.google.com/logging/quotas), and a search may take
several pages, some of them empty (see :mod:`cloudrun_smoke.logs.pages`). Every reader of a run pays
each page here before sending it: the log watcher's polls, the 404 diagnosis and the window reads.

Pace. A line is noticed, on average, half a read interval after it becomes visible. Reading every
60 / budget seconds (2 s at 30 a minute) costs a gate run about a second per wait; reading every
second throughout would spend the whole project's quota on one run. A token bucket gives both:
``burst`` reads one second apart, then the rest of the budget spread evenly. In any 60 s there are
at most ``burst`` + 60 x refill = ``per_minute`` reads, and never two in the same second.

429. Cloud Logging answers 429 ``RESOURCE_EXHAUSTED`` when the project's quota is spent, by this run
or by another reader. After the n-th 429 in a row every reader of the budget pauses
``throttle_backoff(n)``: 4, 8, 16, 32 s, then 60 (the quota is per minute). The count is of 429s in a
row, not per run: with a shared quota a few scattered 429s are normal and must not add up to a pause
longer than the log deadline. At the 5th 429 in a row (a minute of pauses, 4 + 8 + 16 + 32 s, did not
help) a read gives up: a window read raises, the watcher ends its pending waits with the error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MIN_SPACING_S = 1.0  # never two reads in one second
GIVE_UP_AT = 5  # the 429 in a row at which a read gives up


def throttle_backoff(consecutive: int) -> float:
    """Seconds every reader pauses after the ``consecutive``-th 429 in a row: 4, 8, 16, 32, then 60."""
    return min(60.0, 4.0 * 2 ** (max(1, consecutive) - 1))


class ReadPacer:
    """One budget for every reader of a run; safe to share between threads. The methods that take
    ``now`` take it on the caller's clock."""

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        per_minute = max(1, per_minute)
        self.per_minute = per_minute
        self.burst = max(1, min(per_minute, per_minute // 3 if burst is None else burst))
        # The bucket's refill: what the burst leaves of the budget (at least one read a minute).
        self.steady_interval = 60.0 / max(1, per_minute - self.burst)
        self.throttled_in_a_row = 0
        self.clock, self._sleep = clock, sleep  # what take_turn waits with
        self._tokens = float(self.burst)
        self._at = 0.0  # when ``_tokens`` was counted
        self._last = -1e9
        self._paused_until = -1e9  # after a 429
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
        bucket = now + missing * self.steady_interval if missing > 0 else now
        return max(spacing, bucket, self._paused_until)

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
        until: float = float("inf"),
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> bool:
        """Block until a read may start and pay for it; False (nothing paid) if that is after ``until``."""
        clock, sleep = clock or self.clock, sleep or self._sleep
        while True:
            now = clock()
            if self.try_spend(now):
                return True
            turn = self.next_read(now)
            if turn > until:
                return False
            sleep(max(0.01, turn - now))  # rate limiting, not synchronisation

    def throttled(self, now: float) -> bool:
        """A read was answered 429: pause every reader (see the module's policy). True when this was
        the ``GIVE_UP_AT``-th in a row, and the read should give up."""
        with self._lock:
            self.throttled_in_a_row += 1
            self._paused_until = max(self._paused_until, now + throttle_backoff(self.throttled_in_a_row))
            return self.throttled_in_a_row >= GIVE_UP_AT

    def served(self) -> None:
        """A read was answered: the 429s are no longer in a row."""
        with self._lock:
            self.throttled_in_a_row = 0
