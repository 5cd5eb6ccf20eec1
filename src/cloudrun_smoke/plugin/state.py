"""What one smoke run holds between pytest's hooks and fixtures: one object under one stash key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cloudrun_smoke.report.verdict import CheckResult, Figures

if TYPE_CHECKING:
    from cloudrun_smoke.config.base_url import UrlOverride
    from cloudrun_smoke.config.schema import Environment
    from cloudrun_smoke.gcp.discovery import Target
    from cloudrun_smoke.logs.pacing import ReadPacer
    from cloudrun_smoke.logs.watcher import LogWatcher
    from cloudrun_smoke.regression.verdict import RegressionVerdict
    from cloudrun_smoke.service.run import SmokeRun
    from cloudrun_smoke.window.reads import WindowState


@dataclass
class SmokeState:
    """Filled as the run goes: the environment at collection, the rest by the fixtures that make it."""

    results: dict[str, CheckResult] = field(default_factory=dict)  # nodeid -> outcome, for the verdict
    figures: Figures = field(default_factory=Figures)  # what checks measured
    env: Environment | None = None  # set at collection when a smoke fixture is used: a smoke run
    config_path: Path | None = None  # the smoke.toml it came from
    url_override: UrlOverride | None = None  # --service-url / --base-url
    discovered_url: str | None = None  # the service's own URL, when an override replaced it
    scenarios: list[str] = field(default_factory=list)  # the scenario fixtures the selected checks need
    stack_owned: bool = False  # this run started the embedded local stack
    stack: Any = None  # that LocalStack, once started
    neighbours: Any = None  # other users' traffic beside the run (local stack)
    target: Target | None = None
    run: SmokeRun | None = None
    watcher: LogWatcher | None = None
    logging_client: Any = None  # the watcher's Cloud Logging client
    read_pacer: ReadPacer | None = None  # the run's one Cloud Logging read budget
    diagnosed: dict[str, str] = field(default_factory=dict)  # thread id -> the check whose 404 was explained
    rollback: str | None = None  # what --rollback-on-failure did
    rerun: dict[str, Any] | None = None  # its re-run, described
    window: WindowState | None = None  # what the window checks read
    regression: RegressionVerdict | None = None  # which revisions, mode and windows were compared

    def pacer(self) -> ReadPacer:
        """The run's one read budget (the watcher's, once it runs)."""
        if self.read_pacer is None:
            from cloudrun_smoke.logs.pacing import ReadPacer

            assert self.env is not None
            self.read_pacer = ReadPacer(self.env.read_budget_per_minute)
        return self.read_pacer

    def pay_for_read(self) -> Callable[[float], bool]:
        """How another reader of the run's logs pays a read: counted as the watcher's when it runs."""
        if self.watcher is not None:
            return self.watcher.pay_for_read
        return self.pacer().take_turn

    def read_throttled(self) -> None:
        """Another reader of the run's logs was answered 429: every reader pauses (the one 429 policy)."""
        pacer = self.pacer()
        pacer.throttled(pacer.clock())


STATE_KEY = pytest.StashKey[SmokeState]()


def state_of(config: pytest.Config) -> SmokeState:
    """The run's state (made on first use)."""
    return config.stash.setdefault(STATE_KEY, SmokeState())
