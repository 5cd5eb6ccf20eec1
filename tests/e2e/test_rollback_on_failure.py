"""`--rollback-on-failure` against a running local stack (the suite attaches to it through the
SMOKE_*_API_ENDPOINT variables, as to `cloudrun-smoke local up`): a failure that persists on a second
run moves the traffic back; one that does not, or a candidate's, leaves the traffic alone."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudrun_smoke.config.environment import load_config
from cloudrun_smoke.local.stack import LocalStack, stack_for
from cloudrun_smoke.release.on_failure import decide
from helpers.smoke_runs import ROOT, clean_environ, run_smoke

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
def test_a_persisting_failure_moves_the_traffic_back_and_the_rerun_tests_the_same_thing(
    stack: LocalStack, tmp_path: Path
) -> None:
    healthy = stack.serving_revision
    broken = stack.deploy(f"{REFERENCE} --fault api-health-503", stack.config.spec).name
    assert stack.serving_revision == broken
    shaping = [
        *("--expect-revision", broken, "--service-url", stack.service_url, "--log-deadline", "30"),
        *("-m", "oncall", "-k", "health_endpoint", "--window", "2h"),
    ]
    run = run_smoke(tmp_path, "--env", "local", *shaping, "--rollback-on-failure", env=attach(stack))
    assert run.returncode == 1, run.output  # the run still fails: the deploy was bad
    line = run.verdict["rollback"]
    assert (
        "the failure persisted on a second run; rolled back: 100 % of traffic now on " + str(healthy) in line
    )
    to_latest = f"gcloud run services update-traffic {stack.config.service} --to-latest --region {stack.config.region}"
    assert to_latest in line and to_latest in run.output
    assert stack.serving_revision == healthy
    # The re-run reports the same target and the same options as the first run.
    rerun = run.verdict["rerun"]
    assert rerun["exit_status"] == 1
    assert rerun["target"] == run.verdict["target"]
    assert (
        rerun["options"]
        == run.verdict["options"]
        == {
            "--expect-revision": broken,
            "--log-deadline": "30.0",
            "--window": "2h",
            "--service-url": stack.service_url,
            "-m": "oncall",
            "-k": "health_endpoint",
        }
    )


@pytest.mark.slow
def test_a_failure_that_does_not_persist_leaves_the_traffic_alone(stack: LocalStack) -> None:
    env = load_config(ROOT / "smoke.toml").environment("local", attach(stack))
    serving = stack.serving_revision
    assert serving is not None
    decision = decide(
        env, ROOT / "smoke.toml", [HEALTH_CHECK], ROOT, candidate=False, stack_owned=False, under_test=serving
    )
    assert decision.line == "rollback on failure: the 1 failed check(s) passed when run again: no rollback"
    assert stack.serving_revision == serving


def test_a_candidate_never_touches_the_traffic(tmp_path: Path) -> None:
    env = load_config(ROOT / "smoke.toml").environment("local", {})
    decision = decide(
        env, ROOT / "smoke.toml", [HEALTH_CHECK], ROOT, candidate=True, stack_owned=False, under_test="r"
    )
    assert "the candidate serves no traffic" in decision.line


def test_without_a_revision_under_test_nothing_moves() -> None:
    env = load_config(ROOT / "smoke.toml").environment("local", {})
    decision = decide(
        env, ROOT / "smoke.toml", [HEALTH_CHECK], ROOT, candidate=False, stack_owned=False, under_test=""
    )
    assert decision.line.startswith("rollback on failure: nothing moved: no revision under test")
    assert decision.rerun is None


@pytest.mark.parametrize(
    ("args", "code", "meaning"),
    [
        (["-k", "no_such_check"], 5, "no check selected"),
        (["--log-deadline=0"], 4, "usage, configuration or credentials error"),
        ([], 2, "interrupted"),
    ],
    ids=["5-nothing-selected", "4-usage", "2-interrupted"],
)
def test_a_rerun_that_does_not_exit_1_moves_nothing(
    tmp_path: Path, args: list[str], code: int, meaning: str
) -> None:
    """Only "checks failed again" (1) rolls back. No API is reachable here: any attempt to plan a
    rollback would say "could not complete", not "nothing moved"."""
    env = load_config(ROOT / "smoke.toml").environment(
        "local", {"SMOKE_RUN_API_ENDPOINT": "http://127.0.0.1:1"}
    )
    rootdir, nodeid = ROOT, HEALTH_CHECK
    if code == 2:  # a collection error interrupts pytest
        rootdir, nodeid = tmp_path, "test_broken.py"
        (tmp_path / "test_broken.py").write_text("def broken(:\n")
    decision = decide(
        env,
        ROOT / "smoke.toml",
        [nodeid],
        rootdir,
        candidate=False,
        stack_owned=False,
        under_test="r",
        args=args,
    )
    assert decision.rerun is not None and decision.rerun.exit_code == code, decision.line
    assert decision.line == (
        f"rollback on failure: nothing moved: the re-run of the 1 failed check(s) exited {code} ({meaning}), "
        "not 1 (checks failed again); only a confirmed failure is rolled back"
    )


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


READY_CHECK = "smoke/test_deployment.py::test_revision_under_test_is_ready"


@pytest.mark.slow
def test_after_a_failed_deploy_the_traffic_never_leaves_the_revision_serving(
    stack: LocalStack, tmp_path: Path
) -> None:
    """N-2 ready, N-1 ready and serving, N created and never ready: the deployment check fails on every
    run, and neither the automatic rollback nor the command without --to moves N-1's traffic."""
    n2 = stack.serving_revision
    n1 = stack.deploy(REFERENCE, stack.config.spec).name
    n = stack.add_failed_revision(stack.config.spec, "Container called exit(1).").name
    assert n2 and stack.serving_revision == n1
    refusal = f"is not the service's latest deploy (latest created {n}, latest ready {n1}"

    run = run_smoke(
        tmp_path,
        "--env",
        "local",
        "-k",
        "test_revision_under_test_is_ready",
        "--rollback-on-failure",
        env=attach(stack),
    )
    assert run.returncode == 1, run.output
    assert stack.serving_revision == n1, run.verdict["rollback"]
    assert run.verdict["rerun"]["exit_status"] == 1
    assert (
        f"rollback on failure: nothing moved: the serving revision {n1} {refusal}" in run.verdict["rollback"]
    )
    assert stack.serving_revision == n1

    env = load_config(ROOT / "smoke.toml").environment("local", attach(stack))
    decision = decide(
        env,
        ROOT / "smoke.toml",
        [READY_CHECK],
        ROOT,
        candidate=False,
        stack_owned=False,
        under_test=n,  # --expect-revision N: the revision the deploy step produced
        tested=n1,
        args=["--expect-revision", n],
    )
    assert (
        f"nothing moved: the revision under test {n} does not serve the traffic: {n1} does" in decision.line
    )
    assert stack.serving_revision == n1

    command = [sys.executable, "-m", "cloudrun_smoke.cli", "rollback", "--env", "local", "--yes"]
    environ = {**clean_environ(), **attach(stack)}
    done = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"cloudrun-smoke rollback: the serving revision {n1} {refusal}")
    assert stack.serving_revision == n1
