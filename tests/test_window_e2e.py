"""The window checks end to end: `pytest smoke/ --env local -m window` against the embedded stack,
through the real Monitoring (gRPC) and Logging (JSON) clients, after background traffic.

A healthy stack passes every window check and skips none; each window fault fails its own check with
the figure and the threshold in the message while its neighbours pass. One stack per run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cloudrun_smoke.config import load_config
from cloudrun_smoke.local.stack import stack_for
from cloudrun_smoke.local.traffic import run_background_traffic
from cloudrun_smoke.waiting import wait_until
from smoke_runs import ROOT, SuiteRun, run_smoke

CHECKS = {
    "5xx": "test_window.py::test_5xx_share",
    "latency": "test_window.py::test_request_latency_p95",
    "memory": "test_window.py::test_memory_utilization_peak",
    "cpu": "test_window.py::test_cpu_utilization_p95",
    "instances": "test_window.py::test_instance_count_within_bounds",
    "archive": "test_window.py::test_archive_latency_p50",
    "consolidated": "test_window.py::test_threads_consolidated",
    "failures": "test_window.py::test_consolidation_failure_rate",
    "queue": "test_window.py::test_queue_time_p95",
    "preferences": "test_window.py::test_preferences_saved",
}


def local_config(tmp_path: Path, stack_settings: str) -> Path:
    """smoke.toml with ``key = value`` lines of ``[env.local.stack]`` replaced or added."""
    text = (ROOT / "smoke.toml").read_text()
    for setting in filter(None, stack_settings.splitlines()):
        key = setting.split("=")[0].strip()
        text, found = re.subn(rf"(?m)^{key}\s*=.*$", setting, text, count=1)
        if not found:
            text = text.replace("[env.local.stack]\n", f"[env.local.stack]\n{setting}\n", 1)
    path = tmp_path / "smoke.toml"
    path.write_text(text)
    return path


def assert_only_fails(run: SuiteRun, failing: str, message: tuple[str, ...]) -> None:
    check = CHECKS[failing]
    assert run.outcomes.get(check) == "failure", f"{check} did not fail:\n{run.output}"
    for part in (*message, " samples", "\n  window: ", "\n  look further: "):
        assert part in run.messages[check], f"{check}'s message lacks {part!r}:\n{run.messages[check]}"
    others = {k: run.outcomes.get(v) for k, v in CHECKS.items() if k != failing}
    assert set(others.values()) == {"passed"}, f"neighbours of {check}: {others}\n{run.output}"
    assert "Traceback" not in run.output


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["", "json-logs"])
def test_a_healthy_stack_passes_every_window_check_and_skips_none(variant: str, tmp_path: Path) -> None:
    """Also when every line is JSON (``jsonPayload.message``) instead of text."""
    run = run_smoke(tmp_path, "-q", "--env", "local", "-m", "window", env={"SMOKE_LOCAL_FAULTS": variant})
    assert run.returncode == 0, run.output
    assert {k: run.outcomes.get(v) for k, v in CHECKS.items()} == dict.fromkeys(CHECKS, "passed"), run.output
    assert len(run.outcomes) == len(CHECKS)  # the window checks only: no scenario, no other check
    # The cost: one ListTimeSeries call per metric figure, one page per kind of log entry.
    assert "window reads: ListTimeSeries calls: 5; entries:list pages: 2" in run.output, run.output
    figures = {f["name"]: f for f in run.verdict["figures"]}
    assert figures["5xx share"]["samples"] >= 100 and figures["consolidation failure rate"]["samples"] >= 40


FAULTS = [
    # A thread whose messages got a 500 consolidates nothing: the traffic would wait for it until its deadline.
    (
        "stack:5xx-burst",
        "traffic_deadline = 10",
        "5xx",
        ("5xx share: ", "% (threshold 1 %) over", "answers 5xx"),
    ),
    ("archive-slow=400", "", "archive", ("archive latency P50: 4", "ms (threshold 200 ms) over", "renames")),
    (
        "consolidation-fails-some",
        "traffic_deadline = 10",  # the failed threads are never consolidated: do not wait for them
        "failures",
        ("consolidation failure rate: ", "% (threshold 1 %) over", "2 failed of"),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "settings", "failing", "message"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_window_fault_fails_its_check(
    fault: str, settings: str, failing: str, message: tuple[str, ...], tmp_path: Path
) -> None:
    config = local_config(tmp_path, settings)
    run = run_smoke(
        tmp_path,
        "-q",
        "--env",
        "local",
        "-m",
        "window",
        f"--smoke-config={config}",
        env={"SMOKE_LOCAL_FAULTS": fault},
    )
    assert run.returncode == 1, run.output
    assert_only_fails(run, failing, message)


@pytest.mark.slow
def test_memory_creep_fails_the_memory_check(tmp_path: Path) -> None:
    """A leak takes time to show: the suite runs against a stack (its endpoints given, as for
    `cloudrun-smoke local up`) once the revision's memory has crept past the threshold."""
    env = load_config(ROOT / "smoke.toml").environment(
        "local", environ={"SMOKE_LOCAL_FAULTS": "memory-creep"}
    )
    with stack_for(env) as stack:
        run_background_traffic(stack.service_url, deadline=30)
        revision = stack.serving_revision

        def crept() -> float | None:
            peak = max(
                (u.memory for u in stack.metrics.utilizations() if u.revision == revision), default=0.0
            )
            return peak if peak >= 0.85 else None

        wait_until(crept, timeout=60, what="memory utilization past 85 %", interval=0.5)
        run = run_smoke(
            tmp_path,
            "-q",
            "--env",
            "local",
            "-m",
            "window",
            env={
                "SMOKE_RUN_API_ENDPOINT": stack.run_api_endpoint,
                "SMOKE_LOGGING_API_ENDPOINT": stack.logging_api_endpoint,
                "SMOKE_MONITORING_API_ENDPOINT": stack.monitoring_api_endpoint,
            },
        )
    assert run.returncode == 1, run.output
    assert_only_fails(
        run, "memory", ("memory utilization max: ", "% (threshold 80 %) over", "highest occupied")
    )
