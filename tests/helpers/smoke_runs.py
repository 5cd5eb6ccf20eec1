"""Running the smoke suite as a user does, in a subprocess, and reading what it reported.

Shared by the tests that judge the suite as a whole: outcomes from its JUnit XML, figures from its
JSON verdict, and a marker in its environment to find every process its stack started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.paths import ROOT
from helpers.processes import alive

MARKER_VAR = "CLOUDRUN_SMOKE_TEST_MARKER"


def smoke_argv(*args: str) -> list[str]:
    """``python -m pytest smoke/`` as a user runs it (no cache written into the checkout)."""
    return [sys.executable, "-m", "pytest", "smoke/", "-p", "no:cacheprovider", *args]


# Python keeps SIGINT ignored when it starts with it ignored, as a job put in the background by a
# non-interactive shell does (a CI runner's). A Ctrl-C test starts the suite as a terminal would.
INTERACTIVE = (
    "import signal, sys, pytest; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.exit(pytest.console_main())"
)


def interactive_smoke_argv(*args: str) -> list[str]:
    """:func:`smoke_argv` with Ctrl-C raising KeyboardInterrupt, whatever this process inherited."""
    return [sys.executable, "-c", INTERACTIVE, "smoke/", "-p", "no:cacheprovider", *args]


def clean_environ(*prefixes: str) -> dict[str, str]:
    """This process's environment without the suite's own settings (and any other ``prefixes``)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SMOKE_", *prefixes))}


@dataclass
class SuiteRun:
    returncode: int
    output: str
    outcomes: dict[str, str]  # "file.py::test" -> passed | failure | error | skipped
    messages: dict[str, str]
    verdict: dict[str, Any]
    marker: str


def junit_outcomes(junit: Path) -> tuple[dict[str, str], dict[str, str]]:
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    if not junit.exists():
        return outcomes, messages
    for case in ET.parse(junit).getroot().iter("testcase"):
        key = f"{case.get('classname', '').rsplit('.', 1)[-1]}.py::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
                messages[key] = (child.get("message") or "") + "\n" + (child.text or "")
        outcomes[key] = outcome
    return outcomes, messages


def run_smoke(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> SuiteRun:
    """``pytest smoke/ ARGS`` from the repository root, with no ``SMOKE_*`` variable of ours leaking in."""
    tag = uuid.uuid4().hex[:8]
    junit, report = tmp_path / f"junit-{tag}.xml", tmp_path / f"verdict-{tag}.json"
    marker = uuid.uuid4().hex
    environ = clean_environ()
    proc = subprocess.run(
        smoke_argv(f"--junitxml={junit}", f"--smoke-report={report}", *args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**environ, MARKER_VAR: marker, **(env or {})},
    )
    outcomes, messages = junit_outcomes(junit)
    verdict = json.loads(report.read_text()) if report.exists() else {}
    return SuiteRun(proc.returncode, proc.stdout + proc.stderr, outcomes, messages, verdict, marker)


def run_local(tmp_path: Path, config: Path, *args: str, env: dict[str, str] | None = None) -> SuiteRun:
    """``pytest smoke/ --env local --smoke-config=CONFIG ARGS``: the local environment of ``config``."""
    return run_smoke(tmp_path, "--env", "local", f"--smoke-config={config}", *args, env=env)


def processes_with_marker(marker: str) -> list[int]:
    """Live processes whose environment carries the marker: anything the suite's stack started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes() and alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def everything_written(run: SuiteRun, folder: Path) -> list[str]:
    """What a run left for people to read: its terminal output and the JUnit/JSON reports in ``folder``."""
    reports = [p for p in folder.iterdir() if p.name.startswith(("junit-", "verdict-"))]
    return [run.output] + [p.read_text() for p in reports]


def run_window(tmp_path: Path, *args: str, env: dict[str, str]) -> SuiteRun:
    """``pytest smoke/ -q --env local -m window ARGS``: the window checks only."""
    return run_smoke(tmp_path, "-q", "--env", "local", "-m", "window", *args, env=env)
