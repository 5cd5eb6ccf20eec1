"""Cloud Run Admin API v2 payloads: (a) served over loopback HTTP to the real ``run_v2`` REST clients
and read by discovery and the rollback; (b) the emulator's answer for the same situation has the same
shape."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.gcp.discovery import discover
from cloudrun_smoke.gcp.readiness import readiness
from cloudrun_smoke.local.json_api import JsonApiServer, Request, route
from cloudrun_smoke.local.run_api import RunApi
from cloudrun_smoke.local.run_model import Revision, RevisionSpec, RunState, Service, TrafficTarget
from cloudrun_smoke.release.apply import apply_rollback
from cloudrun_smoke.release.plan import RevisionInfo, RollbackPlan, RollbackRefused, plan_rollback
from cloudrun_smoke.waiting import wait_until
from helpers.shapes import Fixture, assert_same_shape, load

PROJECT, REGION, SERVICE = "emergence-prod", "europe-west1", "emergencev8-backend"
OLD, NEW, BAD = f"{SERVICE}-00041-vaw", f"{SERVICE}-00042-xoq", f"{SERVICE}-00043-kiz"
NAME = f"projects/{PROJECT}/locations/{REGION}/services/{SERVICE}"
LOCATION = "/v2/projects/{project}/locations/{location}"

# Fields Google sends that depend on who deployed with what tool; the local stack has no such facts.
DEPLOYER_FIELDS = ("creator", "lastModifier", "client", "clientVersion", "serviceAccount", "startupCpuBoost")


# -- (a) the fixtures served to the real clients ----------------------------------------------------------
class FixtureRunApi:
    """Answers GetService with one fixture, GetRevision with the ready or failed revision fixture
    (renamed to the revision asked for), UpdateService and GetOperation with the operation fixtures."""

    def __init__(self, service: str) -> None:
        self.service = load(service).payload
        self.patches: list[Any] = []

    def routes(self) -> list:
        services = LOCATION + "/services/{service}"
        operation = LOCATION + "/operations/{operation}"
        return [
            route("GET", services, lambda r: (200, self.service)),
            route("PATCH", services, self._patch),
            route("GET", services + "/revisions/{revision}", self._revision),
            route("GET", services + "/revisions", self._revisions),
            route("GET", operation, lambda r: (200, load("run_operation_update_service_done").payload)),
            route(
                "POST",
                operation + ":wait",
                lambda r: (200, load("run_operation_update_service_done").payload),
            ),
        ]

    def _revision(self, request: Request) -> tuple[int, Any]:
        name = request.params["revision"]
        body = copy.deepcopy(load("run_revision_failed" if name == BAD else "run_revision_ready").payload)
        body["name"] = f"{NAME}/revisions/{name}"
        return 200, body

    def _revisions(self, request: Request) -> tuple[int, Any]:
        """ListRevisions, newest first: the two ready revisions (the older one created 5 days before)."""
        _, newest = self._revision(Request("GET", "", {}, None, {"revision": NEW}))
        _, older = self._revision(Request("GET", "", {}, None, {"revision": OLD}))
        older["createTime"] = older["updateTime"] = "2026-11-20T16:12:09.220418Z"
        return 200, {"revisions": [newest, older]}

    def _patch(self, request: Request) -> tuple[int, Any]:
        self.patches.append(request.body)
        return 200, load("run_operation_update_service_running").payload


def clients(endpoint: str) -> tuple[run_v2.ServicesClient, run_v2.RevisionsClient]:
    options = {"api_endpoint": endpoint}
    return (
        run_v2.ServicesClient(transport="rest", credentials=AnonymousCredentials(), client_options=options),
        run_v2.RevisionsClient(transport="rest", credentials=AnonymousCredentials(), client_options=options),
    )


def env(endpoint: str) -> Environment:
    return Environment(
        name="prod",
        source="smoke.toml",
        project=PROJECT,
        region=REGION,
        service=SERVICE,
        run_api_endpoint=endpoint,
    )


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[FixtureRunApi, str]]:
    api = FixtureRunApi(request.param)
    server = JsonApiServer("run-fixtures", api.routes()).start()
    yield api, server.endpoint
    server.stop()


@pytest.mark.parametrize("served", ["run_service_latest_100"], indirect=True)
def test_latest_at_100_is_the_latest_ready_revision_at_100(served: tuple[FixtureRunApi, str]) -> None:
    _, endpoint = served
    target = discover(env(endpoint), *clients(endpoint))
    assert target.revision == NEW
    assert target.url == "https://emergencev8-backend-q3x7vbtzka-ew.a.run.app"
    assert target.revision_ready and target.service_ready
    assert target.percent_for(NEW) == 100, target.describe_traffic()


@pytest.mark.parametrize("served", ["run_service_latest_with_tagged_revision"], indirect=True)
def test_a_tagged_revision_at_0_is_not_the_revision_under_test(served: tuple[FixtureRunApi, str]) -> None:
    _, endpoint = served
    target = discover(env(endpoint), *clients(endpoint))
    assert target.revision == NEW, f"{target.revision} serves 0 %: {target.describe_traffic()}"
    assert target.percent_for(NEW) == 100


@pytest.mark.parametrize("served", ["run_service_latest_with_tagged_revision"], indirect=True)
def test_the_tagged_revision_through_its_tag_url(served: tuple[FixtureRunApi, str]) -> None:
    _, endpoint = served
    target = discover(env(endpoint), *clients(endpoint), tag="previous")
    assert (target.revision, target.candidate_tag) == (OLD, "previous")
    assert target.url == "https://previous---emergencev8-backend-q3x7vbtzka-ew.a.run.app"
    assert target.percent_for(OLD) == 0


@pytest.mark.parametrize("served", ["run_service_split_tagged"], indirect=True)
def test_an_explicit_split_serves_the_largest_share(served: tuple[FixtureRunApi, str]) -> None:
    _, endpoint = served
    target = discover(env(endpoint), *clients(endpoint))
    assert (target.revision, target.percent_for(OLD), target.percent_for(NEW)) == (OLD, 90, 10)
    canary = discover(env(endpoint), *clients(endpoint), tag="canary")
    assert (canary.revision, canary.url) == (
        NEW,
        "https://canary---emergencev8-backend-q3x7vbtzka-ew.a.run.app",
    )


@pytest.mark.parametrize("served", ["run_service_latest_named"], indirect=True)
def test_a_latest_status_that_names_its_revision(served: tuple[FixtureRunApi, str]) -> None:
    _, endpoint = served
    target = discover(env(endpoint), *clients(endpoint))
    assert (target.revision, target.percent_for(NEW)) == (NEW, 100)


@pytest.mark.parametrize("served", ["run_service_reconciling_failed_latest"], indirect=True)
def test_a_reconciling_service_with_a_failed_latest_revision(served: tuple[FixtureRunApi, str]) -> None:
    _, endpoint = served
    target = discover(env(endpoint), *clients(endpoint), reconcile_timeout=0)
    assert target.reconciling and not target.service_ready
    assert (target.latest_created_revision, target.latest_ready_revision) == (BAD, NEW)
    assert target.revision == NEW and target.revision_ready


@pytest.mark.parametrize("served", ["run_service_latest_named"], indirect=True)
def test_revisions_ready_and_failed(served: tuple[FixtureRunApi, str]) -> None:
    _, endpoint = served
    target = discover(env(endpoint), *clients(endpoint))
    assert target.image.startswith(
        "europe-west1-docker.pkg.dev/emergence-prod/services/emergencev8-backend@sha256:"
    )
    assert (target.memory, target.cpu, target.timeout_seconds) == ("2Gi", "2", 300)
    assert (target.min_instances, target.max_instances) == (1, 10)
    assert target.env_names == ("ENVIRONMENT", "GOOGLE_CLOUD_PROJECT")
    assert target.secret_env_names == ("ANTHROPIC_API_KEY",)
    assert target.revision_create_time is not None and target.revision_create_time.year == 2026
    _, revisions = clients(endpoint)
    failed = revisions.get_revision(name=f"{NAME}/revisions/{BAD}")
    ready, message = readiness(failed.conditions)
    assert not ready and "failed to start and listen on the port" in message


@pytest.mark.parametrize("served", ["run_service_latest_100"], indirect=True)
def test_a_rollback_plan_from_latest_at_100(served: tuple[FixtureRunApi, str]) -> None:
    _, endpoint = served
    plan = plan_rollback(env(endpoint), *clients(endpoint))
    assert (plan.serving, plan.target.name) == (NEW, OLD)


@pytest.mark.parametrize("served", ["run_service_latest_100"], indirect=True)
def test_a_rollback_to_the_revision_latest_already_serves_is_refused(
    served: tuple[FixtureRunApi, str],
) -> None:
    _, endpoint = served
    with pytest.raises(RollbackRefused, match="already serves 100 %"):
        plan_rollback(env(endpoint), *clients(endpoint), to=NEW)


@pytest.mark.parametrize("served", ["run_service_latest_100"], indirect=True)
def test_the_update_operation_is_followed_to_its_response(served: tuple[FixtureRunApi, str]) -> None:
    api, endpoint = served
    services, _ = clients(endpoint)
    service = services.get_service(name=NAME)
    plan = RollbackPlan(
        env=env(endpoint),
        resource_name=NAME,
        current=(),
        serving=NEW,
        target=RevisionInfo(OLD, service.create_time, True),
        reason="conformance",
        after=(),
        service_proto=service,
    )
    result = apply_rollback(plan, services, timeout=10)
    assert result.revision == OLD
    assert [(t.revision, t.percent) for t in result.traffic] == [(OLD, 100)]
    [sent] = api.patches
    # The REST client sends enums as numbers ($alt=json;enum-encoding=int): 2 is REVISION.
    assert sent["traffic"] == [{"type": 2, "revision": OLD, "percent": 100}]
    assert sent["etag"] == load("run_service_latest_100").payload["etag"]


# -- (b) the emulator in the same situations -----------------------------------------------------------------
def spec() -> RevisionSpec:
    return RevisionSpec(
        image="europe-west1-docker.pkg.dev/emergence-prod/services/emergencev8-backend:v42",
        env={"ENVIRONMENT": "production", "GOOGLE_CLOUD_PROJECT": PROJECT},
        secret_env={"ANTHROPIC_API_KEY": "anthropic-api-key:3"},
        memory="2Gi",
        cpu="2",
        min_instances=1,
        max_instances=10,
        cpu_idle=True,  # the fixtures' deploy: gcloud run deploy without --no-cpu-throttling
        startup_cpu_boost=True,
    )


def emulated(
    traffic: list[TrafficTarget], *, failed_latest: bool = False, reconciling: bool = False
) -> RunState:
    state = RunState()
    service = state.add(
        Service(PROJECT, REGION, SERVICE, uri="https://emergencev8-backend-q3x7vbtzka-ew.a.run.app")
    )
    service.revisions += [Revision(OLD, spec(), ready=True), Revision(NEW, spec(), ready=True)]
    if failed_latest:
        message = "The user-provided container failed to start and listen on the port defined provided by the PORT=8080 environment variable."
        service.revisions.append(Revision(BAD, spec(), ready=False, failure_message=message))
    service.traffic = traffic
    service.tag_uris = {
        t.tag: f"https://{t.tag}---emergencev8-backend-q3x7vbtzka-ew.a.run.app" for t in traffic if t.tag
    }
    service.reconciling = reconciling
    service.generation = 43 if reconciling else 42
    return state


@pytest.fixture
def emulator() -> Iterator[Any]:
    servers: list[JsonApiServer] = []

    def start(state: RunState) -> httpx.Client:
        server = JsonApiServer("run", RunApi(state, reconcile_delay=0.05).routes()).start()
        servers.append(server)
        return httpx.Client(base_url=f"{server.endpoint}/v2/", timeout=10)

    yield start
    for server in servers:
        server.stop()


def compare(fixture: Fixture, body: Any, *extra_optional: str) -> None:
    assert_same_shape(fixture, body, optional=(*DEPLOYER_FIELDS, *extra_optional))


def test_emulator_latest_at_100(emulator: Any) -> None:
    http = emulator(emulated([TrafficTarget(None, 100)]))
    compare(load("run_service_latest_100"), http.get(NAME).json())


def test_emulator_latest_with_a_tagged_revision(emulator: Any) -> None:
    http = emulator(emulated([TrafficTarget(None, 100), TrafficTarget(OLD, 0, "previous")]))
    compare(load("run_service_latest_with_tagged_revision"), http.get(NAME).json())


def test_emulator_explicit_split(emulator: Any) -> None:
    http = emulator(emulated([TrafficTarget(OLD, 90), TrafficTarget(NEW, 10, "canary")]))
    compare(load("run_service_split_tagged"), http.get(NAME).json())


def test_emulator_reconciling_with_a_failed_latest_revision(emulator: Any) -> None:
    http = emulator(emulated([TrafficTarget(None, 100)], failed_latest=True, reconciling=True))
    # Whether Ready carries the failure text while still reconciling is not documented; LATEST's
    # revision name is pinned by the LATEST tests above.
    compare(load("run_service_reconciling_failed_latest"), http.get(NAME).json(), "message", "revision")


def test_emulator_revisions(emulator: Any) -> None:
    http = emulator(emulated([TrafficTarget(None, 100)], failed_latest=True))
    # Revision labels (serving.knative.dev/...) and the execution environment are set by Cloud Run's
    # deploy path, which the local stack does not have; revisionReason names one failure kind.
    optional = ("labels", "executionEnvironment", "revisionReason")
    compare(load("run_revision_ready"), http.get(f"{NAME}/revisions/{NEW}").json(), *optional)
    compare(load("run_revision_failed"), http.get(f"{NAME}/revisions/{BAD}").json(), *optional)


def test_emulator_update_operation(emulator: Any) -> None:
    http = emulator(emulated([TrafficTarget(NEW, 100)]))
    traffic = [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": OLD, "percent": 100}]
    answer = http.patch(NAME, json={"name": NAME, "traffic": traffic}).json()
    compare(load("run_operation_update_service_running"), answer)

    def finished() -> Any:
        body = http.get(answer["name"]).json()
        return body if body.get("done") else None

    done = wait_until(
        finished,
        timeout=10,
        what="the emulator's UpdateService operation to finish",
        interval=0.05,
    )
    compare(load("run_operation_update_service_done"), done)
