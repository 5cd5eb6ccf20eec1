"""`--rollback-on-failure` against a running local stack (the suite attaches to it through the
SMOKE_*_API_ENDPOINT variables, as to `cloudrun-smoke local up`): a failure that persists on a second
run moves the traffic back; one that does not, or a candidate's, leaves the traffic alone."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudrun_smoke.auto_rollback import decide
from cloudrun_smoke.config import load_config
from cloudrun_smoke.local.stack import LocalStack, stack_for
from smoke_runs import ROOT, run_smoke

REFERENCE = f"{sys.executable} -m emergence_reference"
HEALTH_CHECK = "smoke/test_health.py::test_health_endpoint_answers_as_configured"


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    """The shipped local environment's service, first healthy, then a new revision taking the traffic."""
    env = load_config(ROOT / "smoke.toml").environment("local", {"SMOKE_LOCAL_SERVICE_CMD": REFERENCE})
    with stack_for(env) as stack:
        yield stack


def attach(stack: LocalStack) -> dict[str, str]:
    return {
        "SMOKE_RUN_API_ENDPOINT": stack.run_api_endpoint,
        "SMOKE_LOGGING_API_ENDPOINT": stack.logging_api_endpoint,
    }


@pytest.mark.slow
def test_a_persisting_failure_moves_the_traffic_back(stack: LocalStack, tmp_path: Path) -> None:
    healthy = stack.serving_revision
    broken = stack.deploy(f"{REFERENCE} --fault api-health-503", stack.config.spec).name
    assert stack.serving_revision == broken
    run = run_smoke(
        tmp_path, "--env", "local", "-k", "health_endpoint", "--rollback-on-failure", env=attach(stack)
    )
    assert run.returncode == 1, run.output  # the run still fails: the deploy was bad
    assert (
        "the failure persisted on a second run; rolled back: 100 % of traffic now on " + str(healthy)
        in (run.verdict["rollback"])
    )
    assert stack.serving_revision == healthy
    assert "rolled back" in run.output


@pytest.mark.slow
def test_a_failure_that_does_not_persist_leaves_the_traffic_alone(stack: LocalStack) -> None:
    env = load_config(ROOT / "smoke.toml").environment("local", attach(stack))
    serving = stack.serving_revision
    line = decide(env, ROOT / "smoke.toml", [HEALTH_CHECK], ROOT, candidate=False, stack_owned=False)
    assert line == "rollback on failure: the 1 failed check(s) passed when run again: no rollback"
    assert stack.serving_revision == serving


def test_a_candidate_never_touches_the_traffic(tmp_path: Path) -> None:
    env = load_config(ROOT / "smoke.toml").environment("local", {})
    line = decide(env, ROOT / "smoke.toml", [HEALTH_CHECK], ROOT, candidate=True, stack_owned=False)
    assert "the candidate serves no traffic" in line


@pytest.mark.slow
def test_two_runs_at_once_against_one_stack_both_pass(stack: LocalStack, tmp_path: Path) -> None:
    """Per-run users keep concurrent runs apart: counts, cleanup and log attribution stay exact."""
    from concurrent.futures import ThreadPoolExecutor

    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda d: run_smoke(d, "--env", "local", env=attach(stack)), dirs))
    for run in runs:
        failed = {k: run.messages.get(k) for k, v in run.outcomes.items() if v in ("failure", "error")}
        assert run.returncode == 0 and not failed, failed
    assert runs[0].verdict["run"]["run_id"] != runs[1].verdict["run"]["run_id"]
