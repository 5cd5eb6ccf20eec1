"""Fixtures shared by our tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloudrun_smoke.local.json_api import JsonApiServer
from cloudrun_smoke.local.log_store import LogStore
from cloudrun_smoke.local.logging_api import Ingestion, LoggingApi, ReadQuota


@pytest.fixture
def api() -> Iterator[tuple[LoggingApi, JsonApiServer]]:
    """The Cloud Logging emulator on loopback, entries visible at once and no read quota."""
    api = LoggingApi(LogStore(), Ingestion(delay=0.0), ReadQuota(per_minute=None))
    server = JsonApiServer("logging", api.routes()).start()
    yield api, server
    server.stop()
