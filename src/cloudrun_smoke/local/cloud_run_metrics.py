"""Cloud Run's built-in metrics, as Cloud Monitoring serves them, built from the stack's observations.

Names, kinds, value types, units and labels follow Cloud Run's metric list for the monitored resource
``cloud_run_revision``. Raw DELTA points cover one sampling period of the stack (Cloud Run's cover
60 s). Distributions use exponential buckets like Cloud Run's: latencies from 1 ms growing by 1.4,
utilizations 100 buckets from 0.01 to 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from cloudrun_smoke.local.distribution import ExponentialBuckets
from cloudrun_smoke.local.metrics import MetricsRecorder
from cloudrun_smoke.local.monitoring_series import Descriptor, Observed

REQUEST_COUNT = "run.googleapis.com/request_count"
REQUEST_LATENCIES = "run.googleapis.com/request_latencies"
MEMORY_UTILIZATIONS = "run.googleapis.com/container/memory/utilizations"
CPU_UTILIZATIONS = "run.googleapis.com/container/cpu/utilizations"
INSTANCE_COUNT = "run.googleapis.com/container/instance_count"

RESOURCE_TYPE = "cloud_run_revision"
RESOURCE_LABELS = ("project_id", "service_name", "revision_name", "location", "configuration_name")
LATENCY_BUCKETS = ExponentialBuckets(finite=100, growth=1.4, scale=1.0)
UTILIZATION_BUCKETS = ExponentialBuckets(finite=100, growth=10 ** (1 / 50), scale=0.01)

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


def descriptors(resolution: float) -> dict[str, Descriptor]:
    def metric(
        name: str,
        kind: str,
        value_type: str,
        unit: str,
        labels: tuple[str, ...] = (),
        buckets: ExponentialBuckets | None = None,
    ) -> Descriptor:
        return Descriptor(
            name, kind, value_type, unit, labels, RESOURCE_TYPE, RESOURCE_LABELS, buckets, resolution
        )

    codes = ("response_code", "response_code_class")
    found = [
        metric(REQUEST_COUNT, "DELTA", "INT64", "1", codes),
        metric(REQUEST_LATENCIES, "DELTA", "DISTRIBUTION", "ms", codes, LATENCY_BUCKETS),
        metric(MEMORY_UTILIZATIONS, "DELTA", "DISTRIBUTION", "10^2.%", buckets=UTILIZATION_BUCKETS),
        metric(CPU_UTILIZATIONS, "DELTA", "DISTRIBUTION", "10^2.%", buckets=UTILIZATION_BUCKETS),
        metric(INSTANCE_COUNT, "GAUGE", "INT64", "1", ("state",)),
    ]
    return {d.type: d for d in found}


def _grouped(records: Iterable[R], key: Callable[[R], K]) -> dict[K, list[R]]:
    groups: dict[K, list[R]] = {}
    for record in records:
        groups.setdefault(key(record), []).append(record)
    return groups


class CloudRunMetrics:
    """The Cloud Monitoring view of one local Cloud Run service (every revision of it)."""

    def __init__(self, recorder: MetricsRecorder, project: str, location: str, service: str) -> None:
        self._recorder = recorder
        self._project, self._location, self._service = project, location, service
        self._descriptors = descriptors(recorder.period)

    @property
    def metric_types(self) -> list[str]:
        return list(self._descriptors)

    def descriptor(self, metric_type: str) -> Descriptor | None:
        return self._descriptors.get(metric_type)

    def resource_labels(self, revision: str) -> dict[str, str]:
        return {
            "project_id": self._project,
            "service_name": self._service,
            "revision_name": revision,
            "location": self._location,
            "configuration_name": self._service,
        }

    def observed(self, metric_type: str, start: float = -math.inf, end: float = math.inf) -> list[Observed]:
        """Every time series of the metric with its observations in [start, end] (a superset of the
        read's (start, end]: the evaluation applies the exact bounds)."""
        if metric_type in (REQUEST_COUNT, REQUEST_LATENCIES):
            count = metric_type == REQUEST_COUNT
            inside = (r for r in self._recorder.requests() if start <= r.end <= end)
            requests = _grouped(inside, lambda r: (r.revision, r.status))
            return [
                self._series(
                    revision,
                    {"response_code": str(status), "response_code_class": f"{status // 100}xx"},
                    [(r.end, 1.0 if count else r.latency_ms) for r in records],
                )
                for (revision, status), records in requests.items()
            ]
        if metric_type in (MEMORY_UTILIZATIONS, CPU_UTILIZATIONS):
            memory = metric_type == MEMORY_UTILIZATIONS
            samples = _grouped(
                (s for s in self._recorder.utilizations() if start <= s.time <= end), lambda s: s.revision
            )
            found = []
            for revision, taken in samples.items():
                values = [(s.time, s.memory if memory else s.cpu) for s in taken]
                found.append(self._series(revision, {}, [(t, v) for t, v in values if v is not None]))
            return found
        if metric_type == INSTANCE_COUNT:
            counts = _grouped(
                (s for s in self._recorder.instance_counts() if start <= s.time <= end), lambda s: s.revision
            )
            return [
                self._series(
                    revision, {"state": state}, [(s.time, s.active if active else s.idle) for s in taken]
                )
                for revision, taken in counts.items()
                for state, active in (("active", True), ("idle", False))
            ]
        return []

    def _series(self, revision: str, labels: dict[str, str], samples: list[tuple[float, float]]) -> Observed:
        return Observed(labels, self.resource_labels(revision), sorted(samples, key=lambda s: s[0]))
