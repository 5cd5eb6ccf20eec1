"""Fixtures of the reference service's tests: one service process a module, and a fresh user a test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from helpers.reference import Service, running_service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("reference") / "data") as svc:
        yield svc


@pytest.fixture
def user() -> str:
    """A user of its own for each test, so concept counts per user start from zero."""
    return f"user-{uuid.uuid4().hex[:8]}"
