"""Percentiles of Cloud Monitoring distributions from their buckets: linear, exponential, explicit."""

from __future__ import annotations

import pytest
from google.api.distribution_pb2 import Distribution

from cloudrun_smoke.window.distributions import bucket_edges, distribution_percentile


def linear(counts: list[int], width: float = 10.0, offset: float = 0.0, finite: int = 10) -> Distribution:
    d = Distribution(count=sum(counts), bucket_counts=counts)
    d.bucket_options.linear_buckets.num_finite_buckets = finite
    d.bucket_options.linear_buckets.width = width
    d.bucket_options.linear_buckets.offset = offset
    return d


def exponential(counts: list[int], growth: float = 2.0, scale: float = 1.0, finite: int = 8) -> Distribution:
    d = Distribution(count=sum(counts), bucket_counts=counts)
    d.bucket_options.exponential_buckets.num_finite_buckets = finite
    d.bucket_options.exponential_buckets.growth_factor = growth
    d.bucket_options.exponential_buckets.scale = scale
    return d


def explicit(counts: list[int], bounds: list[float]) -> Distribution:
    d = Distribution(count=sum(counts), bucket_counts=counts)
    d.bucket_options.explicit_buckets.bounds.extend(bounds)
    return d


def test_edges_of_each_kind_of_bucket_options() -> None:
    assert bucket_edges(linear([0]).bucket_options, 3)[:3] == [
        (float("-inf"), 0.0),
        (0.0, 10.0),
        (10.0, 20.0),
    ]
    assert bucket_edges(exponential([0]).bucket_options, 10)[1:4] == [(1.0, 2.0), (2.0, 4.0), (4.0, 8.0)]
    assert bucket_edges(explicit([0], [5, 50, 500]).bucket_options, 4) == [
        (float("-inf"), 5.0),
        (5.0, 50.0),
        (50.0, 500.0),
        (500.0, float("inf")),
    ]


def test_linear_percentile_interpolates_inside_the_bucket() -> None:
    # 100 samples: 50 in [0, 10), 40 in [10, 20), 10 in [20, 30).
    d = linear([0, 50, 40, 10])
    assert distribution_percentile(d, 50).value == pytest.approx(10.0)
    assert distribution_percentile(d, 95).value == pytest.approx(25.0)
    assert distribution_percentile(d, 100).value == pytest.approx(
        30.0
    )  # the max: the top occupied bucket's upper edge
    assert distribution_percentile(d, 95).count == 100


def test_exponential_percentile() -> None:
    # [1, 2): 10, [2, 4): 80, [4, 8): 10
    d = exponential([0, 10, 80, 10])
    assert distribution_percentile(d, 50).value == pytest.approx(2 + 2 * 40 / 80)
    assert distribution_percentile(d, 95).value == pytest.approx(4 + 4 * 5 / 10)
    assert distribution_percentile(d, 95).bucket == (4.0, 8.0)


def test_explicit_percentile_and_the_underflow_bucket_starting_at_zero() -> None:
    d = explicit([10, 0, 0, 0], [5, 50, 500])
    assert distribution_percentile(d, 50).value == pytest.approx(2.5)


def test_the_overflow_bucket_gives_a_lower_bound() -> None:
    estimate = distribution_percentile(explicit([0, 1, 0, 9], [5, 50, 500]), 95)
    assert estimate.value == 500.0 and estimate.at_least


def test_a_merged_distribution_may_omit_trailing_empty_buckets() -> None:
    assert distribution_percentile(linear([0, 1]), 100).value == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("d", "message"),
    [
        (linear([0, 0]), "empty"),
        (Distribution(count=3), "empty"),
        (linear([1] * 13), "13 bucket counts for 12 buckets"),
    ],
)
def test_unreadable_distributions_say_why(d: Distribution, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        distribution_percentile(d, 95)
