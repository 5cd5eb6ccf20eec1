"""The regression checks' tests against values computed another way: the exact permutation
distribution of U, a worked two-proportion example, Holm's procedure by hand."""

from __future__ import annotations

import itertools
import random

import pytest

from cloudrun_smoke.regression.stats import (
    holm,
    proportion_test,
    rank_test,
    smallest_rank_p,
    smallest_share_rise,
    upper_quantile,
    upper_tail,
)


def exact_upper_p(baseline: list[float], candidate: list[float]) -> float:
    """P(U ≥ u observed) over every way of splitting the pooled values (no ties in the inputs)."""
    pooled = baseline + candidate
    observed = rank_test(baseline, candidate).u
    n2 = len(candidate)
    count = total = 0
    for chosen in itertools.combinations(range(len(pooled)), n2):
        picked = set(chosen)
        cand = [pooled[i] for i in chosen]
        base = [v for i, v in enumerate(pooled) if i not in picked]
        u = sum(c > b for c in cand for b in base)
        total += 1
        count += u >= observed
    return count / total


@pytest.mark.parametrize("shift", [0.0, 0.5, 1.0])
def test_the_rank_test_is_close_to_the_exact_permutation_p_value(shift: float) -> None:
    rng = random.Random(7)
    baseline = [rng.gauss(0, 1) for _ in range(8)]
    candidate = [rng.gauss(shift, 1) for _ in range(9)]
    assert rank_test(baseline, candidate).p_value == pytest.approx(
        exact_upper_p(baseline, candidate), abs=0.012
    )


def test_the_rank_test_is_one_sided_and_counts_ties_as_halves() -> None:
    slower = rank_test([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
    assert slower.u == 100 and slower.superiority == 1.0 and slower.p_value < 1e-3
    faster = rank_test([11, 12, 13, 14, 15, 16, 17, 18, 19, 20], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert faster.u == 0 and faster.p_value > 0.999  # better is never a regression
    same = rank_test([5.0] * 10, [5.0] * 12)
    assert same.superiority == 0.5 and same.p_value == 0.5
    assert smallest_rank_p(10, 10) == pytest.approx(slower.p_value)
    assert smallest_rank_p(3, 3) > 0.01  # 3 against 3 can never be significant at 0.01


def test_the_proportion_test_matches_a_worked_example() -> None:
    # 5 % vs 12.5 % of 200: pooled 8.75 %, SE 0.02826, z = 2.654, one-sided p = 0.00398.
    test = proportion_test((10, 200), (25, 200))
    assert test.z == pytest.approx(2.654, abs=1e-3)
    assert test.p_value == pytest.approx(0.00398, abs=1e-5)
    assert test.difference == pytest.approx(0.075)
    assert proportion_test((0, 500), (0, 500)).p_value == 0.5
    assert proportion_test((25, 200), (10, 200)).p_value > 0.99


def test_the_smallest_share_rise_is_the_first_significant_one() -> None:
    rise = smallest_share_rise((0, 1000), 1000, alpha=0.01)
    assert proportion_test((0, 1000), (round(rise * 1000), 1000)).p_value < 0.01
    assert proportion_test((0, 1000), (round(rise * 1000) - 1, 1000)).p_value >= 0.01
    assert smallest_share_rise((0, 3), 3, alpha=0.01) == 1.0  # 3 against 3: not even 100 %


def test_holm_adjusts_in_the_given_order() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5] and holm([]) == []
    assert holm([0.6, 0.6]) == [1.0, 1.0]


def test_the_normal_tail_and_its_inverse() -> None:
    assert upper_tail(0) == 0.5 and upper_tail(1.959964) == pytest.approx(0.025, abs=1e-6)
    assert upper_quantile(0.01) == pytest.approx(2.326348, abs=1e-5)
