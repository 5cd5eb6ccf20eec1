"""The rollback plan: which revision a service's traffic goes back to, decided only from what one read
of the service and its revisions proves.

Without ``to`` only a deploy that took the traffic is undone: the serving revision must be the service's
latest created and latest ready revision. After a failed deploy (the latest created revision never became
ready, traffic stayed on the one before) the plan is refused instead of moving a healthy revision's
traffic to an older one. Planning reads only; :mod:`cloudrun_smoke.release.apply` carries a plan out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp import traffic as traffic_
from cloudrun_smoke.gcp.readiness import readiness
from cloudrun_smoke.gcp.traffic import TrafficShare, short_name
from cloudrun_smoke.release.admin_api import API_TIMEOUT, call_admin_api


class RollbackRefused(SmokeError):
    """The rollback would be wrong or pointless; its message says why and what to do instead."""


@dataclass(frozen=True)
class RevisionInfo:
    name: str
    create_time: datetime
    ready: bool
    message: str = ""


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback will do, from one read of the service and its revisions."""

    env: Environment
    resource_name: str
    current: tuple[TrafficShare, ...]  # trafficStatuses as read (LATEST resolved to a revision)
    serving: str  # the revision with the largest share ("" when none serves)
    target: RevisionInfo
    reason: str  # why this revision, in words
    after: tuple[TrafficShare, ...]  # the traffic once applied
    service_proto: Any  # the run_v2.Service read; apply sends it back with `after`, etag included

    @property
    def project(self) -> str:
        return self.env.project

    @property
    def region(self) -> str:
        return self.env.region

    @property
    def service(self) -> str:
        return self.env.service

    @property
    def to_latest_command(self) -> str:
        return to_latest_command(self.service, self.region)

    @property
    def gcloud_command(self) -> str:
        return (
            f"gcloud run services update-traffic {self.service} --project {self.project} "
            f"--region {self.region} --to-revisions {self.target.name}=100"
        )

    def describe(self) -> str:
        lines = [
            f"rollback plan for Cloud Run service {self.service} (project {self.project}, region {self.region})",
            "  current traffic:",
            *_traffic_lines(self.current),
            f"  target revision: {self.target.name} (created {self.target.create_time:%Y-%m-%d %H:%M:%S} UTC, Ready)",
            f"    why: {self.reason}",
            "  traffic after:",
            *_traffic_lines(self.after),
            f"  equivalent: {self.gcloud_command}",
            f"  afterwards the traffic is pinned to {self.target.name}: new deploys get none until "
            f"{self.to_latest_command}",
        ]
        return "\n".join(lines)


@dataclass(frozen=True)
class RollbackResult:
    revision: str
    traffic: tuple[TrafficShare, ...]  # trafficStatuses reported by the finished operation
    seconds: float


def to_latest_command(service: str, region: str) -> str:
    """What returns a service to LATEST once a rollback pinned its traffic to a named revision."""
    return f"gcloud run services update-traffic {service} --to-latest --region {region}"


def _traffic_lines(shares: tuple[TrafficShare, ...]) -> list[str]:
    width = max((len(t.revision or "(latest)") for t in shares), default=0)
    lines = [
        f"    {t.revision or '(latest)':<{width}} {t.percent:>3} %"
        + ("  (LATEST)" if t.latest else "")
        + (f"  tag {t.tag}" if t.tag else "")
        for t in shares
    ]
    return lines or ["    (no traffic targets)"]


def list_revisions(env: Environment, revisions_client: Any, parent: str) -> list[RevisionInfo]:
    """All revisions of the service, oldest first (by createTime; the name's counter breaks ties)."""

    def read() -> list[RevisionInfo]:
        found = []
        for r in revisions_client.list_revisions(parent=parent, timeout=API_TIMEOUT):
            ready, message = readiness(r.conditions)
            found.append(RevisionInfo(short_name(r.name), r.create_time, ready, message))
        return found

    return sorted(call_admin_api(env, "list the revisions", read), key=lambda r: (r.create_time, r.name))


def plan_rollback(
    env: Environment, services: Any, revisions: Any, to: str | None = None, *, under_test: str = ""
) -> RollbackPlan:
    """The rollback of ``env``'s service to ``to``, or by default to the newest Ready revision created
    before the serving one (skipping revisions that never became ready). Without ``to`` only a deploy
    that took the traffic is undone: the serving revision must be the service's latest created and
    latest ready revision, and, when ``under_test`` is given, that revision. Otherwise (a deploy that
    failed, traffic pinned elsewhere) moving traffic would undo a healthy revision, so it is refused.
    Raises :class:`RollbackRefused` when the rollback would be wrong or change nothing. Reads only."""
    name = f"projects/{env.project}/locations/{env.region}/services/{env.service}"
    service = call_admin_api(
        env, "read the service", lambda: services.get_service(name=name, timeout=API_TIMEOUT)
    )
    if service.reconciling:
        raise RollbackRefused(
            f"service {env.service} is being updated (reconciling): wait until it is done, then run again"
        )
    current = traffic_.shares(service)
    serving = traffic_.serving(current)
    where = traffic_.describe(current) or "no traffic targets"
    known = list_revisions(env, revisions, name)
    by_name = {r.name: r for r in known}

    if to:
        wanted = short_name(to)
        target = by_name.get(wanted)
        if target is None:
            newest = ", ".join(r.name for r in reversed(known[-5:])) or "none"
            raise RollbackRefused(
                f"revision {wanted!r} does not exist in service {env.service} (newest: {newest})"
            )
        if not target.ready:
            raise RollbackRefused(
                f"revision {wanted} is not Ready and cannot serve traffic"
                + (f": {target.message}" if target.message else "")
            )
        reason = f"asked for with --to (serving now: {serving or 'no revision'})"
    else:
        if not serving:
            raise RollbackRefused(
                f"no revision of {env.service} serves traffic ({where}), so there is nothing to roll back "
                "from: pass --to REVISION"
            )
        if under_test and serving != under_test:
            raise RollbackRefused(
                f"the revision under test {under_test} does not serve the traffic: {serving} does "
                f"({where}); only the revision under test is ever rolled back"
            )
        latest_created = short_name(service.latest_created_revision)
        latest_ready = short_name(service.latest_ready_revision)
        if serving != latest_created or serving != latest_ready:
            raise RollbackRefused(
                f"the serving revision {serving} is not the service's latest deploy (latest created "
                f"{latest_created or 'none'}, latest ready {latest_ready or 'none'}; traffic: {where}): "
                "only a deploy that took the traffic is rolled back without --to; pass --to REVISION "
                "to choose one"
            )
        if serving not in by_name:
            raise RollbackRefused(f"the serving revision {serving} is not among the service's revisions")
        key = (by_name[serving].create_time, serving)
        older = [r for r in known if (r.create_time, r.name) < key]
        ready = [r for r in older if r.ready]
        if not ready:
            raise RollbackRefused(
                f"no Ready revision older than the serving one ({serving}) in service {env.service}: "
                "nothing to roll back to; pass --to REVISION to choose one"
            )
        target = ready[-1]
        skipped = [
            r.name
            for r in older
            if not r.ready and (r.create_time, r.name) > (target.create_time, target.name)
        ]
        reason = (
            f"the serving revision {serving} is the service's latest created and latest ready revision; "
            "this is the newest Ready revision created before it"
        )
        if skipped:
            reason += f"; skipped as not Ready: {', '.join(skipped)}"
        reason += "; pass --to REVISION to choose another"
    if traffic_.percent_for(current, target.name) >= 100:
        raise RollbackRefused(f"revision {target.name} already serves 100 % of traffic: nothing to roll back")

    tag_revisions = {t.tag: t.revision for t in current if t.tag}
    after = (
        TrafficShare(target.name, 100),
        *(
            TrafficShare(short_name(t.revision) or tag_revisions.get(t.tag, ""), 0, t.tag)
            for t in service.traffic
            if t.tag
        ),
    )
    return RollbackPlan(
        env=env,
        resource_name=name,
        current=current,
        serving=serving,
        target=target,
        reason=reason,
        after=after,
        service_proto=service,
    )
