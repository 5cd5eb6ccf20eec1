"""The deployment checks on a running stack, end to end: ``--expect-revision`` and ``--revision`` pass
on the right revision and fail naming both revisions on another, and a service still reconciling when
discovery stops waiting fails the readiness check with the revisions and the time waited (while a
service reconciles, its traffic statuses and latest ready revision are "transient values":
``Service.reconciling`` in google/cloud/run/v2/service.proto, also on the Terraform provider's
google_cloud_run_v2_service page)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.local.stack import LocalStack, stack_for
from helpers.smoke_runs import ROOT, SuiteRun, run_smoke

REFERENCE = f"{sys.executable} -m emergence_reference"
TAG = "candidate-abc1234"
READY = "test_deployment.py::test_revision_under_test_is_ready"
SERVES = "test_deployment.py::test_revision_under_test_serves_all_traffic"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """One serving revision and a no-traffic candidate behind its tag, as a candidate pipeline leaves it."""
    env = load_config(ROOT / "smoke.toml").environment("local", {"SMOKE_LOCAL_SERVICE_CMD": REFERENCE})
    with stack_for(env) as stack:
        stack.deploy_candidate(REFERENCE, TAG, stack.config.spec, instances=1)
        yield stack


def run(stack: LocalStack, tmp_path: Path, check: str, *args: str, config: Path | None = None) -> SuiteRun:
    attach = {
        "SMOKE_RUN_API_ENDPOINT": stack.run_api_endpoint,
        "SMOKE_LOGGING_API_ENDPOINT": stack.logging_api_endpoint,
    }
    extra = ("--smoke-config", str(config)) if config else ()
    return run_smoke(tmp_path, "--env", "local", "-k", check.split("::")[1], *extra, *args, env=attach)


def test_expect_revision(stack: LocalStack, tmp_path: Path) -> None:
    serving, candidate = stack.serving_revision, stack.candidate_revision
    assert serving and candidate and serving != candidate

    right = run(stack, tmp_path, SERVES, "--expect-revision", serving)
    assert (right.returncode, right.outcomes.get(SERVES)) == (0, "passed"), right.output

    wrong = run(stack, tmp_path, SERVES, "--expect-revision", candidate)
    assert (wrong.returncode, wrong.outcomes.get(SERVES)) == (1, "failure"), wrong.output
    assert f"--expect-revision {candidate}: the service serves {serving} instead" in wrong.messages[SERVES]


def test_revision(stack: LocalStack, tmp_path: Path) -> None:
    serving, candidate = stack.serving_revision, stack.candidate_revision
    assert serving and candidate

    right = run(stack, tmp_path, SERVES, "--revision", candidate)
    assert (right.returncode, right.outcomes.get(SERVES)) == (0, "passed"), right.output
    assert right.verdict["target"]["revision"] == candidate

    wrong = run(stack, tmp_path, SERVES, "--revision", serving)
    assert wrong.returncode == 4, wrong.output
    assert f"has no tag for revision {serving!r} (tags: {TAG} -> {candidate})" in wrong.output


def test_a_service_still_reconciling_fails_the_readiness_check(stack: LocalStack, tmp_path: Path) -> None:
    config = tmp_path / "smoke.toml"
    config.write_text(
        (ROOT / "smoke.toml")
        .read_text()
        .replace("[env.local.checks]\n", "[env.local.checks]\nreconcile_timeout = 2\n", 1)
    )
    with stack.state.lock:
        stack.service.reconciling = True  # an update that never finishes within the wait
    try:
        result = run(stack, tmp_path, READY, config=config)
    finally:
        with stack.state.lock:
            stack.service.reconciling = False
    assert (result.returncode, result.outcomes.get(READY)) == (1, "failure"), result.output
    message = result.messages[READY]
    serving, candidate = stack.serving_revision, stack.candidate_revision
    assert (
        f"service {stack.config.service} was still reconciling when discovery stopped waiting after"
        in message
    )
    assert "s ([env.local.checks] reconcile_timeout)" in message
    assert f"latest created revision {candidate}, latest ready {candidate}" in message
    assert f"traffic {serving}=100%" in message
