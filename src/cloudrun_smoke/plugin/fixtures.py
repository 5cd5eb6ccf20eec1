"""The smoke run's fixtures: the environment (and the local stack), the service under test, the run's
identity, its users and its log watcher. Each is made once per run from a library object; one that
cannot be made stops the run (:func:`cloudrun_smoke.plugin.stop.stop`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp.clients import credentials_for, logging_client, run_clients
from cloudrun_smoke.gcp.discovery import Target, discover
from cloudrun_smoke.logs.pacing import ReadPacer
from cloudrun_smoke.logs.run_watcher import watch_run
from cloudrun_smoke.logs.watcher import LogWatcher
from cloudrun_smoke.plugin.state import state_of
from cloudrun_smoke.plugin.stop import stop
from cloudrun_smoke.report.verdict import Figures
from cloudrun_smoke.service import scenarios
from cloudrun_smoke.service.auth import id_token_audience, invoker_headers
from cloudrun_smoke.service.http import ServiceClient
from cloudrun_smoke.service.run import SmokeRun
from cloudrun_smoke.service.run_users import RunUsers
from cloudrun_smoke.service.settle import queue_settled
from cloudrun_smoke.service.users import SmokeUser


@pytest.fixture(scope="session")
def smoke_env(request: pytest.FixtureRequest) -> Iterator[Environment]:
    """The selected environment; for a local one, the embedded stack is started here, once."""
    state = state_of(request.config)
    env = state.env
    assert env is not None
    if env.stack is None or (env.run_api_endpoint and env.logging_api_endpoint):
        yield env  # a real project, or a stack already running (`cloudrun-smoke local up` prints its endpoints)
        return
    from cloudrun_smoke.local.stack import stack_for
    from cloudrun_smoke.plugin.regression import with_baseline

    env = with_baseline(request.config, env)
    state.stack_owned = True
    with contextlib.ExitStack() as exit_stack:
        try:
            stack = stack_for(env)
            if env.stack.baseline == "sequence":  # the baseline's own traffic, before it is replaced
                stack.between_revisions = lambda s: baseline_traffic(env, s)
            stack = exit_stack.enter_context(stack)
        except (SmokeError, RuntimeError, OSError) as e:
            stop(SmokeError(f"the local stack did not start: {e}"))
        state.stack = stack
        effective = env.with_overrides(
            run_api_endpoint=stack.run_api_endpoint,
            logging_api_endpoint=stack.logging_api_endpoint,
            monitoring_api_endpoint=stack.monitoring_api_endpoint,
        )
        state.env = effective  # diagnostics read the stack's endpoints too
        if env.stack.neighbours > 0:
            from cloudrun_smoke.local.neighbours import Neighbours

            neighbours = Neighbours(stack.service_url, env.stack.neighbours)
            state.neighbours = exit_stack.enter_context(neighbours)
        yield effective


def baseline_traffic(env: Environment, stack: Any) -> None:
    """The simulated users of the window checks, once, on a "sequence" baseline revision."""
    import httpx

    from cloudrun_smoke.waiting import wait_until
    from cloudrun_smoke.window.local_traffic import traffic_at

    def ready() -> bool | None:  # its vector store open: a warming baseline would look slow
        with httpx.Client(timeout=5, trust_env=False) as client:
            return client.get(stack.service_url + env.readiness_path).status_code == 200 or None

    wait_until(ready, timeout=env.stack.startup_timeout if env.stack else 30, what="the baseline ready")
    traffic_at(env, stack.service_url, stack.service_url)


@pytest.fixture(scope="session")
def smoke_target(smoke_env: Environment, request: pytest.FixtureRequest) -> Target:
    """The service as the Cloud Run Admin API describes it: URL, serving revision, traffic, image."""
    state = state_of(request.config)
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
        stop(e)
    override = state.url_override
    if override is not None and override.url:
        state.discovered_url = target.url
        target = replace(target, url=override.url)
    state.target = target
    return target


@pytest.fixture(scope="session")
def smoke_expected_revision(request: pytest.FixtureRequest) -> str | None:
    """``--expect-revision``: the revision the deploy step produced, if the pipeline passed it."""
    value = request.config.getoption("smoke_expect_revision")
    return str(value) if value else None


@pytest.fixture(scope="session")
def smoke_canary(request: pytest.FixtureRequest) -> bool:
    """``--canary``: the ``--tag``/``--revision`` candidate serves a share of the traffic, not none."""
    return bool(request.config.getoption("smoke_canary"))


@pytest.fixture(scope="session")
def smoke_run(smoke_env: Environment, request: pytest.FixtureRequest) -> SmokeRun:
    run = SmokeRun.new(smoke_env.smoke_user_prefix)
    state_of(request.config).run = run
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
        stop(e)


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
        stop(SmokeError(f"service {smoke_env.service!r} has no URL yet (is it deployed?)"))
    run_users = RunUsers(
        smoke_env,
        smoke_run,
        url=smoke_target.url,
        invoker=smoke_invoker,
        audience=id_token_audience(smoke_env, smoke_target.service_url, smoke_target.url),
    )

    def user(name: str = "") -> SmokeUser:
        try:
            return run_users(name)
        except SmokeError as e:
            stop(e)

    try:
        yield user
    finally:
        run_users.remove_all(queue_settled(smoke_logs, grace=smoke_env.cleanup_grace))


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
    state = state_of(request.config)
    try:
        client = logging_client(smoke_env, credentials_for(smoke_env))
    except SmokeError as e:
        stop(e)
    # Under pytest-xdist (not refused when only SMOKE_ENV says this is a smoke run) each worker polls
    # on its own: the budget is shared between them. Asked of this process's own config: a suite
    # started by a test under xdist inherits its variables, not its workers (it polled at half budget).
    workerinput = getattr(request.config, "workerinput", {})
    workers = int(workerinput.get("workercount", 1) or 1)
    state.read_pacer = ReadPacer(max(1, smoke_env.read_budget_per_minute // workers))
    watcher = watch_run(smoke_env, smoke_target, smoke_run.started_at, client, state.read_pacer)
    state.watcher = watcher
    state.logging_client = client
    try:
        yield watcher
    finally:
        watcher.close()


@pytest.fixture(scope="session")
def smoke_logging_client(smoke_logs: LogWatcher, request: pytest.FixtureRequest) -> Any:
    """The Cloud Logging client the run's watcher reads with, for a check's own one-off read."""
    return state_of(request.config).logging_client


@pytest.fixture(scope="session")
def smoke_figures(request: pytest.FixtureRequest) -> Figures:
    """Where checks record what they measured (printed in the summary, written to the verdict)."""
    return state_of(request.config).figures


@pytest.fixture(autouse=True)
def _smoke_junit_properties(
    request: pytest.FixtureRequest, record_property: Callable[[str, object], None]
) -> None:
    """Revision and run id on each test case of ``--junitxml`` (suite-level properties break under xdist)."""
    state = state_of(request.config)
    if state.env is None:
        return
    record_property("smoke_environment", state.env.name)
    if state.run is not None:
        record_property("smoke_run_id", state.run.run_id)
    if state.target is not None:
        record_property("smoke_revision", state.target.revision)


@pytest.fixture(scope="session", autouse=True)
def _smoke_scenarios_started(request: pytest.FixtureRequest) -> None:
    """Start every scenario the selected checks need, before the first check waits on any of them.

    A scenario that fails is not reported here: its fixture holds the failure, which the first check
    that uses it reports and the others are skipped by (``pytest_pyfunc_call``).
    """
    names = state_of(request.config).scenarios
    scenarios.start_together(names, request.getfixturevalue)
    for name in names:
        with contextlib.suppress(Exception, pytest.fail.Exception, pytest.skip.Exception):
            request.getfixturevalue(name)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> None:
    """One cause, one failure: a check whose scenario failed reports the cause or is skipped as blocked."""
    scenarios.refuse_if_blocked(pyfuncitem)
