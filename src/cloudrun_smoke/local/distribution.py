"""Distribution values as Cloud Monitoring keeps them: count, mean, sum of squared deviation and a
histogram over exponential buckets. Percentiles come from the histogram alone (interpolated inside a
bucket), as Google computes them: the raw values are gone once a point is written."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ExponentialBuckets:
    """``finite`` buckets ``[scale·growth^(i-1), scale·growth^i)`` plus underflow (0) and overflow
    (``finite + 1``), as ``google.api.Distribution.BucketOptions.Exponential``."""

    finite: int
    growth: float
    scale: float

    def index(self, value: float) -> int:
        if value < self.scale:
            return 0
        i = int(math.log(value / self.scale) / math.log(self.growth)) + 1
        # log() rounding can land one bucket off near a boundary: settle it against the bounds.
        while i > 1 and value < self.scale * self.growth ** (i - 1):
            i -= 1
        while i <= self.finite and value >= self.scale * self.growth**i:
            i += 1
        return min(i, self.finite + 1)

    def bounds(self, index: int) -> tuple[float, float]:
        """A bucket's [lower, upper) for interpolation; the underflow bucket starts at 0 (the values are
        latencies and ratios) and the overflow bucket is reported at its lower bound."""
        if index == 0:
            return 0.0, self.scale
        lower = self.scale * self.growth ** (index - 1)
        return (lower, lower) if index > self.finite else (lower, self.scale * self.growth**index)


@dataclass(frozen=True)
class Distribution:
    count: int
    mean: float
    sum_of_squared_deviation: float
    buckets: ExponentialBuckets
    bucket_counts: tuple[int, ...]  # finite + 2 entries

    @classmethod
    def of(cls, values: Sequence[float], buckets: ExponentialBuckets) -> Distribution:
        counts = [0] * (buckets.finite + 2)
        for value in values:
            counts[buckets.index(value)] += 1
        n = len(values)
        mean = math.fsum(values) / n if n else 0.0
        ssd = math.fsum((v - mean) ** 2 for v in values)
        return cls(n, mean, ssd, buckets, tuple(counts))

    def merge(self, other: Distribution) -> Distribution:
        if other.buckets != self.buckets:
            raise ValueError("distributions with different buckets cannot be merged")
        n = self.count + other.count
        if n == 0:
            return self
        mean = (self.mean * self.count + other.mean * other.count) / n
        delta = other.mean - self.mean
        ssd = self.sum_of_squared_deviation + other.sum_of_squared_deviation
        ssd += delta * delta * self.count * other.count / n
        counts = tuple(a + b for a, b in zip(self.bucket_counts, other.bucket_counts, strict=True))
        return Distribution(n, mean, ssd, self.buckets, counts)

    @staticmethod
    def merge_all(values: Iterable[Distribution]) -> Distribution:
        merged: Distribution | None = None
        for value in values:
            merged = value if merged is None else merged.merge(value)
        if merged is None:
            raise ValueError("nothing to merge")
        return merged

    def histogram_percentile(self, q: float) -> float:
        """The q-th percentile (0-100), interpolated linearly inside the bucket that holds it."""
        rank = q / 100 * self.count
        cumulative = 0
        last = 0
        for index, n in enumerate(self.bucket_counts):
            if not n:
                continue
            last = index
            if cumulative + n >= rank:
                lower, upper = self.buckets.bounds(index)
                return lower + (upper - lower) * max(0.0, rank - cumulative) / n
            cumulative += n
        return self.buckets.bounds(last)[1]


def linear_percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile of plain numbers, linear between the closest ranks."""
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
