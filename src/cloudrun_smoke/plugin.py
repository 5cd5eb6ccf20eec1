"""The pytest skin over the harness: options, fixtures and markers for the checks in ``smoke/``."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cloudrun-smoke", "Cloud Run post-deploy smoke checks")
    group.addoption(
        "--env", dest="smoke_env", default=None, help="environment from smoke.toml (or SMOKE_ENV)"
    )
