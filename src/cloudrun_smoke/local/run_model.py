"""The local Cloud Run's state: services, their revisions and traffic, rendered in the Admin API v2
REST shapes that ``run_v2`` parses."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloudrun_smoke.timeutil import format_rfc3339, utcnow


@dataclass
class RevisionSpec:
    """What a deploy asks for: the container and its settings, as ``gcloud run deploy`` sets them."""

    image: str
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict)  # name -> "secret:version"
    memory: str = "512Mi"
    cpu: str = "1"
    timeout_seconds: int = 300
    min_instances: int = 0
    max_instances: int = 100
    # CPU only while a request is served (request-based billing). False when unset: run/v2
    # ResourceRequirements.cpu_idle "must be explicitly set to true" once limits are set, which a deploy
    # without --no-cpu-throttling does (a real v2 payload: cpuIdle true).
    cpu_idle: bool = False
    startup_cpu_boost: bool = False
    # Service faults of this revision only, beside the stack's (the regression checks' revision under
    # test): given to its processes, never reported by the Admin API.
    faults: tuple[str, ...] = ()


@dataclass
class Revision:
    name: str
    spec: RevisionSpec
    create_time: datetime = field(default_factory=utcnow)
    ready: bool = False
    failure_message: str = ""
    url: str = ""


@dataclass
class TrafficTarget:
    revision: str | None  # None: LATEST
    percent: int
    tag: str = ""


@dataclass
class Service:
    project: str
    region: str
    name: str
    revisions: list[Revision] = field(default_factory=list)
    traffic: list[TrafficTarget] = field(default_factory=list)
    uri: str = ""
    tag_uris: dict[str, str] = field(default_factory=dict)
    custom_audiences: tuple[str, ...] = ()  # further ID-token audiences Cloud Run IAM accepts
    generation: int = 1
    reconciling: bool = False
    create_time: datetime = field(default_factory=utcnow)
    update_time: datetime = field(default_factory=utcnow)
    # The v2 API reports a LATEST traffic status with an empty ``revision``; True fills the name in
    # (the shape some tools and caches produce), so the harness is tested against both.
    status_names_latest: bool = False

    @property
    def resource_name(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/services/{self.name}"

    def revision_resource_name(self, revision: str) -> str:
        return f"{self.resource_name}/revisions/{revision}"

    def latest_created(self) -> Revision | None:
        return self.revisions[-1] if self.revisions else None

    def latest_ready(self) -> Revision | None:
        return next((r for r in reversed(self.revisions) if r.ready), None)

    def find_revision(self, name: str) -> Revision | None:
        return next((r for r in self.revisions if r.name == name), None)

    def resolved_traffic(self) -> list[TrafficTarget]:
        """Traffic with LATEST resolved to the latest ready revision: where requests go (the front end
        routes by it). ``trafficStatuses`` does not name a LATEST target's revision: see
        :func:`traffic_statuses`."""
        latest = self.latest_ready()
        return [
            TrafficTarget(t.revision or (latest.name if latest else None), t.percent, t.tag)
            for t in self.traffic
        ]


_LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
_REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
_ALLOCATION: dict[Any, str] = {0: "", 1: _LATEST, 2: _REVISION}
_TAG = re.compile(r"^[a-z]([-a-z0-9]{0,44}[a-z0-9])?$")


def parse_traffic(service: Service, raw: Iterable[dict[str, Any]]) -> list[TrafficTarget]:
    """A ``traffic`` list of an UpdateService request, validated as Cloud Run does; ``ValueError``
    says which rule it breaks."""
    targets: list[TrafficTarget] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ValueError("traffic: each target must be an object")
        # Clients send enums as names or, with ``$alt=json;enum-encoding=int``, as numbers.
        kind = _ALLOCATION.get(item.get("type"), item.get("type")) or (
            _REVISION if item.get("revision") else _LATEST
        )
        revision = str(item.get("revision") or "").rsplit("/", 1)[-1]
        percent = item.get("percent", 0)
        tag = str(item.get("tag") or "")
        if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
            raise ValueError(f"traffic: percent must be a whole number from 0 to 100, got {percent!r}")
        if kind == _LATEST:
            if revision:
                raise ValueError("traffic: a LATEST target must not name a revision")
            targets.append(TrafficTarget(None, percent, tag))
            continue
        if kind != _REVISION:
            raise ValueError(f"traffic: unknown allocation type {kind!r}")
        found = service.find_revision(revision)
        if found is None:
            raise ValueError(f"traffic: Revision named '{revision}' does not exist.")
        if not found.ready and percent > 0:
            raise ValueError(f"traffic: Revision '{revision}' is not ready and cannot serve traffic.")
        targets.append(TrafficTarget(revision, percent, tag))
    if not targets:
        raise ValueError("traffic: at least one target is required")
    if sum(t.percent for t in targets) != 100:
        raise ValueError(f"traffic: percents must sum to 100, got {sum(t.percent for t in targets)}")
    tags = [t.tag for t in targets if t.tag]
    for tag in tags:
        if not _TAG.match(tag):
            raise ValueError(f"traffic: tag {tag!r} must be lower-case letters, digits and '-'")
    if len(tags) != len(set(tags)):
        raise ValueError("traffic: each tag may name only one target")
    return targets


@dataclass
class Operation:
    """A long-running operation of the Admin API; ``response`` is set when it is done."""

    name: str
    metadata: dict[str, Any]
    done: bool = False
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "metadata": {"@type": SERVICE_TYPE, **self.metadata},
            "done": self.done,
        }
        if self.error is not None:
            body["error"] = self.error
        elif self.done and self.response is not None:
            body["response"] = {"@type": SERVICE_TYPE, **self.response}
        return body


SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"


class RunState:
    """All services of the local Cloud Run, shared by the emulator and the stack."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._services: dict[str, Service] = {}
        self.operations: dict[str, Operation] = {}

    def add(self, service: Service) -> Service:
        with self.lock:
            self._services[service.resource_name] = service
        return service

    def get(self, resource_name: str) -> Service | None:
        with self.lock:
            return self._services.get(resource_name)

    def in_location(self, project: str, region: str) -> list[Service]:
        with self.lock:
            return [s for s in self._services.values() if (s.project, s.region) == (project, region)]


def _condition(
    ready: bool, message: str, when: datetime, reconciling: bool = False, type_: str = "Ready"
) -> dict[str, Any]:
    state = "CONDITION_RECONCILING" if reconciling else "CONDITION_SUCCEEDED" if ready else "CONDITION_FAILED"
    condition: dict[str, Any] = {"type": type_, "state": state, "lastTransitionTime": format_rfc3339(when)}
    if message:
        condition["message"] = message
    return condition


def _container(spec: RevisionSpec) -> dict[str, Any]:
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in spec.env.items()]
    for name, ref in spec.secret_env.items():
        secret, _, version = ref.partition(":")
        env.append(
            {
                "name": name,
                "valueSource": {"secretKeyRef": {"secret": secret, "version": version or "latest"}},
            }
        )
    return {
        "image": spec.image,
        "env": env,
        # Cloud Run's defaults as its API reports them (a google_cloud_run_v2_service state read back
        # from the API: a TCP startup probe on the port, 240 s / 240 s / 1). cpuIdle and
        # startupCpuBoost are plain proto3 bools: false is omitted from the JSON.
        "resources": _resources(spec),
        "ports": [{"name": "http1", "containerPort": 8080}],
        "startupProbe": _DEFAULT_STARTUP_PROBE,
    }


def _resources(spec: RevisionSpec) -> dict[str, Any]:
    resources: dict[str, Any] = {"limits": {"memory": spec.memory, "cpu": spec.cpu}}
    if spec.cpu_idle:
        resources["cpuIdle"] = True
    if spec.startup_cpu_boost:
        resources["startupCpuBoost"] = True
    return resources


_DEFAULT_STARTUP_PROBE = {
    "timeoutSeconds": 240,
    "periodSeconds": 240,
    "failureThreshold": 1,
    "tcpSocket": {"port": 8080},
}
_DEFAULT_CONCURRENCY = 80


def _etag(resource_name: str, generation: int) -> str:
    """Opaque and quoted like Cloud Run's; changes with the generation."""
    return '"' + base64.urlsafe_b64encode(f"{generation}/{resource_name}".encode()).decode().rstrip("=") + '"'


def revision_json(service: Service, revision: Revision) -> dict[str, Any]:
    spec = revision.spec
    project, region = service.project, service.region
    return {
        "name": service.revision_resource_name(revision.name),
        "uid": f"uid-{revision.name}",
        "generation": "1",
        "createTime": format_rfc3339(revision.create_time),
        "updateTime": format_rfc3339(revision.create_time),
        "launchStage": "GA",
        "service": service.name,
        "containers": [_container(spec)],
        "scaling": {"minInstanceCount": spec.min_instances, "maxInstanceCount": spec.max_instances},
        "maxInstanceRequestConcurrency": _DEFAULT_CONCURRENCY,
        "timeout": f"{spec.timeout_seconds}s",
        "conditions": [_condition(revision.ready, revision.failure_message, revision.create_time)],
        "observedGeneration": "1",
        "reconciling": False,
        "logUri": (
            "https://console.cloud.google.com/logs/viewer?project="
            f"{project}&resource=cloud_run_revision/service_name/{service.name}/revision_name/{revision.name}"
            f"&location={region}"
        ),
        "etag": _etag(service.revision_resource_name(revision.name), 1),
    }


def service_json(service: Service) -> dict[str, Any]:
    latest_created = service.latest_created()
    latest_ready = service.latest_ready()
    template = latest_created.spec if latest_created else RevisionSpec(image="")
    failed = latest_created is not None and not latest_created.ready
    message = (
        f"Revision '{latest_created.name}' is not ready and cannot serve traffic. {latest_created.failure_message}"
        if failed and latest_created
        else ""
    )
    body: dict[str, Any] = {
        "name": service.resource_name,
        "uid": f"uid-{service.name}",
        "generation": str(service.generation),
        "createTime": format_rfc3339(service.create_time),
        "updateTime": format_rfc3339(service.update_time),
        "ingress": "INGRESS_TRAFFIC_ALL",
        "launchStage": "GA",
        "template": {
            "containers": [_container(template)],
            "scaling": {
                "minInstanceCount": template.min_instances,
                "maxInstanceCount": template.max_instances,
            },
            "timeout": f"{template.timeout_seconds}s",
            "maxInstanceRequestConcurrency": _DEFAULT_CONCURRENCY,
        },
        "traffic": [_traffic_json(t, service, status=False) for t in service.traffic],
        "trafficStatuses": traffic_statuses(service),
        "observedGeneration": str(service.generation - (1 if service.reconciling else 0)),
        "terminalCondition": _condition(not failed, message, service.create_time, service.reconciling),
        # Ready is the terminal condition; the others are RoutesReady and ConfigurationsReady (as read
        # back from the API in a google_cloud_run_v2_service state).
        "conditions": [
            _condition(True, "", service.create_time, type_="RoutesReady"),
            _condition(not failed, message, service.create_time, type_="ConfigurationsReady"),
        ],
        "reconciling": service.reconciling,
        "uri": service.uri,
        "urls": [service.uri] if service.uri else [],
    }
    body["etag"] = _etag(service.resource_name, service.generation)
    if service.custom_audiences:
        body["customAudiences"] = list(service.custom_audiences)
    if latest_created:
        body["latestCreatedRevision"] = service.revision_resource_name(latest_created.name)
    if latest_ready:
        body["latestReadyRevision"] = service.revision_resource_name(latest_ready.name)
    return body


def traffic_statuses(service: Service) -> list[dict[str, Any]]:
    """``trafficStatuses`` as the v2 API reports it: a LATEST target keeps its type and names no
    revision (``revision`` empty, so absent from the JSON), unless ``status_names_latest``.

    Sources: google/cloud/run/v2/traffic_target.proto (``TrafficTargetStatus``; LATEST "Allocates
    instances to the Service's latest ready Revision", no promise of a name) and real
    ``google_cloud_run_v2_service`` Terraform states, which carry ``revision = ""`` for it."""
    latest = service.latest_ready()
    statuses = []
    for t in service.traffic:
        body = _traffic_json(t, service, status=True)
        if t.revision is None and service.status_names_latest and latest is not None:
            body["revision"] = latest.name
        statuses.append(body)
    return statuses


def _traffic_json(target: TrafficTarget, service: Service, status: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"percent": target.percent}
    if target.revision is None:
        body["type"] = _LATEST
    else:
        body["type"] = _REVISION
        body["revision"] = target.revision
    if target.tag:
        body["tag"] = target.tag
        if status and target.tag in service.tag_uris:
            body["uri"] = service.tag_uris[target.tag]
    return body
