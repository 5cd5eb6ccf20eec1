"""Runbook success targets measurable right after a deploy: archive latency and queue time.

Archive latency is measured by this client (network included); queue time from the service's own log
timestamps (consolidated − enqueued, paired by thread id).
"""

from __future__ import annotations

import pytest

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.report.verdict import Figure, Figures, median, nearest_rank_percentile
from runbook import ArchiveSamples

pytestmark = pytest.mark.writes


def test_archive_latency_p50(
    archive_samples: ArchiveSamples, smoke_env: Environment, smoke_figures: Figures
) -> None:
    values = [t.seconds * 1000 for t in archive_samples.archive_timings]
    figure = smoke_figures.record(
        Figure(
            "archive latency P50",
            median(values),
            " ms",
            smoke_env.slo.archive_p50_ms,
            len(values),
            "client side, network included",
        )
    )
    assert figure.value < smoke_env.slo.archive_p50_ms, (
        f"{figure.describe()}; each: {', '.join(f'{v:.0f}' for v in sorted(values))} ms"
    )


def test_queue_time_p95(
    archive_samples: ArchiveSamples, smoke_env: Environment, smoke_figures: Figures
) -> None:
    queue_times = []
    for enqueued, consolidated in zip(archive_samples.enqueued, archive_samples.consolidated, strict=True):
        start, end = enqueued.result(), consolidated.result()
        queue_times.append((end.line.timestamp - start.line.timestamp).total_seconds())
    figure = smoke_figures.record(
        Figure(
            "queue time P95",
            nearest_rank_percentile(queue_times, 95),
            " s",
            smoke_env.slo.queue_p95_s,
            len(queue_times),
            "from log timestamps",
        )
    )
    assert figure.value < smoke_env.slo.queue_p95_s, (
        f"{figure.describe()}; each: {', '.join(f'{v:.2f}' for v in sorted(queue_times))} s"
    )
