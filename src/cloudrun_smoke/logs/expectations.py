"""What a check waits for in the logs: a line that must come (:class:`Expectation`) or must not
(:class:`Absence`), for one subject, within a deadline. The watcher resolves them as pages arrive;
``result()`` blocks until it has."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from cloudrun_smoke.logs.ingestion_lag import MeasuredWindow, WindowChoice
from cloudrun_smoke.logs.lines import LogMatch
from cloudrun_smoke.logs.patterns import LogPattern

if TYPE_CHECKING:
    from cloudrun_smoke.logs.watcher import LogWatcher


class LogExpectationFailed(AssertionError):
    """The expected line did not come, or a failure line came first. The message is the diagnosis."""


@dataclass
class _Wait:
    """What every wait on the logs has: a pattern for a subject, a window, a resolution."""

    pattern: LogPattern
    where: Mapping[str, str]
    since: datetime | None
    registered_at: float  # watcher clock
    deadline: float
    _watcher: LogWatcher
    match: LogMatch | None = field(default=None, init=False)
    resolved_at: float | None = field(default=None, init=False)
    expired: bool = field(default=False, init=False)  # resolved by its deadline, not by a line

    @property
    def done(self) -> bool:
        return self.resolved_at is not None

    def about(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.where.items()) or "any"


@dataclass
class Expectation(_Wait):
    """A line the run waits for. Registered at once, resolved by the poller: many overlap in time.

    ``result()`` blocks until the line came, a failure line came, or the deadline passed; the waiting
    happened meanwhile, so a test that asks late pays nothing for it.
    """

    failures: tuple[LogPattern, ...] = ()
    timeout: float = 0.0
    accept: Callable[[LogMatch], bool] | None = None  # e.g. attribution by time to another wait's window
    error: str = field(default="", init=False)

    def result(self) -> LogMatch:
        self._watcher._wait_for(self)
        if self.match is None:
            raise LogExpectationFailed(self.error)
        return self.match

    def waited(self) -> float:
        return (self.resolved_at or self._watcher._clock()) - self.registered_at


@dataclass
class Absence(_Wait):
    """A line that must NOT appear within a window (e.g. a second enqueue after archiving twice).

    With a ``rule``, the window is chosen again at each evaluation from the lags the run measured (see
    :mod:`~cloudrun_smoke.logs.ingestion_lag`); ``choice`` says which it was and why."""

    allowed: int = 0  # lines that may match (e.g. 1: the first enqueue, but no second one)
    rule: MeasuredWindow | None = None
    choice: WindowChoice | None = field(default=None, init=False)

    def window(self) -> float:
        return self.deadline - self.registered_at

    def window_reason(self) -> str:
        """Why the window is as long as it is (a measured one says which lags set it)."""
        return self.choice.reason if self.choice else "fixed"

    def describe_window(self) -> str:
        return f"watched for {self.window():.1f} s ({self.window_reason()})"

    def result(self) -> None:
        self._watcher._wait_for(self)
        if self.match is not None:
            limit = "must not appear" if not self.allowed else f"must appear at most {self.allowed} time(s)"
            raise LogExpectationFailed(
                f"log line {self.pattern.name!r} ({self.pattern.description}) for {self.about()} {limit}, "
                f"but it did ({self.describe_window()}):\n    {self.match.line.short()}\n"
                + self._watcher._context(self.pattern, self.where)
            )
