"""The data of a ListTimeSeries read: metric descriptors, observations, queries and the series returned.

Times are POSIX seconds. A read covers ``(start, end]``; points come newest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cloudrun_smoke.local.distribution import Distribution, ExponentialBuckets
from cloudrun_smoke.local.monitoring_filter import Term

# The arithmetic's own floor; Google's 60 s minimum is the API's (monitoring_api.MonitoringApi).
MIN_ALIGNMENT_PERIOD = 1.0

Value = int | float | Distribution

ALIGNERS = (
    "ALIGN_NONE",
    "ALIGN_DELTA",
    "ALIGN_RATE",
    "ALIGN_MIN",
    "ALIGN_MAX",
    "ALIGN_MEAN",
    "ALIGN_COUNT",
    "ALIGN_SUM",
    "ALIGN_PERCENTILE_99",
    "ALIGN_PERCENTILE_95",
    "ALIGN_PERCENTILE_50",
    "ALIGN_PERCENTILE_05",
)
REDUCERS = (
    "REDUCE_NONE",
    "REDUCE_MEAN",
    "REDUCE_MIN",
    "REDUCE_MAX",
    "REDUCE_SUM",
    "REDUCE_COUNT",
    "REDUCE_PERCENTILE_99",
    "REDUCE_PERCENTILE_95",
    "REDUCE_PERCENTILE_50",
    "REDUCE_PERCENTILE_05",
)


class QueryError(ValueError):
    """A request Cloud Monitoring would refuse (INVALID_ARGUMENT); the message is one line."""


@dataclass(frozen=True)
class Descriptor:
    """A metric: its kind, value type and labels, and the resource it is written against."""

    type: str
    kind: str  # GAUGE | DELTA
    value_type: str  # INT64 | DOUBLE | DISTRIBUTION
    unit: str
    labels: tuple[str, ...]
    resource_type: str
    resource_labels: tuple[str, ...]
    buckets: ExponentialBuckets | None = None
    resolution: float = 60.0  # seconds one raw DELTA point covers


@dataclass(frozen=True)
class Observed:
    """One time series' observations, ``(time, value)`` in time order; a DELTA metric's values are
    what each observation adds (1 for a request, its latency for a latency distribution)."""

    metric_labels: Mapping[str, str]
    resource_labels: Mapping[str, str]
    samples: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Point:
    start: float  # equal to ``end`` for a GAUGE point
    end: float
    value: Value


@dataclass(frozen=True)
class Series:
    metric_type: str
    metric_labels: Mapping[str, str]
    resource_type: str
    resource_labels: Mapping[str, str]
    kind: str
    value_type: str
    unit: str
    points: tuple[Point, ...]  # newest first


@dataclass(frozen=True)
class Query:
    start: float
    end: float
    terms: Sequence[Term] = ()
    aligner: str = "ALIGN_NONE"
    period: float = 0.0
    reducer: str = "REDUCE_NONE"
    group_by: Sequence[str] = field(default_factory=tuple)


def invalid(field_name: str, value: object, reason: str) -> QueryError:
    """Cloud Monitoring's INVALID_ARGUMENT wording for one field of the request."""
    return QueryError(f'Field {field_name} had an invalid value of "{value}": {reason}')
