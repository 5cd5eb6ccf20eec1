"""Cloud Monitoring API v3 emulator: ``MetricService.ListTimeSeries`` over gRPC on 127.0.0.1.

google-cloud-monitoring's ``MetricServiceClient`` talks to it as to monitoring.googleapis.com, given a
channel to :attr:`MonitoringApiServer.endpoint`. Requests are checked as Google checks them (project,
filter, interval, aggregation, view, paging) and answered from what the local stack observed; the
arithmetic lives in :mod:`monitoring_eval` (and its data types in :mod:`monitoring_series`), this module only translates protos and errors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any, Protocol

import grpc
from google.api import metric_pb2
from google.cloud import monitoring_v3

from cloudrun_smoke.local.distribution import Distribution
from cloudrun_smoke.local.log_query import FilterError
from cloudrun_smoke.local.monitoring_eval import evaluate
from cloudrun_smoke.local.monitoring_filter import parse_filter
from cloudrun_smoke.local.monitoring_series import Descriptor, Observed, Query, QueryError, Series
from cloudrun_smoke.window.monitoring import MIN_ALIGNMENT_PERIOD_S

SERVICE = "google.monitoring.v3.MetricService"
MAX_PAGE_SIZE = 100_000  # Google's effective page size when none or a larger one is asked for

_Request = monitoring_v3.ListTimeSeriesRequest
_Response = monitoring_v3.ListTimeSeriesResponse


class MetricSource(Protocol):
    @property
    def metric_types(self) -> list[str]: ...

    def descriptor(self, metric_type: str) -> Descriptor | None: ...

    def observed(self, metric_type: str, start: float, end: float) -> list[Observed]: ...


class ApiProblem(Exception):
    """A request refused with a gRPC status and a one-line message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> ApiProblem:
    return ApiProblem(grpc.StatusCode.INVALID_ARGUMENT, message)


class MonitoringApi:
    """ListTimeSeries for one project's metrics.

    ``min_alignment_period``: Google refuses less than 60 s (monitoring_v3 ``Aggregation``: "The value
    must be at least 60 seconds"); a stack whose windows last seconds must allow less explicitly.
    ``metric_delay``: a point is visible that many seconds after it is sampled (Cloud Run's metrics:
    "After sampling, data is not visible for up to 180 seconds").
    """

    def __init__(
        self,
        project: str,
        metrics: MetricSource,
        *,
        min_alignment_period: float = MIN_ALIGNMENT_PERIOD_S,
        metric_delay: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project = project
        self._metrics = metrics
        self.min_alignment_period = min_alignment_period
        self.metric_delay = metric_delay
        self._clock = clock

    def list_time_series(self, request: _Request) -> _Response:
        pb = _Request.pb(request)
        self._check_name(pb.name)
        if pb.page_size < 0:
            raise _invalid(f'Field page_size had an invalid value of "{pb.page_size}": it must be positive')
        try:
            parsed = parse_filter(pb.filter)
        except FilterError as e:
            raise _invalid(f'Field filter had an invalid value of "{pb.filter}": {e}') from None
        descriptor = self._metrics.descriptor(parsed.metric_type)
        if descriptor is None:
            raise ApiProblem(
                grpc.StatusCode.NOT_FOUND,
                f'Cannot find metric(s) that match type = "{parsed.metric_type}". '
                f"This project's metrics: {', '.join(self._metrics.metric_types)}.",
            )
        query = _query(pb, parsed.terms)
        if query.aligner != "ALIGN_NONE" and query.period < self.min_alignment_period:
            raise _invalid(
                f'Field aggregation.alignmentPeriod had an invalid value of "{query.period:g}s": '
                f"the alignment period must be at least {self.min_alignment_period:g} seconds"
            )
        visible = min(query.end, self._clock() - self.metric_delay)  # what is sampled later is not yet
        try:
            series = evaluate(
                descriptor, self._metrics.observed(descriptor.type, query.start, visible), query
            )
        except QueryError as e:
            raise _invalid(str(e)) from None
        headers_only = pb.view == _Request.TimeSeriesView.HEADERS
        size = pb.page_size
        fingerprint = _fingerprint(pb)
        offset = _decode_token(pb.page_token, fingerprint) if pb.page_token else (0, 0)
        return _page(series, headers_only, min(size or MAX_PAGE_SIZE, MAX_PAGE_SIZE), offset, fingerprint)

    def _check_name(self, name: str) -> None:
        match = re.fullmatch(r"projects/([^/]+)", name)
        if match is None:
            raise _invalid(f'Field name had an invalid value of "{name}": expected projects/PROJECT_ID')
        if match.group(1) != self.project:
            raise ApiProblem(
                grpc.StatusCode.NOT_FOUND,
                f"Project {match.group(1)} not found: this Cloud Monitoring API serves projects/{self.project}",
            )


def _seconds(timestamp: Any) -> float:
    return float(timestamp.seconds) + timestamp.nanos / 1e9


def _query(pb: Any, terms: Sequence[Any]) -> Query:
    if pb.order_by:
        raise _invalid(f'Field order_by had an invalid value of "{pb.order_by}": it must be left blank')
    if pb.HasField("secondary_aggregation"):
        raise _invalid("secondary_aggregation is not supported by the local Cloud Monitoring API")
    if not pb.interval.HasField("end_time"):
        raise _invalid("Field interval.end_time is required: the end of the time interval to read")
    end = _seconds(pb.interval.end_time)
    start = _seconds(pb.interval.start_time) if pb.interval.HasField("start_time") else end
    aggregation = pb.aggregation
    try:
        aligner = monitoring_v3.Aggregation.Aligner(aggregation.per_series_aligner).name
        reducer = monitoring_v3.Aggregation.Reducer(aggregation.cross_series_reducer).name
    except ValueError:
        raise _invalid("Field aggregation had an unknown aligner or reducer number") from None
    return Query(
        start=start,
        end=end,
        terms=tuple(terms),
        aligner=aligner,
        period=_seconds(aggregation.alignment_period),
        reducer=reducer,
        group_by=tuple(aggregation.group_by_fields),
    )


# -- paging ----------------------------------------------------------------------------------------
def _fingerprint(pb: Any) -> str:
    """Identifies the request apart from its paging, so a token is only honoured by the same query."""
    copy = type(pb)()
    copy.CopyFrom(pb)
    copy.page_token, copy.page_size = "", 0
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:16]


def _encode_token(offset: tuple[int, int], fingerprint: str) -> str:
    raw = json.dumps({"s": offset[0], "p": offset[1], "q": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, fingerprint: str) -> tuple[int, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["q"] == fingerprint:
            return int(data["s"]), int(data["p"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        pass
    raise _invalid(f'Field page_token had an invalid value of "{token}": not a token of this same request')


def _page(
    series: Sequence[Series], headers_only: bool, size: int, offset: tuple[int, int], fingerprint: str
) -> _Response:
    response = _Response.pb()()
    index, first_point = offset
    budget = size
    while index < len(series) and budget > 0:
        s = series[index]
        if headers_only:
            _add_series(response, s, ())
            budget -= 1
            index += 1
            continue
        points = s.points[first_point : first_point + budget]
        _add_series(response, s, points)
        budget -= len(points)
        first_point += len(points)
        if first_point >= len(s.points):
            index, first_point = index + 1, 0
    if index < len(series):
        response.next_page_token = _encode_token((index, first_point), fingerprint)
    units = {s.unit for s in series}
    response.unit = units.pop() if len(units) == 1 else "{not_a_unit}" if units else ""
    return _Response.wrap(response)


# -- protos ----------------------------------------------------------------------------------------
def _add_series(response: Any, series: Series, points: Sequence[Any]) -> None:
    ts = response.time_series.add()
    ts.metric.type = series.metric_type
    ts.metric.labels.update(series.metric_labels)
    ts.resource.type = series.resource_type
    ts.resource.labels.update(series.resource_labels)
    ts.metric_kind = metric_pb2.MetricDescriptor.MetricKind.Value(series.kind)
    ts.value_type = metric_pb2.MetricDescriptor.ValueType.Value(series.value_type)
    ts.unit = series.unit
    for point in points:
        p = ts.points.add()
        p.interval.end_time.FromNanoseconds(round(point.end * 1e9))
        p.interval.start_time.FromNanoseconds(round(point.start * 1e9))
        value = point.value
        if isinstance(value, Distribution):
            _set_distribution(p.value.distribution_value, value)
        elif series.value_type == "INT64":
            p.value.int64_value = int(value)
        else:
            p.value.double_value = float(value)


def _set_distribution(target: Any, value: Distribution) -> None:
    target.count = value.count
    target.mean = value.mean
    target.sum_of_squared_deviation = value.sum_of_squared_deviation
    buckets = target.bucket_options.exponential_buckets
    buckets.num_finite_buckets = value.buckets.finite
    buckets.growth_factor = value.buckets.growth
    buckets.scale = value.buckets.scale
    counts = list(value.bucket_counts)
    while counts and counts[-1] == 0:  # Google omits trailing empty buckets
        counts.pop()
    target.bucket_counts.extend(counts)


# -- gRPC ------------------------------------------------------------------------------------------
class MonitoringApiServer:
    """The API on a free port of 127.0.0.1; :attr:`endpoint` is a gRPC target (``host:port``)."""

    def __init__(self, api: MonitoringApi, host: str = "127.0.0.1", workers: int = 4) -> None:
        self.api = api
        self._host = host
        self._workers = workers
        self._server: grpc.Server | None = None
        self._port = 0

    @property
    def endpoint(self) -> str:
        return f"{self._host}:{self._port}"

    def start(self) -> MonitoringApiServer:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="monitoring-api")
        )
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "ListTimeSeries": grpc.unary_unary_rpc_method_handler(
                    self._list_time_series,
                    request_deserializer=_Request.deserialize,
                    response_serializer=_Response.serialize,
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port(f"{self._host}:0")
        if not port:
            raise OSError(f"the Cloud Monitoring API could not listen on {self._host}")
        server.start()
        self._server, self._port = server, port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait(timeout=5)
            self._server = None

    def _list_time_series(self, request: _Request, context: grpc.ServicerContext) -> _Response:
        try:
            return self.api.list_time_series(request)
        except ApiProblem as e:
            context.abort(e.code, e.message)
            raise  # not reached: abort() raises
