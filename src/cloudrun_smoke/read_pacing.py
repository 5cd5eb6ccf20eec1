"""When the log poller may read next: quick while a short run waits, within the budget over any minute.

A line is noticed, on average, half a read interval after it becomes visible. Reading every
60 / budget seconds (2 s at 30 a minute) costs a gate run about a second per wait; reading every
second throughout would spend the whole project's quota (60 a minute) on one run. A token bucket
gives both: ``burst`` reads one second apart, then the rest of the budget spread evenly. In any 60 s
there are at most ``burst`` + 60 x refill = ``per_minute`` reads, and never two in the same second.
"""

from __future__ import annotations

MIN_SPACING_S = 1.0  # never two reads in one second


class ReadPacer:
    def __init__(self, per_minute: int, *, burst: int | None = None) -> None:
        per_minute = max(1, per_minute)
        self.per_minute = per_minute
        self.burst = max(1, min(per_minute, per_minute // 3 if burst is None else burst))
        # The bucket's refill: what the burst leaves of the budget (at least one read a minute).
        self.steady_interval = 60.0 / max(1, per_minute - self.burst)
        self._tokens = float(self.burst)
        self._at = 0.0  # when ``_tokens`` was counted
        self._last = -1e9

    def _refilled(self, now: float) -> float:
        return min(float(self.burst), self._tokens + (now - self._at) / self.steady_interval)

    def next_read(self, now: float) -> float:
        """The earliest time (on the caller's clock) the next read may start."""
        spacing = self._last + MIN_SPACING_S
        missing = 1.0 - self._refilled(now)
        return max(spacing, now + missing * self.steady_interval if missing > 0 else now)

    def spend(self, now: float) -> None:
        """A read starts now."""
        self._tokens = self._refilled(now) - 1.0
        self._at = now
        self._last = now
