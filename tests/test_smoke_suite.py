"""The smoke suite as a user runs it: `pytest smoke/ --env local` in a subprocess, judged on its JUnit XML.

It must pass every check against the reference service, fail the archiving check (and only it)
against a service whose archive hook never logs the enqueue, refuse to run without --env, and leave
no process of the stack behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECKS = {
    "test_deployment.py::test_revision_under_test_is_ready",
    "test_deployment.py::test_revision_under_test_serves_all_traffic",
    "test_health.py::test_health_endpoint_answers_as_configured",
    "test_health.py::test_service_is_ready",
    "test_thread_archiving.py::test_archive_enqueues_a_consolidation_that_completes",
}


@dataclass
class SuiteRun:
    returncode: int
    output: str
    outcomes: dict[str, str]
    messages: dict[str, str]
    marker: str


def run_suite(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> SuiteRun:
    junit = tmp_path / f"junit-{uuid.uuid4().hex[:6]}.xml"
    marker = uuid.uuid4().hex
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "smoke/", "-p", "no:cacheprovider", f"--junitxml={junit}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CLOUDRUN_SMOKE_TEST_MARKER": marker, **(env or {})},
    )
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            module = case.get("classname", "").rsplit(".", 1)[-1]
            key = f"{module}.py::{case.get('name')}"
            outcome = "passed"
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = child.tag
                    messages[key] = (child.get("message") or "") + "\n" + (child.text or "")
            outcomes[key] = outcome
    return SuiteRun(proc.returncode, proc.stdout + proc.stderr, outcomes, messages, marker)


def processes_with_marker(marker: str) -> list[int]:
    """Processes whose environment carries the marker: anything the suite's stack started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                stat = (entry / "stat").read_text()
                if stat.split(")")[-1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_every_check_passes_against_the_reference_service(tmp_path: Path) -> None:
    run = run_suite(tmp_path, "--env", "local")
    assert run.returncode == 0, run.output
    assert {k: v for k, v in run.outcomes.items() if k in CHECKS} == dict.fromkeys(CHECKS, "passed"), (
        run.output
    )
    assert "skipped" not in run.outcomes.values(), run.outcomes
    assert processes_with_marker(run.marker) == [], "processes of the stack outlived the pytest session"


@pytest.mark.slow
def test_a_missing_enqueue_line_fails_the_archiving_check_with_a_diagnosis(tmp_path: Path) -> None:
    broken = f"{sys.executable} -m emergence_reference --fault archive-no-enqueue"
    run = run_suite(tmp_path, "--env", "local", "--local-service-cmd", broken, "--log-deadline", "4")
    assert run.returncode == 1, run.output
    archiving = "test_thread_archiving.py::test_archive_enqueues_a_consolidation_that_completes"
    assert run.outcomes[archiving] == "failure", run.output
    assert run.outcomes["test_health.py::test_health_endpoint_answers_as_configured"] == "passed"
    message = run.messages[archiving]
    assert "'archive.enqueued'" in message
    assert "not seen after waiting 4." in message
    assert "Consolidation enqueued for thread" in message  # the expected form is shown
    thread_ids = [w for w in message.split() if w.startswith("thread_id=")]
    assert thread_ids and len(thread_ids[0]) > len("thread_id=") + 8, message
    assert "filter: " in message and "log reads: " in message
    assert processes_with_marker(run.marker) == []


def test_without_env_the_suite_refuses_to_run_and_lists_the_environments(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "SMOKE_ENV"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "smoke/", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "--env is required (or SMOKE_ENV): one of local, prod, staging" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_an_unknown_env_is_one_line_naming_the_file(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "smoke/", "-p", "no:cacheprovider", "--env", "prdo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 4
    assert "unknown environment 'prdo'" in proc.stderr and "smoke.toml" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
