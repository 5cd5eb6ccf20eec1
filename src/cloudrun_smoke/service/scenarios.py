"""Scenarios: the acting half of the checks, started together so that their log waits overlap.

A scenario is a session fixture that acts on the service (create, archive, call the batch, ...) and
returns at once with the log expectations it registered; the checks then assert on its outcome. The
plugin starts every scenario the selected checks need before the first check runs, each in its own
thread (each acts as its own user, as other users' traffic would), so the suite's wall time follows its
slowest scenario, not the sum of its request chains and waits. ``-k`` starts only what the selected
checks use.

One cause, one failure: a scenario that fails before any check could judge it (the archive PATCH
does not archive, the batch answers a wrong type) fails the first selected check that uses it, with
the cause; every other check that uses it is skipped as ``blocked by <that check>: <cause>``. Fourteen
errors with the same message hid which check owned the step and what else was never judged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from cloudrun_smoke.report.excerpt import one_line
from cloudrun_smoke.report.verdict import blocked_reason

F = TypeVar("F", bound=Callable[..., Any])

SCENARIO_FIXTURES: dict[str, Callable[..., Any]] = {}  # fixture name -> the scenario's body
_started: dict[str, Future[Any]] = {}  # bodies started together, for their fixtures to collect


@dataclass
class ScenarioFailed:
    """What a scenario's fixture holds when the scenario raised: the error, and the check it failed."""

    name: str
    error: BaseException
    owner: str = ""  # node id of the check that reported the cause
    blocked: list[str] = field(default_factory=list)

    @property
    def cause(self) -> str:
        lines = str(self.error).strip().splitlines() or [type(self.error).__name__]
        return one_line(lines[0], 300)

    def judge(self, nodeid: str) -> None:
        """The first check to ask reports the cause (it fails); the others are skipped, blocked by it."""
        __tracebackhide__ = True
        if not self.owner or self.owner == nodeid:
            self.owner = nodeid
            raise self.error
        self.blocked.append(nodeid)
        # Reported at the check's own line, as a skip mark would be, not at the harness's.
        raise pytest.skip.Exception(blocked_reason(self.owner, self.cause), _use_item_location=True)


def scenario(func: F) -> F:
    """Declare a session fixture as a scenario (started early, together with the others)."""
    SCENARIO_FIXTURES[func.__name__] = func

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        started = _started.pop(func.__name__, None)
        try:
            return started.result() if started is not None else func(*args, **kwargs)
        except (Exception, pytest.fail.Exception) as e:  # not Ctrl-C or a skip
            return ScenarioFailed(func.__name__, e)

    return pytest.fixture(scope="session")(run)  # type: ignore[return-value]


def start_together(names: Iterable[str], value_of: Callable[[str], Any]) -> None:
    """Start the bodies of the scenarios ``names`` at once, one thread each, their arguments taken
    from ``value_of(fixture name)`` here; each scenario's fixture then returns what its body returned
    (or fails as it raised). A scenario whose arguments cannot be had is left to its fixture."""
    _started.clear()
    calls: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            calls[name] = {p: value_of(p) for p in inspect.signature(SCENARIO_FIXTURES[name]).parameters}
        except (Exception, pytest.fail.Exception, pytest.skip.Exception):
            continue
    if not calls:
        return
    pool = ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="scenario")
    for name, kwargs in calls.items():
        _started[name] = pool.submit(SCENARIO_FIXTURES[name], **kwargs)
    pool.shutdown(wait=False)


def refuse_if_blocked(item: pytest.Item) -> None:
    """Before a check runs: fail it with a scenario's cause, or skip it as blocked (see module doc)."""
    __tracebackhide__ = True
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    for name in getattr(item, "fixturenames", ()):
        value = funcargs.get(name) if name in SCENARIO_FIXTURES else None
        if isinstance(value, ScenarioFailed):
            value.judge(item.nodeid)
