"""Another plugin that registers ``--base-url`` under its own name (as pytest-playwright's stack does
through pytest-base-url): loaded first with ``-p``, the smoke plugin must not try to register it too."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--base-url", metavar="url", default=None, help="base url of the web tests")
