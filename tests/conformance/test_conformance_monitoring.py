"""Cloud Monitoring ListTimeSeries payloads: (a) served over gRPC on loopback to the real
``MetricServiceClient`` and turned into the window's figures by ``MetricReader``; (b) what the emulator
answers the same reader has the same shape."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport
from google.protobuf import duration_pb2

from cloudrun_smoke.gcp.scope import CloudRunScope
from cloudrun_smoke.local.cloud_run_metrics import CloudRunMetrics
from cloudrun_smoke.local.metrics import InstanceCountSample, MetricsRecorder, UtilizationSample
from cloudrun_smoke.local.monitoring_api import MonitoringApi, MonitoringApiServer
from cloudrun_smoke.window.monitoring import (
    CPU_UTILIZATIONS,
    INSTANCE_COUNT,
    MEMORY_UTILIZATIONS,
    REQUEST_COUNT,
    REQUEST_LATENCIES,
    MetricReader,
)
from cloudrun_smoke.window.period import Window
from helpers.shapes import assert_same_shape, load

PROJECT, REGION, SERVICE = "emergence-prod", "europe-west1", "emergencev8-backend"
REVISION = f"{SERVICE}-00042-xoq"
FIXTURES = {
    REQUEST_COUNT: "ts_request_count",
    REQUEST_LATENCIES: "ts_request_latencies",
    MEMORY_UTILIZATIONS: "ts_memory_utilizations",
    CPU_UTILIZATIONS: "ts_cpu_utilizations",
    INSTANCE_COUNT: "ts_instance_count",
}
_TYPE = re.compile(r'metric\.type = "([^"]+)"')

Response = monitoring_v3.ListTimeSeriesResponse
# A proto as Google's REST API writes it: enum names, proto3 defaults left out.
GOOGLE_JSON: dict[str, Any] = {"use_integers_for_enums": False, "always_print_fields_with_no_presence": False}
Request = monitoring_v3.ListTimeSeriesRequest


def metric_type(request: Any) -> str:
    match = _TYPE.search(request.filter)
    assert match, request.filter
    return match.group(1)


# -- (a) the fixtures to the real client --------------------------------------------------------------------
@pytest.fixture
def fixture_client() -> Iterator[tuple[monitoring_v3.MetricServiceClient, list[Any]]]:
    """A gRPC MetricService answering each metric's fixture; the requests are kept."""
    requests: list[Any] = []

    def list_time_series(request: Any, context: grpc.ServicerContext) -> Any:
        requests.append(request)
        return Response.from_json(json.dumps(load(FIXTURES[metric_type(request)]).payload))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(
        list_time_series, request_deserializer=Request.deserialize, response_serializer=Response.serialize
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "google.monitoring.v3.MetricService", {"ListTimeSeries": handler}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel)), requests
    channel.close()
    server.stop(grace=None)


def reader(client: Any, window: Window) -> MetricReader:
    return MetricReader(client, CloudRunScope(PROJECT, REGION, SERVICE, REVISION), window, gauge_period=60)


FIXTURE_WINDOW = Window(
    datetime(2026, 11, 25, 9, 30, tzinfo=UTC), datetime(2026, 11, 25, 10, 30, tzinfo=UTC), "conformance"
)
G = 10 ** (1 / 50)  # the utilizations' growth factor


def test_5xx_share_from_request_count_by_class(fixture_client: Any) -> None:
    client, requests = fixture_client
    figure = reader(client, FIXTURE_WINDOW).error_share()
    assert figure.value == pytest.approx(100 * 5 / 1500) and figure.samples == 1500
    assert figure.note == "5 answers 5xx (2xx: 1480, 4xx: 15, 5xx: 5)"
    [sent] = requests
    assert list(sent.aggregation.group_by_fields) == ["metric.label.response_code_class"]


def test_latency_p95_from_the_merged_distribution(fixture_client: Any) -> None:
    client, _ = fixture_client
    figure = reader(client, FIXTURE_WINDOW).latency_p95()
    # Rank 1425 of 1500 falls in bucket 13, [1.4^12, 1.4^13) ms, 425 of its 450 samples in.
    assert figure.value == pytest.approx(1.4**12 + 425 / 450 * (1.4**13 - 1.4**12))
    assert figure.samples == 1500


def test_memory_peak_and_cpu_p95_in_percent(fixture_client: Any) -> None:
    client, _ = fixture_client
    memory = reader(client, FIXTURE_WINDOW).memory_max()
    assert (
        memory.value == pytest.approx(100 * 0.01 * G**78) and memory.samples == 300
    )  # bucket 78's upper edge
    cpu = reader(client, FIXTURE_WINDOW).cpu_p95()
    assert cpu.value == pytest.approx(100 * 0.01 * G**61) and cpu.samples == 300  # rank 285: top of bucket 61


def test_instance_count_peak_and_minimum_once_warm(fixture_client: Any) -> None:
    client, _ = fixture_client
    figure = reader(client, FIXTURE_WINDOW).instance_counts(floor=2)
    # Newest first on the wire: 09:31 1.0 (start-up), 09:32 2.0, 09:33 3.0, 09:34 2.5, 09:35 2.0, 09:36 2.0.
    assert (figure.value, figure.extra["min"], figure.samples) == (3.0, 2.0, 6)
    assert "1 start-up period(s) before reaching 2 not judged" in figure.note


# -- (b) the emulator --------------------------------------------------------------------------------------------
class Recording:
    """The reader's client, keeping every page the emulator answered (as Google's REST JSON)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.pages: dict[str, list[Any]] = {}

    def list_time_series(self, *, request: Any, **kwargs: Any) -> Any:
        pager = self._client.list_time_series(request=request, **kwargs)
        kept = self.pages.setdefault(metric_type(request), [])

        class Pages:
            @property
            def pages(self) -> Iterator[Any]:
                for page in pager.pages:
                    kept.append(json.loads(Response.to_json(page, **GOOGLE_JSON)))
                    yield page

        return Pages()


@pytest.fixture
def emulator() -> Iterator[tuple[Recording, Window, MonitoringApiServer]]:
    """The emulator with two minutes of a revision's requests, samples and instance counts."""
    recorder = MetricsRecorder(period=1.0)
    now = time.time()
    for i in range(120):
        at = now - 119 + i
        recorder.record_request(REVISION, 500 if i % 40 == 0 else 200, 20.0 + i, instance_id="i-1", end=at)
        recorder.record_utilization(UtilizationSample(at, REVISION, "i-1", 0.30 + i / 1000, 0.10 + i / 2000))
        recorder.record_instance_count(InstanceCountSample(at, REVISION, 1, 1 if i > 60 else 0))
    api = MonitoringApi(PROJECT, CloudRunMetrics(recorder, PROJECT, REGION, SERVICE))
    server = MonitoringApiServer(api).start()
    channel = grpc.insecure_channel(server.endpoint)
    client = Recording(
        monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))
    )
    end = datetime.fromtimestamp(now + 1, UTC)
    yield client, Window(end - timedelta(seconds=121), end, "conformance"), server
    channel.close()
    server.stop()


@pytest.mark.parametrize("metric", list(FIXTURES))
def test_emulator_answers_the_readers_queries_in_googles_shape(emulator: Any, metric: str) -> None:
    client, window, _ = emulator
    figures = reader(client, window)
    figure = {
        REQUEST_COUNT: figures.error_share,
        REQUEST_LATENCIES: figures.latency_p95,
        MEMORY_UTILIZATIONS: figures.memory_max,
        CPU_UTILIZATIONS: figures.cpu_p95,
        INSTANCE_COUNT: figures.instance_counts,
    }[metric]()
    assert figure.value is not None, figure.note
    [page] = client.pages[metric]
    assert page.get("timeSeries"), f"no series for {metric}"
    assert_same_shape(load(FIXTURES[metric]), page)


def test_emulator_refuses_an_alignment_period_under_60_s(emulator: Any) -> None:
    _, window, server = emulator
    channel = grpc.insecure_channel(server.endpoint)
    client = monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))
    request = Request(
        name=f"projects/{PROJECT}",
        filter=CloudRunScope(PROJECT, REGION, SERVICE).metric_filter(INSTANCE_COUNT),
        interval=monitoring_v3.TimeInterval(start_time=window.start, end_time=window.end),
        aggregation=monitoring_v3.Aggregation(
            alignment_period=duration_pb2.Duration(seconds=30),
            per_series_aligner=monitoring_v3.Aggregation.Aligner.ALIGN_MEAN,
        ),
    )
    # Aggregation.alignment_period: "The value must be at least 60 seconds" (google/monitoring/v3/common.proto).
    with pytest.raises(gexc.InvalidArgument):
        list(client.list_time_series(request=request))
    channel.close()
