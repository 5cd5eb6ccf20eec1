"""The figures the regression checks compare, from what each side's reads returned.

Each side is read over its own span with the same two Cloud Logging reads: Cloud Run's request log of
the revision (request latency, 5xx share, archive latency) and the service's consolidation lines
(queue time, failure share). Two reads a side, whatever the traffic, within ``max_log_pages`` each; and
two ListTimeSeries calls a side for the memory and CPU utilization maxima.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cloudrun_smoke.config.schema import RegressionSettings
from cloudrun_smoke.regression.judge import Comparison, Kind, Side
from cloudrun_smoke.window.consolidations import ConsolidationStats
from cloudrun_smoke.window.logs import Request

REQUEST_LATENCY = "request latency"
ERROR_SHARE = "5xx share"
ARCHIVE_LATENCY = "archive latency"
QUEUE_TIME = "queue time"
FAILURE_SHARE = "consolidation failure share"
MEMORY_MAX = "memory utilization max"
CPU_MAX = "CPU utilization max"
NAMES = (REQUEST_LATENCY, ERROR_SHARE, ARCHIVE_LATENCY, QUEUE_TIME, FAILURE_SHARE, MEMORY_MAX, CPU_MAX)


@dataclass(frozen=True)
class Peak:
    """A utilization maximum in percent (None: nothing measured) and the points it was taken over."""

    value: float | None
    samples: int


@dataclass(frozen=True)
class SideReads:
    """What one revision served over its span."""

    revision: str
    requests: list[Request]
    consolidations: ConsolidationStats
    memory: Peak = Peak(None, 0)
    cpu: Peak = Peak(None, 0)


def comparisons(
    candidate: SideReads, baseline: SideReads, settings: RegressionSettings, min_metric_samples: int
) -> list[Comparison]:
    """One comparison per figure of :data:`NAMES`, in that order; a maximum needs ``min_metric_samples``
    points a side (``[window] min_metric_samples``)."""
    n = settings.min_samples

    def latencies(side: SideReads, archive: bool = False) -> Side:
        chosen = [
            r.latency_ms for r in side.requests if r.latency_ms is not None and (r.is_archive or not archive)
        ]
        return Side(side.revision, tuple(v for v in chosen if v is not None))

    def errors(side: SideReads) -> Side:
        answered = [r for r in side.requests if r.status is not None]
        failed = sum(1 for r in answered if r.status is not None and r.status >= 500)
        return Side(side.revision, events=failed, trials=len(answered))

    def queue(side: SideReads) -> Side:
        return Side(side.revision, tuple(side.consolidations.queue_times))

    def failures(side: SideReads) -> Side:
        stats = side.consolidations
        return Side(side.revision, events=stats.failed, trials=stats.tried)

    def peak(name: str, read: Callable[[SideReads], Peak], margin: float) -> Comparison:
        def side(s: SideReads) -> Side:
            p = read(s)
            return Side(s.revision, () if p.value is None else (p.value,), samples=p.samples)

        return Comparison(name, "maximum", "%", side(baseline), side(candidate), margin, min_metric_samples)

    def both(
        name: str, kind: Kind, unit: str, read: Callable[[SideReads], Side], margin: float
    ) -> Comparison:
        return Comparison(name, kind, unit, read(baseline), read(candidate), margin, n)

    return [
        both(REQUEST_LATENCY, "rank", "ms", latencies, settings.latency_ratio),
        both(ERROR_SHARE, "share", "%", errors, settings.error_share_points),
        both(
            ARCHIVE_LATENCY,
            "rank",
            "ms",
            lambda s: latencies(s, archive=True),
            settings.archive_latency_ratio,
        ),
        both(QUEUE_TIME, "rank", "s", queue, settings.queue_time_ratio),
        both(FAILURE_SHARE, "share", "%", failures, settings.consolidation_failure_points),
        peak(MEMORY_MAX, lambda s: s.memory, settings.memory_points),
        peak(CPU_MAX, lambda s: s.cpu, settings.cpu_points),
    ]
