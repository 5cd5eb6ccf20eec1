"""A revision's CPU allocation (``resources.cpu_idle``) and what it means for the in-process queue.

Cloud Run "Billing settings for services" (https://cloud.google.com/run/docs/configuring/billing-settings):
with request-based billing, the default (formerly "CPU only allocated during request processing"), an
instance has CPU only while it processes requests, starts and shuts down; instance-based billing
(``--no-cpu-throttling``) allocates CPU for the instance's whole life. "General development tips"
(https://cloud.google.com/run/docs/tips#background): with request-based billing, the instance's CPU is
"disabled or severely limited" once the response is sent, so background work after it barely runs. In the
Admin API v2 that is ``template.containers[].resources.cpu_idle`` (googleapis/googleapis
google/cloud/run/v2/k8s.min.proto, ResourceRequirements): true means CPU only during requests.

A consolidation queued in memory runs after its archive request has answered: under ``cpu_idle = true``
it progresses only while the instance serves some request. A late consolidation whose progress lines all
fall inside requests is starved of CPU, not slow or broken.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cloudrun_smoke.timeutil import format_rfc3339

# A line written just after its request's response (the queue's "Consolidating" line) still belongs to
# it: the request log stamps the end when the front end has the answer, the line a moment later.
SLACK = timedelta(seconds=0.5)
# One entries:list page, the only read of the diagnosis (a failure path: bounded, never paged on).
MAX_REQUESTS_READ = 1000


def implication(cpu_idle: bool | None) -> str:
    """What the setting means for work done after the response (the consolidation queue)."""
    if cpu_idle is None:
        return "CPU allocation unknown (no container read)"
    if cpu_idle:
        return (
            "CPU only during requests (request-based billing): a consolidation queued in memory "
            "runs only while the instance serves a request, and stalls between requests"
        )
    return "CPU always allocated (instance-based billing): the in-process queue runs between requests"


def fix(cpu_idle: bool, service: str, region: str, project: str) -> str:
    flag = "--no-cpu-throttling" if cpu_idle else "--cpu-throttling"
    return f"gcloud run services update {service} --region {region} --project {project} {flag}"


@dataclass(frozen=True)
class RequestSpan:
    start: datetime
    end: datetime

    def holds(self, moment: datetime, slack: timedelta = SLACK) -> bool:
        return self.start - slack <= moment <= self.end + slack


def _seconds(latency: Any) -> float:
    """``httpRequest.latency`` as the JSON API gives it (``"0.012s"``) or as a timedelta."""
    if isinstance(latency, timedelta):
        return latency.total_seconds()
    if isinstance(latency, str) and latency.endswith("s"):
        try:
            return float(latency[:-1])
        except ValueError:
            return 0.0
    if isinstance(latency, Mapping):  # {"seconds": .., "nanos": ..}
        return float(latency.get("seconds", 0)) + float(latency.get("nanos", 0)) / 1e9
    return 0.0


def request_span(timestamp: datetime, http_request: Mapping[str, Any] | None) -> RequestSpan:
    """A request log entry's span: Cloud Run stamps the entry when the request arrived; latency is its length."""
    return RequestSpan(
        timestamp, timestamp + timedelta(seconds=_seconds((http_request or {}).get("latency")))
    )


def read_request_spans(client: Any, project: str, filter_: str) -> list[RequestSpan]:
    """One ``entries:list`` call (one page) of the revision's request log entries."""
    from google.cloud import logging as cloud_logging

    entries = client.list_entries(
        resource_names=[f"projects/{project}"],
        filter_=filter_,
        order_by=cloud_logging.ASCENDING,
        page_size=MAX_REQUESTS_READ,
        max_results=MAX_REQUESTS_READ,
    )
    return [request_span(e.timestamp, e.http_request) for e in entries if e.timestamp is not None]


def starvation_diagnosis(
    cpu_idle: bool | None,
    revision: str,
    progress: Sequence[tuple[str, datetime]],
    requests: Iterable[RequestSpan],
    *,
    now: datetime,
    fix_command: str = "",
) -> str:
    """Why a consolidation may be late, from its progress lines (name, time) and the revision's requests.

    All progress inside requests and nothing since, under ``cpu_idle = true``: the queue is starved.
    """
    spans = list(requests)
    inside = [(name, t) for name, t in progress if any(s.holds(t) for s in spans)]
    outside = [(name, t) for name, t in progress if (name, t) not in inside]
    setting = (
        f"revision {revision} has cpu_idle = {str(cpu_idle).lower() if cpu_idle is not None else 'unknown'}"
    )
    last_request = max((s.end for s in spans), default=None)
    idle = f"; no request reached it for {(now - last_request).total_seconds():.0f} s" if last_request else ""
    where = (
        f"{len(inside)} of {len(progress)} progress line(s) of the consolidation "
        f"({', '.join(f'{n} at {format_rfc3339(t)}' for n, t in progress) or 'none'}) appeared while "
        f"one of the revision's {len(spans)} request(s) since the archive was being served"
        f"{' (±' + format(SLACK.total_seconds(), 'g') + ' s)' if spans else ''}{idle}"
    )
    if cpu_idle and progress and not outside:
        return (
            f"CPU starvation: {where}. The {setting}: {implication(True)}. The queue is starved of CPU, "
            f"not broken: deploy with CPU always allocated"
            + (f" ({fix_command})" if fix_command else "")
            + ", or do the work inside a request"
        )
    if cpu_idle:
        return (
            f"{where}. The {setting}: {implication(True)}; the lines outside requests show the queue had CPU "
            "at times, so it may also be slow or broken: read its lines"
        )
    return (
        f"{where}. The {setting}: {implication(cpu_idle)}. Not a starved instance: the queue is slow "
        "or broken, read its lines"
    )
