"""The significance tests of the regression checks: a few dozen lines each, no statistics library.

Both tests are one-sided: a figure fails only when the revision under test is *worse* (slower, more
5xx), never because it got better. Large-sample normal approximations, as in Kayenta's Mann-Whitney
judge; :data:`MIN_SAMPLES` per side keeps them honest, and below it the caller skips the figure with
:func:`smallest_rank_p` or :func:`smallest_share_rise` to say what the samples could have shown.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

MIN_SAMPLES = 8  # per side: below it the normal approximation of U is poor (Mann & Whitney 1947, n > 8)


def upper_tail(z: float) -> float:
    """P(Z ≥ z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def upper_quantile(p: float) -> float:
    """The z with ``upper_tail(z) == p`` (0 < p < 1), by bisection: no inverse erf in the stdlib."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a probability strictly between 0 and 1, got {p}")
    low, high = -40.0, 40.0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if upper_tail(middle) > p else (low, middle)
    return (low + high) / 2


@dataclass(frozen=True)
class RankTest:
    """Mann-Whitney U of the candidate's values over the baseline's, one-sided (candidate larger)."""

    u: float  # pairs (candidate, baseline) where the candidate is larger, ties counting one half
    z: float
    p_value: float
    n_baseline: int
    n_candidate: int

    @property
    def superiority(self) -> float:
        """P(a candidate value > a baseline value) + half the ties: 0.5 when neither is worse."""
        return self.u / (self.n_baseline * self.n_candidate)

    def describe(self) -> str:
        return (
            f"Mann-Whitney U = {self.u:g} (P(candidate > baseline) = {self.superiority:.2f}), "
            f"z = {self.z:.2f}, one-sided p = {self.p_value:.2g}"
        )


def rank_test(baseline: Sequence[float], candidate: Sequence[float]) -> RankTest:
    """Normal approximation with the tie correction and a continuity correction of one half."""
    n1, n2 = len(baseline), len(candidate)
    if n1 == 0 or n2 == 0:
        raise ValueError("a rank test needs samples on both sides")
    ranked = sorted([(v, 0) for v in baseline] + [(v, 1) for v in candidate])
    ranks: list[float] = [0.0] * len(ranked)
    i = 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, (_, side) in zip(ranks, ranked, strict=True) if side == 1)
    u = rank_sum - n2 * (n2 + 1) / 2
    n = n1 + n2
    ties = sum(t**3 - t for t in Counter(v for v, _ in ranked).values())
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    mean = n1 * n2 / 2
    if variance <= 0:  # every value equal: nothing to tell apart
        return RankTest(u, 0.0, 0.5, n1, n2)
    z = (u - mean - 0.5) / math.sqrt(variance)
    return RankTest(u, z, upper_tail(z), n1, n2)


def smallest_rank_p(n_baseline: int, n_candidate: int) -> float:
    """The p-value of the most extreme samples possible (every candidate value above every baseline
    one, no ties): if it is not below alpha, no slowdown could have been shown."""
    if n_baseline == 0 or n_candidate == 0:
        return 1.0
    n = n_baseline + n_candidate
    variance = n_baseline * n_candidate * (n + 1) / 12
    return upper_tail((n_baseline * n_candidate / 2 - 0.5) / math.sqrt(variance))


@dataclass(frozen=True)
class ProportionTest:
    """Two-proportion z-test, pooled, one-sided (the candidate's share larger)."""

    baseline: tuple[int, int]  # (events, trials)
    candidate: tuple[int, int]
    z: float
    p_value: float

    @property
    def difference(self) -> float:
        """The candidate's share minus the baseline's."""
        return share(*self.candidate) - share(*self.baseline)

    def describe(self) -> str:
        return f"two-proportion z = {self.z:.2f}, one-sided p = {self.p_value:.2g}"


def share(events: int, trials: int) -> float:
    return events / trials if trials else 0.0


def proportion_test(baseline: tuple[int, int], candidate: tuple[int, int]) -> ProportionTest:
    (x1, n1), (x2, n2) = baseline, candidate
    if n1 <= 0 or n2 <= 0:
        raise ValueError("a proportion test needs trials on both sides")
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance == 0:  # no event on either side, or only events: no difference to test
        return ProportionTest(baseline, candidate, 0.0, 0.5)
    z = (x2 / n2 - x1 / n1) / math.sqrt(variance)
    return ProportionTest(baseline, candidate, z, upper_tail(z))


def smallest_share_rise(baseline: tuple[int, int], n_candidate: int, alpha: float) -> float:
    """The smallest rise of the candidate's share over the baseline's that ``proportion_test`` would
    call significant at ``alpha`` with these trials (1.0 when even 100 % would not be)."""
    x1, n1 = baseline
    if n1 <= 0 or n_candidate <= 0:  # no trials on a side: nothing can be shown
        return 1.0
    for events in range(n_candidate + 1):
        if proportion_test(baseline, (events, n_candidate)).p_value < alpha:
            return share(events, n_candidate) - share(x1, n1)
    return 1.0


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given: compare each with alpha as is."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
