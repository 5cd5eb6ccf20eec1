"""Every Cloud Logging and Cloud Monitoring filter the harness sends about a Cloud Run service, pinned.

The resource type and its labels are Google's ``cloud_run_revision`` monitored resource
(https://cloud.google.com/monitoring/api/resources#tag_cloud_run_revision); the log names are Cloud
Run's request and container logs (https://cloud.google.com/run/docs/logging); the metric types are
Cloud Run's (https://cloud.google.com/monitoring/api/metrics_gcp#gcp-run).
"""

from __future__ import annotations

from datetime import UTC, datetime

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.gcp.scope import CloudRunScope
from cloudrun_smoke.logs.diagnosis import request_log_filter

SERVICE = CloudRunScope("proj-1", "europe-west1", "svc")
REVISION = SERVICE.for_revision("svc-00002-abc")
SINCE = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
UNTIL = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

RESOURCE = (
    'resource.type="cloud_run_revision" AND resource.labels.service_name="svc" '
    'AND resource.labels.location="europe-west1"'
)
STDOUT = 'logName="projects/proj-1/logs/run.googleapis.com%2Fstdout"'
STDERR = 'logName="projects/proj-1/logs/run.googleapis.com%2Fstderr"'
REQUESTS = 'logName="projects/proj-1/logs/run.googleapis.com%2Frequests"'


def test_the_scope_of_an_environment_is_its_project_region_and_service() -> None:
    env = Environment(name="t", source="t", project="proj-1", region="europe-west1", service="svc")
    assert CloudRunScope.of(env) == SERVICE
    assert CloudRunScope.of(env, "svc-00002-abc") == REVISION


def test_service_logs_are_stdout_and_stderr_of_every_revision_or_of_one() -> None:
    assert SERVICE.service_logs_filter() == f"{RESOURCE} AND ({STDOUT} OR {STDERR})"
    assert REVISION.service_logs_filter() == (
        f'{RESOURCE} AND resource.labels.revision_name="svc-00002-abc" AND ({STDOUT} OR {STDERR})'
    )


def test_request_logs_bounded_in_time() -> None:
    assert SERVICE.request_logs_filter() == f"{RESOURCE} AND {REQUESTS}"
    assert REVISION.request_logs_filter(SINCE) == (
        f'{RESOURCE} AND resource.labels.revision_name="svc-00002-abc" AND {REQUESTS} '
        'AND timestamp>="2026-11-25T09:00:00.000000Z"'
    )
    assert SERVICE.service_logs_filter(SINCE, UNTIL) == (
        f"{RESOURCE} AND ({STDOUT} OR {STDERR}) "
        'AND timestamp>="2026-11-25T09:00:00.000000Z" AND timestamp<="2026-11-25T10:00:00.000000Z"'
    )


def test_the_404_diagnosis_reads_the_request_logs_about_one_object() -> None:
    assert request_log_filter(SERVICE, "thread-1", "abc", SINCE) == (
        f'{RESOURCE} AND {REQUESTS} AND timestamp>="2026-11-25T09:00:00.000000Z" '
        'AND (httpRequest.requestUrl:"thread-1" OR trace="projects/proj-1/traces/abc")'
    )
    assert (
        request_log_filter(SERVICE, "thread-1")
        == f'{RESOURCE} AND {REQUESTS} AND httpRequest.requestUrl:"thread-1"'
    )


def test_metric_filters_use_the_monitoring_syntax() -> None:
    assert SERVICE.metric_filter("run.googleapis.com/request_count") == (
        'metric.type = "run.googleapis.com/request_count" AND resource.type = "cloud_run_revision" '
        'AND resource.labels.service_name = "svc" AND resource.labels.location = "europe-west1"'
    )
    assert REVISION.metric_filter("run.googleapis.com/container/instance_count").endswith(
        'resource.labels.location = "europe-west1" AND resource.labels.revision_name = "svc-00002-abc"'
    )
