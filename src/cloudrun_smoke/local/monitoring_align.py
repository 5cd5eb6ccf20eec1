"""Raw points, per-series alignment and cross-series reduction, as Cloud Monitoring computes them.

Aligned points end at the read's ``end`` and step back by the alignment period until they cover
``start``. A DELTA metric's raw points each cover ``resolution`` seconds (Cloud Run writes one a
minute; the local stack one each sampling period), cut at the read's and the alignment periods'
bounds, so every observation is counted once and only when it falls inside the interval. Which
aligners and reducers apply to which metric, and what they yield, is checked here too.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from cloudrun_smoke.local.distribution import Distribution, linear_percentile
from cloudrun_smoke.local.monitoring_series import Descriptor, Observed, Point, Query, Series, Value, invalid


# -- what an aligner or reducer yields ------------------------------------------------------------
def _percent(name: str) -> float:
    return float(name.rsplit("_", 1)[1])


def aligned_type(descriptor: Descriptor, aligner: str) -> tuple[str, str]:
    """(kind, value type) an aligner yields; refuses what Cloud Monitoring refuses."""
    kind, value_type = descriptor.kind, descriptor.value_type
    numeric = value_type in ("INT64", "DOUBLE")
    valid = {
        "ALIGN_DELTA": (kind in ("DELTA", "CUMULATIVE"), ("DELTA", value_type)),
        "ALIGN_RATE": (kind in ("DELTA", "CUMULATIVE") and numeric, ("GAUGE", "DOUBLE")),
        "ALIGN_SUM": (True, (kind, value_type)),
        "ALIGN_MEAN": (True, ("GAUGE", "DOUBLE")),
        "ALIGN_COUNT": (True, ("GAUGE", "INT64")),
        "ALIGN_MIN": (numeric, ("GAUGE", value_type)),
        "ALIGN_MAX": (numeric, ("GAUGE", value_type)),
    }
    ok, result = valid.get(aligner, (value_type == "DISTRIBUTION", ("GAUGE", "DOUBLE")))
    if not ok:
        raise invalid(
            "aggregation.perSeriesAligner",
            aligner,
            f"The aligner cannot be applied to metrics with kind {kind} and value type {value_type} "
            f"({descriptor.type}).",
        )
    return result


def reduced_type(reducer: str, kind: str, value_type: str) -> tuple[str, str]:
    numeric = value_type in ("INT64", "DOUBLE")
    if reducer in ("REDUCE_MIN", "REDUCE_MAX") and not numeric:
        raise invalid(
            "aggregation.crossSeriesReducer",
            reducer,
            f"The reducer cannot be applied to aligned values of type {value_type}.",
        )
    if reducer in ("REDUCE_SUM", "REDUCE_MIN", "REDUCE_MAX", "REDUCE_NONE"):
        return kind, value_type
    if reducer == "REDUCE_COUNT":
        return kind, "INT64"
    return "GAUGE", "DOUBLE"  # mean and percentiles


# -- raw points and alignment ----------------------------------------------------------------------
def _window(
    samples: Sequence[tuple[float, float]], start: float, end: float
) -> Sequence[tuple[float, float]]:
    """Samples in (start, end]; a zero-length interval is the instant ``end`` itself."""
    times = [t for t, _ in samples]
    first = bisect.bisect_left(times, end) if start == end else bisect.bisect_right(times, start)
    return samples[first : bisect.bisect_right(times, end)]


def _combine(descriptor: Descriptor, values: Sequence[float]) -> Value:
    if descriptor.value_type == "DISTRIBUTION":
        assert descriptor.buckets is not None
        return Distribution.of(values, descriptor.buckets)
    total = math.fsum(values)
    return round(total) if descriptor.value_type == "INT64" else total


def _raw_points(
    descriptor: Descriptor, samples: Sequence[tuple[float, float]], low: float, high: float
) -> list[Point]:
    """Raw points of samples inside (low, high], newest first."""
    if descriptor.kind == "GAUGE":
        return [Point(t, t, _combine(descriptor, [v])) for t, v in reversed(samples)]
    width = descriptor.resolution
    buckets: dict[int, list[float]] = {}
    for t, v in samples:
        buckets.setdefault(math.ceil(t / width), []).append(v)
    return [
        Point(max((b - 1) * width, low), min(b * width, high), _combine(descriptor, buckets[b]))
        for b in sorted(buckets, reverse=True)
    ]


def _series(
    descriptor: Descriptor, observed: Observed, kind: str, value_type: str, unit: str, points: Sequence[Point]
) -> Series:
    return Series(
        descriptor.type,
        dict(observed.metric_labels),
        descriptor.resource_type,
        dict(observed.resource_labels),
        kind,
        value_type,
        unit,
        tuple(points),
    )


def raw_series(descriptor: Descriptor, observed: Observed, query: Query) -> Series:
    samples = _window(observed.samples, query.start, query.end)
    points = _raw_points(descriptor, samples, query.start, query.end)
    return _series(descriptor, observed, descriptor.kind, descriptor.value_type, descriptor.unit, points)


def aligned_series(descriptor: Descriptor, observed: Observed, query: Query) -> Series:
    kind, value_type = aligned_type(descriptor, query.aligner)
    by_period: dict[int, list[tuple[float, float]]] = {}
    for t, v in _window(observed.samples, query.start, query.end):
        by_period.setdefault(math.floor((query.end - t) / query.period), []).append((t, v))
    points = []
    for k in sorted(by_period):
        period_end = query.end - k * query.period
        period_start = period_end - query.period
        raw = _raw_points(descriptor, by_period[k], max(period_start, query.start), period_end)
        value = _align(query.aligner, descriptor, raw, query.period)
        points.append(Point(period_start if kind == "DELTA" else period_end, period_end, value))
    return _series(
        descriptor, observed, kind, value_type, _aligned_unit(descriptor.unit, query.aligner), points
    )


def _aligned_unit(unit: str, aligner: str) -> str:
    if aligner == "ALIGN_COUNT":
        return "1"
    if aligner == "ALIGN_RATE":
        return "1/s" if unit in ("", "1") else f"{unit}/s"
    return unit


def _align(aligner: str, descriptor: Descriptor, raw: Sequence[Point], period: float) -> Value:
    values = [p.value for p in raw]
    if descriptor.value_type == "DISTRIBUTION":
        merged = Distribution.merge_all(v for v in values if isinstance(v, Distribution))
        if aligner in ("ALIGN_DELTA", "ALIGN_SUM"):
            return merged
        if aligner == "ALIGN_MEAN":
            return merged.mean
        if aligner == "ALIGN_COUNT":
            return merged.count
        return merged.histogram_percentile(_percent(aligner))
    numbers = [float(v) for v in values if not isinstance(v, Distribution)]
    integer = descriptor.value_type == "INT64"
    if aligner in ("ALIGN_DELTA", "ALIGN_SUM"):
        return round(math.fsum(numbers)) if integer else math.fsum(numbers)
    if aligner == "ALIGN_RATE":
        return math.fsum(numbers) / period
    if aligner == "ALIGN_MEAN":
        return math.fsum(numbers) / len(numbers)
    if aligner == "ALIGN_COUNT":
        return len(numbers)
    extreme = max(numbers) if aligner == "ALIGN_MAX" else min(numbers)
    return round(extreme) if integer else extreme


# -- reduction -------------------------------------------------------------------------------------
def reduce_series(series: Sequence[Series], reducer: str, groups: Sequence[tuple[str, str]]) -> list[Series]:
    by_key: dict[tuple[str, ...], list[Series]] = {}
    for s in series:
        key = tuple(_field_value(s, target, name) for target, name in groups)
        by_key.setdefault(key, []).append(s)
    reduced = []
    for members in by_key.values():
        first = members[0]
        kind, value_type = reduced_type(reducer, first.kind, first.value_type)
        at: dict[float, list[Point]] = {}
        for s in members:
            for p in s.points:
                at.setdefault(p.end, []).append(p)
        points = tuple(
            Point(at[end][0].start if kind == "DELTA" else end, end, _reduce_values(reducer, at[end]))
            for end in sorted(at, reverse=True)
        )
        metric_labels = {
            n: first.metric_labels[n] for t, n in groups if t == "metric.label" and n in first.metric_labels
        }
        resource_labels = {
            n: first.resource_labels[n]
            for n in ("project_id", *(n for t, n in groups if t == "resource.label"))
            if n in first.resource_labels
        }
        unit = "1" if reducer == "REDUCE_COUNT" else first.unit
        reduced.append(
            Series(
                first.metric_type,
                metric_labels,
                first.resource_type,
                resource_labels,
                kind,
                value_type,
                unit,
                points,
            )
        )
    return reduced


def _field_value(series: Series, target: str, name: str) -> str:
    if target == "resource.type":
        return series.resource_type
    labels = series.metric_labels if target == "metric.label" else series.resource_labels
    return labels.get(name, "")


def _reduce_values(reducer: str, points: Sequence[Point]) -> Value:
    values = [p.value for p in points]
    if reducer == "REDUCE_COUNT":
        return len(values)
    distributions = [v for v in values if isinstance(v, Distribution)]
    if distributions:
        merged = Distribution.merge_all(distributions)
        if reducer == "REDUCE_SUM":
            return merged
        if reducer == "REDUCE_MEAN":
            return merged.mean
        return merged.histogram_percentile(_percent(reducer))
    numbers = [v for v in values if not isinstance(v, Distribution)]
    if reducer == "REDUCE_SUM":
        return sum(numbers)
    if reducer == "REDUCE_MEAN":
        return math.fsum(numbers) / len(numbers)
    if reducer == "REDUCE_MAX":
        return max(numbers)
    if reducer == "REDUCE_MIN":
        return min(numbers)
    return linear_percentile([float(n) for n in numbers], _percent(reducer))
