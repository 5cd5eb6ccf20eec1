"""Two limits of Cloud Monitoring the emulator keeps, read through google-cloud-monitoring's client:

- monitoring_v3 ``Aggregation.alignment_period`` (google/monitoring/v3/common.proto): "The value must be
  at least 60 seconds." Below that, INVALID_ARGUMENT, unless the stack allows less explicitly.
- Google Cloud metrics, Cloud Run (https://cloud.google.com/monitoring/api/metrics_gcp#gcp-run):
  "Sampled every 60 seconds. After sampling, data is not visible for up to 180 seconds." The stack's
  ``metric_delay`` hides the newest points the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport
from google.protobuf import duration_pb2, timestamp_pb2

from cloudrun_smoke.local.cloud_run_metrics import REQUEST_COUNT, CloudRunMetrics
from cloudrun_smoke.local.metrics import MetricsRecorder
from cloudrun_smoke.local.monitoring_api import MonitoringApi, MonitoringApiServer

PROJECT = "limits-test"
NOW = 1_800_000_000.0
Serve = Callable[..., monitoring_v3.MetricServiceClient]


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(round(seconds * 1e9))
    return ts


@pytest.fixture
def serve() -> Iterator[Serve]:
    started: list[tuple[MonitoringApiServer, grpc.Channel]] = []

    def start(recorder: MetricsRecorder, **settings: float) -> monitoring_v3.MetricServiceClient:
        metrics = CloudRunMetrics(recorder, PROJECT, "us-central1", "svc")
        server = MonitoringApiServer(MonitoringApi(PROJECT, metrics, clock=lambda: NOW, **settings)).start()
        channel = grpc.insecure_channel(server.endpoint)
        started.append((server, channel))
        return monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))

    yield start
    for server, channel in started:
        channel.close()
        server.stop()


def _request(start: float, end: float, period: int = 0) -> monitoring_v3.ListTimeSeriesRequest:
    request = monitoring_v3.ListTimeSeriesRequest(
        name=f"projects/{PROJECT}",
        filter=f'metric.type = "{REQUEST_COUNT}"',
        interval=monitoring_v3.TimeInterval(start_time=_timestamp(start), end_time=_timestamp(end)),
    )
    if period:
        request.aggregation = monitoring_v3.Aggregation(
            alignment_period=duration_pb2.Duration(seconds=period),
            per_series_aligner=monitoring_v3.Aggregation.Aligner.ALIGN_DELTA,
            cross_series_reducer=monitoring_v3.Aggregation.Reducer.REDUCE_SUM,
        )
    return request


def _total(client: monitoring_v3.MetricServiceClient, request: monitoring_v3.ListTimeSeriesRequest) -> int:
    return sum(p.value.int64_value for s in client.list_time_series(request=request) for p in s.points)


def test_an_alignment_period_under_60_s_is_invalid_unless_the_stack_allows_it(serve: Serve) -> None:
    recorder = MetricsRecorder(1.0)
    for t in (NOW - 50, NOW - 20):
        recorder.record_request("svc-00001-abc", 200, 12.0, instance_id="i", end=t)
    google_like = serve(recorder)
    with pytest.raises(gexc.InvalidArgument) as caught:
        list(google_like.list_time_series(request=_request(NOW - 59, NOW, period=59)))
    message = caught.value.message  # type: ignore[attr-defined]
    assert "alignmentPeriod" in message and "at least 60 seconds" in message and "\n" not in message
    assert _total(google_like, _request(NOW - 60, NOW, period=60)) == 2
    assert _total(google_like, _request(NOW - 59, NOW)) == 2  # ALIGN_NONE: the period is ignored
    short = serve(recorder, min_alignment_period=1.0)
    assert _total(short, _request(NOW - 30, NOW, period=30)) == 1


def test_a_point_is_invisible_for_metric_delay_seconds_after_it_is_sampled(serve: Serve) -> None:
    recorder = MetricsRecorder(1.0)
    for t in (NOW - 400, NOW - 200, NOW - 100, NOW - 5):
        recorder.record_request("svc-00001-abc", 200, 12.0, instance_id="i", end=t)
    delayed = serve(recorder, metric_delay=180.0)
    # A window that ends now judges its last 180 s as empty ...
    assert _total(delayed, _request(NOW - 600, NOW, period=600)) == 2
    assert _total(delayed, _request(NOW - 150, NOW, period=150)) == 0
    # ... one that ends metric_delay before now sees all it holds.
    assert _total(delayed, _request(NOW - 600, NOW - 180, period=420)) == 2
    assert _total(serve(recorder), _request(NOW - 600, NOW, period=600)) == 4
