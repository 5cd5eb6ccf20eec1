"""Traffic as the Cloud Run Admin API v2 reports it, read by discovery and the rollback through the real
``run_v2`` REST clients against the emulator.

The shape pinned here: a ``trafficStatuses`` entry of type ``TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST``
carries no ``revision``; it follows the service's latest ready revision. Sources: googleapis/googleapis
``google/cloud/run/v2/traffic_target.proto`` (``TrafficTargetStatus.revision``: "Revision to which this
traffic is sent"; ``TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST``: "Allocates instances to the Service's
latest ready Revision"), the Terraform provider's ``google_cloud_run_v2_service`` page
(registry.terraform.io/providers/hashicorp/google/latest/docs/resources/cloud_run_v2_service,
``traffic_statuses``), whose real states hold ``revision = ""`` for a LATEST target, against v1's
``ServiceStatus.traffic``: "These entries will always contain RevisionName references"
(cloud.google.com/run/docs/reference/rest/v1/namespaces.services). Neither v2 page states the empty
name in words. A payload that names the revision anyway (``status_names_latest``) must read the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.gcp import traffic
from cloudrun_smoke.gcp.clients import run_clients
from cloudrun_smoke.gcp.discovery import discover
from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.run_api import RunApi
from cloudrun_smoke.local.run_model import Revision, RevisionSpec, RunState, Service, TrafficTarget
from cloudrun_smoke.release.plan import RollbackRefused, plan_rollback
from cloudrun_smoke.timeutil import utcnow

PROJECT, REGION, NAME = "p1", "europe-west1", "emergence-app"
RESOURCE = f"projects/{PROJECT}/locations/{REGION}/services/{NAME}"
R1, R2, R3 = (f"{NAME}-0000{i}-abc" for i in (1, 2, 3))
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST

LAYOUTS = {
    "latest-100": [TrafficTarget(None, 100)],
    "latest-100-and-a-tag-at-0": [TrafficTarget(None, 100), TrafficTarget(R2, 0, "previous")],
    "latest-90-split-with-10": [TrafficTarget(None, 90), TrafficTarget(R2, 10)],
    "explicit-split": [TrafficTarget(R3, 90), TrafficTarget(R2, 10)],
}


class Api:
    def __init__(self, state: RunState, endpoint: str) -> None:
        self.state = state
        self.env = Environment(
            name="t", source="test", project=PROJECT, region=REGION, service=NAME, run_api_endpoint=endpoint
        )
        self.services, self.revisions = run_clients(self.env, AnonymousCredentials())

    def lay_out(self, targets: list[TrafficTarget], *, names_latest: bool = False) -> run_v2.Service:
        with self.state.lock:
            service = self.state.get(RESOURCE)
            assert service is not None
            service.traffic = list(targets)
            service.status_names_latest = names_latest
        return self.services.get_service(name=RESOURCE)


@pytest.fixture
def api() -> Iterator[Api]:
    state = RunState()
    service = state.add(Service(PROJECT, REGION, NAME, uri="http://127.0.0.1:9"))
    spec = RevisionSpec(image="gcr.io/p1/emergence-app:v1")
    start = utcnow() - timedelta(hours=1)
    for i, name in enumerate((R1, R2, R3)):
        service.revisions.append(Revision(name, spec, create_time=start + timedelta(minutes=i), ready=True))
    server = JsonApiServer("run", RunApi(state, reconcile_delay=0).routes()).start()
    try:
        yield Api(state, server.endpoint)
    finally:
        server.stop()


def test_the_emulator_reports_latest_without_a_revision_name(api: Api) -> None:
    service = api.lay_out(LAYOUTS["latest-100-and-a-tag-at-0"])
    latest, tagged = service.traffic_statuses
    assert (latest.type_, latest.revision, latest.percent) == (LATEST, "", 100)
    assert (tagged.revision, tagged.percent, tagged.tag) == (R2, 0, "previous")
    assert service.latest_ready_revision == f"{RESOURCE}/revisions/{R3}"


@pytest.mark.parametrize("names_latest", [False, True], ids=["api-shape", "payload-names-revision"])
@pytest.mark.parametrize(
    ("layout", "serving", "shares"),
    [
        ("latest-100", R3, {R3: 100}),
        ("latest-100-and-a-tag-at-0", R3, {R3: 100, R2: 0}),
        ("latest-90-split-with-10", R3, {R3: 90, R2: 10}),
        ("explicit-split", R3, {R3: 90, R2: 10}),
    ],
)
def test_discovery_tests_the_revision_that_serves(
    api: Api, layout: str, serving: str, shares: dict[str, int], names_latest: bool
) -> None:
    api.lay_out(LAYOUTS[layout], names_latest=names_latest)
    target = discover(api.env, api.services, api.revisions, reconcile_timeout=5)
    assert target.revision == serving
    assert {r: target.percent_for(r) for r in shares} == shares
    assert target.revision_ready
    if layout.startswith("latest"):
        assert f"{R3}={shares[R3]}% (LATEST)" in target.describe_traffic()


@pytest.mark.parametrize("names_latest", [False, True], ids=["api-shape", "payload-names-revision"])
def test_the_rollback_sees_the_latest_share(api: Api, names_latest: bool) -> None:
    api.lay_out(LAYOUTS["latest-100-and-a-tag-at-0"], names_latest=names_latest)
    plan = plan_rollback(api.env, api.services, api.revisions)
    assert (plan.serving, plan.target.name) == (R3, R2)
    assert [(t.revision, t.percent, t.tag) for t in plan.after] == [(R2, 100, ""), (R2, 0, "previous")]

    with pytest.raises(RollbackRefused, match=f"revision {R3} already serves 100 % of traffic"):
        plan_rollback(api.env, api.services, api.revisions, to=R3)


def test_latest_with_no_ready_revision_serves_nobody() -> None:
    service = run_v2.Service(
        traffic_statuses=[run_v2.TrafficTargetStatus(type_=LATEST, percent=100)], latest_ready_revision=""
    )
    [share] = traffic.shares(service)
    assert (share.revision, share.latest) == ("", True)
    assert traffic.serving([share]) == ""
