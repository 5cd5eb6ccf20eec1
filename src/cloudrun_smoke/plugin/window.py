"""The pytest side of the window checks (``pytest smoke/ --env prod -m window --window 24h``).

Window checks judge what the service did over a period, read-only, from Cloud Monitoring and Cloud
Logging: they start no scenario and are not part of the default run (deselected unless the ``-m``
expression names ``window``). On an embedded local stack the window would be empty, so background
traffic from simulated users runs once first.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from cloudrun_smoke.config.environment import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp.discovery import Target
from cloudrun_smoke.gcp.scope import CloudRunScope
from cloudrun_smoke.logs.pacing import ReadPacer
from cloudrun_smoke.logs.patterns import catalogue_with
from cloudrun_smoke.plugin.main import STACK_KEY
from cloudrun_smoke.timeutil import format_rfc3339
from cloudrun_smoke.waiting import WaitTimeout, wait_until
from cloudrun_smoke.window.consolidations import ConsolidationStats, consolidation_stats
from cloudrun_smoke.window.logs import Read, WindowLogReader
from cloudrun_smoke.window.monitoring import MetricReader
from cloudrun_smoke.window.period import Window, parse_duration, resolve_window

MARKER = "window"
STATE_KEY = pytest.StashKey["WindowState"]()


@dataclass
class WindowState:
    """What the window checks of this run read, for the summary: the cost is part of the answer."""

    window: Window
    metrics: MetricReader | None = None
    logs: WindowLogReader | None = None
    traffic: str = ""
    capped: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """For the JSON verdict: the window judged and what judging it cost in API reads."""
        return {
            "start": format_rfc3339(self.window.start),
            "end": format_rfc3339(self.window.end),
            "metrics_end": None if self.window.metrics_skipped else format_rfc3339(self.window.metrics_end),
            "metrics_skipped": self.window.metrics_skipped,
            "list_time_series_calls": self.metrics.calls if self.metrics else 0,
            "entries_list_pages": self.logs.pages if self.logs else 0,
            "capped": list(self.capped),
        }

    def describe(self) -> list[str]:
        cost = self.as_dict()
        lines = [f"window: {self.window.describe()}", f"  {self.window.describe_metrics()}"]
        lines.append(
            f"window reads: ListTimeSeries calls: {cost['list_time_series_calls']}; "
            f"entries:list pages: {cost['entries_list_pages']}"
        )
        lines += [f"window read capped: {what}" for what in self.capped]
        if self.traffic:
            lines += self.traffic.splitlines()
        return lines


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("cloudrun-smoke").addoption(
        "--window",
        dest="smoke_window",
        default=None,
        metavar="DURATION",
        help="window checks (-m window): judge the last DURATION (90s, 30m, 6h, 24h, 2d); default: since "
        "the serving revision was created, capped at [window] max",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: post-deploy window check, read-only; runs only when -m names '{MARKER}'"
    )


def requested(config: pytest.Config) -> timedelta | None:
    raw = config.getoption("smoke_window", None)
    if raw is None:
        return None
    try:
        return parse_duration(raw)
    except ValueError as e:
        raise pytest.UsageError(f"--window: {e}") from None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Window checks are opt-in: deselected unless the -m expression names them."""
    requested(config)  # a bad --window is a usage error, whatever is selected
    if re.search(rf"\b{MARKER}\b", config.getoption("markexpr", "") or ""):
        return
    dropped = [i for i in items if i.get_closest_marker(MARKER) is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i.get_closest_marker(MARKER) is None]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None:
        terminalreporter.write_sep("-", "cloudrun-smoke window")
        for line in state.describe():
            terminalreporter.write_line(line)


# -- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def smoke_window_traffic(smoke_env: Environment, smoke_target: Target, request: pytest.FixtureRequest) -> str:
    """On a local stack this run started: simulated users fill the window (once); elsewhere nothing."""
    if not (smoke_env.stack and STACK_KEY in request.config.stash):
        return ""
    from cloudrun_smoke.local.traffic import run_background_traffic
    from cloudrun_smoke.service.auth import id_token_audience, invoker_headers, request_headers

    url = smoke_target.url
    audience = id_token_audience(smoke_env, smoke_target.service_url, url)

    def headers_for(user_id: str) -> dict[str, str]:
        return request_headers(
            smoke_env, user_id, f"session-{user_id}", url=url, invoker=invoker, audience=audience
        )

    try:
        invoker = invoker_headers(smoke_env, audience)
        summary = run_background_traffic(
            url,
            users=smoke_env.stack.traffic_users,
            threads_per_user=smoke_env.stack.traffic_threads,
            deadline=smoke_env.stack.traffic_deadline,
            headers_for=headers_for,
        )
    except SmokeError as e:
        pytest.exit(f"cloudrun-smoke: background traffic: {e}", returncode=4)
    minimum = max(1, smoke_env.window.min_metric_samples)
    stack = request.config.stash[STACK_KEY]
    try:
        _settle(stack, smoke_target.revision, minimum, smoke_env.metric_delay, smoke_env.log_deadline)
    except WaitTimeout as e:
        pytest.exit(f"cloudrun-smoke: the local stack after the background traffic: {e}", returncode=4)
    return summary.describe()


def _settle(stack: Any, revision: str, samples: int, metric_delay: float, timeout: float) -> None:
    """Until every log line written so far is visible and the instance sampler has measured the
    revision ``samples`` times, once after the traffic, ``metric_delay`` ago: the window then ends after
    the traffic's last line, and its Monitoring figures after its last sample, not in the middle of
    their delays (a few seconds are most of a local window)."""
    store, recorder = stack.store, stack.metrics
    # A metric_delay too long to wait for here leaves the Monitoring figures short of the traffic's
    # end, or skipped (see Window.metrics_skipped): not waited for.
    lag = metric_delay if metric_delay < timeout / 2 else 0.0
    last_line = max((e.visible_at for e in store), default=0.0)
    traffic_end = time.time()

    def settled() -> bool | None:
        measured = [u.time for u in recorder.utilizations() if u.revision == revision and u.cpu is not None]
        visible = [t for t in measured if t < time.time() - lag]  # inside the Monitoring figures' interval
        done = (
            store.now() >= last_line and len(visible) >= samples and max(visible, default=0.0) > traffic_end
        )
        return True if done else None

    wait_until(settled, timeout=timeout, what="the traffic's log lines and metric samples", interval=0.2)


@pytest.fixture(scope="session")
def smoke_window(
    smoke_env: Environment, smoke_target: Target, smoke_window_traffic: str, request: pytest.FixtureRequest
) -> Window:
    """The window the checks judge; it ends now (after the local traffic, if any), its Monitoring
    figures ``metric_delay`` earlier."""
    window = resolve_window(
        requested(request.config),
        smoke_target.revision,
        smoke_target.revision_create_time,
        cap=timedelta(seconds=smoke_env.window.max),
        minimum=timedelta(seconds=smoke_env.min_alignment_period),
        metric_delay=timedelta(seconds=smoke_env.metric_delay),
    )
    request.config.stash[STATE_KEY] = WindowState(window, traffic=smoke_window_traffic)
    return window


def _scope_revision(target: Target) -> str:
    """Only a targeted candidate narrows the scope to its revision; by default, the whole service."""
    return target.revision if target.is_candidate else ""


def _client(make: Callable[[Environment, Any], Any], env: Environment) -> Any:
    """A Google API client for the environment; missing credentials stop the run in one line."""
    from cloudrun_smoke.gcp.clients import credentials_for

    try:
        return make(env, credentials_for(env))
    except SmokeError as e:
        pytest.exit(f"cloudrun-smoke: {e}", returncode=4)


@pytest.fixture(scope="session")
def smoke_metrics(
    smoke_env: Environment, smoke_target: Target, smoke_window: Window, request: pytest.FixtureRequest
) -> MetricReader:
    from cloudrun_smoke.gcp.clients import monitoring_client

    if smoke_window.metrics_skipped:  # every Monitoring figure skips, saying why; the log figures run
        pytest.skip(f"{smoke_window.metrics_skipped} ([env.{smoke_env.name}.window] metric_delay)")
    client = _client(monitoring_client, smoke_env)
    scope = CloudRunScope.of(smoke_env, _scope_revision(smoke_target))
    reader = MetricReader(
        client,
        scope,
        smoke_window.metrics(),
        gauge_period=smoke_env.window.gauge_period_s,
        endpoint=smoke_env.monitoring_api_endpoint,
    )
    request.config.stash[STATE_KEY].metrics = reader
    return reader


class LogFigures:
    """The window's two log reads, each done once and shared by the checks that use it."""

    def __init__(
        self, reader: WindowLogReader, env: Environment, state: WindowState, still_serving: frozenset[str]
    ) -> None:
        self.reader = reader
        self._still_serving = still_serving  # revisions whose instances may still run: traffic or a tag
        self._env = env
        self._state = state
        self._catalogue = catalogue_with(env.patterns)
        self._archive: Read | None = None
        self._app: tuple[Read, ConsolidationStats] | None = None

    def archive_latencies(self) -> Read:
        if self._archive is None:
            self._archive = self._noted(self._call(self.reader.archive_latencies), "archive requests")
        return self._archive

    def consolidations(self) -> tuple[Read, ConsolidationStats]:
        if self._app is None:
            read = self._noted(self._call(lambda: self.reader.app_lines(self._catalogue)), "service lines")
            stats = consolidation_stats(
                read.items,
                self._catalogue,
                end=self.reader.window.end,
                grace=self._env.window.pending_grace_s,
                still_serving=self._still_serving,
            )
            self._app = (read, stats)
        return self._app

    def _noted(self, read: Read, what: str) -> Read:
        if read.capped:
            self._state.capped += (f"{what}: {read.pages} pages of 1000 entries (max_log_pages)",)
        return read

    @staticmethod
    def _call(read: Any) -> Read:
        try:
            result: Read = read()
        except SmokeError as e:
            pytest.fail(str(e), pytrace=False)
        return result


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
        revision=_scope_revision(smoke_target),
        window=smoke_window,
        max_pages=smoke_env.window.max_log_pages,
        pacer=ReadPacer(smoke_env.read_budget_per_minute),
        endpoint=smoke_env.logging_api_endpoint,
    )
    state = request.config.stash[STATE_KEY]
    state.logs = reader
    still_serving = frozenset(t.revision for t in smoke_target.traffic if t.revision and (t.percent or t.tag))
    return LogFigures(reader, smoke_env, state, still_serving)
