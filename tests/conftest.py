"""Fixtures shared by our tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.log_store import LogStore
from cloudrun_smoke.local.logging_api import Ingestion, LoggingApi, ReadQuota
from helpers.ahead import AheadRun, RunsAhead, session_folder


@pytest.fixture(scope="session")
def runs_ahead(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunsAhead]:
    """The ``@pytest.mark.suite_run`` runs, started ahead of their tests and shared out between the
    workers (helpers.ahead)."""
    ahead = RunsAhead(request.session.items, session_folder(tmp_path_factory))
    yield ahead
    ahead.close()


@pytest.fixture
def suite_run(request: pytest.FixtureRequest, runs_ahead: RunsAhead) -> AheadRun:
    """This test's run of the suite, made by the plan its ``suite_run`` mark names."""
    return runs_ahead.result(request.node)


@pytest.fixture
def api() -> Iterator[tuple[LoggingApi, JsonApiServer]]:
    """The Cloud Logging emulator on loopback, entries visible at once and no read quota."""
    api = LoggingApi(LogStore(), Ingestion(delay=0.0), ReadQuota(per_minute=None))
    server = JsonApiServer("logging", api.routes()).start()
    yield api, server
    server.stop()
