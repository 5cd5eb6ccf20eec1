"""Runbook "Métriques Succès (24h post-deploy)" and 4.4 "Vérifier Métriques Cloud Run": what the service
did over the window, read-only, from Cloud Monitoring (Cloud Run's own metrics) and Cloud Logging
(request logs and the service's lines).

`pytest smoke/ --env prod -m window --window 24h`; not part of the default run. Each check records its
figure beside its threshold and the samples it stands on; too few samples skip it, saying why.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.plugin.window import LogFigures
from cloudrun_smoke.report.links import (
    gcloud_logging_read,
    logs_explorer_url,
    metrics_explorer_url,
    monitoring_api_call,
)
from cloudrun_smoke.report.verdict import Figure, Figures, median, nearest_rank_percentile
from cloudrun_smoke.window.logs import Read
from cloudrun_smoke.window.monitoring import MetricFigure, MetricReader
from cloudrun_smoke.window.period import Window

pytestmark = pytest.mark.window


# -- helpers --------------------------------------------------------------------------------------------
def _metric(read: Callable[[], MetricFigure]) -> MetricFigure:
    try:
        return read()
    except SmokeError as e:
        pytest.fail(str(e), pytrace=False)


def _metric_hint(env: Environment, window: Window, figure: MetricFigure) -> str:
    q = figure.query
    if env.is_local:
        return f"  look further: ListTimeSeries at {env.monitoring_api_endpoint}, filter: {q.filter}"
    args = (env.project, q.filter, q.aligner, q.reducer, q.group_by)
    return (
        f"  Metrics Explorer: {metrics_explorer_url(*args, window.start, window.end)}\n"
        f"  or: {monitoring_api_call(*args, q.period_s, window.start, window.end)}"
    )


def _log_hint(env: Environment, window: Window, read: Read) -> str:
    if env.is_local:
        return f"  look further: POST {env.logging_api_endpoint}/v2/entries:list, filter: {read.filter}"
    return (
        f"  Logs Explorer: {logs_explorer_url(env.project, read.filter, window.start, window.end)}\n"
        f"  or: {gcloud_logging_read(env.project, read.filter)}"
    )


def _capped(read: Read) -> str:
    if not read.capped:
        return ""
    return f"; read capped at {read.pages} pages (max_log_pages): the figure covers the earliest entries"


def _enough(what: str, samples: int, minimum: int, window: Window, key: str, env: Environment) -> None:
    if samples < max(1, minimum):
        pytest.skip(
            f"{what}: {samples} sample(s) in the window, fewer than {max(1, minimum)} "
            f"([env.{env.name}.window] {key}); window {window.describe()}"
        )


def _judge(figures: Figures, figure: Figure, window: Window, hint: str, *, below: bool = True) -> None:
    """Record and print the figure; fail when it is not strictly below (or above) its threshold."""
    figures.record(figure)
    print(figure.describe())
    assert figure.threshold is not None
    ok = figure.value < figure.threshold if below else figure.value > figure.threshold
    if not ok:
        _fail(figure.describe(), window, hint)


def _fail(what: str, window: Window, hint: str) -> None:
    pytest.fail(f"{what}\n  window: {window.describe()}\n{hint}", pytrace=False)


# -- Cloud Monitoring -----------------------------------------------------------------------------------
def _judge_metric(
    read: Callable[[], MetricFigure],
    name: str,
    unit: str,
    threshold: float,
    minimum_key: str,
    env: Environment,
    window: Window,
    figures: Figures,
) -> None:
    """A Monitoring figure against its threshold, skipped below ``[window] minimum_key`` samples;
    ``window`` is the Monitoring interval (it ends ``metric_delay`` before the log figures')."""
    m = _metric(read)
    _enough(name, m.samples, getattr(env.window, minimum_key), window, minimum_key, env)
    assert m.value is not None
    figure = Figure(name, m.value, unit, threshold, m.samples, f"Monitoring; {m.note}")
    _judge(figures, figure, window, _metric_hint(env, window, m))


def test_5xx_share(
    smoke_metrics: MetricReader, smoke_env: Environment, smoke_window: Window, smoke_figures: Figures
) -> None:
    threshold = smoke_env.window.error_share_pct
    args = (smoke_env, smoke_metrics.window, smoke_figures)
    _judge_metric(smoke_metrics.error_share, "5xx share", " %", threshold, "min_requests", *args)


def test_request_latency_p95(
    smoke_metrics: MetricReader, smoke_env: Environment, smoke_window: Window, smoke_figures: Figures
) -> None:
    threshold = smoke_env.window.latency_p95_ms
    args = (smoke_env, smoke_metrics.window, smoke_figures)
    _judge_metric(smoke_metrics.latency_p95, "request latency P95", " ms", threshold, "min_requests", *args)


def test_memory_utilization_peak(
    smoke_metrics: MetricReader, smoke_env: Environment, smoke_window: Window, smoke_figures: Figures
) -> None:
    threshold = smoke_env.window.memory_max_pct
    args = (smoke_env, smoke_metrics.window, smoke_figures)
    _judge_metric(
        smoke_metrics.memory_max, "memory utilization max", " %", threshold, "min_metric_samples", *args
    )


def test_cpu_utilization_p95(
    smoke_metrics: MetricReader, smoke_env: Environment, smoke_window: Window, smoke_figures: Figures
) -> None:
    threshold = smoke_env.window.cpu_p95_pct
    args = (smoke_env, smoke_metrics.window, smoke_figures)
    _judge_metric(smoke_metrics.cpu_p95, "CPU utilization P95", " %", threshold, "min_metric_samples", *args)


def test_instance_count_within_bounds(
    smoke_metrics: MetricReader, smoke_env: Environment, smoke_window: Window, smoke_figures: Figures
) -> None:
    low, high = smoke_env.expect.min_instances, smoke_env.expect.max_instances
    if low is None and high is None:
        pytest.skip(f"no min_instances / max_instances in [env.{smoke_env.name}.expect]")
    smoke_window = smoke_metrics.window  # the Monitoring interval
    m = _metric(lambda: smoke_metrics.instance_counts(floor=low or 0))
    if m.value is None:
        pytest.skip(f"no instance_count points in the window {smoke_window.describe()}")
    lowest = m.extra["min"]
    hint = _metric_hint(smoke_env, smoke_window, m)
    note = f"Monitoring; lowest {lowest:.1f}; {m.note}"
    bounds = (
        f"[env.{smoke_env.name}.expect] min_instances {'unset' if low is None else low}, "
        f"max_instances {'unset' if high is None else high}"
    )
    if high is not None:
        peak = Figure("instance count peak", m.value, "", float(high), m.samples, note)
        smoke_figures.record(peak)
        print(peak.describe())
        if m.value > high:
            _fail(f"{peak.describe()}\n  above max_instances: {bounds}", smoke_window, hint)
    if low is not None:
        floor = Figure("instance count lowest", lowest, "", float(low), m.samples, note)
        smoke_figures.record(floor)
        print(floor.describe())
        if lowest < low:
            _fail(f"{floor.describe()}\n  below min_instances: {bounds}", smoke_window, hint)


# -- Cloud Logging: request logs ------------------------------------------------------------------------
def test_archive_latency_p50(
    smoke_window_logs: LogFigures, smoke_env: Environment, smoke_window: Window, smoke_figures: Figures
) -> None:
    read = smoke_window_logs.archive_latencies()
    values: list[float] = read.items
    settings = smoke_env.window
    _enough("archive latency", len(values), settings.min_archives, smoke_window, "min_archives", smoke_env)
    threshold = settings.archive_p50_ms or smoke_env.slo.archive_p50_ms
    note = (
        "request logs (server side); every PATCH /api/threads/{id} counts: request logs carry no body, "
        "so renames are included" + _capped(read)
    )
    figure = Figure("archive latency P50", median(values), " ms", threshold, len(values), note)
    _judge(smoke_figures, figure, smoke_window, _log_hint(smoke_env, smoke_window, read))


# -- Cloud Logging: the service's lines -----------------------------------------------------------------
def test_threads_consolidated(
    smoke_window_logs: LogFigures, smoke_env: Environment, smoke_window: Window, smoke_figures: Figures
) -> None:
    read, stats = smoke_window_logs.consolidations()
    settings = smoke_env.window
    _enough(
        "archived threads",
        stats.tried,
        settings.min_consolidations,
        smoke_window,
        "min_consolidations",
        smoke_env,
    )
    note = f"must be > 0; of {stats.tried} archives, {stats.pending} pending" + _capped(read)
    figure = Figure("threads consolidated", len(stats.consolidated_threads), "", 0, stats.tried, note)
    _judge(smoke_figures, figure, smoke_window, _log_hint(smoke_env, smoke_window, read), below=False)


def test_consolidation_failure_rate(
    smoke_window_logs: LogFigures, smoke_env: Environment, smoke_window: Window, smoke_figures: Figures
) -> None:
    read, stats = smoke_window_logs.consolidations()
    settings = smoke_env.window
    _enough(
        "consolidations",
        stats.tried,
        settings.min_consolidations,
        smoke_window,
        "min_consolidations",
        smoke_env,
    )
    assert stats.failure_pct is not None
    note = (
        f"{stats.failed} failed of {stats.tried}: {stats.enqueue_failures} not enqueued, {stats.lost} without "
        f"outcome after {settings.pending_grace_s:g} s, {stats.unattributed_failures} of earlier tasks; "
        f"{stats.pending} pending (not failures)" + _capped(read)
    )
    if losses := stats.shutdown_losses():
        note += f"\n  {losses}"
    figure = Figure(
        "consolidation failure rate",
        stats.failure_pct,
        " %",
        settings.consolidation_failure_pct,
        stats.tried,
        note,
    )
    _judge(smoke_figures, figure, smoke_window, _log_hint(smoke_env, smoke_window, read))


def test_queue_time_p95(
    smoke_window_logs: LogFigures, smoke_env: Environment, smoke_window: Window, smoke_figures: Figures
) -> None:
    read, stats = smoke_window_logs.consolidations()
    times = stats.queue_times
    settings = smoke_env.window
    _enough(
        "queue time", len(times), settings.min_consolidations, smoke_window, "min_consolidations", smoke_env
    )
    threshold = settings.queue_p95_s or smoke_env.slo.queue_p95_s
    note = "consolidated − enqueued log timestamps, paired by thread id" + _capped(read)
    figure = Figure("queue time P95", nearest_rank_percentile(times, 95), " s", threshold, len(times), note)
    _judge(smoke_figures, figure, smoke_window, _log_hint(smoke_env, smoke_window, read))


def test_preferences_saved(
    smoke_window_logs: LogFigures, smoke_env: Environment, smoke_window: Window, smoke_figures: Figures
) -> None:
    read, stats = smoke_window_logs.consolidations()
    settings = smoke_env.window
    consolidated = len(stats.consolidated_threads)
    _enough(
        "consolidated threads (preferences are saved during consolidation)",
        consolidated,
        settings.min_consolidations,
        smoke_window,
        "min_consolidations",
        smoke_env,
    )
    note = (
        f"must be > 0; {stats.preference_lines} save lines after {consolidated} consolidations; "
        "a lower bound: one save may be logged in two forms" + _capped(read)
    )
    figure = Figure("preferences saved", stats.preferences_saved, "", 0, consolidated, note)
    _judge(smoke_figures, figure, smoke_window, _log_hint(smoke_env, smoke_window, read), below=False)
