"""The run's read pacer, on a made-up clock: a burst a second apart, then the budget spread out, never
more than the budget in any 60 s however greedy the reader, and one 429 policy for every reader."""

from __future__ import annotations

from itertools import pairwise

import pytest

from cloudrun_smoke.logs.pacing import GIVE_UP_AT, ReadPacer, throttle_backoff


def greedy_reads(pacer: ReadPacer, seconds: float, start: float = 0.0) -> list[float]:
    """Read as soon as allowed for ``seconds``: the times of the reads."""
    times, now = [], start
    while True:
        now = pacer.next_read(now)
        if now >= start + seconds:
            return times
        pacer.spend(now)
        times.append(now)


def test_a_short_run_reads_once_a_second_at_first() -> None:
    pacer = ReadPacer(30)
    times = greedy_reads(pacer, 10)
    assert times[:10] == [float(t) for t in range(10)]


def test_after_the_burst_the_rest_of_the_budget_is_spread_evenly() -> None:
    pacer = ReadPacer(30)  # burst 10, then one read every 3 s
    times = greedy_reads(pacer, 120)
    gaps = [b - a for a, b in pairwise(times[30:])]
    assert gaps and all(gap == pytest.approx(3.0) for gap in gaps), gaps


@pytest.mark.parametrize("per_minute", [1, 2, 3, 7, 15, 30, 60])
def test_never_more_than_the_budget_in_any_60_s(per_minute: int) -> None:
    pacer = ReadPacer(per_minute)
    times = greedy_reads(pacer, 600)
    for i, start in enumerate(times):
        in_minute = [t for t in times[i:] if t < start + 60.0]
        assert len(in_minute) <= per_minute, (per_minute, start, in_minute)
    assert all(b - a >= 1.0 for a, b in pairwise(times))
    # The burst is paid for by a slower steady rate: what it leaves of the budget, used in full.
    steady = max(1, per_minute - pacer.burst)
    assert len(times) >= pacer.burst + 9 * steady, "the budget is used, not wasted"


def test_an_idle_spell_refills_the_burst() -> None:
    pacer = ReadPacer(30)
    greedy_reads(pacer, 60)
    times = greedy_reads(pacer, 5, start=200.0)
    assert times == [200.0, 201.0, 202.0, 203.0, 204.0]


def test_readers_sharing_one_pacer_stay_within_its_budget_together() -> None:
    """The log watcher and the 404 diagnosis pay from one pacer: each asks before its request, and
    what one paid the other cannot spend again."""
    pacer = ReadPacer(12)
    times: list[float] = []
    for tick in range(0, 6000):  # two greedy readers asking every 10 ms for 60 s
        now = tick / 100
        for _reader in ("watcher", "diagnosis"):
            if pacer.try_spend(now):
                times.append(now)
    assert len(times) <= 12, times
    assert all(b - a >= 1.0 for a, b in pairwise(times)), times


def test_a_turn_after_the_callers_deadline_is_refused_and_costs_nothing() -> None:
    clock = {"now": 0.0}
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock["now"] += seconds

    pacer = ReadPacer(6)  # a burst of 2, then one every 15 s
    assert pacer.take_turn(5.0, clock=lambda: clock["now"], sleep=sleep)
    assert pacer.take_turn(5.0, clock=lambda: clock["now"], sleep=sleep)  # 1 s later
    assert clock["now"] == pytest.approx(1.0)
    assert not pacer.take_turn(5.0, clock=lambda: clock["now"], sleep=sleep)  # next turn at 15 s
    assert clock["now"] == pytest.approx(1.0), "no waiting for a turn past the deadline"
    assert pacer.next_read(clock["now"]) == pytest.approx(15.0), "the refused turn was not spent"


def test_throttle_backoff_grows_with_429s_in_a_row_and_is_capped_at_the_quota_minute() -> None:
    assert [throttle_backoff(n) for n in range(1, 7)] == [4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_a_429_pauses_every_reader_of_the_budget_and_a_served_read_ends_the_run_of_429s() -> None:
    pacer = ReadPacer(60)
    pacer.spend(0.0)
    assert not pacer.throttled(0.5)  # one reader's 429 ...
    assert pacer.next_read(1.0) == pytest.approx(4.5)  # ... is every reader's pause
    assert not pacer.throttled(4.5)
    assert pacer.next_read(5.0) == pytest.approx(12.5)
    pacer.served()
    assert pacer.throttled_in_a_row == 0
    assert not pacer.throttled(13.0)
    assert pacer.next_read(13.0) == pytest.approx(17.0), "counted in a row: 4 s again, not 16 s"


def test_the_fifth_429_in_a_row_says_give_up() -> None:
    pacer = ReadPacer(60)
    answers = [pacer.throttled(float(t)) for t in range(GIVE_UP_AT)]
    assert answers == [False, False, False, False, True]
