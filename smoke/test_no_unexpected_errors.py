"""The run as a whole: no ERROR line concerning the run's threads, users or run id.

Runs after every other check, once every expectation of the run has resolved. A line of the contract's
failure catalogue that names none of them but falls inside the run's own consolidation window fails
too where the environment is strict (always on the local stack); elsewhere it is reported, since
production carries other users' traffic.
"""

from __future__ import annotations

import re
import warnings

import pytest

from cloudrun_smoke.config import Environment
from cloudrun_smoke.logs import LogWatcher
from cloudrun_smoke.patterns import FAILURE_PATTERNS
from cloudrun_smoke.run import SmokeRun

pytestmark = pytest.mark.run_verdict

ERROR_LEVELS = {"ERROR", "CRITICAL", "ALERT", "EMERGENCY"}


def test_no_unexpected_errors(smoke_logs: LogWatcher, smoke_run: SmokeRun, smoke_env: Environment) -> None:
    smoke_logs.wait_idle()
    smoke_logs.refresh()
    allowed = [re.compile(p) for p in smoke_env.checks.allow_errors]
    names = [*smoke_run.thread_ids, *smoke_run.user_ids, smoke_run.run_id]
    lines = [line for line in smoke_logs.lines() if not any(a.search(line.text) for a in allowed)]

    ours = [
        line for line in lines if line.severity in ERROR_LEVELS and any(n and n in line.text for n in names)
    ]
    if ours:  # not an assert: its introspection would print whole lines, and a line can be megabytes long
        shown = "\n".join(f"    {line.short()}" for line in ours[:10])
        pytest.fail(f"{len(ours)} ERROR line(s) concern this run:\n{shown}", pytrace=False)

    matched = [e.match.line.timestamp for e in smoke_logs.expectations if e.match is not None]
    if not matched:
        return
    start, end = min(matched), max(matched)
    failures = [smoke_logs.pattern(name) for name in FAILURE_PATTERNS]
    in_window = [
        line
        for line in lines
        if start <= line.timestamp <= end and any(p.match(line.text) is not None for p in failures)
    ]
    if not in_window:
        return
    shown = "\n".join(f"    {line.short()}" for line in in_window[:10])
    message = (
        f"{len(in_window)} failure line(s) of the contract's catalogue name no thread of this run but fall "
        f"inside its consolidation window (attributed by time):\n{shown}"
    )
    if smoke_env.strict_errors:
        pytest.fail(message, pytrace=False)
    warnings.warn(message, stacklevel=1)
