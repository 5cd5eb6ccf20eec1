"""Google's errors as ours: one line per failure, naming what the harness did, where, and what to do."""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exceptions

from cloudrun_smoke.gcp.errors import (
    GOOGLE_ERRORS,
    LOGGING_API,
    MONITORING_API,
    RUN_ADMIN_API,
    api_error,
    is_throttled,
)

WHERE = "project 'p', region 'r'"


def test_each_kind_of_failure_says_what_to_do() -> None:
    def line(exc: Exception, **kw: str) -> str:
        return str(api_error(exc, RUN_ADMIN_API, what="read the service", where=WHERE, **kw))

    assert line(gexc.NotFound("x"), not_found="service 'svc' not found") == "service 'svc' not found"
    assert line(auth_exceptions.RefreshError("expired")) == (
        "cannot authenticate to the Cloud Run Admin API for project 'p', region 'r': RefreshError; "
        "refresh your credentials: gcloud auth application-default login"
    )
    assert line(gexc.PermissionDenied("no")) == (
        "not allowed to read the service in project 'p', region 'r': grant roles/run.viewer to the "
        "identity running the suite"
    )
    # Over the JSON API a refusal is HTTP's 403 Forbidden (gRPC's is PermissionDenied): the same line.
    assert line(gexc.Forbidden("no"), permission="planning needs roles/run.viewer") == (
        "not allowed to read the service in project 'p', region 'r': planning needs roles/run.viewer"
    )
    assert line(ConnectionRefusedError("refused"), endpoint="http://127.0.0.1:9") == (
        "cannot read the service through the Cloud Run Admin API at http://127.0.0.1:9: "
        "ConnectionRefusedError: refused"
    )


def test_each_api_names_its_own_role_and_default_endpoint() -> None:
    denied = api_error(gexc.PermissionDenied("no"), MONITORING_API, what="read time series")
    assert (
        str(denied)
        == "not allowed to read time series: grant roles/monitoring.viewer to the identity running the suite"
    )
    refused = api_error(gexc.InvalidArgument("bad filter"), MONITORING_API, what="read time series")
    assert str(refused) == "cannot read time series: Cloud Monitoring refused the request: bad filter"
    down = api_error(gexc.ServiceUnavailable("later"), LOGGING_API, what="read log entries")
    assert (
        str(down)
        == "cannot read log entries through Cloud Logging at logging.googleapis.com: ServiceUnavailable: 503 later"
    )


def test_throttling_is_a_429_or_resource_exhausted_also_behind_a_retry() -> None:
    assert is_throttled(gexc.TooManyRequests("quota"))
    assert is_throttled(gexc.ResourceExhausted("quota"))
    assert is_throttled(gexc.RetryError("gave up", gexc.TooManyRequests("quota")))
    assert not is_throttled(gexc.ServiceUnavailable("later"))
    assert all(
        isinstance(e, GOOGLE_ERRORS) for e in (gexc.NotFound("x"), OSError(), auth_exceptions.RefreshError())
    )
