"""Scenarios: the acting half of the checks, started together so that their log waits overlap.

A scenario is a session fixture that acts on the service (create, archive, call the batch, ...) and
returns at once with the log expectations it registered; the checks then assert on its outcome. The
plugin starts every scenario the selected checks need before the first check runs, so the suite's wall
time follows its slowest scenario, not the sum of its waits. ``-k`` starts only what the selected
checks use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])

SCENARIO_FIXTURES: set[str] = set()


def scenario(func: F) -> F:
    """Declare a session fixture as a scenario (started early, together with the others)."""
    SCENARIO_FIXTURES.add(func.__name__)
    return pytest.fixture(scope="session")(func)  # type: ignore[no-any-return]
