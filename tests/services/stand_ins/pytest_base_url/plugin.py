"""pytest-base-url 2.1.0's options, as it registers them (``--base-url``, ``PYTEST_BASE_URL``, the
``base_url`` ini key): the smoke plugin must run beside it, and read its value."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("base_url", help="base url for the application under test.")
    parser.addoption(
        "--base-url",
        metavar="url",
        default=os.getenv("PYTEST_BASE_URL", None),
        help="base url for the application under test.",
    )
    parser.addoption(
        "--verify-base-url",
        action="store_true",
        default=os.getenv("VERIFY_BASE_URL", "false").lower() != "false",
        help="verify the base url.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    base_url = config.getoption("base_url") or config.getini("base_url")
    if base_url is not None:
        config.option.base_url = base_url
