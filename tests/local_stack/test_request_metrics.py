"""Which answers Cloud Run's request metrics count: only those of an instance.

Google Cloud metrics (https://cloud.google.com/monitoring/api/metrics_gcp#gcp-run), Cloud Run:
``request_count`` "Number of requests reaching the revision. Excludes requests that are not reaching
your container instances (e.g. unauthorized requests or when maximum number of instances is reached)";
``request_latencies`` "Latency is measured from when the request reaches the running container to when
it exits. Notably, it does not include container startup latency."

The local front end, with a real HTTP instance behind it, answers every case; the counts are read
through google-cloud-monitoring's MetricServiceClient from the Monitoring emulator.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import httpx
import pytest
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport
from google.protobuf import timestamp_pb2

from cloudrun_smoke.local.cloud_run_metrics import REQUEST_COUNT, REQUEST_LATENCIES, CloudRunMetrics
from cloudrun_smoke.local.front_end import Backend, ErrorBurst, FrontEnd
from cloudrun_smoke.local.iam import InvokerCheck
from cloudrun_smoke.local.log_store import LogStore
from cloudrun_smoke.local.logging_api import Ingestion, LoggingApi
from cloudrun_smoke.local.metrics import MetricsRecorder
from cloudrun_smoke.local.monitoring_api import MonitoringApi, MonitoringApiServer
from cloudrun_smoke.local.run_model import RunState, Service, TrafficTarget
from cloudrun_smoke.waiting import wait_until

PROJECT, REGION, SERVICE, REVISION = "metrics-test", "us-central1", "svc", "svc-00001-abc"


class _Instance(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def instance() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Instance)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(round(seconds * 1e9))
    return ts


def test_only_answers_of_an_instance_are_in_request_count_and_request_latencies(instance: int) -> None:
    state, service = RunState(), Service(PROJECT, REGION, SERVICE)
    state.add(service)
    service.traffic = [TrafficTarget(REVISION, 100)]
    backends = {REVISION: [Backend(REVISION, "instance-1", instance, lambda: True)]}
    recorder = MetricsRecorder(1.0)
    front = FrontEnd(
        state, service, lambda r: backends.get(r, []), LoggingApi(LogStore(), Ingestion(0.0, 0.0))
    ).start()
    front.metrics = recorder
    monitoring = MonitoringApiServer(
        MonitoringApi(PROJECT, CloudRunMetrics(recorder, PROJECT, REGION, SERVICE))
    ).start()
    channel = grpc.insecure_channel(monitoring.endpoint)
    client = monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))
    try:
        start = time.time()
        statuses: list[int] = []
        with httpx.Client(base_url=front.url) as http:  # one connection: each answer is logged in turn
            front.invoker_check = InvokerCheck(lambda: {front.url})  # a private service, no token
            statuses += [http.get("/").status_code for _ in range(3)]
            front.invoker_check = None
            backends[REVISION] = []  # no instance available
            statuses += [http.get("/").status_code for _ in range(4)]
            backends[REVISION] = [Backend(REVISION, "instance-1", instance, lambda: True)]
            service.traffic = []  # no route to a revision
            statuses += [http.get("/").status_code for _ in range(2)]
            service.traffic = [TrafficTarget(REVISION, 100)]
            statuses += [http.get("/").status_code for _ in range(5)]
            front.error_burst = ErrorBurst(1, 1)  # stack:5xx-burst: the instance answers 500
            statuses += [http.get("/").status_code for _ in range(2)]
        assert statuses[3:] == [503] * 4 + [404] * 2 + [200] * 5 + [500] * 2
        assert set(statuses[:3]) <= {401, 403}, statuses
        wait_until(
            lambda: True if len(recorder.requests()) >= 7 else None,
            timeout=10,
            what="the front end to record the 7 answers of the instance",
            interval=0.01,
        )
        interval = monitoring_v3.TimeInterval(start_time=_timestamp(start), end_time=_timestamp(time.time()))
        name = f"projects/{PROJECT}"

        def read(metric: str) -> list[monitoring_v3.TimeSeries]:
            request = {"name": name, "filter": f'metric.type = "{metric}"', "interval": interval}
            return list(client.list_time_series(request=request))

        counts = {
            s.metric.labels["response_code"]: sum(p.value.int64_value for p in s.points)
            for s in read(REQUEST_COUNT)
        }
        assert counts == {"200": 5, "500": 2}, "request_count must hold only what reached the instance"
        latencies = read(REQUEST_LATENCIES)
        assert {s.metric.labels["response_code"] for s in latencies} == {"200", "500"}
        assert sum(p.value.distribution_value.count for s in latencies for p in s.points) == 7
        assert {s.resource.labels["revision_name"] for s in latencies} == {REVISION}
    finally:
        channel.close()
        monitoring.stop()
        front.stop()
