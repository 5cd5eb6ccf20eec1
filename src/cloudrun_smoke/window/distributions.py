"""Percentiles of a Cloud Monitoring distribution, from its buckets.

A merged distribution (``REDUCE_SUM`` over the window) keeps only bucket counts, not the samples, so a
percentile is interpolated linearly inside the bucket that holds its rank. The open-ended first and
last buckets have no finite edge on one side: the underflow bucket is read as starting at 0 when its
upper edge is positive (utilizations and latencies are never negative), the overflow bucket as its
lower edge (a lower bound: the figure then says "at least").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Estimate:
    value: float
    count: int  # samples in the distribution
    at_least: bool = False  # the rank fell in the overflow bucket: the value is a lower bound
    bucket: tuple[float, float] = (0.0, 0.0)  # the edges of the bucket that held the rank


def bucket_edges(options: Any, buckets: int) -> list[tuple[float, float]]:
    """``[lower, upper)`` of each of ``buckets`` buckets (underflow first, overflow last) of a
    ``google.api.Distribution.BucketOptions``: linear, exponential or explicit."""
    kind = options.WhichOneof("options")
    if kind == "linear_buckets":
        n, width, offset = (
            options.linear_buckets.num_finite_buckets,
            options.linear_buckets.width,
            options.linear_buckets.offset,
        )
        bounds = [offset + width * i for i in range(n + 1)]
    elif kind == "exponential_buckets":
        n, growth, scale = (
            options.exponential_buckets.num_finite_buckets,
            options.exponential_buckets.growth_factor,
            options.exponential_buckets.scale,
        )
        bounds = [scale * growth**i for i in range(n + 1)]
    elif kind == "explicit_buckets":
        bounds = list(options.explicit_buckets.bounds)
    else:
        raise ValueError("the distribution has no bucket options")
    edges = [(float("-inf"), bounds[0])]
    edges += [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    edges.append((bounds[-1], float("inf")))
    if buckets > len(edges):
        raise ValueError(f"the distribution has {buckets} bucket counts for {len(edges)} buckets")
    return edges


def distribution_percentile(distribution: Any, q: float) -> Estimate:
    """The ``q``-th percentile (0 < q ≤ 100) of a ``google.api.Distribution``; q = 100 is the upper
    edge of the highest occupied bucket, the smallest value the buckets can promise is a maximum."""
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {q}")
    counts = [int(c) for c in distribution.bucket_counts]
    total = sum(counts)
    if total == 0:
        raise ValueError("the distribution is empty")
    edges = bucket_edges(distribution.bucket_options, len(counts))
    rank = q / 100 * total
    seen = 0
    for index, count in enumerate(counts):
        if count == 0 or seen + count < rank:
            seen += count
            continue
        lower, upper = edges[index]
        if upper == float("inf"):
            return Estimate(lower, total, at_least=True, bucket=(lower, upper))
        if lower == float("-inf"):
            lower = 0.0 if upper > 0 else upper
        fraction = (rank - seen) / count
        return Estimate(lower + fraction * (upper - lower), total, bucket=(lower, upper))
    raise AssertionError("unreachable: the rank lies within the total")
