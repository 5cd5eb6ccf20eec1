"""Where a Cloud Run service's traffic goes, from one read of the Admin API v2 ``Service``: the one
place that turns ``trafficStatuses`` into revision names.

A ``TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST`` status follows "the Service's latest ready Revision"
(googleapis ``google/cloud/run/v2/traffic_target.proto``) and is reported with an empty ``revision``,
as in ``google_cloud_run_v2_service`` Terraform states; the v1 API promised names ("These entries will
always contain RevisionName references", ``ServiceStatus.traffic``), v2 documents no such promise
(``TrafficTargetStatus.revision``: "Revision to which this traffic is sent"). So a LATEST share is
resolved to ``latestReadyRevision`` here; a status that does name its revision keeps that name.
Discovery, the rollback and the run summary all read traffic through :func:`shares`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrafficShare:
    revision: str  # the revision it reaches ("" only for LATEST when no revision is ready)
    percent: int
    tag: str = ""
    uri: str = ""
    latest: bool = False  # a LATEST target: it moves to each new ready revision

    def describe(self) -> str:
        text = f"{self.revision or '(no ready revision)'}={self.percent}%"
        if self.latest:
            text += " (LATEST)"
        return text + (f" (tag {self.tag})" if self.tag else "")


def short_name(resource_name: str) -> str:
    return resource_name.rsplit("/", 1)[-1] if resource_name else ""


def _is_latest(status: Any) -> bool:
    from google.cloud.run_v2 import TrafficTargetAllocationType

    kind = status.type_
    if kind == TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST:
        return True
    # An unspecified type with no revision can only mean the latest one (the API's default).
    return (
        kind == TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED and not status.revision
    )


def shares(service: Any) -> tuple[TrafficShare, ...]:
    """The traffic of a ``run_v2.Service`` as it is served: LATEST resolved to its latest ready revision."""
    latest_ready = short_name(service.latest_ready_revision)
    found = []
    for t in service.traffic_statuses:
        latest = _is_latest(t)
        revision = short_name(t.revision) or (latest_ready if latest else "")
        found.append(TrafficShare(revision, t.percent, t.tag, t.uri, latest))
    return tuple(found)


def percent_for(traffic: Iterable[TrafficShare], revision: str) -> int:
    return sum(t.percent for t in traffic if revision and t.revision == revision)


def serving(traffic: Iterable[TrafficShare]) -> str:
    """The revision with the largest share of the traffic ("" when none serves any)."""
    totals: dict[str, int] = {}
    for t in traffic:
        if t.revision and t.percent > 0:
            totals[t.revision] = totals.get(t.revision, 0) + t.percent
    return max(totals, key=lambda r: totals[r]) if totals else ""


def describe(traffic: Iterable[TrafficShare]) -> str:
    return ", ".join(t.describe() for t in traffic)
