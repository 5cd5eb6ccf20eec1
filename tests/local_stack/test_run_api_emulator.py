"""The Cloud Run Admin API emulator, driven through the real ``google-cloud-run`` REST clients."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp.discovery import discover
from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.run_api import RunApi
from cloudrun_smoke.local.run_model import Revision, RevisionSpec, RunState, Service, TrafficTarget

SERVICE = "projects/p1/locations/europe-west1/services/emergence-app"


@pytest.fixture
def state() -> RunState:
    state = RunState()
    service = state.add(Service("p1", "europe-west1", "emergence-app", uri="http://127.0.0.1:9"))
    spec = RevisionSpec(
        image="gcr.io/p1/emergence-app:v1",
        env={"ENVIRONMENT": "production", "DATABASE_URL": "postgres://user:hunter2@db/x"},
        secret_env={"ANTHROPIC_API_KEY": "anthropic-key:3"},
        memory="2Gi",
        cpu="2",
        min_instances=1,
        max_instances=10,
    )
    for i in range(1, 4):
        service.revisions.append(Revision(f"emergence-app-0000{i}-abc", spec, ready=True))
    service.traffic = [TrafficTarget(None, 100)]
    return state


@pytest.fixture
def endpoint(state: RunState) -> Iterator[str]:
    server = JsonApiServer("run", RunApi(state).routes()).start()
    yield server.endpoint
    server.stop()


def clients(endpoint: str) -> tuple[run_v2.ServicesClient, run_v2.RevisionsClient]:
    options = {"api_endpoint": endpoint}
    return (
        run_v2.ServicesClient(transport="rest", credentials=AnonymousCredentials(), client_options=options),
        run_v2.RevisionsClient(transport="rest", credentials=AnonymousCredentials(), client_options=options),
    )


def test_get_service_gives_the_fields_discovery_needs(endpoint: str) -> None:
    services, _ = clients(endpoint)
    service = services.get_service(name=SERVICE)
    assert service.uri == "http://127.0.0.1:9"
    assert service.latest_ready_revision == f"{SERVICE}/revisions/emergence-app-00003-abc"
    assert service.latest_created_revision == service.latest_ready_revision
    assert service.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert not service.reconciling
    [status] = service.traffic_statuses
    latest = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
    # A LATEST status names no revision on the v2 API (see cloudrun_smoke.gcp.traffic).
    assert (status.type_, status.revision, status.percent) == (latest, "", 100)
    assert service.traffic[0].type_ == latest
    container = service.template.containers[0]
    assert container.image == "gcr.io/p1/emergence-app:v1"
    assert dict(container.resources.limits) == {"memory": "2Gi", "cpu": "2"}
    secret = next(e for e in container.env if e.name == "ANTHROPIC_API_KEY")
    assert (secret.value_source.secret_key_ref.secret, secret.value_source.secret_key_ref.version) == (
        "anthropic-key",
        "3",
    )


def test_list_revisions_pages_newest_first(endpoint: str) -> None:
    _, revisions = clients(endpoint)
    pager = revisions.list_revisions(request=run_v2.ListRevisionsRequest(parent=SERVICE, page_size=1))
    pages = list(pager.pages)
    assert len(pages) == 3
    names = [r.name.rsplit("/", 1)[-1] for page in pages for r in page.revisions]
    assert names == ["emergence-app-00003-abc", "emergence-app-00002-abc", "emergence-app-00001-abc"]


def test_get_revision_and_unknown_names_raise_not_found(endpoint: str) -> None:
    services, revisions = clients(endpoint)
    revision = revisions.get_revision(name=f"{SERVICE}/revisions/emergence-app-00001-abc")
    assert revision.scaling.min_instance_count == 1
    assert revision.timeout.total_seconds() == 300
    with pytest.raises(gexc.NotFound):
        services.get_service(name="projects/p1/locations/europe-west1/services/nope")
    with pytest.raises(gexc.NotFound):
        revisions.get_revision(name=f"{SERVICE}/revisions/nope")


def _env(endpoint: str, service: str = "emergence-app") -> Environment:
    return Environment(
        name="t",
        source="smoke.toml",
        project="p1",
        region="europe-west1",
        service=service,
        run_api_endpoint=endpoint,
    )


def test_discovery_keeps_env_names_and_drops_values(endpoint: str) -> None:
    target = discover(_env(endpoint), *clients(endpoint))
    assert target.revision == "emergence-app-00003-abc"
    assert target.revision_ready and target.service_ready
    assert (target.memory, target.cpu, target.min_instances, target.max_instances) == ("2Gi", "2", 1, 10)
    assert target.env_names == ("DATABASE_URL", "ENVIRONMENT")
    assert target.secret_env_names == ("ANTHROPIC_API_KEY",)
    assert "hunter2" not in repr(target)


def test_discovery_names_a_failed_deploy(state: RunState, endpoint: str) -> None:
    service = state.get(SERVICE)
    assert service is not None
    service.revisions.append(
        Revision(
            "emergence-app-00004-bad", service.revisions[0].spec, ready=False, failure_message="exit code 1"
        )
    )
    service.traffic = [TrafficTarget("emergence-app-00003-abc", 100)]
    target = discover(_env(endpoint), *clients(endpoint))
    assert target.revision == "emergence-app-00003-abc"
    assert target.latest_created_revision == "emergence-app-00004-bad"
    assert target.latest_ready_revision == "emergence-app-00003-abc"
    assert not target.service_ready and "exit code 1" in target.service_ready_message


def test_discovery_errors_are_one_actionable_line(endpoint: str) -> None:
    with pytest.raises(SmokeError, match=r"not found in project 'p1'.*gcloud run services list"):
        discover(_env(endpoint, service="nope"), *clients(endpoint))
    dead = "http://127.0.0.1:9"
    with pytest.raises(
        SmokeError,
        match=re.escape("cannot read the service through the Cloud Run Admin API at http://127.0.0.1:9"),
    ):
        discover(_env(dead), *clients(dead))


def _revision_target(name: str, percent: int, tag: str = "") -> run_v2.TrafficTarget:
    return run_v2.TrafficTarget(
        type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
        revision=name,
        percent=percent,
        tag=tag,
    )


def test_update_service_moves_traffic_through_a_long_running_operation(endpoint: str) -> None:
    services, _ = clients(endpoint)
    service = services.get_service(name=SERVICE)
    del service.traffic[:]
    service.traffic.extend(
        [
            _revision_target("emergence-app-00003-abc", 50),
            _revision_target("emergence-app-00002-abc", 50),
            _revision_target("emergence-app-00001-abc", 0, tag="canary"),
        ]
    )
    operation = services.update_service(service=service)
    updated = operation.result(timeout=30)
    assert operation.done()
    split = {(t.revision, t.percent, t.tag) for t in updated.traffic_statuses}
    assert split == {
        ("emergence-app-00003-abc", 50, ""),
        ("emergence-app-00002-abc", 50, ""),
        ("emergence-app-00001-abc", 0, "canary"),
    }
    again = services.get_service(name=SERVICE)
    assert not again.reconciling and again.generation == service.generation + 1
    assert {(t.revision, t.percent) for t in again.traffic_statuses} == {(r, p) for r, p, _ in split}
    # The operation stays readable by name, as on Google's API.
    read = services.get_operation(request={"name": operation.operation.name})
    assert read.done and read.name == operation.operation.name


def test_service_reconciles_while_the_operation_runs(state: RunState, endpoint: str) -> None:
    services, _ = clients(endpoint)
    service = services.get_service(name=SERVICE)
    del service.traffic[:]
    service.traffic.append(_revision_target("emergence-app-00002-abc", 100))
    operation = services.update_service(service=service)
    during = services.get_service(name=SERVICE)
    assert during.reconciling and during.observed_generation == during.generation - 1
    assert [t.revision for t in during.traffic_statuses] == [""]  # still LATEST
    operation.result(timeout=30)
    after = services.get_service(name=SERVICE)
    assert not after.reconciling and [t.revision for t in after.traffic_statuses] == [
        "emergence-app-00002-abc"
    ]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([("emergence-app-00003-abc", 60), ("emergence-app-00002-abc", 30)], "sum to 100"),
        ([("emergence-app-00009-zzz", 100)], "does not exist"),
        ([("emergence-app-00003-abc", 100, "Bad_Tag")], "tag"),
        ([("emergence-app-00003-abc", 100, "t"), ("emergence-app-00002-abc", 0, "t")], "only one target"),
        ([("emergence-app-00004-bad", 100)], "not ready"),
    ],
)
def test_invalid_traffic_is_refused_before_any_operation(
    state: RunState, endpoint: str, targets: list[tuple], message: str
) -> None:
    svc = state.get(SERVICE)
    assert svc is not None
    svc.revisions.insert(0, Revision("emergence-app-00004-bad", svc.revisions[0].spec, ready=False))
    services, _ = clients(endpoint)
    service = services.get_service(name=SERVICE)
    del service.traffic[:]
    service.traffic.extend(_revision_target(*t) for t in targets)
    with pytest.raises(gexc.BadRequest, match=message):
        services.update_service(service=service)
    assert not services.get_service(name=SERVICE).reconciling
    assert state.operations == {}


def test_a_changed_image_is_refused_not_ignored(endpoint: str) -> None:
    services, _ = clients(endpoint)
    service = services.get_service(name=SERVICE)
    service.template.containers[0].image = "gcr.io/p1/emergence-app:v2"
    with pytest.raises(gexc.BadRequest, match="cannot build a revision"):
        services.update_service(service=service)


def test_unknown_operation_is_not_found(endpoint: str) -> None:
    services, _ = clients(endpoint)
    with pytest.raises(gexc.NotFound):
        services.get_operation(request={"name": "projects/p1/locations/europe-west1/operations/nope"})
