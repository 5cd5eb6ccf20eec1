"""The local Cloud Monitoring API through google-cloud-monitoring's real MetricServiceClient over gRPC:
Cloud Run's metrics of a started stack match the traffic the tests sent and the processes it runs."""

from __future__ import annotations

import math
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.api import metric_pb2
from google.api_core import exceptions as gexc
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport
from google.protobuf import duration_pb2, timestamp_pb2

from cloudrun_smoke.local import faults as F
from cloudrun_smoke.local.run_model import RevisionSpec
from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig
from cloudrun_smoke.local.up import describe
from cloudrun_smoke.waiting import wait_until
from helpers.log_entries import logging_client
from helpers.paths import TINY
from helpers.stacks import tiny_stack_config

PROJECT = "monitoring-test"
COUNT = "run.googleapis.com/request_count"
LATENCIES = "run.googleapis.com/request_latencies"
MEMORY = "run.googleapis.com/container/memory/utilizations"
CPU = "run.googleapis.com/container/cpu/utilizations"
INSTANCES = "run.googleapis.com/container/instance_count"
MEMORY_LIMIT = 512 * 2**20
DELTA = metric_pb2.MetricDescriptor.MetricKind.DELTA

Client = monitoring_v3.MetricServiceClient


def config(**overrides: object) -> LocalStackConfig:
    settings: dict[str, object] = {
        "spec": RevisionSpec(image="local/tiny:1", memory="512Mi", cpu="1"),
        "metrics_period": 0.5,
        "min_alignment_period": 1.0,  # windows of seconds: Google's 60 s minimum allowed explicitly
    }
    return tiny_stack_config(PROJECT, **{**settings, **overrides})


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """Two revisions (the serving one and a tagged candidate), two instances each."""
    with LocalStack(config(instances=2, candidate_cmd=TINY, tag="canary")) as stack:
        yield stack


def metric_client(endpoint: str) -> tuple[Client, grpc.Channel]:
    channel = grpc.insecure_channel(endpoint)
    return Client(transport=MetricServiceGrpcTransport(channel=channel)), channel


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Iterator[Client]:
    found, channel = metric_client(stack.monitoring_api_endpoint)
    yield found
    channel.close()


@dataclass(frozen=True)
class Window:
    start: float
    end: float


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(round(seconds * 1e9))
    return ts


def send(
    stack: LocalStack, paths: Sequence[str], base_url: str = ""
) -> tuple[Window, list[int], list[float]]:
    """GET each path; the window that holds exactly these requests once the front end recorded each;
    statuses and client-side latencies (ms)."""
    start = time.time()
    statuses, latencies = [], []
    with httpx.Client(base_url=base_url or stack.service_url) as http:
        for path in paths:
            began = time.perf_counter()
            statuses.append(http.get(path).status_code)
            latencies.append((time.perf_counter() - began) * 1000)
    wait_until(
        lambda: True if sum(r.end > start for r in stack.metrics.requests()) >= len(paths) else None,
        timeout=10,
        what=f"the front end to record {len(paths)} requests",
        interval=0.01,
    )
    return Window(start, time.time()), statuses, latencies


def request(
    metric: str,
    window: Window,
    where: str = "",
    *,
    aligner: str = "",
    reducer: str = "REDUCE_NONE",
    group_by: Sequence[str] = (),
    page_size: int = 0,
    headers: bool = False,
    project: str = PROJECT,
) -> monitoring_v3.ListTimeSeriesRequest:
    views = monitoring_v3.ListTimeSeriesRequest.TimeSeriesView
    found = monitoring_v3.ListTimeSeriesRequest(
        name=f"projects/{project}",
        filter=f'metric.type = "{metric}"' + (f" AND {where}" if where else ""),
        interval=monitoring_v3.TimeInterval(
            start_time=timestamp(window.start), end_time=timestamp(window.end)
        ),
        page_size=page_size,
        view=views.HEADERS if headers else views.FULL,
    )
    if aligner:  # one aligned point for the whole window
        found.aggregation = monitoring_v3.Aggregation(
            alignment_period=duration_pb2.Duration(seconds=max(1, math.ceil(window.end - window.start))),
            per_series_aligner=monitoring_v3.Aggregation.Aligner[aligner],
            cross_series_reducer=monitoring_v3.Aggregation.Reducer[reducer],
            group_by_fields=list(group_by),
        )
    return found


def series(client: Client, *args: Any, **kwargs: Any) -> list[monitoring_v3.TimeSeries]:
    return list(client.list_time_series(request=request(*args, **kwargs)))


def totals(found: Sequence[monitoring_v3.TimeSeries], label: str) -> dict[str, int]:
    labels = {**found[0].metric.labels, **found[0].resource.labels} if found else {}
    assert not found or label in labels, f"{label} not in {labels}"
    return {
        ({**s.metric.labels, **s.resource.labels})[label]: sum(p.value.int64_value for p in s.points)
        for s in found
    }


# -- requests ----------------------------------------------------------------------------------------
def test_request_counts_by_response_code_class_match_what_was_sent(stack: LocalStack, client: Client) -> None:
    window, statuses, _ = send(stack, ["/hello"] * 30 + ["/objects/missing"] * 7)
    assert Counter(statuses) == {200: 30, 404: 7}
    by_class = series(
        client,
        COUNT,
        window,
        aligner="ALIGN_DELTA",
        reducer="REDUCE_SUM",
        group_by=["metric.label.response_code_class"],
    )
    assert totals(by_class, "response_code_class") == {"2xx": 30, "4xx": 7}
    assert all(len(s.points) == 1 and s.metric_kind == DELTA for s in by_class)
    raw = series(client, COUNT, window)
    assert totals(raw, "response_code") == {"200": 30, "404": 7}
    assert raw[0].resource.type == "cloud_run_revision"
    assert dict(raw[0].resource.labels) == {
        "project_id": PROJECT,
        "service_name": "tiny",
        "revision_name": stack.serving_revision,
        "location": "us-central1",
        "configuration_name": "tiny",
    }
    ends = [p.interval.end_time.timestamp() for s in raw for p in s.points]
    assert all(window.start < end <= window.end + 1e-6 for end in ends)
    assert all(
        [p.interval.end_time for p in s.points]
        == sorted((p.interval.end_time for p in s.points), reverse=True)
        for s in raw
    )  # newest first


def bucket_of(options: Any, value: float) -> tuple[float, float]:
    growth, scale = options.growth_factor, options.scale
    if value < scale:
        return 0.0, scale
    index = math.floor(math.log(value / scale) / math.log(growth)) + 1
    return scale * growth ** (index - 1), scale * growth**index


def test_latency_distribution_count_mean_and_percentiles_are_plausible(
    stack: LocalStack, client: Client
) -> None:
    window, _, client_ms = send(stack, ["/hello"] * 40)
    [merged] = series(client, LATENCIES, window, aligner="ALIGN_DELTA", reducer="REDUCE_SUM")
    assert merged.unit == "ms"
    [point] = merged.points
    d = point.value.distribution_value
    assert d.count == 40 == sum(d.bucket_counts)
    assert 0 < d.mean <= statistics.mean(client_ms)  # the front end's latency is inside the client's
    options = d.bucket_options.exponential_buckets
    assert (options.growth_factor, options.scale) == (1.4, 1.0)
    [p50] = series(client, LATENCIES, window, aligner="ALIGN_PERCENTILE_50", reducer="REDUCE_MAX")
    [p99] = series(client, LATENCIES, window, aligner="ALIGN_PERCENTILE_99", reducer="REDUCE_MAX")
    recorded = sorted(r.latency_ms for r in stack.metrics.requests() if window.start < r.end <= window.end)
    low, high = bucket_of(options, recorded[19])  # rank 20 of 40: the bucket the median is read from
    assert low <= p50.points[0].value.double_value <= high
    assert p50.points[0].value.double_value <= p99.points[0].value.double_value


def test_reduce_sum_merges_the_distributions_of_every_series(stack: LocalStack, client: Client) -> None:
    window, _, _ = send(stack, ["/hello"] * 12 + ["/objects/missing"] * 5)
    apart = series(client, LATENCIES, window, aligner="ALIGN_DELTA")
    parts = {s.metric.labels["response_code"]: s.points[0].value.distribution_value for s in apart}
    assert {code: d.count for code, d in parts.items()} == {"200": 12, "404": 5}
    [merged] = series(client, LATENCIES, window, aligner="ALIGN_DELTA", reducer="REDUCE_SUM")
    d = merged.points[0].value.distribution_value
    assert d.count == 17
    assert d.mean == pytest.approx((parts["200"].mean * 12 + parts["404"].mean * 5) / 17)
    width = max(len(p.bucket_counts) for p in parts.values())
    padded = [list(p.bucket_counts) + [0] * (width - len(p.bucket_counts)) for p in parts.values()]
    assert list(d.bucket_counts) == [a + b for a, b in zip(*padded, strict=True)]
    assert dict(merged.resource.labels) == {"project_id": PROJECT} and not merged.metric.labels


def test_group_by_keeps_only_the_grouped_labels(stack: LocalStack, client: Client) -> None:
    window, _, _ = send(stack, ["/hello"] * 8 + ["/objects/missing"] * 3)
    grouped = series(
        client,
        COUNT,
        window,
        aligner="ALIGN_SUM",
        reducer="REDUCE_SUM",
        group_by=["resource.labels.revision_name", "metric.labels.response_code"],
    )
    assert {(s.resource.labels["revision_name"], s.metric.labels["response_code"]) for s in grouped} == {
        (stack.serving_revision, "200"),
        (stack.serving_revision, "404"),
    }
    assert all(set(s.resource.labels) == {"project_id", "revision_name"} for s in grouped)
    assert all(set(s.metric.labels) == {"response_code"} for s in grouped)
    assert totals(grouped, "response_code") == {"200": 8, "404": 3}


def test_filters_select_series_by_revision(stack: LocalStack, client: Client) -> None:
    serving, candidate = stack.serving_revision, stack.candidate_revision
    assert serving and candidate
    first, _, _ = send(stack, ["/hello"] * 10)
    second, _, _ = send(stack, ["/hello"] * 4, base_url=stack.tag_url("canary"))
    window = Window(first.start, second.end)

    def per_revision(where: str) -> dict[str, int]:
        found = series(
            client,
            COUNT,
            window,
            where,
            aligner="ALIGN_DELTA",
            reducer="REDUCE_SUM",
            group_by=["resource.label.revision_name"],
        )
        return totals(found, "revision_name")

    both = {serving: 10, candidate: 4}
    assert per_revision("") == both
    assert per_revision(f'resource.labels.revision_name = "{serving}"') == {serving: 10}
    assert per_revision(f'resource.label.revision_name != "{serving}"') == {candidate: 4}
    assert per_revision(f'resource.labels.revision_name = one_of("{serving}", "{candidate}")') == both
    assert per_revision('resource.labels.revision_name = starts_with("tiny-")') == both
    assert per_revision('resource.labels.revision_name = starts_with("other-")') == {}
    where = 'resource.type = "cloud_run_revision" AND metric.labels.response_code_class = "2xx"'
    assert per_revision(f'{where} AND resource.labels.service_name = "tiny"') == both


def test_an_interval_excludes_what_came_before_it(stack: LocalStack, client: Client) -> None:
    before, _, _ = send(stack, ["/hello"] * 6)
    middle = time.time()
    after, _, _ = send(stack, ["/hello"] * 9)
    assert totals(series(client, COUNT, Window(before.start, middle)), "response_code") == {"200": 6}
    recent = series(client, COUNT, Window(middle, after.end))
    assert totals(recent, "response_code") == {"200": 9}
    intervals = [
        (p.interval.start_time.timestamp(), p.interval.end_time.timestamp()) for p in recent[0].points
    ]
    assert all(middle - 1e-6 <= start < end <= after.end + 1e-6 for start, end in intervals)
    aligned = series(client, COUNT, Window(middle, after.end), aligner="ALIGN_DELTA", reducer="REDUCE_SUM")
    assert aligned[0].points[0].interval.end_time.timestamp() == pytest.approx(after.end, abs=1e-6)


# -- paging ------------------------------------------------------------------------------------------
def point_keys(found: Sequence[Any]) -> list[tuple[str, str, float, int]]:
    return [
        (
            s.resource.labels["revision_name"],
            s.metric.labels["state"],
            p.interval.end_time.timestamp(),
            p.value.int64_value,
        )
        for s in found
        for p in s.points
    ]


def test_pages_hold_page_size_points_and_lose_none(stack: LocalStack, client: Client) -> None:
    def enough() -> Window | None:
        window = Window(time.time() - 3600, time.time())
        return window if len(point_keys(series(client, INSTANCES, window))) >= 16 else None

    window = wait_until(enough, timeout=15, what="16 instance_count points", interval=0.2)
    everything = series(client, INSTANCES, window)
    pages = list(client.list_time_series(request=request(INSTANCES, window, page_size=5)).pages)
    assert all(sum(len(s.points) for s in page.time_series) <= 5 for page in pages)
    assert len(pages) == math.ceil(len(point_keys(everything)) / 5)
    assert sorted(point_keys([s for page in pages for s in page.time_series])) == sorted(
        point_keys(everything)
    )
    assert not pages[-1].next_page_token and all(page.next_page_token for page in pages[:-1])

    heads = list(client.list_time_series(request=request(INSTANCES, window, page_size=1, headers=True)).pages)
    assert [len(page.time_series) for page in heads] == [1] * len(everything)
    assert all(not s.points for page in heads for s in page.time_series)

    stale = request(INSTANCES, window, page_size=5)
    stale.page_token = pages[0].next_page_token
    stale.filter += ' AND metric.labels.state = "idle"'
    with pytest.raises(gexc.InvalidArgument, match="page_token"):
        list(client.list_time_series(request=stale))


# -- instances ---------------------------------------------------------------------------------------
def test_instance_count_reports_live_instances_and_the_active_ones(stack: LocalStack, client: Client) -> None:
    where = f'resource.labels.revision_name = "{stack.serving_revision}"'
    started = time.time()

    def active_seen() -> float | None:
        send(stack, ["/hello"] * 20)
        window = Window(started, time.time())
        found = series(client, INSTANCES, window, f'{where} AND metric.labels.state = "active"')
        peak = max((p.value.int64_value for s in found for p in s.points), default=0)
        return peak or None

    assert wait_until(active_seen, timeout=15, what="an active instance while requests flow", interval=0) >= 1
    window = Window(started, time.time())
    latest = {s.metric.labels["state"]: s.points[0] for s in series(client, INSTANCES, window, where)}
    assert set(latest) == {"active", "idle"}
    assert latest["active"].interval.end_time == latest["idle"].interval.end_time  # one sampling instant
    assert latest["active"].value.int64_value + latest["idle"].value.int64_value == 2
    [total] = series(client, INSTANCES, window, where, aligner="ALIGN_MEAN", reducer="REDUCE_SUM")
    assert total.points[0].value.double_value == pytest.approx(2.0)


def vm_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)) * 1024


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="utilizations are read from /proc")
def test_memory_and_cpu_utilizations_are_ratios_of_the_revision_limits(
    stack: LocalStack, client: Client
) -> None:
    where = f'resource.labels.revision_name = "{stack.serving_revision}"'
    started = time.time()

    def busy_cpu() -> float | None:
        send(stack, ["/hello"] * 50)
        found = series(client, CPU, Window(started, time.time()), where, aligner="ALIGN_MEAN")
        mean = found[0].points[0].value.double_value if found else 0.0
        return mean or None

    cpu = wait_until(busy_cpu, timeout=20, what="a CPU utilization above 0 while requests flow", interval=0)
    assert 0 < cpu <= 1
    window = Window(started, time.time())
    [memory] = series(client, MEMORY, window, where, aligner="ALIGN_MEAN")
    expected = statistics.mean(vm_rss(i.pid) for i in stack.instances_of(stack.serving_revision) if i.pid)
    assert 0 < memory.points[0].value.double_value <= 1
    assert memory.points[0].value.double_value == pytest.approx(expected / MEMORY_LIMIT, rel=0.25)
    for metric in (MEMORY, CPU):
        [p99] = series(client, metric, window, where, aligner="ALIGN_PERCENTILE_99")
        assert 0 < p99.points[0].value.double_value <= 1
        [raw] = series(client, metric, window, where)
        assert raw.unit == "10^2.%" and all(p.value.distribution_value.count <= 2 for p in raw.points)


# -- refusals ----------------------------------------------------------------------------------------
WINDOW = Window(time.time() - 60, time.time() + 3600)


@pytest.mark.parametrize(
    ("changes", "error", "named"),
    [
        (
            {"filter": f'metric.type = "{COUNT}" OR resource.type = "cloud_run_revision"'},
            gexc.InvalidArgument,
            "'OR'",
        ),
        (
            {"filter": f'metric.type = "{COUNT}" AND metric.labels.respons_code = "200"'},
            gexc.InvalidArgument,
            "respons_code",
        ),
        (
            {"filter": 'metric.type = "run.googleapis.com/container/billable_instance_time"'},
            gexc.NotFound,
            "Cannot find metric",
        ),
        ({"name": "projects/someone-else"}, gexc.NotFound, f"serves projects/{PROJECT}"),
        ({"interval": {"start_time": {"seconds": 5}}}, gexc.InvalidArgument, "end_time is required"),
        (
            {"aggregation": {"alignment_period": {"seconds": 60}, "per_series_aligner": "ALIGN_RATE"}},
            gexc.InvalidArgument,
            "ALIGN_RATE",
        ),
    ],
)
def test_bad_requests_are_refused_in_one_line(
    client: Client, changes: dict[str, Any], error: type[Exception], named: str
) -> None:
    body = {"name": f"projects/{PROJECT}", "filter": f'metric.type = "{LATENCIES}"', **changes}
    body.setdefault("interval", {"end_time": {"seconds": int(WINDOW.end)}})
    with pytest.raises(error) as caught:
        list(client.list_time_series(request=body))
    message = caught.value.message  # type: ignore[attr-defined]
    assert named in message and "\n" not in message


def test_local_up_prints_the_monitoring_endpoint_and_its_variable(stack: LocalStack) -> None:
    assert re.fullmatch(r"127\.0\.0\.1:\d+", stack.monitoring_api_endpoint)
    assert f"SMOKE_MONITORING_API_ENDPOINT={stack.monitoring_api_endpoint}\n" in describe(stack)


# -- stack:5xx-burst ---------------------------------------------------------------------------------
def test_5xx_burst_is_a_tenth_of_answers_in_metrics_and_request_logs() -> None:
    with LocalStack(config(faults=(F.ERROR_BURST,))) as stack:
        endpoint = stack.monitoring_api_endpoint
        found, channel = metric_client(endpoint)
        window, statuses, _ = send(stack, ["/hello"] * 200)
        assert [i for i, s in enumerate(statuses) if s == 500] == [*range(90, 100), *range(190, 200)]
        assert set(statuses) == {200, 500}
        by_class = series(
            found,
            COUNT,
            window,
            aligner="ALIGN_DELTA",
            reducer="REDUCE_SUM",
            group_by=["metric.label.response_code_class"],
        )
        assert totals(by_class, "response_code_class") == {"2xx": 180, "5xx": 20}
        logs = logging_client(stack.logging_api_endpoint, PROJECT)
        requests_log = f"projects/{PROJECT}/logs/run.googleapis.com%2Frequests"
        errors = wait_until(
            lambda: (
                e
                if len(
                    e := list(
                        logs.list_entries(filter_=f'logName="{requests_log}" AND httpRequest.status=500')
                    )
                )
                >= 20
                else None
            ),
            timeout=10,
            what="20 request log entries with status 500",
            interval=0.1,
        )
        assert len(errors) == 20 and all(e.severity == "ERROR" for e in errors)
        channel.close()
    closed, channel = metric_client(endpoint)  # close() stopped the API
    with pytest.raises(gexc.ServiceUnavailable):
        list(closed.list_time_series(request=request(COUNT, window), retry=None, timeout=5))
    channel.close()
