"""The ingestion lag a line proves, and the absence window it warrants: the largest lag plus a margin
(the lags' spread, at least 1 s) within [floor, cap], a higher floor on thin evidence, and lines
known written but unread counted with their age (the lags seen early in a run are the short ones)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from cloudrun_smoke.logs.ingestion_lag import LagEvidence, MeasuredWindow, line_lag
from cloudrun_smoke.logs.lines import LogLine
from cloudrun_smoke.logs.reads import Search, WatcherStats

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _line(received_after: float | None, insert_id: str = "a") -> LogLine:
    received = None if received_after is None else T0 + timedelta(seconds=received_after)
    return LogLine(insert_id, T0, received, "INFO", "text", "run.googleapis.com/stdout")


def _search(started_after: float, since: datetime = T0) -> Search:
    return Search("filter", 0.0, since, T0 + timedelta(seconds=started_after))


def test_a_lines_lag_is_its_receipt_or_its_age_at_a_read_that_missed_it_whichever_is_larger() -> None:
    assert line_lag(_line(1.5), None) == 1.5
    assert line_lag(_line(1.5), T0 + timedelta(seconds=4)) == 4.0  # received, not yet readable at 4 s
    assert line_lag(_line(1.5), T0 - timedelta(seconds=1)) == 1.5  # a read before the line says nothing
    assert line_lag(_line(None), T0 + timedelta(seconds=2)) == 2.0
    assert line_lag(_line(None), None) is None


def test_a_read_that_did_not_cover_the_lines_timestamp_proves_no_lag() -> None:
    stats = WatcherStats()
    stats.count_lags([_line(1.0, "a")], _search(5.0, since=T0 + timedelta(seconds=1)))
    stats.count_lags([_line(1.0, "b")], _search(5.0))
    assert stats.lags == [1.0, 5.0]
    assert stats.max_lag_seconds == 5.0


RULE = MeasuredWindow(cap=20.0)


@pytest.mark.parametrize(
    ("evidence", "cap", "seconds", "reason"),
    [
        (
            LagEvidence(30, 1.5, 1.0),
            20.0,
            2.5,
            "the largest ingestion lag of the 30 line(s) read, 1.5 s, + 1.0 s (the least margin)",
        ),
        (LagEvidence(30, 4.0, 0.5), 20.0, 7.5, "read, 4.0 s, + 3.5 s (the lags' spread, 0.5-4.0 s)"),
        (LagEvidence(30, 0.4, 0.1), 20.0, 2.0, "its floor (the largest ingestion lag"),
        (
            LagEvidence(5, 1.5, 1.0),
            20.0,
            8.0,
            "its floor while fewer than 12 lags are measured (5 were; the largest",
        ),
        (
            LagEvidence(30, 1.0, 0.5, 2, 4.0),
            20.0,
            7.5,
            "2 line(s) of this kind known written and unread for 4.0 s, + 3.5 s",
        ),
        (LagEvidence(30, 12.0, 1.0), 20.0, 20.0, "its cap, log_deadline (the largest ingestion lag"),
        (LagEvidence(5, 0.1), 6.0, 6.0, "its cap"),  # a deadline shorter than the floor still bounds it
    ],
    ids=["least-margin", "spread", "floor", "thin", "unread", "cap", "cap-under-floor"],
)
def test_the_window_and_why(evidence: LagEvidence, cap: float, seconds: float, reason: str) -> None:
    choice = MeasuredWindow(cap=cap).choose(evidence)
    assert choice.seconds == pytest.approx(seconds)
    assert reason in choice.reason


def _missed(rng: random.Random, window: MeasuredWindow | float, lines: int, known: int) -> bool:
    """One run under stack:heavy-jitter (0.5 + U(0, 8) s per entry), reads 1 s apart: is a second
    enqueue, written when the absence began, still unread when the absence ends?"""
    lag = lambda: 0.5 + rng.uniform(0, 8)  # noqa: E731
    others = [(rng.uniform(-0.3, 0.3), lag()) for _ in range(lines)]
    mine = [(rng.uniform(-0.3, 0.0), lag()) for _ in range(known)]
    forbidden = lag()
    t = rng.uniform(0, 1)
    while True:
        if forbidden <= t:
            return False
        if isinstance(window, float):
            seconds = window
        else:
            read = [lg for ts, lg in others + mine if ts + lg <= t]
            unread = [t - ts for ts, lg in mine if ts + lg > t]
            seconds = window.choose(LagEvidence.of(read, unread)).seconds
        if t >= seconds:
            return True
        t += 1.0


def test_under_heavy_jitter_the_measured_window_misses_less_than_the_fixed_8_s_one() -> None:
    """The figures in MeasuredWindow's docstring, from the rule itself (seeded: deterministic)."""
    rng = random.Random(7)
    trials = 10_000
    fixed = sum(_missed(rng, 8.0, lines=20, known=3) for _ in range(trials)) / trials
    full = sum(_missed(rng, RULE, lines=20, known=3) for _ in range(trials)) / trials
    thin = sum(_missed(rng, RULE, lines=5, known=1) for _ in range(trials)) / trials  # a -k subset
    assert fixed >= 0.01, f"fixed 8 s window missed {fixed:.2%}"
    assert full <= 0.001 and thin <= 0.002, f"measured window missed {full:.2%} and {thin:.2%}"
