"""The pytest side of the regression checks (``pytest smoke/ --env prod -m regression``).

The revision under test is judged against a baseline revision on the same kind of traffic, not against
fixed thresholds (:mod:`cloudrun_smoke.regression`). Read-only, paced by the run's one read budget.
Selected like the window checks: deselected unless the ``-m`` expression names ``regression`` or
``window`` (each check carries both marks). On a local stack, a run that names ``regression`` deploys a
baseline revision beside the one under test (``[env.local.stack] baseline``, "split" when unset), and
the background traffic of the window checks runs first.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from cloudrun_smoke.config.schema import Environment
from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.gcp.discovery import Target
from cloudrun_smoke.gcp.scope import CloudRunScope
from cloudrun_smoke.logs.patterns import catalogue_with
from cloudrun_smoke.plugin.state import state_of
from cloudrun_smoke.regression.figures import Peak, SideReads, comparisons
from cloudrun_smoke.regression.judge import judge
from cloudrun_smoke.regression.revisions import NoBaseline, Revision, Span, pair
from cloudrun_smoke.regression.verdict import RegressionVerdict
from cloudrun_smoke.timeutil import utcnow
from cloudrun_smoke.window.consolidations import consolidation_stats
from cloudrun_smoke.window.logs import WindowLogReader
from cloudrun_smoke.window.monitoring import MetricReader
from cloudrun_smoke.window.period import Window

MARKER = "regression"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: the revision under test against a baseline revision, read-only; runs only when -m "
        f"names '{MARKER}' or 'window'",
    )


def names_regression(config: pytest.Config) -> bool:
    return re.search(rf"\b{MARKER}\b", config.getoption("markexpr", "") or "") is not None


def with_baseline(config: pytest.Config, env: Environment) -> Environment:
    """The local environment a run deploys: with a baseline revision when it names the regression
    checks and ``[stack] baseline`` is unset (both revisions then serve half the traffic)."""
    if env.stack is None or env.stack.baseline or env.stack.candidate_cmd or not names_regression(config):
        return env  # a configured candidate (a canary split) is the comparison
    return env.model_copy(update={"stack": env.stack.model_copy(update={"baseline": "split"})})


def under_test(target: Target, expected: str | None, targeted: bool) -> str:
    """``--expect-revision``, else the ``--tag``/``--revision`` target (``targeted``), else the latest
    ready revision."""
    if expected:
        return expected
    if targeted:
        return target.revision
    return target.latest_ready_revision or target.revision


@pytest.fixture(scope="session")
def smoke_regression(
    smoke_env: Environment,
    smoke_target: Target,
    smoke_window_traffic: str,
    smoke_expected_revision: str | None,
    request: pytest.FixtureRequest,
) -> RegressionVerdict:
    from cloudrun_smoke.gcp.clients import credentials_for, logging_client, monitoring_client, run_clients

    settings = smoke_env.regression
    try:
        credentials = credentials_for(smoke_env)
        _, revisions_client = run_clients(smoke_env, credentials)
        revisions = _revisions(revisions_client, smoke_env)
    except SmokeError as e:
        pytest.fail(str(e), pytrace=False)
    targeted = bool(request.config.getoption("smoke_tag") or request.config.getoption("smoke_revision"))
    name = under_test(smoke_target, smoke_expected_revision, targeted)
    candidate = next((r for r in revisions if r.name == name), None)
    if candidate is None:
        return _noted(
            request,
            RegressionVerdict(None, {}, settings.alpha, f"revision {name} is not among the service's"),
        )
    try:
        pairing = pair(
            candidate, smoke_target.traffic, revisions, utcnow(), timedelta(seconds=smoke_env.window.max)
        )
    except NoBaseline as e:
        return _noted(request, RegressionVerdict(None, {}, settings.alpha, str(e)))
    try:
        client = logging_client(smoke_env, credentials)
        metrics_client = monitoring_client(smoke_env, credentials)
    except SmokeError as e:
        pytest.fail(str(e), pytrace=False)
    pacer = state_of(request.config).pacer()
    catalogue = catalogue_with(smoke_env.patterns)
    pages = 0

    def side(revision: str, span: Span) -> SideReads:
        nonlocal pages
        window = Window(span.start, span.end, f"revision {revision}")
        reader = WindowLogReader(
            client,
            project=smoke_env.project,
            service=smoke_env.service,
            region=smoke_env.region,
            revision=revision,
            window=window,
            max_pages=smoke_env.window.max_log_pages,
            pacer=pacer,
            endpoint=smoke_env.logging_api_endpoint,
        )
        try:
            served = reader.requests().items
            lines = reader.app_lines(catalogue).items
        except SmokeError as e:
            pytest.fail(str(e), pytrace=False)
        finally:
            pages += reader.pages
        stats = consolidation_stats(
            lines, catalogue, end=span.end, grace=smoke_env.window.pending_grace_s, still_serving=frozenset()
        )
        memory, cpu = _peaks(smoke_env, metrics_client, revision, span)
        return SideReads(revision, served, stats, memory, cpu)

    reads = (side(pairing.candidate, pairing.candidate_span), side(pairing.baseline, pairing.baseline_span))
    judged = judge(comparisons(*reads, settings, smoke_env.window.min_metric_samples), settings.alpha)
    verdict = RegressionVerdict(pairing, {j.comparison.name: j for j in judged}, settings.alpha, reads=pages)
    return _noted(request, verdict)


def _noted(request: pytest.FixtureRequest, verdict: RegressionVerdict) -> RegressionVerdict:
    state_of(request.config).regression = verdict  # for the summary
    return verdict


def _peaks(env: Environment, client: Any, revision: str, span: Span) -> tuple[Peak, Peak]:
    """The memory and CPU utilization maxima of ``revision`` over ``span``, up to ``metric_delay``
    before its end (a point sampled later is not visible yet); nothing when that leaves no interval."""
    end = span.end - timedelta(seconds=env.metric_delay)
    if end - span.start < timedelta(seconds=env.min_alignment_period):
        return Peak(None, 0), Peak(None, 0)
    try:
        reader = MetricReader(
            client,
            CloudRunScope.of(env, revision),
            Window(span.start, end, f"revision {revision}"),
            gauge_period=env.window.gauge_period_s,
            endpoint=env.monitoring_api_endpoint,
        )
        memory, cpu = reader.memory_max(), reader.cpu_max()
    except SmokeError as e:
        pytest.fail(str(e), pytrace=False)
    return Peak(memory.value, memory.samples), Peak(cpu.value, cpu.samples)


def _revisions(client: Any, env: Environment) -> list[Revision]:
    """The service's revisions, read as the rollback plan reads them (raises SmokeError)."""
    from cloudrun_smoke.release.plan import list_revisions

    parent = f"projects/{env.project}/locations/{env.region}/services/{env.service}"
    return [Revision(r.name, r.create_time, r.ready) for r in list_revisions(env, client, parent)]
