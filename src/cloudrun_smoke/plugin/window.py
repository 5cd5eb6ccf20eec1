"""The pytest side of the window checks (``pytest smoke/ --env prod -m window --window 24h``).

Window checks judge what the service did over a period, read-only, from Cloud Monitoring and Cloud
Logging: they start no scenario and are not part of the default run (deselected unless the ``-m``
expression names ``window``). On an embedded local stack the window would be empty, so background
traffic from simulated users runs once first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp.discovery import Target
from cloudrun_smoke.gcp.scope import CloudRunScope
from cloudrun_smoke.plugin.options import requested_window
from cloudrun_smoke.plugin.state import state_of
from cloudrun_smoke.plugin.stop import stop
from cloudrun_smoke.waiting import WaitTimeout
from cloudrun_smoke.window.logs import WindowLogReader
from cloudrun_smoke.window.monitoring import MetricReader
from cloudrun_smoke.window.period import Window, resolve_window
from cloudrun_smoke.window.reads import LogFigures, WindowState, scope_revision, still_serving

MARKER = "window"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: post-deploy window check, read-only; runs only when -m names '{MARKER}'"
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Window checks are opt-in: deselected unless the -m expression names them (or the regression
    checks, which are window checks too)."""
    requested_window(config)  # a bad --window is a usage error, whatever is selected
    if re.search(rf"\b({MARKER}|regression)\b", config.getoption("markexpr", "") or ""):
        return
    dropped = [i for i in items if i.get_closest_marker(MARKER) is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i.get_closest_marker(MARKER) is None]


# -- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def smoke_window_traffic(
    smoke_env: Environment, smoke_target: Target, smoke_canary: bool, request: pytest.FixtureRequest
) -> str:
    """On a local stack this run started: simulated users fill the window (once); elsewhere nothing."""
    stack = state_of(request.config).stack
    if not (smoke_env.stack and stack is not None):
        return ""
    from cloudrun_smoke.window.local_traffic import run_traffic, settle_after_traffic

    try:
        summary = run_traffic(smoke_env, smoke_target, smoke_canary)
    except SmokeError as e:
        stop(f"background traffic: {e}")
    try:
        settle_after_traffic(smoke_env, smoke_target, stack)
    except WaitTimeout as e:
        stop(f"the local stack after the background traffic: {e}")
    return summary


@pytest.fixture(scope="session")
def smoke_window(
    smoke_env: Environment, smoke_target: Target, smoke_window_traffic: str, request: pytest.FixtureRequest
) -> Window:
    """The window the checks judge; it ends now (after the local traffic, if any), its Monitoring
    figures ``metric_delay`` earlier."""
    window = resolve_window(
        requested_window(request.config),
        smoke_target.revision,
        smoke_target.revision_create_time,
        cap=timedelta(seconds=smoke_env.window.max),
        minimum=timedelta(seconds=smoke_env.min_alignment_period),
        metric_delay=timedelta(seconds=smoke_env.metric_delay),
    )
    state_of(request.config).window = WindowState(window, traffic=smoke_window_traffic)
    return window


def _client(make: Callable[[Environment, Any], Any], env: Environment) -> Any:
    """A Google API client for the environment; missing credentials stop the run in one line."""
    from cloudrun_smoke.gcp.clients import credentials_for

    try:
        return make(env, credentials_for(env))
    except SmokeError as e:
        stop(e)


@pytest.fixture(scope="session")
def smoke_metrics(
    smoke_env: Environment, smoke_target: Target, smoke_window: Window, request: pytest.FixtureRequest
) -> MetricReader:
    from cloudrun_smoke.gcp.clients import monitoring_client

    if smoke_window.metrics_skipped:  # every Monitoring figure skips, saying why; the log figures run
        pytest.skip(f"{smoke_window.metrics_skipped} ([env.{smoke_env.name}.window] metric_delay)")
    client = _client(monitoring_client, smoke_env)
    scope = CloudRunScope.of(smoke_env, scope_revision(smoke_target))
    reader = MetricReader(
        client,
        scope,
        smoke_window.metrics(),
        gauge_period=smoke_env.window.gauge_period_s,
        endpoint=smoke_env.monitoring_api_endpoint,
    )
    state = state_of(request.config).window
    assert state is not None
    state.metrics = reader
    return reader


@pytest.fixture(scope="session")
def smoke_window_logs(
    smoke_env: Environment, smoke_target: Target, smoke_window: Window, request: pytest.FixtureRequest
) -> LogFigures:
    from cloudrun_smoke.gcp.clients import logging_client

    client = _client(logging_client, smoke_env)
    reader = WindowLogReader(
        client,
        project=smoke_env.project,
        service=smoke_env.service,
        region=smoke_env.region,
        revision=scope_revision(smoke_target),
        window=smoke_window,
        max_pages=smoke_env.window.max_log_pages,
        pacer=state_of(request.config).pacer(),  # the run's one read budget
        endpoint=smoke_env.logging_api_endpoint,
    )
    state = state_of(request.config).window
    assert state is not None
    state.logs = reader
    return LogFigures(reader, smoke_env, state, still_serving(smoke_target))
