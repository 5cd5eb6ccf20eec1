"""The run as a whole: no ERROR line concerning the run's threads, users or run id.

Runs after every other check, once every expectation of the run has resolved. A line of the contract's
failure catalogue that names none of them but falls inside the run's own consolidation window is
reported beside the verdict, never counted as a failure on its own: production carries other users'
traffic, whose failures log the same forms.
"""

from __future__ import annotations

import re

import pytest

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.logs.lines import LogMatch, Unattributed, names_nobody
from cloudrun_smoke.logs.patterns import FAILURE_PATTERNS
from cloudrun_smoke.logs.watcher import LogWatcher
from cloudrun_smoke.service.run import SmokeRun

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

    # Failure lines that name nobody while the run acted and its lines came (from its start to its last
    # line awaited): in production they may be other users'. Never a failure on their own: reported
    # beside the verdict.
    matched = [e.match.line.timestamp for e in smoke_logs.expectations if e.match is not None]
    if not matched:
        return
    start, end = smoke_run.started_at, max(matched)
    failures = [smoke_logs.pattern(name) for name in FAILURE_PATTERNS]
    for line in lines:
        found = [(p.name, fields) for p in failures if (fields := p.match(line.text)) is not None]
        if not (start <= line.timestamp <= end) or not found:
            continue
        if all(names_nobody(LogMatch(name, line, fields)) for name, fields in found):
            note = "during the run; perhaps ours, perhaps another user's"
            smoke_logs.report_unattributed(Unattributed("failure", line, note=note))
