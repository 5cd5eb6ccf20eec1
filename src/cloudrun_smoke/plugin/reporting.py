"""What a smoke run reports: each check's outcome, the short form of a diagnosed failure, the verdict
(``--smoke-report``, the CI step summary), ``--rollback-on-failure`` and the terminal summary."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.plugin.options import run_options
from cloudrun_smoke.plugin.state import SmokeState, state_of
from cloudrun_smoke.report import failure_repr
from cloudrun_smoke.report.run_verdict import run_verdict, summary_lines
from cloudrun_smoke.report.verdict import CheckResult, blocked_by, markdown_summary, write_report


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_ResultCollector(state_of(config).results), "cloudrun-smoke-results")


class _ResultCollector:
    """Each check's outcome for the verdict (registered per session: reports carry no config)."""

    def __init__(self, results: dict[str, CheckResult]) -> None:
        self.results = results

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and report.outcome == "passed":
            return
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "known-failure" if report.skipped else "known-failure-passed"
        elif report.when != "call" and report.failed:
            outcome = "error"
        message = ""
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
        elif report.skipped and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2])
        previous = self.results.get(report.nodeid)
        duration = report.duration + (previous.duration if previous else 0.0)
        if previous is None or previous.outcome == "passed" or outcome != "passed":
            self.results[report.nodeid] = CheckResult(
                report.nodeid,
                outcome,
                round(duration, 3),
                message[:2000],
                blocked_by(message) if outcome == "skipped" else "",
            )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A diagnosed failure reads short; a 404 on an object this run created says whether requests
    reached different instances."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and call.excinfo is not None:
        report.longrepr = failure_repr.compact(item, call.excinfo) or report.longrepr
    if not report.failed or call.excinfo is None:
        return
    section = _per_instance_state(state_of(item.config), item.nodeid, str(call.excinfo.value))
    if section:
        report.sections.append(("cloudrun-smoke: per-instance state", section))


def _per_instance_state(state: SmokeState, nodeid: str, message: str) -> str:
    from cloudrun_smoke.logs.diagnosis import NOT_FOUND, explain_failure

    if NOT_FOUND not in message or state.run is None or state.env is None:
        return ""
    client = state.logging_client
    if client is None:
        from cloudrun_smoke.gcp.clients import credentials_for, logging_client

        try:
            client = logging_client(state.env, credentials_for(state.env))
        except SmokeError:
            return ""
    # Its reads are paid from the run's one read budget: the watcher's when it runs.
    return explain_failure(
        message,
        nodeid,
        state.run,
        client,
        state.env,
        pay_for_read=state.pay_for_read(),
        diagnosed=state.diagnosed,
        on_throttled=state.read_throttled,
    )


@pytest.hookimpl(trylast=True)  # after pytest's own teardown of what is left (Ctrl-C): cleanup is known
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = state_of(config)
    if hasattr(config, "workerinput") or state.env is None:
        return  # under xdist the controller judges the run
    if config.getoption("smoke_rollback_on_failure", False):
        _rollback_on_failure(config, state)
    path = config.getoption("smoke_report", None)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not (path or summary):
        return
    verdict = run_verdict(
        env=state.env,
        target=state.target,
        run=state.run,
        watcher=state.watcher,
        checks=state.results.values(),
        figures=state.figures,
        rollback=state.rollback,
        window=None if state.window is None else state.window.as_dict(),
        options=run_options(config),
        rerun=state.rerun,
        exit_status=int(exitstatus),
    )
    if path:
        write_report(Path(path), verdict)
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(markdown_summary(verdict))


def _rollback_on_failure(config: pytest.Config, state: SmokeState) -> None:
    from cloudrun_smoke.release.on_failure import after_run

    assert state.env is not None and state.config_path is not None
    decision = after_run(
        state.env,
        state.config_path,
        state.results.values(),
        config.rootpath,
        state.target,
        stack_owned=state.stack_owned,
        expected_revision=config.getoption("smoke_expect_revision") or "",
        options=run_options(config),
    )
    state.rollback = decision.line
    if decision.rerun is not None:
        state.rerun = decision.rerun.describe()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    state = state_of(config)
    if state.window is not None:
        terminalreporter.write_sep("-", "cloudrun-smoke window")
        for line in state.window.describe():
            terminalreporter.write_line(line)
    if state.regression is not None:
        terminalreporter.write_sep("-", "cloudrun-smoke regression")
        terminalreporter.write_line(state.regression.describe())
    if state.env is None:
        return
    lines = summary_lines(
        env=state.env,
        target=state.target,
        override=state.url_override,
        discovered_url=state.discovered_url,
        run=state.run,
        watcher=state.watcher,
        neighbours=state.neighbours,
        figures=state.figures,
        rollback=state.rollback,
    )
    terminalreporter.write_sep("-", "cloudrun-smoke")
    for line in lines:
        terminalreporter.write_line(line)
