"""What a window check asks Cloud Monitoring, and where its failure sends the reader: a Metrics
Explorer URL and the exact API call."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

from cloudrun_smoke.report.links import metrics_explorer_url, monitoring_api_call

START, END = datetime(2026, 11, 24, 9, 0, tzinfo=UTC), datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
FILTER = 'metric.type = "run.googleapis.com/request_count" AND resource.labels.service_name = "svc"'


def test_metrics_explorer_url_carries_the_query_and_the_window() -> None:
    url = metrics_explorer_url(
        "proj-1", FILTER, "ALIGN_DELTA", "REDUCE_SUM", ["metric.label.response_code_class"], START, END
    )
    parts = urlsplit(url)
    assert parts.netloc == "console.cloud.google.com" and parts.path == "/monitoring/metrics-explorer"
    query = parse_qs(parts.query)
    assert query["project"] == ["proj-1"]
    state = json.loads(query["pageState"][0])
    data_set = state["xyChart"]["dataSets"][0]["timeSeriesFilter"]
    assert data_set["filter"] == FILTER and data_set["crossSeriesReducer"] == "REDUCE_SUM"
    assert state["timeSelection"]["start"].startswith("2026-11-24T09:00:00")


def test_the_api_call_is_the_checks_own_request() -> None:
    command = monitoring_api_call(
        "proj-1", FILTER, "ALIGN_DELTA", "REDUCE_SUM", ["metric.label.x"], 86400, START, END
    )
    assert command.startswith('curl -H "Authorization: Bearer $(gcloud auth print-access-token)" "https://')
    url = command.split('"')[-2]
    query = parse_qs(urlsplit(url).query)
    assert query["filter"] == [FILTER]
    assert query["aggregation.alignmentPeriod"] == ["86400s"]
    assert query["aggregation.groupByFields"] == ["metric.label.x"]
    assert unquote(urlsplit(url).path) == "/v3/projects/proj-1/timeSeries"


def test_the_scope_is_the_service_or_the_targeted_revision() -> None:
    from cloudrun_smoke.gcp.scope import CloudRunScope

    scope = CloudRunScope("p", "europe-west1", "svc")
    service = scope.metric_filter("run.googleapis.com/request_count")
    candidate = scope.for_revision("svc-00002-abc").metric_filter("run.googleapis.com/request_count")
    assert 'resource.labels.service_name = "svc"' in service and "revision_name" not in service
    assert 'resource.labels.location = "europe-west1"' in service
    assert candidate == service + ' AND resource.labels.revision_name = "svc-00002-abc"'


def test_instance_counts_leave_out_the_start_up_only_when_the_floor_was_reached() -> None:
    """Periods before the revision first reached ``min_instances`` are its start-up, not a breach; a
    revision that never reached it has no start-up to leave out: every period is judged."""
    from datetime import timedelta
    from types import SimpleNamespace

    from cloudrun_smoke.gcp.scope import CloudRunScope
    from cloudrun_smoke.window.monitoring import MetricReader
    from cloudrun_smoke.window.period import Window

    def reader(values: list[float]) -> MetricReader:
        points = [
            SimpleNamespace(
                interval=SimpleNamespace(end_time=START + timedelta(seconds=i)),
                value=SimpleNamespace(double_value=v, int64_value=0),
            )
            for i, v in enumerate(values)
        ]
        page = SimpleNamespace(time_series=[SimpleNamespace(points=points)])
        client = SimpleNamespace(list_time_series=lambda **_: SimpleNamespace(pages=[page]))
        return MetricReader(
            client, CloudRunScope("p", "r", "svc"), Window(START, END, "test"), gauge_period=60
        )

    started = reader([0, 0, 2, 1, 2]).instance_counts(floor=2)
    assert (started.value, started.extra["min"], started.samples) == (2, 1, 5)
    assert "2 start-up period(s) before reaching 2 not judged" in started.note
    never = reader([0, 1, 1]).instance_counts(floor=2)
    assert (never.value, never.extra["min"]) == (1, 0)
    assert "never reached 2" in never.note and "start-up" not in never.note
