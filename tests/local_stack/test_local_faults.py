"""Each fault switch of the local stack shows its effect where a smoke check looks: the Admin API
(through ``google-cloud-run`` and discovery), the front end, or the Logging API."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials

from cloudrun_smoke.gcp.clients import run_clients
from cloudrun_smoke.gcp.discovery import Target, discover
from cloudrun_smoke.local import faults as F
from cloudrun_smoke.local.run_model import RevisionSpec
from cloudrun_smoke.local.stack import LocalStack, LocalStackConfig
from cloudrun_smoke.waiting import wait_until
from helpers.log_entries import logging_client
from helpers.paths import ROOT
from helpers.stacks import stack_environment, tiny_stack_config

SPEC = RevisionSpec(
    image="europe-docker.pkg.dev/p/r/tiny:1.2.3",
    env={"ENVIRONMENT": "production", "GREETING": "bonjour"},
    memory="2Gi",
    cpu="2",
)


@contextmanager
def stack_with(*faults: str, **overrides: object) -> Iterator[LocalStack]:
    settings: dict[str, object] = {"spec": SPEC, "reconcile_delay": 0.0, "faults": faults}
    with LocalStack(tiny_stack_config("fault-test", **{**settings, **overrides})) as stack:
        yield stack


def target_of(stack: LocalStack) -> Target:
    env = stack_environment(stack)
    return discover(env, *run_clients(env, AnonymousCredentials()), reconcile_timeout=5)  # type: ignore[no-untyped-call]


def logs(stack: LocalStack):  # type: ignore[no-untyped-def]
    return logging_client(stack.logging_api_endpoint, "fault-test")


def test_a_healthy_stack_passes_every_deployment_expectation() -> None:
    """The baseline every fault below departs from."""
    with stack_with() as stack:
        target = target_of(stack)
        assert target.revision_ready and target.service_ready
        assert target.latest_created_revision == target.latest_ready_revision == target.revision
        assert target.percent_for(target.revision) == 100
        assert (target.image, target.memory, target.cpu) == (SPEC.image, "2Gi", "2")
        assert target.env_names == ("ENVIRONMENT", "GREETING")


def test_revision_not_ready() -> None:
    with stack_with(F.REVISION_NOT_READY) as stack:
        target = target_of(stack)
        assert target.revision == stack.service.revisions[0].name
        assert not target.revision_ready and "startup probe" in target.revision_ready_message
        assert not target.service_ready


def test_latest_revision_failed() -> None:
    with stack_with(F.LATEST_REVISION_FAILED) as stack:
        target = target_of(stack)
        good, failed = (r.name for r in stack.service.revisions)
        assert (target.latest_ready_revision, target.latest_created_revision) == (good, failed)
        assert target.revision == good and target.revision_ready
        assert not target.service_ready and failed in target.service_ready_message


def test_traffic_split() -> None:
    with stack_with(F.TRAFFIC_SPLIT) as stack:
        target = target_of(stack)
        previous, latest = (r.name for r in stack.service.revisions)
        assert target.revision == latest and target.percent_for(latest) == 90
        assert target.percent_for(previous) == 10
        with httpx.Client() as client:
            hits = Counter(client.get(f"{stack.service_url}/r").json()["revision"] for _ in range(100))
        assert hits == {latest: 90, previous: 10}


def test_unexpected_image() -> None:
    with stack_with(F.UNEXPECTED_IMAGE) as stack:
        assert target_of(stack).image == "europe-docker.pkg.dev/p/r/tiny:unexpected-build"


def test_missing_env_is_missing_in_the_api_and_in_the_process() -> None:
    with stack_with(F.MISSING_ENV) as stack:
        assert target_of(stack).env_names == ("GREETING",)
        environ = httpx.get(f"{stack.service_url}/env").json()
        assert "ENVIRONMENT" not in environ and environ["GREETING"] == "bonjour"


def test_wrong_resources() -> None:
    with stack_with(F.WRONG_RESOURCES) as stack:
        target = target_of(stack)
        assert (target.memory, target.cpu) == ("512Mi", "1")


def test_logging_reads_are_answered_429_for_a_while() -> None:
    with stack_with(F.LOGGING_429, throttle_seconds=1.0) as stack:
        client = logs(stack)
        with pytest.raises(gexc.TooManyRequests):
            list(client.list_entries(filter_='textPayload:"starting"'))
        entries = wait_until(
            lambda: _read_or_none(client, 'textPayload:"starting"'),
            timeout=10,
            what="reads to be served again after the throttle window",
            interval=0.2,
        )
        assert entries


def _read_or_none(client, filter_: str):  # type: ignore[no-untyped-def]
    try:
        return list(client.list_entries(filter_=filter_)) or None
    except gexc.TooManyRequests:
        return None


def test_slow_ingestion_keeps_entries_invisible_past_the_deadline() -> None:
    with stack_with(F.SLOW_INGESTION, slow_ingestion_delay=3600.0) as stack:
        wait_until(lambda: len(stack.store) >= 2 or None, timeout=10, what="start-up lines written")
        assert list(logs(stack).list_entries(filter_='textPayload:"starting"')) == []
        assert stack.logging.ingestion.delay == 3600.0


def test_heavy_jitter_makes_entries_surface_out_of_order() -> None:
    with stack_with(F.HEAVY_JITTER, heavy_jitter=5.0) as stack:
        for i in range(20):
            httpx.get(f"{stack.service_url}/n{i}")
        stored = list(stack.store)  # timestamp order
        visible = [e.visible_at for e in stored]
        inversions = sum(1 for a, b in itertools.pairwise(visible) if b < a)
        assert inversions > 0, "no entry surfaced before an earlier-stamped one"


def test_service_faults_reach_the_revision_in_emergence_faults() -> None:
    spec = RevisionSpec(image="x", env={F.SERVICE_FAULTS_ENV: "already-set"})
    with stack_with("archive-no-enqueue", F.WRONG_RESOURCES, spec=spec) as stack:
        environ = httpx.get(f"{stack.service_url}/env").json()
        assert environ[F.SERVICE_FAULTS_ENV] == "already-set,archive-no-enqueue"
        assert stack.stack_faults == {F.WRONG_RESOURCES}


def test_unknown_stack_faults_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown stack fault 'stack:typo'"):
        LocalStack(LocalStackConfig(faults=("stack:typo",)))


def test_every_stack_fault_is_documented() -> None:
    table = (ROOT / "docs" / "faults.md").read_text()
    section = table.split("## Local stack", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{name}`" in section for name in F.STACK_FAULTS)


def test_flaky_logging_refuses_about_a_tenth_of_reads() -> None:
    from cloudrun_smoke.local.json_api import ApiError
    from cloudrun_smoke.local.logging_api import ReadQuota

    quota = ReadQuota(per_minute=None, refuse_share=0.1)
    refused = 0
    for _ in range(2000):
        try:
            quota.take()
        except ApiError as e:
            assert e.code == 429
            refused += 1
    assert 120 <= refused <= 280, f"{refused} of 2000 reads refused"
