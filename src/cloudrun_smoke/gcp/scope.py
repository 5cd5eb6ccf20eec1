"""What the harness reads about one Cloud Run service: the one place its log and metric filters are built.

Cloud Run's logs and metrics share one monitored resource, ``cloud_run_revision``, with the labels
``project_id``, ``service_name``, ``revision_name``, ``location`` and ``configuration_name``
(https://cloud.google.com/monitoring/api/resources#tag_cloud_run_revision). Its logs are the request
log ``run.googleapis.com/requests`` and the container's ``run.googleapis.com/stdout`` and
``run.googleapis.com/stderr`` (https://cloud.google.com/run/docs/logging); its metrics are
``run.googleapis.com/...`` (https://cloud.google.com/monitoring/api/metrics_gcp#gcp-run).

Cloud Logging's filter language writes ``label="value"``; Cloud Monitoring's, ``label = "value"``
(https://cloud.google.com/monitoring/api/v3/filters). Both are built here from the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from cloudrun_smoke.timeutil import format_rfc3339

if TYPE_CHECKING:
    from cloudrun_smoke.config.environment import Environment

RESOURCE_TYPE = "cloud_run_revision"
REQUEST_LOG = "run.googleapis.com/requests"
STDOUT_LOG = "run.googleapis.com/stdout"
STDERR_LOG = "run.googleapis.com/stderr"


@dataclass(frozen=True)
class CloudRunScope:
    """One service in one project and region; ``revision`` narrows to one revision ("" = all of them)."""

    project: str
    region: str
    service: str
    revision: str = ""

    @classmethod
    def of(cls, env: Environment, revision: str = "") -> CloudRunScope:
        return cls(env.project, env.region, env.service, revision)

    def for_revision(self, revision: str) -> CloudRunScope:
        return replace(self, revision=revision)

    def _labels(self) -> list[tuple[str, str]]:
        labels = [("resource.type", RESOURCE_TYPE)]
        labels += [("resource.labels.service_name", self.service), ("resource.labels.location", self.region)]
        if self.revision:
            labels.append(("resource.labels.revision_name", self.revision))
        return labels

    # -- Cloud Logging ---------------------------------------------------------------------------------
    def log_name(self, log_id: str) -> str:
        """``logName="projects/P/logs/ID"``, the ID's ``/`` escaped as the API stores it."""
        return f'logName="projects/{self.project}/logs/{log_id.replace("/", "%2F")}"'

    def resource_filter(self) -> str:
        """The entries of the scope's revisions, whatever their log."""
        return " AND ".join(f'{label}="{value}"' for label, value in self._labels())

    def service_logs_filter(self, since: datetime | None = None, until: datetime | None = None) -> str:
        """What the service's own code wrote, on stdout or stderr."""
        logs = f"({self.log_name(STDOUT_LOG)} OR {self.log_name(STDERR_LOG)})"
        return " AND ".join([self.resource_filter(), logs, *_between(since, until)])

    def request_logs_filter(self, since: datetime | None = None, until: datetime | None = None) -> str:
        """Cloud Run's own log of each request served (method, URL, status, latency, instance)."""
        return " AND ".join([self.resource_filter(), self.log_name(REQUEST_LOG), *_between(since, until)])

    # -- Cloud Monitoring ------------------------------------------------------------------------------
    def metric_filter(self, metric_type: str) -> str:
        """The time series of ``metric_type`` for the scope (a ListTimeSeries ``filter``)."""
        clauses = [("metric.type", metric_type), *self._labels()]
        return " AND ".join(f'{label} = "{value}"' for label, value in clauses)


def _between(since: datetime | None, until: datetime | None) -> list[str]:
    """Time bounds: without ``since`` the client library adds the last 24 hours; a bound answers sooner."""
    bounds = [f'timestamp>="{format_rfc3339(since)}"'] if since is not None else []
    return bounds + ([f'timestamp<="{format_rfc3339(until)}"'] if until is not None else [])
