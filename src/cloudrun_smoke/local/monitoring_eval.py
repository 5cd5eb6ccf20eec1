"""ListTimeSeries arithmetic as Cloud Monitoring defines it (google/monitoring/v3/common.proto):
raw points, per-series alignment and cross-series reduction, over plain data.

This module validates a query and selects the series; :mod:`~cloudrun_smoke.local.monitoring_align`
turns their observations into raw, aligned and reduced points; the data types are in
:mod:`~cloudrun_smoke.local.monitoring_series`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cloudrun_smoke.local.monitoring_align import (
    aligned_series,
    aligned_type,
    raw_series,
    reduce_series,
    reduced_type,
)
from cloudrun_smoke.local.monitoring_filter import Term, selector
from cloudrun_smoke.local.monitoring_series import (
    ALIGNERS,
    MIN_ALIGNMENT_PERIOD,
    REDUCERS,
    Descriptor,
    Observed,
    Query,
    QueryError,
    Series,
    invalid,
)


def evaluate(descriptor: Descriptor, observed: Iterable[Observed], query: Query) -> list[Series]:
    """The time series a ListTimeSeries request returns for one metric; ``QueryError`` when Cloud
    Monitoring would refuse the request."""
    _check(descriptor, query)
    groups = [_group_field(descriptor, f) for f in query.group_by] if query.reducer != "REDUCE_NONE" else []
    chosen = [o for o in observed if _selected(descriptor, o, query.terms)]
    if query.aligner == "ALIGN_NONE":
        found = [raw_series(descriptor, o, query) for o in chosen]
    else:
        found = [aligned_series(descriptor, o, query) for o in chosen]
    series = [s for s in found if s.points]
    if query.reducer != "REDUCE_NONE":
        series = reduce_series(series, query.reducer, groups)
    return sorted(series, key=lambda s: (sorted(s.resource_labels.items()), sorted(s.metric_labels.items())))


# -- validation ------------------------------------------------------------------------------------
def _check(descriptor: Descriptor, query: Query) -> None:
    if query.start > query.end:
        raise invalid("interval.startTime", query.start, "the start time must not be later than the end time")
    for term in query.terms:
        if term.target == "resource.type":
            if term.literal is not None and not term.negated and term.literal != descriptor.resource_type:
                raise QueryError(
                    "The supplied filter does not specify a valid combination of metric and monitored "
                    f"resource descriptors: {descriptor.type} is written against "
                    f"{descriptor.resource_type}, not {term.literal}."
                )
        elif term.target == "metric.label" and term.key not in descriptor.labels:
            raise invalid("filter", term.text, _no_label("metric " + descriptor.type, descriptor.labels))
        elif term.target == "resource.label" and term.key not in descriptor.resource_labels:
            raise invalid(
                "filter", term.text, _no_label(descriptor.resource_type, descriptor.resource_labels)
            )
    if query.aligner not in ALIGNERS:
        raise invalid("aggregation.perSeriesAligner", query.aligner, f"supported: {', '.join(ALIGNERS)}")
    if query.reducer not in REDUCERS:
        raise invalid("aggregation.crossSeriesReducer", query.reducer, f"supported: {', '.join(REDUCERS)}")
    if query.aligner == "ALIGN_NONE":
        if query.reducer != "REDUCE_NONE":
            raise invalid(
                "aggregation.crossSeriesReducer",
                query.reducer,
                "a cross-series reducer needs a per-series aligner other than ALIGN_NONE",
            )
        return
    if query.period < MIN_ALIGNMENT_PERIOD:
        raise invalid(
            "aggregation.alignmentPeriod",
            f"{query.period:g}s",
            f"an aligner needs an alignment period of at least {MIN_ALIGNMENT_PERIOD:g}s",
        )
    kind, value_type = aligned_type(descriptor, query.aligner)
    reduced_type(query.reducer, kind, value_type)


def _no_label(owner: str, labels: Sequence[str]) -> str:
    return f"{owner} has no such label (its labels: {', '.join(labels) or 'none'})"


def _group_field(descriptor: Descriptor, text: str) -> tuple[str, str]:
    target, key = selector(text)
    if target is None or target == "metric.type":
        raise invalid(
            "aggregation.groupByFields",
            text,
            "expected metric.labels.NAME, resource.labels.NAME or resource.type",
        )
    if target == "resource.type":
        return target, ""
    metric = target == "metric.label"
    labels = descriptor.labels if metric else descriptor.resource_labels
    if key not in labels:
        owner = f"metric {descriptor.type}" if metric else descriptor.resource_type
        raise invalid("aggregation.groupByFields", text, _no_label(owner, labels))
    return target, key


def _selected(descriptor: Descriptor, observed: Observed, terms: Sequence[Term]) -> bool:
    for term in terms:
        if term.target == "resource.type":
            value = descriptor.resource_type
        elif term.target == "metric.label":
            value = observed.metric_labels.get(term.key, "")
        else:
            value = observed.resource_labels.get(term.key, "")
        if not term.matches(value):
            return False
    return True
