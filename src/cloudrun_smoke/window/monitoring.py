"""Cloud Run's own metrics over the window, from Cloud Monitoring: one ListTimeSeries call per figure.

Each figure asks the server to align every series over the whole window (alignment period = the
window) and to reduce across series, so the answer is a handful of points, whatever the traffic:
the cost is one read per figure, counted in ``calls``. Distributions (latency, memory, CPU) are merged
server-side (``REDUCE_SUM``) and their percentiles read from the merged buckets.

The exception is the instance count, a gauge: its minimum and maximum over the window need the series
itself, so it is aligned on ``gauge_period`` (Cloud Run samples it once a minute) with ``ALIGN_MEAN``
and summed across states and revisions, still in one call. A mean can only hide a breach, never make
one up: a period whose mean total is below the minimum (or above the maximum) really had one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp.errors import GOOGLE_ERRORS, MONITORING_API, api_error, is_throttled
from cloudrun_smoke.gcp.scope import CloudRunScope
from cloudrun_smoke.window.distributions import Estimate, distribution_percentile
from cloudrun_smoke.window.period import Window

REQUEST_COUNT = "run.googleapis.com/request_count"
REQUEST_LATENCIES = "run.googleapis.com/request_latencies"
MEMORY_UTILIZATIONS = "run.googleapis.com/container/memory/utilizations"
CPU_UTILIZATIONS = "run.googleapis.com/container/cpu/utilizations"
INSTANCE_COUNT = "run.googleapis.com/container/instance_count"
CALL_TIMEOUT = 30.0
# monitoring_v3 Aggregation.alignment_period: "The value must be at least 60 seconds."
MIN_ALIGNMENT_PERIOD_S = 60
# Google Cloud metrics, Cloud Run (https://cloud.google.com/monitoring/api/metrics_gcp#gcp-run), e.g.
# request_latencies: "Sampled every 60 seconds. After sampling, data is not visible for up to 180 seconds."
# A window's last point is complete one sampling period plus that delay after its end.
CLOUD_RUN_SAMPLE_PERIOD_S = 60
CLOUD_RUN_VISIBILITY_DELAY_S = 180
CLOUD_RUN_METRIC_DELAY_S = CLOUD_RUN_SAMPLE_PERIOD_S + CLOUD_RUN_VISIBILITY_DELAY_S


@dataclass(frozen=True)
class Query:
    """One ListTimeSeries request, kept for the failure message's links."""

    metric_type: str
    filter: str
    aligner: str
    reducer: str
    period_s: int
    group_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricFigure:
    """A figure and what it stands on: ``value`` is None when there was nothing to measure."""

    value: float | None
    samples: int
    query: Query
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


class MetricReader:
    """The window's metric figures for one scope; ``calls`` counts ListTimeSeries pages read."""

    def __init__(
        self, client: Any, scope: CloudRunScope, window: Window, *, gauge_period: int = 60, endpoint: str = ""
    ) -> None:
        self._client = client
        self.scope = scope
        self.window = window
        self._gauge_period = max(1, min(gauge_period, window.seconds))
        self._endpoint = endpoint
        self.calls = 0

    # -- the figures -----------------------------------------------------------------------------------
    def error_share(self) -> MetricFigure:
        """Share of 5xx answers among all requests, in percent; samples: the requests."""
        query = self._query(REQUEST_COUNT, "ALIGN_DELTA", "REDUCE_SUM", ("metric.label.response_code_class",))
        by_class: dict[str, float] = {}
        for series in self._list(query):
            code_class = series.metric.labels.get("response_code_class", "?")
            by_class[code_class] = by_class.get(code_class, 0) + sum(
                p.value.int64_value or p.value.double_value for p in series.points
            )
        total = int(sum(by_class.values()))
        errors = int(by_class.get("5xx", 0))
        share = 100.0 * errors / total if total else None
        classes = ", ".join(f"{k}: {int(v)}" for k, v in sorted(by_class.items()))
        return MetricFigure(share, total, query, f"{errors} answers 5xx ({classes or 'no requests'})")

    def latency_p95(self) -> MetricFigure:
        """P95 of the server-side request latency, in ms, from the merged distribution."""
        return self._distribution_figure(REQUEST_LATENCIES, 95, 1.0, "P95 of the merged latency distribution")

    def memory_max(self) -> MetricFigure:
        """Peak memory utilization in percent: the max, not a percentile, since one peak is enough to
        be killed out of memory; read as the upper edge of the highest occupied bucket (never low)."""
        return self._distribution_figure(
            MEMORY_UTILIZATIONS, 100, 100.0, "max: upper edge of the highest occupied bucket"
        )

    def cpu_p95(self) -> MetricFigure:
        """P95 of CPU utilization in percent: peaks during a batch consolidation are expected (runbook)."""
        return self._distribution_figure(CPU_UTILIZATIONS, 95, 100.0, "P95 of the merged distribution")

    def cpu_max(self) -> MetricFigure:
        """Peak CPU utilization in percent, read as :meth:`memory_max` is (the regression checks' maximum)."""
        return self._distribution_figure(
            CPU_UTILIZATIONS, 100, 100.0, "max: upper edge of the highest occupied bucket"
        )

    def instance_counts(self, floor: int = 0) -> MetricFigure:
        """Instances (all states, all revisions in scope) per ``gauge_period``: value is the peak,
        ``extra["min"]`` the lowest once ``floor`` was first reached (the revision's start-up, before its
        first instance is up, is not a breach of its minimum); samples: the periods with data."""
        query = self._query(INSTANCE_COUNT, "ALIGN_MEAN", "REDUCE_SUM", (), self._gauge_period)
        points = sorted(
            (p.interval.end_time.timestamp(), p.value.double_value or float(p.value.int64_value))
            for s in self._list(query)
            for p in s.points
        )
        if not points:
            return MetricFigure(None, 0, query, "no instance_count points")
        values = [v for _, v in points]
        warm = next((i for i, v in enumerate(values) if v >= floor), None)
        note = f"mean per {self._gauge_period} s period, summed over states and revisions"
        if warm is None:  # never up to the floor: no start-up to leave out, every period is judged
            warm = 0
            note += f"; never reached {floor}"
        elif warm:
            note += f"; {warm} start-up period(s) before reaching {floor} not judged for the minimum"
        low = min(values[warm:])
        return MetricFigure(max(values), len(values), query, note, {"min": low})

    # -- plumbing ----------------------------------------------------------------------------------------
    def _distribution_figure(self, metric_type: str, q: float, scale: float, how: str) -> MetricFigure:
        query = self._query(metric_type, "ALIGN_DELTA", "REDUCE_SUM")
        merged = [
            p.value.distribution_value
            for s in self._list(query)
            for p in s.points
            if p.value.distribution_value.count
        ]
        if not merged:
            return MetricFigure(None, 0, query, "no samples")
        if len(merged) > 1:  # REDUCE_SUM answers one series; more means the server split the window
            raise SmokeError(f"{metric_type}: expected one merged distribution, got {len(merged)}")
        try:
            estimate: Estimate = distribution_percentile(merged[0], q)
        except ValueError as e:
            raise SmokeError(f"{metric_type}: cannot read the distribution: {e}") from None
        note = how + (" (overflow bucket: at least this)" if estimate.at_least else "")
        return MetricFigure(estimate.value * scale, estimate.count, query, note)

    def _query(
        self,
        metric_type: str,
        aligner: str,
        reducer: str,
        group_by: Sequence[str] = (),
        period: int | None = None,
    ) -> Query:
        return Query(
            metric_type,
            self.scope.metric_filter(metric_type),
            aligner,
            reducer,
            period or self.window.seconds,
            tuple(group_by),
        )

    def _list(self, query: Query) -> list[Any]:
        from google.api_core import exceptions as gexc
        from google.api_core import retry as retries
        from google.cloud import monitoring_v3
        from google.protobuf import duration_pb2, timestamp_pb2

        start, end = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
        start.FromDatetime(self.window.start)
        end.FromDatetime(self.window.end)
        request = monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{self.scope.project}",
            filter=query.filter,
            interval=monitoring_v3.TimeInterval(start_time=start, end_time=end),
            aggregation=monitoring_v3.Aggregation(
                alignment_period=duration_pb2.Duration(seconds=query.period_s),
                per_series_aligner=monitoring_v3.Aggregation.Aligner[query.aligner],
                cross_series_reducer=monitoring_v3.Aggregation.Reducer[query.reducer],
                group_by_fields=list(query.group_by),
            ),
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        )
        retry = retries.Retry(
            predicate=lambda e: is_throttled(e) or isinstance(e, gexc.ServiceUnavailable),
            initial=1.0,
            maximum=10.0,
            timeout=CALL_TIMEOUT,
        )
        series: list[Any] = []
        try:
            pager = self._client.list_time_series(request=request, retry=retry, timeout=CALL_TIMEOUT)
            for page in pager.pages:
                self.calls += 1
                series.extend(page.time_series)
        except GOOGLE_ERRORS as e:
            raise api_error(
                e,
                MONITORING_API,
                what="read time series",
                endpoint=self._endpoint,
                where=f"project {self.scope.project!r}",
            ) from None
        return series
