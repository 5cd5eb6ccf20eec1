"""Applying a rollback plan through the Admin API: only the service's ``traffic`` is rewritten (the
target at 100 %, every tagged target kept at 0 % so tag URLs keep answering), the update carries the
``etag`` read for the plan so a service changed in between is refused rather than overwritten, and the
long-running operation is waited on, as ``gcloud run services update-traffic`` does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp import traffic as traffic_
from cloudrun_smoke.gcp.traffic import TrafficShare
from cloudrun_smoke.release.admin_api import call_admin_api
from cloudrun_smoke.release.plan import RollbackPlan


@dataclass(frozen=True)
class RollbackResult:
    """What a finished rollback left: the revision now at 100 %, the traffic reported, the time taken."""

    revision: str
    traffic: tuple[TrafficShare, ...]  # trafficStatuses reported by the finished operation
    seconds: float


def new_traffic(plan: RollbackPlan) -> list[Any]:
    """The ``traffic`` field sent: the target at 100 %, each tagged target as it was but at 0 %."""
    from google.cloud import run_v2

    revision_type = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
    targets = [run_v2.TrafficTarget(type_=revision_type, revision=plan.target.name, percent=100)]
    for t in plan.service_proto.traffic:
        if t.tag:
            targets.append(run_v2.TrafficTarget(type_=t.type_, revision=t.revision, tag=t.tag, percent=0))
    return targets


def apply_rollback(plan: RollbackPlan, services: Any, timeout: float = 300.0) -> RollbackResult:
    """Send the plan's traffic and wait (at most ``timeout`` seconds) for the operation to finish; the
    service read for the plan goes back whole (Cloud Run replaces the resource) with its ``etag``."""
    from google.api_core.future.polling import DEFAULT_POLLING
    from google.cloud import run_v2

    service = run_v2.Service.deserialize(run_v2.Service.serialize(plan.service_proto))
    service.traffic = new_traffic(plan)
    started = time.monotonic()
    operation = call_admin_api(
        plan.env, "update the service's traffic", lambda: services.update_service(service=service)
    )
    # Poll sooner than the client's default (1 s, then x1.5): a traffic change usually takes seconds.
    polling = DEFAULT_POLLING.with_delay(initial=0.25, multiplier=1.5, maximum=5.0)
    unfinished = (
        f"the traffic change of {plan.service} did not finish within {timeout:g} s; it may still "
        f"complete: gcloud run services describe {plan.service} --project {plan.project} --region {plan.region}"
    )
    updated = call_admin_api(
        plan.env,
        "finish the traffic change",
        lambda: operation.result(timeout=timeout, polling=polling),
        on_timeout=unfinished,
    )
    traffic = traffic_.shares(updated)
    served = traffic_.percent_for(traffic, plan.target.name)
    if served != 100:
        shown = ", ".join(f"{t.revision}={t.percent}%" for t in traffic)
        raise SmokeError(
            f"the operation finished but {plan.target.name} serves {served} %, not 100 % ({shown})"
        )
    return RollbackResult(plan.target.name, traffic, time.monotonic() - started)
