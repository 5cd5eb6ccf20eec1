"""The regression verdict: worse beyond the margin *and* significant after Holm fails; either alone passes;
too few samples skip, saying what they could have shown."""

from __future__ import annotations

import random

from cloudrun_smoke.regression.judge import FAILED, PASSED, SKIPPED, Comparison, Side, judge

ALPHA = 0.01


def latencies(revision: str, factor: float, n: int = 200, seed: int = 1) -> Side:
    rng = random.Random(seed)
    return Side(revision, tuple(factor * rng.lognormvariate(3.7, 0.3) for _ in range(n)))  # ~40 ms


def latency(candidate_factor: float, n: int = 200, margin: float = 1.2) -> Comparison:
    return Comparison(
        "request latency",
        "rank",
        "ms",
        latencies("rev-1", 1.0, n, 1),
        latencies("rev-2", candidate_factor, n, 2),
        margin,
        20,
    )


def errors(base: int, cand: int, trials: int = 1000, margin: float = 0.5) -> Comparison:
    return Comparison(
        "5xx share",
        "share",
        "%",
        Side("rev-1", events=base, trials=trials),
        Side("rev-2", events=cand, trials=trials),
        margin,
        100,
    )


def test_twice_as_slow_fails_with_the_effect_and_the_p_value() -> None:
    [verdict] = judge([latency(2.0)], ALPHA)
    assert verdict.outcome == FAILED and 1.8 < (verdict.effect or 0) < 2.2
    text = verdict.describe(ALPHA)
    for part in (
        "request latency: failed: worse beyond its margin, significantly",
        "medians' ratio 2.",
        "(margin 1.2x)",
        "Mann-Whitney U = ",
        "one-sided p = ",
        "Holm-adjusted p = ",
        "candidate rev-2 median ",
        "baseline rev-1 median ",
        " over 200",
    ):
        assert part in text, text


def test_identical_revisions_pass_and_a_faster_one_too() -> None:
    for factor in (1.0, 0.5):
        [verdict] = judge([latency(factor)], ALPHA)
        assert verdict.outcome == PASSED, verdict.describe(ALPHA)


def test_significant_but_within_the_margin_passes_and_beyond_it_but_noisy_passes() -> None:
    [small] = judge([latency(1.1, n=2000)], ALPHA)  # 10 % slower: real, yet within 20 %
    assert small.outcome == PASSED and (small.adjusted_p or 1) < ALPHA, small.describe(ALPHA)
    assert "within its margin" in small.describe(ALPHA)
    [noisy] = judge([errors(0, 2, trials=120)], ALPHA)  # +1.7 points, but 2 of 120 may be luck
    assert noisy.outcome == PASSED and "not significant at 0.01" in noisy.describe(ALPHA), noisy.describe(
        ALPHA
    )


def test_an_error_share_of_5_percent_fails_the_share_figure() -> None:
    [verdict] = judge([errors(0, 50)], ALPHA)
    assert verdict.outcome == FAILED, verdict.describe(ALPHA)
    assert "+5.00 points (margin +0.5)" in verdict.describe(ALPHA)
    assert "two-proportion z = " in verdict.describe(ALPHA)


def test_holm_counts_every_tested_figure_of_the_run() -> None:
    # p ~ 0.006 alone fails; beside four more tested figures, Holm multiplies it by five: passes.
    borderline = errors(2, 12, trials=400, margin=0.5)
    [alone] = judge([borderline], ALPHA)
    assert alone.outcome == FAILED, alone.describe(ALPHA)
    crowd = judge([borderline] + [latency(1.0)] * 4, ALPHA)
    assert crowd[0].outcome == PASSED and (crowd[0].adjusted_p or 0) > (alone.adjusted_p or 1)


def test_too_few_samples_skip_and_say_what_they_could_have_shown() -> None:
    [rank] = judge([latency(3.0, n=5)], ALPHA)
    assert rank.outcome == SKIPPED
    assert "too few samples: baseline 5, candidate 5 (min_samples 20)" in rank.describe(ALPHA)
    assert "the smallest p-value a rank test can give is" in rank.describe(ALPHA)
    [share] = judge([errors(0, 3, trials=50)], ALPHA)
    assert share.outcome == SKIPPED and "a rise of " in share.describe(ALPHA), share.describe(ALPHA)


def test_a_maximum_is_judged_by_its_margin_alone() -> None:
    def memory(candidate_peak: float) -> Comparison:
        return Comparison(
            "memory utilization max",
            "maximum",
            "%",
            Side("rev-1", (30.0, 41.0, 38.0)),
            Side("rev-2", (35.0, candidate_peak)),
            10.0,
            2,
        )

    [within, beyond] = judge([memory(50.0), memory(52.0)], ALPHA)
    assert (within.outcome, beyond.outcome) == (PASSED, FAILED)
    assert beyond.p_value is None and "+11.00 points (margin +10)" in beyond.describe(ALPHA)


def test_a_side_without_a_single_trial_skips_instead_of_crashing() -> None:
    """A revision that consolidated nothing in its window has 0 trials on its side of the failure share."""
    for base, cand in ((30, 0), (0, 30)):
        share = Comparison(
            "consolidation failure share",
            "share",
            "%",
            Side("rev-1", events=0, trials=base),
            Side("rev-2", events=0, trials=cand),
            1.0,
            10,
        )
        [verdict] = judge([share], ALPHA)
        assert verdict.outcome == SKIPPED and "no rise would be significant" in verdict.describe(ALPHA)
