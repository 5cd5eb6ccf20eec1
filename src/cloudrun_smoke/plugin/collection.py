"""Which checks a smoke run runs, in which order: collection rules, markers, scenarios to start.

The environment is resolved and validated at collection time, and only when a collected test uses
the smoke fixtures, so ``pytest tests/`` never needs ``--env`` while a smoke run without it fails
before anything starts: a pipeline that forgets ``--env prod`` must never go green elsewhere.
"""

from __future__ import annotations

import pytest

from cloudrun_smoke.errors import SmokeError
from cloudrun_smoke.plugin.options import resolve_environment
from cloudrun_smoke.plugin.state import state_of
from cloudrun_smoke.service.scenarios import SCENARIO_FIXTURES

SMOKE_FIXTURES = frozenset(
    {"smoke_env", "smoke_target", "smoke_run", "smoke_service", "smoke_logs", "smoke_user", "smoke_users"}
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "writes: the check creates or changes data (deselected by --read-only)"
    )
    config.addinivalue_line("markers", "security: checks of authentication and tenant isolation")
    config.addinivalue_line(
        "markers", "oncall: the quick read-only subset that answers 'is production healthy?' (-m oncall)"
    )
    config.addinivalue_line("markers", "run_verdict: judges the whole run; runs after every other check")


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not any(SMOKE_FIXTURES & set(getattr(item, "fixturenames", ())) for item in items):
        return
    try:
        env = state_of(config).env = resolve_environment(config)
    except SmokeError as e:
        raise pytest.UsageError(str(e)) from None
    if env.read_only:
        dropped = [i for i in items if i.get_closest_marker("writes") is not None]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [i for i in items if i.get_closest_marker("writes") is None]
    for item in items:
        known = env.known_failures.get(item.name.split("[")[0])
        if known is not None:
            link = f" ({known.link})" if known.link else ""
            item.add_marker(pytest.mark.xfail(reason=f"known issue: {known.reason}{link}", strict=False))
    # Checks that judge the whole run (e.g. "no unexpected errors") go last, whatever their file name.
    items.sort(key=lambda i: i.get_closest_marker("run_verdict") is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Which scenarios the selected checks need: only those start (``-k`` starts less)."""
    needed = sorted(
        {n for item in session.items for n in getattr(item, "fixturenames", ()) if n in SCENARIO_FIXTURES}
    )
    state_of(session.config).scenarios = needed
