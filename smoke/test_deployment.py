"""Runbook 4.1 — the service is deployed: the new revision is Ready, serves 100 % of traffic, and runs
the expected image with the expected resources, CPU allocation and environment."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import pytest

from cloudrun_smoke import Environment, Figure, Figures, Target, cpu_allocation

# Read-only and quick: part of the on-call subset.
pytestmark = pytest.mark.oncall


def test_revision_under_test_is_ready(smoke_target: Target, smoke_env: Environment) -> None:
    t = smoke_target
    # A deploy that has not settled is a failure: "While reconciliation is in process,
    # observedGeneration, latest_ready_revison, trafficStatuses, and uri will have transient values"
    # (Service.reconciling, google/cloud/run/v2/service.proto).
    assert not t.reconciling, (
        f"service {smoke_env.service} was still reconciling when discovery stopped waiting after "
        f"{t.reconcile_waited:.0f} s ([env.{smoke_env.name}.checks] reconcile_timeout): latest created "
        f"revision {t.latest_created_revision or 'none'}, latest ready {t.latest_ready_revision or 'none'}, "
        f"traffic {t.describe_traffic() or 'none'}; look: gcloud run services describe {smoke_env.service} "
        f"--project {smoke_env.project} --region {smoke_env.region}"
    )
    assert t.revision, (
        f"no revision serves traffic for {t.service_name}; traffic: {t.describe_traffic() or 'none'}"
    )
    assert t.latest_created_revision == t.latest_ready_revision, (
        f"failed deploy: the latest created revision {t.latest_created_revision} is not ready "
        f"({t.service_ready_message or 'no reason given'}); the latest ready one is "
        f"{t.latest_ready_revision or 'none'} and traffic is {t.describe_traffic()}"
    )
    assert t.revision_ready, (
        f"revision {t.revision} is not Ready: {t.revision_ready_message or 'no reason given'}"
    )


def test_revision_under_test_serves_all_traffic(
    smoke_target: Target, smoke_expected_revision: str | None, smoke_canary: bool
) -> None:
    """All of it; none for a ``--tag`` candidate; a share, neither 0 nor 100 %, for a ``--canary``."""
    t = smoke_target
    if smoke_expected_revision:
        assert t.revision == smoke_expected_revision, (
            f"--expect-revision {smoke_expected_revision}: the service serves {t.revision} instead; "
            f"traffic: {t.describe_traffic()}"
        )
    percent = t.percent_for(t.revision)
    if t.is_candidate and smoke_canary:
        assert 0 < percent < 100, (
            f"expected canary revision {t.revision} (tag {t.candidate_tag}) to serve a share of the traffic "
            f"above 0 % and below 100 %, it serves {percent} %; traffic: {t.describe_traffic()}; set it with "
            f"gcloud run services update-traffic SERVICE --to-tags {t.candidate_tag}=10"
        )
        return
    expected = 0 if t.is_candidate else 100
    assert percent == expected, (
        f"expected {'candidate ' if t.is_candidate else ''}revision {t.revision} to serve {expected} % of "
        f"traffic, it serves {percent} %; traffic: {t.describe_traffic()}"
    )
    if not t.is_candidate and t.latest_ready_revision and t.latest_ready_revision != t.revision:
        warnings.warn(
            f"the latest ready revision {t.latest_ready_revision} serves "
            f"{t.percent_for(t.latest_ready_revision)} % of traffic (a canary without traffic?)",
            stacklevel=1,
        )


def test_image_is_the_expected_one(smoke_target: Target, smoke_env: Environment) -> None:
    expected = smoke_env.expect.image
    if not expected:
        pytest.skip(f"no [env.{smoke_env.name}.expect] image to compare with")
    assert re.fullmatch(expected, smoke_target.image), (
        f"revision {smoke_target.revision} runs image {smoke_target.image!r}, expected one matching {expected!r}"
    )


def test_resources_are_as_configured(smoke_target: Target, smoke_env: Environment) -> None:
    e, t = smoke_env.expect, smoke_target
    wanted = {
        "memory": (e.memory or None, t.memory),
        "cpu": (e.cpu or None, t.cpu),
        "timeout_seconds": (e.timeout_seconds, t.timeout_seconds),
        "min_instances": (e.min_instances, t.min_instances),
        "max_instances": (e.max_instances, t.max_instances),
    }
    checked = {k: v for k, v in wanted.items() if v[0] is not None}
    if not checked:
        pytest.skip(f"no resources in [env.{smoke_env.name}.expect] to compare with")
    wrong = {k: v for k, v in checked.items() if str(v[0]) != str(v[1])}
    assert not wrong, f"revision {t.revision}: " + "; ".join(
        f"{k} is {actual!r}, expected {expected!r}" for k, (expected, actual) in wrong.items()
    )


def test_required_env_vars_are_set(smoke_target: Target, smoke_env: Environment) -> None:
    required = smoke_env.expect.env_names
    if not required:
        pytest.skip(f"no env_names in [env.{smoke_env.name}.expect]")
    present = set(smoke_target.env_names) | set(smoke_target.secret_env_names)
    missing = [name for name in required if name not in present]
    assert not missing, (
        f"revision {smoke_target.revision} lacks env var(s) {', '.join(missing)}; it sets "
        f"{', '.join(sorted(present)) or 'none'} (names only: values are never read)"
    )


# The runbook's variables for state shared by every instance, and the store each one moves out.
SHARED_STATE_ENV = {
    "DATABASE_URL": "SQLite (threads, messages, concepts)",
    "CHROMA_HOST": "Chroma (preferences)",
}


def test_state_is_shared_when_several_instances_may_serve(
    smoke_target: Target, record_property: Callable[[str, object], None]
) -> None:
    """The public configuration keeps SQLite and Chroma inside each container, so with more than one
    instance a request may reach one that never saw the user's data. Neither variable set is reported
    (a warning: requiring them is ``[expect] env_names``'s job); one without the other fails, since
    the other store stays split while the deploy looks shared. Each Cloud Run instance has its own
    in-memory filesystem (container runtime contract, "Filesystem access":
    https://cloud.google.com/run/docs/container-contract#filesystem)."""
    t = smoke_target
    if t.max_instances is None or int(t.max_instances) <= 1:
        pytest.skip(f"revision {t.revision} runs at most one instance: its state cannot be split")
    present = set(t.env_names) | set(t.secret_env_names)
    missing = [name for name in SHARED_STATE_ENV if name not in present]
    record_property("shared_state", "per instance" if missing else "DATABASE_URL and CHROMA_HOST set")
    if len(missing) == len(SHARED_STATE_ENV):
        warnings.warn(
            f"revision {t.revision} may run up to {t.max_instances} instances but does not set "
            f"{' nor '.join(missing)}: SQLite and Chroma stay inside each instance, so a thread created "
            "on one instance answers 404 on another (the per-instance diagnosis shows which served what). "
            "Set DATABASE_URL and CHROMA_HOST (runbook) or max_instances = 1",
            stacklevel=1,
        )
        return
    assert not missing, (
        f"revision {t.revision} may run up to {t.max_instances} instances and sets "
        f"{' and '.join(sorted(set(SHARED_STATE_ENV) - set(missing)))} but not {' nor '.join(missing)}: "
        f"{', '.join(SHARED_STATE_ENV[name] for name in missing)} stays inside each instance, so what one "
        f"instance wrote there the others never see. Set {' and '.join(missing)} too (runbook), "
        "or deploy with --max-instances 1"
    )


def test_cpu_allocation_suits_the_in_process_queue(
    smoke_target: Target, smoke_env: Environment, smoke_figures: Figures
) -> None:
    """Always reported (figure cpu_idle: 1 = CPU only during requests); judged against
    ``[env.NAME.expect] cpu_idle`` when set. See cloudrun_smoke.gcp.cpu_allocation for Google's sources."""
    t, expected = smoke_target, smoke_env.expect.cpu_idle
    if t.cpu_idle is None:
        pytest.skip(f"revision {t.revision or '(none)'} has no container to read cpu_idle from")
    smoke_figures.record(
        Figure(
            "cpu_idle", float(t.cpu_idle), "", note=f"{t.revision}: {cpu_allocation.implication(t.cpu_idle)}"
        )
    )
    if expected is None:
        return
    assert t.cpu_idle == expected, (
        f"revision {t.revision} has cpu_idle = {str(t.cpu_idle).lower()}, expected "
        f"{str(expected).lower()} ([env.{smoke_env.name}.expect] cpu_idle): "
        f"{cpu_allocation.implication(t.cpu_idle)}. Fix the deploy: "
        f"{cpu_allocation.fix(t.cpu_idle, smoke_env.service, smoke_env.region, smoke_env.project)}; look: "
        f"gcloud run revisions describe {t.revision} --region {smoke_env.region} --project {smoke_env.project}"
    )
