"""What is under test, from the Cloud Run Admin API v2: URL, serving revision, traffic, readiness,
image, resources (with cpu_idle: CPU only during requests) and env var names.

Env var *values* are dropped on read: the Admin API returns them in plain text and some are secrets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp import traffic as traffic_
from cloudrun_smoke.gcp.errors import GOOGLE_ERRORS, RUN_ADMIN_API, api_error
from cloudrun_smoke.gcp.readiness import readiness
from cloudrun_smoke.gcp.traffic import TrafficShare, short_name
from cloudrun_smoke.waiting import WaitTimeout, wait_until

__all__ = ["Target", "TrafficShare", "discover", "short_name"]

RECONCILE_POLL_S = 2.0  # between reads of a service that is still reconciling


@dataclass(frozen=True)
class Target:
    """The service as discovered; ``revision`` is the one under test (the one serving its traffic)."""

    service_name: str
    url: str
    revision: str
    latest_ready_revision: str
    latest_created_revision: str
    traffic: tuple[TrafficShare, ...]
    service_ready: bool
    service_ready_message: str
    revision_ready: bool
    revision_ready_message: str
    reconciling: bool
    image: str
    memory: str
    cpu: str
    timeout_seconds: int | None
    min_instances: int | None
    max_instances: int | None
    env_names: tuple[str, ...]
    secret_env_names: tuple[str, ...]
    candidate_tag: str = ""  # set when a no-traffic candidate is under test, through its tag URL
    revision_create_time: datetime | None = None  # when the revision under test was created (the window)
    service_url: str = ""  # the service's own URL (``uri``): the ID token's audience, whatever ``url`` is
    reconcile_waited: float = 0.0  # seconds discovery waited for the service to stop reconciling
    # CPU only during requests (resources.cpu_idle; the API omits false): None when no container was read.
    cpu_idle: bool | None = None
    startup_cpu_boost: bool | None = None

    @property
    def is_candidate(self) -> bool:
        return bool(self.candidate_tag)

    def percent_for(self, revision: str) -> int:
        return traffic_.percent_for(self.traffic, revision)

    def describe_traffic(self) -> str:
        return traffic_.describe(self.traffic)


def cpu_idle_of(container: Any) -> bool | None:
    """``resources.cpu_idle`` of a run_v2 Container. A plain proto3 bool: false is omitted from the
    JSON and reads as false. Without any ``resources`` the API's default applies: true ("True by default
    if the parent resources field is not set", Terraform google_cloud_run_v2_service, from the v2 API)."""
    if container is None:
        return None
    if not type(container).pb(container).HasField("resources"):
        return True
    return bool(container.resources.cpu_idle)


def run_admin_api_error(env: Environment, what: str, error: Exception, *, permission: str = "") -> SmokeError:
    """A failed Admin API call about ``env``'s service as one line (discovery's, and the rollback's with
    its ``permission``)."""
    where = f"project {env.project!r}, region {env.region!r}"
    missing = (
        f"Cloud Run service {env.service!r} not found in {where} ({env.source} [env.{env.name}]); "
        f"look: gcloud run services list --project {env.project} --region {env.region}"
    )
    return api_error(
        error,
        RUN_ADMIN_API,
        what=what,
        endpoint=env.run_api_endpoint,
        where=where,
        not_found=missing,
        permission=permission,
    )


def _candidate(traffic: tuple[TrafficShare, ...], tag: str, revision: str, name: str) -> TrafficShare:
    """The tagged traffic target of a candidate, by tag or by revision name."""
    tagged = [t for t in traffic if t.tag and (t.tag == tag if tag else t.revision == revision)]
    if not tagged:
        known = ", ".join(f"{t.tag} -> {t.revision}" for t in traffic if t.tag) or "none"
        what = f"tag {tag!r}" if tag else f"tag for revision {revision!r}"
        raise SmokeError(
            f"{name} has no {what} (tags: {known}); deploy the candidate with "
            "`gcloud run deploy ... --no-traffic --tag NAME`"
        )
    if not tagged[0].uri:
        raise SmokeError(f"tag {tagged[0].tag!r} of {name} has no URL yet")
    return tagged[0]


def discover(
    env: Environment,
    services_client: Any,
    revisions_client: Any,
    reconcile_timeout: float = 120.0,
    *,
    tag: str = "",
    revision: str = "",
) -> Target:
    """What is under test: by default the service as its users reach it; with ``tag`` or ``revision``,
    a no-traffic candidate through its tag URL."""
    name = f"projects/{env.project}/locations/{env.region}/services/{env.service}"
    started = time.monotonic()
    read: list[Any] = []  # the latest read: a service still reconciling at the deadline is described as is

    def settled() -> Any:
        try:
            read[:] = [services_client.get_service(name=name)]
        except GOOGLE_ERRORS as e:
            raise run_admin_api_error(env, "read the service", e) from None
        return None if read[0].reconciling else read[0]

    try:
        service = wait_until(
            settled, timeout=reconcile_timeout, what=f"{name} to stop reconciling", interval=RECONCILE_POLL_S
        )
    except WaitTimeout:
        service = read[0]
    waited = time.monotonic() - started
    traffic = traffic_.shares(service)
    revision_name = traffic_.serving(traffic) or short_name(service.latest_ready_revision)
    url = service.uri
    candidate_tag = ""
    if tag or revision:
        candidate = _candidate(traffic, tag, revision, name)
        revision_name, url, candidate_tag = candidate.revision, candidate.uri, candidate.tag
    service_ready, service_message = readiness([service.terminal_condition])

    revision_ready, revision_message = False, "no revision serves traffic"
    container: Any = None
    scaling: Any = None
    timeout_seconds: int | None = None
    created: datetime | None = None
    if revision_name:
        try:
            revision = revisions_client.get_revision(name=f"{name}/revisions/{revision_name}")
        except GOOGLE_ERRORS as e:
            raise run_admin_api_error(env, f"read revision {revision_name}", e) from None
        revision_ready, revision_message = readiness(revision.conditions)
        container = revision.containers[0] if revision.containers else None
        scaling = revision.scaling
        timeout_seconds = int(revision.timeout.total_seconds()) if revision.timeout else None
        created = revision.create_time or None

    limits = dict(container.resources.limits) if container else {}
    env_vars = list(container.env) if container else []
    return Target(
        service_name=name,
        url=url,
        revision=revision_name,
        latest_ready_revision=short_name(service.latest_ready_revision),
        latest_created_revision=short_name(service.latest_created_revision),
        traffic=traffic,
        service_ready=service_ready,
        service_ready_message=service_message,
        revision_ready=revision_ready,
        revision_ready_message=revision_message,
        reconciling=service.reconciling,
        image=container.image if container else "",
        memory=limits.get("memory", ""),
        cpu=limits.get("cpu", ""),
        timeout_seconds=timeout_seconds,
        min_instances=scaling.min_instance_count if scaling else None,
        max_instances=scaling.max_instance_count if scaling else None,
        env_names=tuple(sorted(e.name for e in env_vars if not e.value_source.secret_key_ref.secret)),
        secret_env_names=tuple(sorted(e.name for e in env_vars if e.value_source.secret_key_ref.secret)),
        candidate_tag=candidate_tag,
        revision_create_time=created,
        service_url=service.uri,
        reconcile_waited=waited,
        cpu_idle=cpu_idle_of(container),
        startup_cpu_boost=bool(container.resources.startup_cpu_boost) if container else None,
    )
