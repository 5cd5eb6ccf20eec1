"""The pytest skin over the harness: options, fixtures and markers for the checks in ``smoke/``.

The environment is resolved and validated at collection time, and only when a collected test uses
the smoke fixtures, so ``pytest tests/`` never needs ``--env`` while a smoke run without it fails
before anything starts: a pipeline that forgets ``--env prod`` must never go green elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudrun_smoke.config import base_url
from cloudrun_smoke.config.environment import ENV_VAR, Environment, load_config
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp.clients import credentials_for, logging_client, run_clients
from cloudrun_smoke.gcp.discovery import Target, discover
from cloudrun_smoke.gcp.errors import is_throttled
from cloudrun_smoke.gcp.scope import CloudRunScope
from cloudrun_smoke.logs.pacing import ReadPacer
from cloudrun_smoke.logs.patterns import catalogue_with
from cloudrun_smoke.logs.source import CloudLoggingSource
from cloudrun_smoke.logs.watcher import LogWatcher
from cloudrun_smoke.report import failure_repr
from cloudrun_smoke.report.links import gcloud_logging_read, logs_explorer_url
from cloudrun_smoke.report.verdict import (
    CheckResult,
    Figures,
    blocked_by,
    build_verdict,
    markdown_summary,
    write_report,
)
from cloudrun_smoke.service import redaction, scenarios, users
from cloudrun_smoke.service.auth import id_token_audience, invoker_headers, request_headers
from cloudrun_smoke.service.http import ServiceClient
from cloudrun_smoke.service.run import SmokeRun
from cloudrun_smoke.service.scenarios import SCENARIO_FIXTURES
from cloudrun_smoke.service.settle import queue_settled
from cloudrun_smoke.service.users import SmokeUser
from cloudrun_smoke.timeutil import format_rfc3339, utcnow

pytest_plugins = ("cloudrun_smoke.plugin.window",)  # the window checks: --window, -m window, fixtures
SMOKE_FIXTURES = frozenset(
    {"smoke_env", "smoke_target", "smoke_run", "smoke_service", "smoke_logs", "smoke_user", "smoke_users"}
)
ENV_KEY = pytest.StashKey[Environment]()
RUN_KEY = pytest.StashKey[SmokeRun]()
WATCHER_KEY = pytest.StashKey[LogWatcher]()
TARGET_KEY = pytest.StashKey[Target]()
SCENARIOS_KEY = pytest.StashKey[list[str]]()
RESULTS_KEY = pytest.StashKey[dict[str, CheckResult]]()
FIGURES_KEY = pytest.StashKey[Figures]()
LOGGING_CLIENT_KEY = pytest.StashKey[Any]()
CONFIG_PATH_KEY = pytest.StashKey[Path]()
STACK_OWNED_KEY = pytest.StashKey[bool]()
STACK_KEY = pytest.StashKey[Any]()  # the embedded LocalStack, when this run started one
NEIGHBOURS_KEY = pytest.StashKey[Any]()  # other users' traffic running beside the run (local stack)
ROLLBACK_KEY = pytest.StashKey[str]()
RERUN_KEY = pytest.StashKey[dict[str, Any]]()
URL_KEY = pytest.StashKey[base_url.UrlOverride]()
SETTLE_GRACE_SECONDS = 20.0  # teardown's wait for the queue's end lines, before clearing a user's memory
DISCOVERED_URL_KEY = pytest.StashKey[str]()
DIAGNOSED_KEY = pytest.StashKey[dict[str, str]]()  # thread id -> the check whose 404 was diagnosed
OPTION_GROUP = "cloudrun-smoke"
EXIT_PREFIX = "cloudrun-smoke: "  # a run stopped by an unusable environment (see _PlainExit)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(OPTION_GROUP, "Cloud Run post-deploy smoke checks")
    group.addoption(
        "--env", dest="smoke_env", default=None, help=f"environment from smoke.toml (or {ENV_VAR})"
    )
    group.addoption(
        "--smoke-config",
        dest="smoke_config",
        default=None,
        help="path of smoke.toml (or SMOKE_CONFIG; default: rootdir)",
    )
    group.addoption(
        "--log-deadline",
        dest="smoke_log_deadline",
        type=float,
        default=None,
        help="seconds to wait for an expected log line (overrides the environment's log_deadline)",
    )
    group.addoption(
        "--local-service-cmd",
        dest="smoke_local_service_cmd",
        default=None,
        help="with --env local: the command run as the revision (or SMOKE_LOCAL_SERVICE_CMD)",
    )
    group.addoption(
        "--read-only",
        dest="smoke_read_only",
        action="store_true",
        default=False,
        help="run only the checks that change nothing on the service",
    )
    group.addoption(
        "--expect-revision",
        dest="smoke_expect_revision",
        default=None,
        help="the revision the deploy step produced: the serving revision must be exactly this one",
    )
    group.addoption(
        "--tag",
        dest="smoke_tag",
        default=None,
        help="test the no-traffic candidate deployed with this tag, through its tag URL (0 %% traffic expected)",
    )
    group.addoption(
        "--revision",
        dest="smoke_revision",
        default=None,
        help="test this tagged no-traffic revision through its tag URL",
    )
    base_url.add_options(group)
    group.addoption(
        "--rollback-on-failure",
        dest="smoke_rollback_on_failure",
        action="store_true",
        default=False,
        help="when checks fail, run them again once; if a failure persists, move 100%% of traffic back",
    )
    group.addoption(
        "--smoke-report",
        dest="smoke_report",
        default=None,
        help="write the run's verdict as JSON to this path",
    )


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(parser: pytest.Parser) -> Iterator[None]:
    """``--base-url`` goes in last: any plugin or initial conftest that owns it keeps it."""
    result = yield
    base_url.add_alias(parser, OPTION_GROUP)
    return result


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "writes: the check creates or changes data (deselected by --read-only)"
    )
    config.addinivalue_line("markers", "security: checks of authentication and tenant isolation")
    config.addinivalue_line(
        "markers", "oncall: the quick read-only subset that answers 'is production healthy?' (-m oncall)"
    )
    config.addinivalue_line("markers", "run_verdict: judges the whole run; runs after every other check")
    redaction.install()  # before any library logs a header: --log-level=DEBUG must not print tokens
    _refuse_xdist(config)
    config.stash[RESULTS_KEY] = {}
    config.stash[FIGURES_KEY] = Figures()
    config.pluginmanager.register(_ResultCollector(config.stash[RESULTS_KEY]), "cloudrun-smoke-results")
    config.pluginmanager.register(_PlainExit(config), "cloudrun-smoke-plain-exit")


# Options only a smoke run carries: given with ``-n``, the run is a smoke run split between workers.
_SMOKE_RUN_OPTIONS = {
    "smoke_env": "--env",
    "smoke_report": "--smoke-report",
    "smoke_rollback_on_failure": "--rollback-on-failure",
}


def _refuse_xdist(config: pytest.Config) -> None:
    """A smoke run is one process. Under pytest-xdist each worker would start its own scenarios (and,
    locally, its own stack: another revision), and the verdict, the summary and the rollback, which
    judge the whole run, would silently not happen. Its scenarios already overlap their waits."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    if getattr(config.option, "dist", "no") == "no":
        return
    given = [flag for dest, flag in _SMOKE_RUN_OPTIONS.items() if config.getoption(dest, None)]
    if given:
        raise pytest.UsageError(
            f"the smoke suite runs in one process; drop -n (pytest-xdist) from this run ({given[0]} "
            "given): each worker would start its own scenarios and stack, and the verdict, the summary "
            "and --rollback-on-failure need the whole run. Its log waits already overlap."
        )


def _resolve_environment(config: pytest.Config) -> Environment:
    raw_path = config.getoption("smoke_config") or os.environ.get("SMOKE_CONFIG")
    path = Path(raw_path) if raw_path else config.rootpath / "smoke.toml"
    smoke_config = load_config(path)
    config.stash[CONFIG_PATH_KEY] = path
    name = config.getoption("smoke_env") or os.environ.get(ENV_VAR)
    if not name:
        raise SmokeError(
            f"--env is required (or {ENV_VAR}): one of {', '.join(smoke_config.names())} from {path}"
        )
    env = smoke_config.environment(name)
    deadline = config.getoption("smoke_log_deadline")
    if deadline is not None:
        if deadline <= 0:
            raise SmokeError(f"--log-deadline must be a positive number of seconds, got {deadline:g}")
        env = env.with_overrides(log_deadline=deadline)
    service_cmd = config.getoption("smoke_local_service_cmd")
    if service_cmd:
        if env.stack is None:
            raise SmokeError(f"--local-service-cmd only applies to a local environment; {name!r} is not one")
        env = env.with_overrides(stack=replace(env.stack, service_cmd=service_cmd))
    if config.getoption("smoke_read_only"):
        env = env.with_overrides(read_only=True)
    config.stash[URL_KEY] = base_url.resolve(config)
    return env


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not any(SMOKE_FIXTURES & set(getattr(item, "fixturenames", ())) for item in items):
        return
    try:
        env = config.stash[ENV_KEY] = _resolve_environment(config)
    except SmokeError as e:
        raise pytest.UsageError(str(e)) from None
    if env.read_only:
        dropped = [i for i in items if i.get_closest_marker("writes") is not None]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [i for i in items if i.get_closest_marker("writes") is None]
    for item in items:
        known = env.known_failures.get(item.name.split("[")[0])
        if known is not None:
            link = f" ({known.link})" if known.link else ""
            item.add_marker(pytest.mark.xfail(reason=f"known issue: {known.reason}{link}", strict=False))
    # Checks that judge the whole run (e.g. "no unexpected errors") go last, whatever their file name.
    items.sort(key=lambda i: i.get_closest_marker("run_verdict") is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Which scenarios the selected checks need: only those start (``-k`` starts less)."""
    needed = sorted(
        {n for item in session.items for n in getattr(item, "fixturenames", ()) if n in SCENARIO_FIXTURES}
    )
    session.config.stash[SCENARIOS_KEY] = needed


# -- fixtures ---------------------------------------------------------------------------------------------
def _fail(error: Exception) -> None:
    """The environment itself is unusable (credentials, API, stack): stop the run with one line.

    Failing each check with the same message would bury it; exit status 4, like a usage error.
    """
    pytest.exit(f"{EXIT_PREFIX}{error}", returncode=4)


@pytest.fixture(scope="session")
def smoke_env(request: pytest.FixtureRequest) -> Iterator[Environment]:
    """The selected environment; for a local one, the embedded stack is started here, once."""
    env = request.config.stash[ENV_KEY]
    if env.stack is None or (env.run_api_endpoint and env.logging_api_endpoint):
        yield env  # a real project, or a stack already running (`cloudrun-smoke local up` prints its endpoints)
        return
    from cloudrun_smoke.local.stack import stack_for

    request.config.stash[STACK_OWNED_KEY] = True
    with contextlib.ExitStack() as exit_stack:
        try:
            stack = exit_stack.enter_context(stack_for(env))
        except (SmokeError, RuntimeError, OSError) as e:
            _fail(SmokeError(f"the local stack did not start: {e}"))
        request.config.stash[STACK_KEY] = stack
        effective = env.with_overrides(
            run_api_endpoint=stack.run_api_endpoint,
            logging_api_endpoint=stack.logging_api_endpoint,
            monitoring_api_endpoint=stack.monitoring_api_endpoint,
        )
        request.config.stash[ENV_KEY] = effective  # diagnostics read the stack's endpoints too
        if env.stack.neighbours > 0:
            from cloudrun_smoke.local.neighbours import Neighbours

            neighbours = Neighbours(stack.service_url, env.stack.neighbours)
            request.config.stash[NEIGHBOURS_KEY] = exit_stack.enter_context(neighbours)
        yield effective


@pytest.fixture(scope="session")
def smoke_target(smoke_env: Environment, request: pytest.FixtureRequest) -> Target:
    """The service as the Cloud Run Admin API describes it: URL, serving revision, traffic, image."""
    try:
        credentials = credentials_for(smoke_env)
        services, revisions = run_clients(smoke_env, credentials)
        target = discover(
            smoke_env,
            services,
            revisions,
            smoke_env.checks.reconcile_timeout,
            tag=request.config.getoption("smoke_tag") or "",
            revision=request.config.getoption("smoke_revision") or "",
        )
    except SmokeError as e:
        _fail(e)
    override = request.config.stash.get(URL_KEY, None)
    if override is not None and override.url:
        request.config.stash[DISCOVERED_URL_KEY] = target.url
        target = replace(target, url=override.url)
    request.config.stash[TARGET_KEY] = target
    return target


@pytest.fixture(scope="session")
def smoke_expected_revision(request: pytest.FixtureRequest) -> str | None:
    """``--expect-revision``: the revision the deploy step produced, if the pipeline passed it."""
    value = request.config.getoption("smoke_expect_revision")
    return str(value) if value else None


@pytest.fixture(scope="session")
def smoke_run(smoke_env: Environment, request: pytest.FixtureRequest) -> SmokeRun:
    run = SmokeRun.new(smoke_env.smoke_user_prefix)
    request.config.stash[RUN_KEY] = run
    return run


@pytest.fixture(scope="session")
def smoke_invoker(smoke_env: Environment, smoke_target: Target) -> dict[str, str]:
    """Cloud Run IAM's headers for a private service (``invoker = "id-token"``), minted once for the
    run: the token is for the service, not for a user; {} otherwise."""
    try:
        return invoker_headers(
            smoke_env, id_token_audience(smoke_env, smoke_target.service_url, smoke_target.url)
        )
    except SmokeError as e:
        _fail(e)


@pytest.fixture(scope="session")
def smoke_users(
    smoke_env: Environment,
    smoke_target: Target,
    smoke_run: SmokeRun,
    smoke_logs: LogWatcher,
    smoke_invoker: dict[str, str],
) -> Iterator[Callable[[str], SmokeUser]]:
    """``smoke_users(name)``: the user a scenario acts as; everything each user created is removed at the end.

    Per scenario where the suite may choose users (dev-bypass, no auth), else the one fixed identity.
    The log watcher outlives the users: teardown reads it to know when the service's queue is done.
    """
    if not smoke_target.url:
        _fail(SmokeError(f"service {smoke_env.service!r} has no URL yet (is it deployed?)"))
    by_name: dict[str, SmokeUser] = {}
    audience = id_token_audience(smoke_env, smoke_target.service_url, smoke_target.url)

    def user(name: str = "") -> SmokeUser:
        key = name if smoke_env.user_is_chosen_by_suite else ""
        if key not in by_name:
            user_id = smoke_run.user_id + (f"-{key}" if key else "")
            try:
                headers = request_headers(
                    smoke_env,
                    user_id,
                    smoke_run.session_id,
                    url=smoke_target.url,
                    invoker=smoke_invoker,
                    audience=audience,
                    run_id=smoke_run.run_id,
                )
            except SmokeError as e:
                _fail(e)
            client = ServiceClient(
                smoke_target.url, headers, smoke_run.run_id, timeout=smoke_env.http_timeout
            )
            if by_name:
                client.timings = next(iter(by_name.values())).client.timings  # one timing log per run
            by_name[key] = SmokeUser(user_id, client, per_run=smoke_env.user_is_chosen_by_suite)
            smoke_run.users.append(by_name[key])
        return by_name[key]

    try:
        yield user
    finally:
        settle = queue_settled(smoke_logs, grace=SETTLE_GRACE_SECONDS)
        smoke_run.cleanup_problems.extend(users.clean_up(list(by_name.values()), settle))
        for each in by_name.values():
            each.client.close()


@pytest.fixture(scope="session")
def smoke_user(smoke_users: Callable[[str], SmokeUser]) -> SmokeUser:
    """The run's main user."""
    return smoke_users("")


@pytest.fixture(scope="session")
def smoke_service(smoke_user: SmokeUser) -> ServiceClient:
    """The service over HTTP as the run's main user."""
    return smoke_user.client


@pytest.fixture(scope="session")
def smoke_logs(
    smoke_env: Environment, smoke_target: Target, smoke_run: SmokeRun, request: pytest.FixtureRequest
) -> Iterator[LogWatcher]:
    """One Cloud Logging poller for the whole run, scoped to the revision under test."""
    try:
        client = logging_client(smoke_env, credentials_for(smoke_env))
    except SmokeError as e:
        _fail(e)

    def explore(filter_: str) -> str:
        if smoke_env.is_local:
            return f"  look further: POST {smoke_env.logging_api_endpoint}/v2/entries:list with this filter"
        return (
            f"  Logs Explorer: {logs_explorer_url(smoke_env.project, filter_, smoke_run.started_at, utcnow())}\n"
            f"  or: {gcloud_logging_read(smoke_env.project, filter_)}"
        )

    # Under pytest-xdist (not refused when only SMOKE_ENV says this is a smoke run) each worker polls
    # on its own: the budget is shared between them. Asked of this process's own config: a suite
    # started by a test under xdist inherits its variables, not its workers (it polled at half budget).
    workerinput = getattr(request.config, "workerinput", {})
    workers = int(workerinput.get("workercount", 1) or 1)
    watcher = LogWatcher(
        CloudLoggingSource(client, smoke_env.project),
        CloudRunScope.of(smoke_env, smoke_target.revision).service_logs_filter(),
        smoke_run.started_at,
        budget_per_minute=max(1, smoke_env.read_budget_per_minute // workers),
        lookback_seconds=smoke_env.log_lookback,
        explore_hint=explore,
        is_throttled=is_throttled,
        catalogue=catalogue_with(smoke_env.patterns),
    )
    request.config.stash[WATCHER_KEY] = watcher
    request.config.stash[LOGGING_CLIENT_KEY] = client
    try:
        yield watcher
    finally:
        watcher.close()


@pytest.fixture(scope="session")
def smoke_figures(request: pytest.FixtureRequest) -> Figures:
    """Where checks record what they measured (printed in the summary, written to the verdict)."""
    return request.config.stash[FIGURES_KEY]


@pytest.fixture(autouse=True)
def _smoke_junit_properties(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> None:
    """Revision and run id on each test case of ``--junitxml`` (suite-level properties break under xdist)."""
    config = request.config
    if ENV_KEY not in config.stash:
        return
    record_property("smoke_environment", config.stash[ENV_KEY].name)
    run = config.stash.get(RUN_KEY, None)
    target = config.stash.get(TARGET_KEY, None)
    if run is not None:
        record_property("smoke_run_id", run.run_id)
    if target is not None:
        record_property("smoke_revision", target.revision)


@pytest.fixture(scope="session", autouse=True)
def _smoke_scenarios_started(request: pytest.FixtureRequest) -> None:
    """Start every scenario the selected checks need, before the first check waits on any of them.

    A scenario that fails is not reported here: its fixture holds the failure, which the first check
    that uses it reports and the others are skipped by (``pytest_pyfunc_call``).
    """
    for name in request.config.stash.get(SCENARIOS_KEY, []):
        with contextlib.suppress(Exception, pytest.fail.Exception, pytest.skip.Exception):
            request.getfixturevalue(name)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> None:
    """One cause, one failure: a check whose scenario failed reports the cause or is skipped as blocked."""
    scenarios.refuse_if_blocked(pyfuncitem)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A diagnosed failure reads short; a 404 on an object this run created says whether requests
    reached different instances."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and call.excinfo is not None:
        report.longrepr = failure_repr.compact(item, call.excinfo) or report.longrepr
    if not report.failed or call.excinfo is None or "→ 404" not in str(call.excinfo.value):
        return
    config = item.config
    run, client = config.stash.get(RUN_KEY, None), config.stash.get(LOGGING_CLIENT_KEY, None)
    if run is None or ENV_KEY not in config.stash:
        return
    if client is None:
        try:
            client = logging_client(config.stash[ENV_KEY], credentials_for(config.stash[ENV_KEY]))
        except SmokeError:
            return
    from cloudrun_smoke.logs.diagnosis import diagnose_404

    # Its reads are paid from the run's one read budget: the watcher's when it runs.
    watcher = config.stash.get(WATCHER_KEY, None)
    if watcher is not None:
        pay_for_read = watcher.pay_for_read
    else:
        pay_for_read = ReadPacer(config.stash[ENV_KEY].read_budget_per_minute).take_turn
    message = str(call.excinfo.value)
    created_by = {t: trace for user in run.users for t, trace in user.created_by.items()}
    diagnosed = config.stash.setdefault(DIAGNOSED_KEY, {})
    for thread_id in run.thread_ids:
        if thread_id in message and thread_id in diagnosed:  # explained once; then a pointer to it
            section = f"thread {thread_id}: see {diagnosed[thread_id]}"
            report.sections.append(("cloudrun-smoke: per-instance state", section))
            return
        if thread_id in message:
            diagnosed[thread_id] = item.nodeid
            text = diagnose_404(
                client,
                config.stash[ENV_KEY],
                thread_id,
                created_by.get(thread_id, ""),
                pay_for_read=pay_for_read,
                since=run.started_at - timedelta(seconds=5),
            )
            if text:
                report.sections.append(("cloudrun-smoke: per-instance state", text))
            return


# -- results, verdict and summary ----------------------------------------------------------------------
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


class _PlainExit:
    """A configuration or credentials error stops the run (``_fail``) and reads as one plain line on
    stderr, like a usage error, instead of pytest's ``! _pytest.outcomes.Exit: ... !`` banner."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.message = ""

    @pytest.hookimpl(trylast=True)  # after the terminal reporter kept the exception to print it
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if not excinfo.errisinstance(pytest.exit.Exception) or not str(excinfo.value).startswith(EXIT_PREFIX):
            return
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None and hasattr(terminal, "_keyboardinterrupt_memo"):
            terminal._keyboardinterrupt_memo = None
            self.message = str(excinfo.value)

    def pytest_unconfigure(self) -> None:
        if self.message:
            sys.stderr.write(f"ERROR: {self.message}\n")


def _http_figures(run: SmokeRun) -> dict[str, Any]:
    """Requests made and those a retry rescued (a transient 429/503 or refused connection)."""
    timings = {id(t): t for user in run.users for t in user.client.timings}.values()
    return {
        "requests": len(timings),
        "retried": sum(1 for t in timings if t.attempts > 1),
        "max_attempts": max((t.attempts for t in timings), default=0),
    }


# Options that shape what a run tests (its target, its selection, its waits), by pytest dest.
SHAPING_OPTIONS = {
    "smoke_expect_revision": "--expect-revision",
    "smoke_tag": "--tag",
    "smoke_revision": "--revision",
    "smoke_log_deadline": "--log-deadline",
    "smoke_read_only": "--read-only",
    "smoke_window": "--window",
}


def run_options(config: pytest.Config) -> dict[str, str]:
    """The options that shaped this run, as given: reported in the verdict, and carried whole by the
    re-run of ``--rollback-on-failure`` so that it tests the same thing."""
    options: dict[str, str] = {}
    for dest, flag in SHAPING_OPTIONS.items():
        value = config.getoption(dest, None)
        if value not in (None, False, ""):
            options[flag] = "" if value is True else str(value)
    override = config.stash.get(URL_KEY, None)
    if override is not None and override.url:
        options["--service-url"] = override.url
    if config.option.markexpr:
        options["-m"] = config.option.markexpr
    if config.option.keyword:
        options["-k"] = config.option.keyword
    return options


def as_args(options: dict[str, str]) -> list[str]:
    args: list[str] = []
    for flag, value in options.items():
        if flag.startswith("--"):
            args.append(f"{flag}={value}" if value else flag)
        else:
            args += [flag, value]
    return args


def _endpoints(env: Environment) -> dict[str, str]:
    return {
        "run_api": env.run_api_endpoint,
        "logging_api": env.logging_api_endpoint,
        "monitoring_api": env.monitoring_api_endpoint,
    }


def _rollback_on_failure(config: pytest.Config) -> None:
    from cloudrun_smoke.release.on_failure import decide

    failed = [c.nodeid for c in config.stash[RESULTS_KEY].values() if c.outcome in ("failed", "error")]
    target = config.stash.get(TARGET_KEY, None)
    tested = target.revision if target is not None else ""
    decision = decide(
        config.stash[ENV_KEY],
        config.stash[CONFIG_PATH_KEY],
        failed,
        config.rootpath,
        candidate=bool(target and target.is_candidate),
        stack_owned=config.stash.get(STACK_OWNED_KEY, False),
        under_test=config.getoption("smoke_expect_revision") or tested,
        tested=tested,
        args=as_args(run_options(config)),
    )
    config.stash[ROLLBACK_KEY] = decision.line
    if decision.rerun is not None:
        config.stash[RERUN_KEY] = decision.rerun.describe()


@pytest.hookimpl(trylast=True)  # after pytest's own teardown of what is left (Ctrl-C): cleanup is known
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if (
        session.config.getoption("smoke_rollback_on_failure", False)
        and ENV_KEY in session.config.stash
        and not hasattr(session.config, "workerinput")
    ):
        _rollback_on_failure(session.config)
    path = session.config.getoption("smoke_report", None)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not (path or summary) or ENV_KEY not in session.config.stash:
        return
    if hasattr(session.config, "workerinput"):
        return  # under xdist the controller writes the verdict
    config = session.config
    env = config.stash[ENV_KEY]
    target = config.stash.get(TARGET_KEY, None)
    run = config.stash.get(RUN_KEY, None)
    watcher = config.stash.get(WATCHER_KEY, None)
    results = config.stash[RESULTS_KEY]
    logs = None
    if watcher is not None:
        stats = watcher.stats
        detections = [
            e.match.line.seen_at - e.match.line.receive_timestamp.timestamp()
            for e in watcher.expectations
            if e.match and e.match.line.receive_timestamp
        ]
        logs = {
            # Reads as the quota counts them: entries:list requests, one per page (the 404 diagnosis's too).
            "entries_list_calls": stats.reads,
            "empty_pages": stats.empty_pages,
            "polls": stats.polls,
            "read_budget_per_minute": watcher.budget_per_minute,
            "throttled": stats.throttled,
            "lines_seen": len(watcher.lines()),
            "max_ingestion_lag_s": round(stats.max_lag_seconds, 3),
            "median_ingestion_lag_s": round(statistics.median(stats.lags), 3) if stats.lags else None,
            "detection_latency_s": sorted(round(d, 3) for d in detections),
            "read_times": stats.read_times,
            "expectations": [
                {
                    "pattern": e.pattern.name,
                    "where": dict(e.where),
                    "registered_at": e.registered_at,
                    "resolved_at": e.resolved_at,
                    "matched": e.match is not None,
                }
                for e in watcher.expectations
            ],
        }
    verdict = build_verdict(
        environment={
            "name": env.name,
            "project": env.project,
            "region": env.region,
            "service": env.service,
            "endpoints": _endpoints(env),
        },
        target=None
        if target is None
        else {
            "url": target.url,
            "revision": target.revision,
            "image": target.image,
            "traffic": [asdict(t) for t in target.traffic],
        },
        run=None
        if run is None
        else {
            "run_id": run.run_id,
            "started_at": format_rfc3339(run.started_at),
            "users": run.user_ids,
            "threads_created": len(run.thread_ids),
            "cleanup_problems": run.cleanup_problems,
            "http": _http_figures(run),
        },
        checks=sorted(results.values(), key=lambda c: c.nodeid),
        figures=config.stash[FIGURES_KEY],
        logs=logs,
        rollback=config.stash.get(ROLLBACK_KEY, None),
        window=_window_summary(config),
        options=run_options(config),
        rerun=config.stash.get(RERUN_KEY, None),
        unattributed=None if watcher is None else [u.as_dict() for u in watcher.unattributed],
        exit_status=int(exitstatus),
    )
    if path:
        write_report(Path(path), verdict)
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(markdown_summary(verdict))


def _window_summary(config: pytest.Config) -> dict[str, Any] | None:
    from cloudrun_smoke.plugin.window import STATE_KEY

    state = config.stash.get(STATE_KEY, None)
    return None if state is None else state.as_dict()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if ENV_KEY not in config.stash:
        return
    env = config.stash[ENV_KEY]
    lines = [f"environment: {env.name} (project {env.project}, region {env.region}, service {env.service})"]
    target = config.stash.get(TARGET_KEY, None)
    if target is not None:
        lines.append(
            f"revision under test: {target.revision or '-'}; traffic: {target.describe_traffic() or '-'}"
        )
    override = config.stash.get(URL_KEY, None)
    if override is not None and override.url and DISCOVERED_URL_KEY in config.stash:
        lines.append(
            f"checks called {override.url} ({override.option}), not the service's URL "
            f"{config.stash[DISCOVERED_URL_KEY] or '(none)'}"
        )
    if override is not None and override.note:
        lines.append(override.note)
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        lines.append(
            f"run id: {run.run_id}; smoke users: {len(run.user_ids)}; threads created: {len(run.thread_ids)}"
            + (" (all removed)" if not run.cleanup_problems else "")
        )
        for problem in run.cleanup_problems:
            lines.append(f"cleanup left: {problem}")
    watcher = config.stash.get(WATCHER_KEY, None)
    if watcher is not None:
        lines.append(
            f"log reads: {watcher.stats.reads} entries:list requests, one per page "
            f"(throttled {watcher.stats.throttled}, empty {watcher.stats.empty_pages}); "
            f"max ingestion lag seen: {watcher.stats.max_lag_seconds:.1f} s"
        )
        shown = watcher.unattributed[:10]  # beside the verdict, never in it; all of them in the JSON
        lines += [f"names nobody, not counted on its own: {item.describe()}" for item in shown]
        if len(watcher.unattributed) > len(shown):
            lines.append(f"... and {len(watcher.unattributed) - len(shown)} more (see --smoke-report)")
    neighbours = config.stash.get(NEIGHBOURS_KEY, None)
    if neighbours is not None:
        lines.append(neighbours.summary().describe())
    for figure in config.stash[FIGURES_KEY].items:
        lines.append(figure.describe())
    if ROLLBACK_KEY in config.stash:
        lines.append(config.stash[ROLLBACK_KEY])
    terminalreporter.write_sep("-", "cloudrun-smoke")
    for line in lines:
        terminalreporter.write_line(line)
