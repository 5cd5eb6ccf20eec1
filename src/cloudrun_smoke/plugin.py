"""The pytest skin over the harness: options, fixtures and markers for the checks in ``smoke/``.

The environment is resolved and validated at collection time, and only when a collected test uses
the smoke fixtures, so ``pytest tests/`` never needs ``--env`` while a smoke run without it fails
before anything starts: a pipeline that forgets ``--env prod`` must never go green elsewhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudrun_smoke import contract
from cloudrun_smoke.auth import auth_headers
from cloudrun_smoke.config import ENV_VAR, Environment, load_config
from cloudrun_smoke.discovery import Target, discover
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.google_clients import credentials_for, logging_client, run_clients
from cloudrun_smoke.http import ServiceClient
from cloudrun_smoke.links import gcloud_logging_read, logs_explorer_url
from cloudrun_smoke.logs import CloudLoggingSource, LogWatcher
from cloudrun_smoke.run import SmokeRun
from cloudrun_smoke.timeutil import utcnow

SMOKE_FIXTURES = frozenset({"smoke_env", "smoke_target", "smoke_run", "smoke_service", "smoke_logs"})
ENV_KEY = pytest.StashKey[Environment]()
RUN_KEY = pytest.StashKey[SmokeRun]()
WATCHER_KEY = pytest.StashKey[LogWatcher]()
TARGET_KEY = pytest.StashKey[Target]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cloudrun-smoke", "Cloud Run post-deploy smoke checks")
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "writes: the check creates or changes data (deselected by --read-only)"
    )


def _resolve_environment(config: pytest.Config) -> Environment:
    raw_path = config.getoption("smoke_config") or os.environ.get("SMOKE_CONFIG")
    path = Path(raw_path) if raw_path else config.rootpath / "smoke.toml"
    smoke_config = load_config(path)
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
        from dataclasses import replace

        env = env.with_overrides(stack=replace(env.stack, service_cmd=service_cmd))
    return env


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not any(SMOKE_FIXTURES & set(getattr(item, "fixturenames", ())) for item in items):
        return
    try:
        config.stash[ENV_KEY] = _resolve_environment(config)
    except SmokeError as e:
        raise pytest.UsageError(str(e)) from None
    if config.getoption("smoke_read_only"):
        kept = [i for i in items if i.get_closest_marker("writes") is None]
        dropped = [i for i in items if i.get_closest_marker("writes") is not None]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept


# -- fixtures ---------------------------------------------------------------------------------------------
def _fail(error: Exception) -> None:
    pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def smoke_env(request: pytest.FixtureRequest) -> Iterator[Environment]:
    """The selected environment; for a local one, the embedded stack is started here, once."""
    env = request.config.stash[ENV_KEY]
    if env.stack is None:
        yield env
        return
    from cloudrun_smoke.local.stack import stack_for

    with contextlib.ExitStack() as exit_stack:
        try:
            stack = exit_stack.enter_context(stack_for(env))
        except (SmokeError, RuntimeError, OSError) as e:
            _fail(SmokeError(f"the local stack did not start: {e}"))
        yield env.with_overrides(
            run_api_endpoint=stack.run_api_endpoint, logging_api_endpoint=stack.logging_api_endpoint
        )


@pytest.fixture(scope="session")
def smoke_target(smoke_env: Environment, request: pytest.FixtureRequest) -> Target:
    """The service as the Cloud Run Admin API describes it: URL, serving revision, traffic, image."""
    try:
        credentials = credentials_for(smoke_env)
        services, revisions = run_clients(smoke_env, credentials)
        target = discover(smoke_env, services, revisions)
    except SmokeError as e:
        _fail(e)
    request.config.stash[TARGET_KEY] = target
    return target


@pytest.fixture(scope="session")
def smoke_run(smoke_env: Environment, request: pytest.FixtureRequest) -> SmokeRun:
    run = SmokeRun.new(smoke_env.smoke_user_prefix)
    request.config.stash[RUN_KEY] = run
    return run


@pytest.fixture(scope="session")
def smoke_service(
    smoke_env: Environment, smoke_target: Target, smoke_run: SmokeRun
) -> Iterator[ServiceClient]:
    """The service over HTTP as the run's smoke user; what the run created is deleted at the end."""
    try:
        headers = auth_headers(smoke_env, smoke_run.user_id, smoke_run.session_id)
    except SmokeError as e:
        _fail(e)
    if not smoke_target.url:
        _fail(SmokeError(f"service {smoke_env.service!r} has no URL yet (is it deployed?)"))
    client = ServiceClient(smoke_target.url, headers, smoke_run.run_id, timeout=smoke_env.http_timeout)
    try:
        yield client
    finally:
        for thread_id in smoke_run.created_threads:
            with contextlib.suppress(Exception):
                contract.delete_thread(client, thread_id)
        client.close()


def _base_filter(env: Environment, target: Target) -> str:
    parts = [
        'resource.type="cloud_run_revision"',
        f'resource.labels.service_name="{env.service}"',
        f'resource.labels.location="{env.region}"',
    ]
    if target.revision:
        parts.append(f'resource.labels.revision_name="{target.revision}"')
    stdout = f"projects/{env.project}/logs/run.googleapis.com%2Fstdout"
    stderr = f"projects/{env.project}/logs/run.googleapis.com%2Fstderr"
    parts.append(f'(logName="{stdout}" OR logName="{stderr}")')
    return " AND ".join(parts)


@pytest.fixture(scope="session")
def smoke_logs(
    smoke_env: Environment, smoke_target: Target, smoke_run: SmokeRun, request: pytest.FixtureRequest
) -> Iterator[LogWatcher]:
    """One Cloud Logging poller for the whole run, scoped to the revision under test."""
    from google.api_core import exceptions as gexc

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

    watcher = LogWatcher(
        CloudLoggingSource(client, smoke_env.project),
        _base_filter(smoke_env, smoke_target),
        smoke_run.started_at,
        budget_per_minute=smoke_env.read_budget_per_minute,
        lookback_seconds=smoke_env.log_lookback,
        explore_hint=explore,
        is_throttled=lambda e: isinstance(e, gexc.TooManyRequests),
    )
    request.config.stash[WATCHER_KEY] = watcher
    try:
        yield watcher
    finally:
        watcher.close()


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
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        lines.append(
            f"run id: {run.run_id}; smoke user: {run.user_id}; threads created: {len(run.created_threads)}"
        )
    watcher = config.stash.get(WATCHER_KEY, None)
    if watcher is not None:
        lines.append(
            f"log reads: {watcher.stats.reads} (throttled {watcher.stats.throttled}); "
            f"max ingestion lag seen: {watcher.stats.max_lag_seconds:.1f} s"
        )
    terminalreporter.write_sep("-", "cloudrun-smoke")
    for line in lines:
        terminalreporter.write_line(line)
