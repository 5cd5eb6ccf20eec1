"""The local front end: service URL and tag URL, traffic split, instances and request logs, driven
through the real ``google-cloud-run`` and ``google-cloud-logging`` clients."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from cloudrun_smoke.local.stack import LocalStack
from cloudrun_smoke.waiting import wait_until
from helpers.log_entries import logging_client
from helpers.paths import TINY
from helpers.stacks import tiny_stack_config

PROJECT = "front-test"
SERVICE = f"projects/{PROJECT}/locations/us-central1/services/tiny"
REQUESTS = f"projects/{PROJECT}/logs/run.googleapis.com%2Frequests"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    config = tiny_stack_config(PROJECT, instances=2, candidate_cmd=TINY, tag="canary", reconcile_delay=0.05)
    with LocalStack(config) as stack:
        yield stack


def services_client(stack: LocalStack) -> run_v2.ServicesClient:
    return run_v2.ServicesClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": stack.run_api_endpoint},
    )


def entries(stack: LocalStack, filter_: str, count: int = 1) -> list:
    client = logging_client(stack.logging_api_endpoint, PROJECT)
    return wait_until(
        lambda: found if len(found := list(client.list_entries(filter_=filter_))) >= count else None,
        timeout=10,
        what=f"{count} entries matching {filter_}",
        interval=0.1,
    )


def test_the_admin_api_describes_the_front_end_urls_and_the_tagged_candidate(stack: LocalStack) -> None:
    service = services_client(stack).get_service(name=SERVICE)
    assert service.uri == stack.service_url and list(service.urls) == [stack.service_url]
    serving, candidate = stack.serving_revision, stack.candidate_revision
    assert serving and candidate and serving != candidate
    statuses = {(t.revision, t.percent, t.tag, t.uri) for t in service.traffic_statuses}
    assert statuses == {(serving, 100, "", ""), (candidate, 0, "canary", stack.tag_url("canary"))}
    assert service.latest_ready_revision.endswith(candidate)
    # No instance's own port is published: every request goes through the front end.
    instance_urls = {i.url for i in stack.instances}
    assert stack.service_url not in instance_urls and stack.tag_url("canary") not in instance_urls


def test_the_candidate_is_reachable_only_through_its_tag_url(stack: LocalStack) -> None:
    via_service = {httpx.get(f"{stack.service_url}/who").json()["revision"] for _ in range(10)}
    via_tag = {httpx.get(f"{stack.tag_url('canary')}/who").json()["revision"] for _ in range(4)}
    assert via_service == {stack.serving_revision}
    assert via_tag == {stack.candidate_revision}


def test_requests_spread_round_robin_over_the_instances(stack: LocalStack) -> None:
    assert stack.serving_revision is not None
    pids = {i.pid for i in stack.instances_of(stack.serving_revision)}
    assert len(pids) == 2
    seen = Counter(httpx.get(f"{stack.service_url}/who").json()["pid"] for _ in range(6))
    assert set(seen) == pids and set(seen.values()) == {3}


def test_each_instance_holds_its_own_state(stack: LocalStack) -> None:
    created = httpx.post(f"{stack.service_url}/objects", json={"title": "only here"})
    assert created.status_code == 201
    object_id = created.json()["id"]
    statuses = sorted(httpx.get(f"{stack.service_url}/objects/{object_id}").status_code for _ in range(2))
    assert statuses == [200, 404]


def test_the_front_end_adds_forwarding_and_trace_headers(stack: LocalStack) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    echoed = httpx.get(
        f"{stack.service_url}/headers",
        headers={"X-Cloud-Trace-Context": f"{trace}/1;o=1", "X-Forwarded-For": "203.0.113.7"},
    ).json()
    assert echoed["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert echoed["x-forwarded-proto"] == "http"
    assert echoed["host"] == stack.service_url.removeprefix("http://")
    assert echoed["x-cloud-trace-context"].startswith(f"{trace}/")
    assert echoed["traceparent"].startswith(f"00-{trace}-") and echoed["traceparent"].endswith("-01")


def test_one_request_log_entry_per_request_with_cloud_runs_fields(stack: LocalStack) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    response = httpx.get(
        f"{stack.service_url}/logged?x=1",
        headers={"User-Agent": "front-end-test/1", "X-Cloud-Trace-Context": f"{trace}/7;o=1"},
    )
    assert response.status_code == 200
    assert response.headers["server"] == "Google Frontend"
    [entry] = entries(stack, f'logName="{REQUESTS}" AND httpRequest.userAgent="front-end-test/1"')
    request = entry.http_request
    assert request["requestMethod"] == "GET"
    assert request["requestUrl"] == f"{stack.service_url}/logged?x=1"
    assert request["status"] == 200
    assert request["remoteIp"] == "127.0.0.1"
    assert request["latency"].endswith("s") and float(request["latency"][:-1]) > 0
    assert int(request["responseSize"]) == len(response.content) and int(request["requestSize"]) > 0
    assert entry.severity == "INFO"
    assert entry.trace == f"projects/{PROJECT}/traces/{trace}"
    assert entry.resource.labels["revision_name"] == stack.serving_revision
    instance_id = entry.labels["instanceId"]
    assert stack.serving_revision is not None
    assert instance_id in {i.instance_id for i in stack.instances_of(stack.serving_revision)}
    # The app's own line for this request carries the same instance id.
    [app_line] = entries(stack, 'textPayload="request /logged?x=1"')
    assert app_line.labels["instanceId"] == instance_id


def test_request_log_severity_follows_the_status(stack: LocalStack) -> None:
    assert (
        httpx.get(f"{stack.service_url}/objects/nope", headers={"User-Agent": "sev-test"}).status_code == 404
    )
    [entry] = entries(stack, f'logName="{REQUESTS}" AND httpRequest.userAgent="sev-test"')
    assert (entry.http_request["status"], entry.severity) == (404, "WARNING")
    assert entries(stack, f'logName="{REQUESTS}" AND httpRequest.status>=404 AND severity=WARNING')


def test_update_service_splits_traffic_50_50_over_200_requests(stack: LocalStack) -> None:
    services = services_client(stack)
    serving, candidate = stack.serving_revision, stack.candidate_revision
    assert serving and candidate
    kind = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
    original = services.get_service(name=SERVICE)
    service = services.get_service(name=SERVICE)
    del service.traffic[:]
    service.traffic.extend(
        [
            run_v2.TrafficTarget(type_=kind, revision=serving, percent=50),
            run_v2.TrafficTarget(type_=kind, revision=candidate, percent=50, tag="canary"),
        ]
    )
    try:
        services.update_service(service=service).result(timeout=30)
        with httpx.Client() as client:
            hits = Counter(client.get(f"{stack.service_url}/split").json()["revision"] for _ in range(200))
        share = hits[candidate] / 200
        print(f"observed split: {dict(hits)}")
        assert 0.4 <= share <= 0.6 and hits[serving] + hits[candidate] == 200
        # The tag URL still reaches only the candidate.
        assert httpx.get(f"{stack.tag_url('canary')}/t").json()["revision"] == candidate
    finally:
        services.update_service(service=original).result(timeout=30)
    assert {t.revision: t.percent for t in services.get_service(name=SERVICE).traffic_statuses} == {
        serving: 100,
        candidate: 0,
    }


def test_removing_a_tag_closes_its_url(stack: LocalStack) -> None:
    services = services_client(stack)
    original = services.get_service(name=SERVICE)
    url = stack.tag_url("canary")
    service = services.get_service(name=SERVICE)
    kept = [t for t in service.traffic if not t.tag]
    del service.traffic[:]
    service.traffic.extend(kept)
    try:
        services.update_service(service=service).result(timeout=30)
        assert "canary" not in stack.tag_urls
        wait_until(
            lambda: _refused(url) or None, timeout=10, what="the removed tag's URL to close", interval=0.05
        )
    finally:
        services.update_service(service=original).result(timeout=30)
    assert httpx.get(f"{stack.tag_url('canary')}/back").json()["revision"] == stack.candidate_revision


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.ConnectError:
        return True
    return False
