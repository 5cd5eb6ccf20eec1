"""Ingestion lag: how long after its timestamp a line became readable, as this run measured it, and
how long an absence must then be watched.

Cloud Logging stamps each entry's ``receiveTimestamp``, "the time the log entry was received by
Logging" (LogEntry, https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry). Google does
not document when a received entry becomes readable through ``entries.list``, so a line's lag is also
at least its age at the last complete read that did not return it, and the larger of the two counts.

An absence ("archiving again enqueues nothing") proves nothing until a forbidden line, written when it
began, would have become readable: one ingestion lag later. The lags measured early in a run are
biased short (the long ones have not surfaced yet), so lines of the absence's own kind that the run
knows were written (each written by a request before its response, as the forbidden one would be) and
has not read yet count with their age so far, and thin evidence keeps a higher floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cloudrun_smoke.logs.lines import LogLine


def line_lag(line: LogLine, unread_at: datetime | None) -> float | None:
    """The line's ingestion lag as far as the run can prove it; None when nothing measures it.

    ``unread_at``: when the last complete read started that covered the line's timestamp and did not
    return it (the line was not readable then)."""
    lags = []
    if line.receive_timestamp is not None:
        lags.append((line.receive_timestamp - line.timestamp).total_seconds())
    if unread_at is not None and unread_at > line.timestamp:
        lags.append((unread_at - line.timestamp).total_seconds())
    return max(lags) if lags else None


@dataclass(frozen=True)
class LagEvidence:
    """What the run knows of ingestion lags when an absence is judged."""

    measured: int  # lines read whose lag was measured
    largest: float  # the largest of those lags, seconds
    smallest: float = 0.0
    unread: int = 0  # lines of the absence's kind known written and not read yet
    unread_age: float = 0.0  # the oldest of them: seconds since they were known written

    @classmethod
    def of(cls, lags: Sequence[float], unread_ages: Sequence[float]) -> LagEvidence:
        return cls(
            len(lags),
            max(lags, default=0.0),
            min(lags, default=0.0),
            len(unread_ages),
            max(unread_ages, default=0.0),
        )


@dataclass(frozen=True)
class WindowChoice:
    seconds: float
    reason: str


@dataclass(frozen=True)
class MeasuredWindow:
    """An absence window of the largest lag plus a margin (``spread_factor`` × the lags' spread, at
    least ``min_margin``), within ``[floor, cap]``; while fewer than ``min_lags`` lags are measured, at
    least ``thin_floor`` (the fixed window the runbook used before).

    A margin on the spread, not a factor on the lag: a constant ingestion delay is paid once (twice the
    lag would make every second of delay cost two), while scattered lags, whose largest seen so far
    may not be the largest to come, widen the margin.

    The defaults come from a simulation of the local stack's ``stack:heavy-jitter`` (every entry
    0.5 + U(0, 8) s late, reads 1 s apart; tests/unit/test_ingestion_lag.py): a second enqueue is
    missed in at most 0.1 % of runs, against 1.2-1.6 % for a fixed 8 s window; ``bench/soak.py``
    measures it on the stack.
    """

    cap: float  # the run's log_deadline: a wait is never promised longer
    spread_factor: float = 1.0
    min_margin: float = 1.0
    floor: float = 2.0
    thin_floor: float = 8.0
    min_lags: int = 12

    def after(self, lags: Sequence[float], unread_ages: Sequence[float] = ()) -> WindowChoice:
        """The window for these lags measured and these ages of known lines not read yet."""
        return self.choose(LagEvidence.of(lags, unread_ages))

    def choose(self, evidence: LagEvidence) -> WindowChoice:
        lag = max(evidence.largest, evidence.unread_age)
        spread = self.spread_factor * max(0.0, lag - evidence.smallest)
        margin = max(self.min_margin, spread)
        if evidence.unread_age > evidence.largest:
            basis = (
                f"{evidence.unread} line(s) of this kind known written and unread for "
                f"{evidence.unread_age:.1f} s"
            )
        else:
            basis = (
                f"the largest ingestion lag of the {evidence.measured} line(s) read, {evidence.largest:.1f} s"
            )
        basis += f", + {margin:.1f} s " + (
            f"(the lags' spread, {evidence.smallest:.1f}-{lag:.1f} s)"
            if spread > self.min_margin
            else "(the least margin)"
        )
        wanted = lag + margin
        thin = evidence.measured < self.min_lags
        floor = self.thin_floor if thin else self.floor
        if max(wanted, floor) >= self.cap:
            return WindowChoice(self.cap, f"its cap, log_deadline ({basis} is not shorter)")
        if wanted > floor:
            return WindowChoice(wanted, basis)
        if thin:
            return WindowChoice(
                floor,
                f"its floor while fewer than {self.min_lags} lags are measured ({evidence.measured} were; "
                f"{basis} is shorter)",
            )
        return WindowChoice(floor, f"its floor ({basis} is shorter)")
